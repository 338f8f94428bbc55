// The dashboard in a real browser: headless Chromium (Debian's, installed here when missing)
// driven by playwright-core. A page opened after some quiet and some load draws those seconds at
// once (the server keeps them), latency as a gap where no response ended, time labels in whole
// seconds, and live charts and tables while load runs; a server with a token gets the token
// asked for on the page. A screenshot is saved to test/output/dashboard.png.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startServe } from '../src/apps/serve/serve.ts'
import type { Tick } from '../src/monitor/board.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const SCREENSHOT = new URL('./output/dashboard.png', import.meta.url)

/** What the page exposes for tests: ticks drawn, history points received, the uPlot instances. */
interface DashboardWindow {
  petrelDashboard: { ticks: number; historyPoints: number; charts: Array<{ data: Array<Array<number | null>>; axes: Array<{ _values: string[] | null }> }> }
}

let browser: Browser
before(async () => {
  requireDebianPackage('chromium')
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] })
})
after(() => browser?.close())

/** The labels uPlot drew under each chart's time axis (its `_values`: the strings it rendered). */
function timeLabels(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as DashboardWindow).petrelDashboard.charts.flatMap((c) => c.axes[0]!._values ?? []))
}

function assertWholeSeconds(labels: string[]): void {
  assert.ok(labels.length > 0, 'the time axis has labels')
  for (const label of labels) {
    // uPlot writes ":SS" (and the minute or date under the first): never a fraction of a second,
    // and never months or years for a chart of the last minutes.
    assert.doesNotMatch(label, /\.\d/, `time label ${JSON.stringify(label)} has a fraction of a second`)
    assert.doesNotMatch(label, /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)|^\d{4}$/, `time label ${JSON.stringify(label)} is not a time of day`)
    assert.match(label, /^:\d\d(\n|$)|\d:\d\d/, `time label ${JSON.stringify(label)}`)
  }
}

test('a page opened after quiet and load draws those seconds at once: latency gaps where nothing ended, whole-second labels, then live charts', {
  timeout: 120_000,
}, async (t) => {
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
  t.after(async () => {
    await serving.admin?.close()
    await serving.server.close()
  })
  const admin = `http://127.0.0.1:${serving.admin!.address.port}`
  // Some seconds without a request, then a steady, modest load (the browser needs the CPU too).
  await new Promise((r) => setTimeout(r, 2500))
  const load = spawn(process.execPath, ['bin/petrel.js', 'bench', '-c', '4', '-R', '400', '-d', '60s', `http://127.0.0.1:${serving.address.port}/plaintext`], {
    stdio: 'ignore',
  })
  t.after(async () => {
    if (load.exitCode === null) {
      load.kill('SIGTERM')
      await once(load, 'exit')
    }
  })
  for (let busySeconds = 0; busySeconds < 2; ) {
    await new Promise((r) => setTimeout(r, 1000))
    const tick = (await (await fetch(`${admin}/api/snapshot`)).json()) as Tick
    if (tick.rates.requestsPerS > 100) busySeconds++
  }

  const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } })
  t.after(() => page.close())
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${admin}/`)
  await page.waitForFunction(() => (window as unknown as DashboardWindow).petrelDashboard?.ticks >= 1, null, { timeout: 20_000 })

  // At once, before a second tick: the seconds before the page was opened.
  const history = await page.evaluate(() => {
    const d = (window as unknown as DashboardWindow).petrelDashboard
    return { received: d.historyPoints, ticks: d.ticks, rps: d.charts[0]!.data[1]!, p99: d.charts[1]!.data[3]! }
  })
  assert.ok(history.received >= 5, `${history.received} points of history`)
  assert.ok(history.rps.length >= history.received, 'the charts hold the history')
  const quiet = history.rps.map((rps, i) => [rps, history.p99[i]] as const).filter(([rps]) => rps === 0)
  const busy = history.rps.map((rps, i) => [rps, history.p99[i]] as const).filter(([rps]) => (rps ?? 0) > 100)
  assert.ok(quiet.length >= 2, `quiet seconds in the history: ${JSON.stringify(history.rps)}`)
  assert.ok(busy.length >= 2, `busy seconds in the history: ${JSON.stringify(history.rps)}`)
  for (const [, p99] of quiet) assert.equal(p99, null, 'a second without responses is a gap in the latency chart, not 0')
  for (const [, p99] of busy) assert.ok(typeof p99 === 'number' && p99 > 0, `a busy second has a latency: ${p99}`)
  assertWholeSeconds(await timeLabels(page))

  // Live: new points arrive and show the load.
  const points = (): Promise<number> => page.evaluate(() => (window as unknown as DashboardWindow).petrelDashboard.charts[0]!.data[0]!.length)
  const before = await points()
  await page.waitForFunction((n) => (window as unknown as DashboardWindow).petrelDashboard.charts[0]!.data[0]!.length > n, before + 1, { timeout: 10_000 })
  await page.waitForFunction(() => Number((document.getElementById('rps')!.textContent ?? '').replace(/,/g, '')) > 100, null, { timeout: 10_000 })
  const lastRps = await page.evaluate(() => (window as unknown as DashboardWindow).petrelDashboard.charts[0]!.data[1]!.at(-1)!)
  assert.ok(lastRps! > 100, `the requests/s chart's last point is ${lastRps}`)
  assertWholeSeconds(await timeLabels(page))
  assert.equal(await page.locator('#status').textContent(), 'live')
  assert.ok(await page.locator('#sign-in').isHidden(), 'no token asked for when the server has none')
  assert.ok((await page.locator('#processes tbody tr').count()) === 1)
  assert.match((await page.locator('#tcp tbody').textContent()) ?? '', new RegExp(`${serving.address.port}ESTABLISHED`))
  assert.ok((await page.locator('#cpus tbody tr').count()) >= 2)
  assert.ok((await page.locator('.uplot canvas').count()) >= 5, 'five uPlot charts drawn')
  mkdirSync(new URL('./output/', import.meta.url), { recursive: true })
  await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true })
  t.diagnostic(`screenshot: ${SCREENSHOT.pathname}`)
  assert.deepEqual(errors, [], 'no script errors on the page')
})

