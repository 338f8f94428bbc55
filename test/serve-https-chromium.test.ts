// Chromium (playwright-core) loading `petrel serve` over HTTPS: the demo site (over h2, the
// default), and a page with 30 subresources over HTTP/1.1 (--no-http2; h2-chromium.test.ts loads
// one over h2), trusting the test CA's leaf by its public key (--ignore-certificate-errors-spki-list
// accepts that certificate only, so a wrong certificate would still fail the page).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser } from 'playwright-core'
import { launchChromium } from './helpers/chromium.ts'
import { makeTestCa, type IssuedCertificate } from './helpers/tls.ts'
import { startPetrel } from './helpers/petrel.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const SUBRESOURCES = 30

let work: string
let leaf: IssuedCertificate
let browser: Browser | undefined

before(async () => {
  requireDebianPackage('chromium')
  work = mkdtempSync(path.join(tmpdir(), 'petrel-https-chromium-'))
  leaf = makeTestCa(path.join(work, 'ca')).issue(['localhost', '127.0.0.1'])
  // The base64 SHA-256 of the leaf's SubjectPublicKeyInfo, as the flag takes it.
  browser = await launchChromium(leaf.cert)
})
after(async () => {
  await browser?.close()
  rmSync(work, { recursive: true, force: true })
})

test('Chromium loads the demo site over HTTPS, through HTTP/2', async (t) => {
  const m = await startPetrel(t, ['--tls-cert', leaf.cert, '--tls-key', leaf.key])
  const page = await browser!.newPage()
  t.after(() => page.close())
  const response = await page.goto(`https://localhost:${m.port}/`)
  assert.equal(response?.status(), 200)
  assert.equal(await page.evaluate(() => location.protocol), 'https:')
  assert.equal(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol), 'h2')
})

test(`Chromium loads a page with ${SUBRESOURCES} subresources over HTTPS: every one answered 200, over http/1.1 with --no-http2`, async (t) => {
  const root = path.join(work, 'root')
  mkdirSync(path.join(root, 'img'), { recursive: true })
  const images: string[] = []
  for (let i = 0; i < SUBRESOURCES; i++) {
    writeFileSync(
      path.join(root, 'img', `${i}.svg`),
      `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#${(i * 8).toString(16).padStart(2, '0')}0000"/></svg>\n`,
    )
    images.push(`<img src="/img/${i}.svg" alt="${i}">`)
  }
  writeFileSync(
    path.join(root, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><title>30</title></head><body>${images.join('\n')}</body></html>\n`,
  )
  const m = await startPetrel(t, [root, '--tls-cert', leaf.cert, '--tls-key', leaf.key, '--no-http2'])
  const page = await browser!.newPage()
  t.after(() => page.close())
  const statuses: number[] = []
  page.on('response', (r) => {
    if (r.url().includes('/img/')) statuses.push(r.status())
  })
  const response = await page.goto(`https://localhost:${m.port}/`, { waitUntil: 'load' })
  assert.equal(response?.status(), 200)
  assert.equal(statuses.length, SUBRESOURCES, 'a response for every image')
  assert.ok(
    statuses.every((s) => s === 200),
    String(statuses),
  )
  const loaded = await page.evaluate(() => [...document.images].filter((img) => img.complete && img.naturalWidth === 10).length)
  assert.equal(loaded, SUBRESOURCES, 'every image decoded')
  const protocols = await page.evaluate(() => [
    ...new Set(performance.getEntriesByType('resource').map((e) => (e as PerformanceResourceTiming).nextHopProtocol)),
  ])
  assert.deepEqual(protocols, ['http/1.1'])
})
