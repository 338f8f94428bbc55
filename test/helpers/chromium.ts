// Chromium (playwright-core) for the tests that load pages from a server: Debian's binary, and
// for HTTPS, trust in one certificate only — by the SHA-256 of its public key
// (--ignore-certificate-errors-spki-list), so a wrong certificate still fails the page.

import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { requireDebianPackage } from './debian.ts'

/** Start Chromium; `trustCert`: the PEM file of the one certificate it accepts without a CA. */
export function launchChromium(trustCert?: string): Promise<Browser> {
  requireDebianPackage('chromium')
  const args = ['--no-sandbox', '--disable-gpu']
  if (trustCert !== undefined) {
    const spki = new X509Certificate(readFileSync(trustCert)).publicKey.export({ type: 'spki', format: 'der' })
    args.push(`--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`)
  }
  return chromium.launch({ executablePath: '/usr/bin/chromium', args })
}
