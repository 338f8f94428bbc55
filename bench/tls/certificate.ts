// The tls suite's certificate: made with openssl at the start of a run, self-signed for
// localhost and 127.0.0.1, and the same files for every peer, so that the peers differ only in
// how they use it. Nothing is committed; the directory is removed when the suite ends.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from '../lib/children.ts'

export const CERT_TYPES = ['ec', 'rsa'] as const
export type CertType = (typeof CERT_TYPES)[number]

export interface BenchCertificate {
  readonly type: CertType
  /** What it is, for the report: "ECDSA P-256" or "RSA 2048". */
  readonly description: string
  readonly cert: string
  readonly key: string
  remove(): void
}

/** A fresh self-signed certificate and its key (EC P-256 or RSA 2048), valid for two days. */
export function makeBenchCertificate(type: CertType): BenchCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-bench-tls-'))
  const removeNow = (): void => rmSync(dir, { recursive: true, force: true })
  const removeCleanup = onCleanup(removeNow)
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const newKey = type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048']
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...newKey,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  return {
    type,
    description: type === 'ec' ? 'ECDSA P-256' : 'RSA 2048',
    cert,
    key,
    remove: () => {
      removeNow()
      removeCleanup()
    },
  }
}
