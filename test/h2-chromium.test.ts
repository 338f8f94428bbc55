// Chromium (playwright-core) loading a page with 30 subresources from `petrel serve` (HTTP/2 by default) over
// HTTPS: every one over h2, all on one connection. What shows it, from three sides: the page's
// Resource Timing (nextHopProtocol), Chromium's own network log (the connection id of each
// response, through the DevTools protocol), and the server (its access log says HTTP/2.0 for every
// request, and its admin /metrics counts one accepted connection and one TLS handshake).
// Chromium trusts the test CA's leaf by its public key, as serve-https-chromium.test.ts does.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser } from 'playwright-core'
import { launchChromium } from './helpers/chromium.ts'
import { makeTestCa, type IssuedCertificate } from './helpers/tls.ts'
import { startPetrel, waitFor } from './helpers/petrel.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const EACH = 10
const SUBRESOURCES = 3 * EACH

let work: string
let root: string
let leaf: IssuedCertificate
let browser: Browser | undefined
/** The subresources' paths, as the page references them. */
const paths: string[] = []

before(async () => {
  requireDebianPackage('chromium')
  work = mkdtempSync(path.join(tmpdir(), 'petrel-h2-chromium-'))
  leaf = makeTestCa(path.join(work, 'ca')).issue(['localhost', '127.0.0.1'])
  // A page with 10 images, 10 stylesheets and 10 scripts, each at its own URL.
  root = path.join(work, 'root')
  for (const sub of ['img', 'css', 'js']) mkdirSync(path.join(root, sub), { recursive: true })
  const head: string[] = []
  const body: string[] = []
  for (let i = 0; i < EACH; i++) {
    writeFileSync(
      path.join(root, 'img', `${i}.svg`),
      `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#0000${(i * 16).toString(16).padStart(2, '0')}"/></svg>\n`,
    )
    writeFileSync(path.join(root, 'css', `${i}.css`), `#box${i} { width: ${i + 1}px; height: 1px; }\n`)
    writeFileSync(path.join(root, 'js', `${i}.js`), `;(window.ran = window.ran || []).push(${i})\n`)
    paths.push(`/img/${i}.svg`, `/css/${i}.css`, `/js/${i}.js`)
    head.push(`<link rel="stylesheet" href="/css/${i}.css">`)
    body.push(`<div id="box${i}"></div><img src="/img/${i}.svg" alt="${i}"><script src="/js/${i}.js"></script>`)
  }
  writeFileSync(
    path.join(root, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><title>h2</title><link rel="icon" href="data:,">${head.join('\n')}</head><body>\n${body.join('\n')}\n</body></html>\n`,
  )
  browser = await launchChromium(leaf.cert)
})
after(async () => {
  await browser?.close()
  rmSync(work, { recursive: true, force: true })
})

/** A Prometheus counter's value from a /metrics text (an error if it is not there). */
function counter(metrics: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'm').exec(metrics)
  assert.ok(m !== null, `${name} in /metrics:\n${metrics}`)
  return Number(m[1])
}

test(`Chromium loads a page with ${SUBRESOURCES} subresources from petrel serve (HTTP/2 by default): every one over h2, on one connection`, async (t) => {
  const accessLog = path.join(work, 'access.log')
  const m = await startPetrel(t, [
    root,
    '--tls-cert',
    leaf.cert,
    '--tls-key',
    leaf.key,
    '--access-log',
    accessLog,
    '--access-log-format',
    'json',
    '--admin',
    '127.0.0.1:0',
  ])
  const admin = /admin \(dashboard, \/metrics\) on http:\/\/127\.0\.0\.1:(\d+)/.exec(m.log())
  assert.ok(admin !== null, m.log())
  const page = await browser!.newPage()
  t.after(() => page.close())
  // Chromium's own view: the protocol and connection of every response.
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const responses: Array<{ url: string; status: number; protocol: string | undefined; connectionId: number }> = []
  cdp.on('Network.responseReceived', (e) =>
    responses.push({ url: e.response.url, status: e.response.status, protocol: e.response.protocol, connectionId: e.response.connectionId }),
  )

  const origin = `https://localhost:${m.port}`
  const response = await page.goto(`${origin}/`, { waitUntil: 'load' })
  assert.equal(response?.status(), 200)

  // The page: everything loaded and ran, and Resource Timing says h2 for each.
  assert.deepEqual(await page.evaluate(() => (window as unknown as { ran: number[] }).ran), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every script ran, in order')
  assert.equal(await page.evaluate(() => [...document.images].filter((img) => img.complete && img.naturalWidth === 10).length), EACH, 'every image decoded')
  assert.equal(await page.evaluate(() => (document.getElementById('box9') as HTMLElement).offsetWidth), 10, 'the stylesheets applied')
  const navigation = await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol)
  assert.equal(navigation, 'h2')
  const resources = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => ({ name: e.name, protocol: (e as PerformanceResourceTiming).nextHopProtocol })),
  )
  assert.deepEqual(resources.map((r) => new URL(r.name).pathname).sort(), [...paths].sort(), 'one Resource Timing entry for each subresource')
  for (const r of resources) assert.equal(r.protocol, 'h2', `${r.name} over ${r.protocol}`)

  // Chromium's network log: the document and the 30 subresources, each 200 over h2, on one connection.
  const ours = responses.filter((r) => r.url.startsWith(origin))
  assert.equal(ours.length, SUBRESOURCES + 1, JSON.stringify(ours.map((r) => r.url)))
  for (const r of ours) {
    assert.equal(r.status, 200, r.url)
    assert.equal(r.protocol, 'h2', r.url)
  }
  assert.equal(new Set(ours.map((r) => r.connectionId)).size, 1, `connection ids ${[...new Set(ours.map((r) => r.connectionId))]}`)

  // The server: HTTP/2.0 in the access log for every request, and one connection accepted.
  const logged = (): Array<{ uri: string; protocol: string; status: number }> =>
    (() => {
      try {
        return readFileSync(accessLog, 'utf8')
      } catch {
        return ''
      }
    })()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { uri: string; protocol: string; status: number })
  await waitFor('31 access log lines', () => logged().length >= SUBRESOURCES + 1, 10_000)
  const lines = logged()
  assert.deepEqual(lines.map((l) => l.uri).sort(), ['/', ...paths].sort(), 'one access log line for each request')
  for (const l of lines) {
    assert.equal(l.protocol, 'HTTP/2.0', `${l.uri} logged as ${l.protocol}`)
    assert.equal(l.status, 200, l.uri)
  }
  const metrics = await (await fetch(`http://127.0.0.1:${admin[1]}/metrics`)).text()
  assert.equal(counter(metrics, 'petrel_connections_accepted_total'), 1, 'one TCP connection accepted')
  assert.equal(counter(metrics, 'petrel_tls_handshakes_total'), 1, 'one TLS handshake')
})