test('a page on a fresh server labels its time axis in whole seconds from its first point', { timeout: 60_000 }, async (t) => {
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
  t.after(async () => {
    await serving.admin?.close()
    await serving.server.close()
  })
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  t.after(() => page.close())
  await page.goto(`http://127.0.0.1:${serving.admin!.address.port}/`)
  for (const ticks of [1, 2, 3]) {
    await page.waitForFunction((n) => (window as unknown as DashboardWindow).petrelDashboard?.ticks >= n, ticks, { timeout: 20_000 })
    assertWholeSeconds(await timeLabels(page))
  }
})

test('with a token, the page asks for it, says when it is refused, and then goes live; it sets no cookie', { timeout: 60_000 }, async (t) => {
  const token = 'dashboard-token-0123456789abcdef'
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0, token } })
  t.after(async () => {
    await serving.admin?.close()
    await serving.server.close()
  })
  const page = await browser.newPage()
  t.after(() => page.close())
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`http://127.0.0.1:${serving.admin!.address.port}/`)
  await page.locator('#sign-in').waitFor({ state: 'visible', timeout: 20_000 })
  assert.equal(await page.locator('#status').textContent(), 'token needed')
  await page.locator('#token').fill('wrong-token-but-long-enough')
  await page.locator('#sign-in button').click()
  await page.waitForFunction(() => document.getElementById('sign-in-problem')!.textContent === 'that token was refused', null, { timeout: 10_000 })
  assert.ok(await page.locator('#sign-in').isVisible())
  await page.locator('#token').fill(token)
  await page.locator('#sign-in button').click()
  await page.waitForFunction(() => (window as unknown as DashboardWindow).petrelDashboard.ticks >= 2, null, { timeout: 20_000 })
  assert.equal(await page.locator('#status').textContent(), 'live')
  assert.ok(await page.locator('#sign-in').isHidden())
  assert.deepEqual(await page.context().cookies(), [], 'the token is not a cookie: it does not go to other ports of this host')
  assert.deepEqual(errors, [])
})
