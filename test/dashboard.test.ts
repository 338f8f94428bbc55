// The dashboard in a real browser: headless Chromium (Debian's, installed here when missing)
// driven by playwright-core loads the admin page while load runs, and the charts must move.
// A screenshot is saved to test/output/dashboard.png.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chromium } from 'playwright-core'
import { startServe } from '../src/apps/serve/serve.ts'
import { ensureDebianPackage, onPath } from './helpers/debian.ts'

const SCREENSHOT = new URL('./output/dashboard.png', import.meta.url)

test('the dashboard shows live charts and tables while load runs', { timeout: 120_000 }, async (t) => {
  ensureDebianPackage('chromium', () => onPath('chromium'))
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
  t.after(async () => {
    await serving.admin?.close()
    await serving.server.close()
  })
  // A steady, modest load (the browser needs the CPU too), for longer than the test looks.
  const load = spawn(process.execPath, ['bin/petrel.js', 'bench', '-c', '4', '-R', '400', '-d', '60s', `http://127.0.0.1:${serving.address.port}/plaintext`], { stdio: 'ignore' })
  t.after(async () => {
    if (load.exitCode === null) {
      load.kill('SIGTERM')
      await once(load, 'exit')
    }
  })
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] })
  t.after(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } })
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`http://127.0.0.1:${serving.admin!.address.port}/`)
  await page.waitForFunction(() => (window as unknown as { petrelDashboard?: { ticks: number } }).petrelDashboard?.ticks! >= 3, null, { timeout: 20_000 })
  const points = (): Promise<number> => page.evaluate(() => (window as unknown as { petrelDashboard: { charts: Array<{ data: number[][] }> } }).petrelDashboard.charts[0]!.data[0]!.length)
  const before = await points()
  await page.waitForFunction((n) => (window as unknown as { petrelDashboard: { charts: Array<{ data: number[][] }> } }).petrelDashboard.charts[0]!.data[0]!.length > n, before + 1, { timeout: 10_000 })
  // The figures and the charts' latest values show the load.
  await page.waitForFunction(() => Number((document.getElementById('rps')!.textContent ?? '').replace(/,/g, '')) > 100, null, { timeout: 10_000 })
  const lastRps = await page.evaluate(() => {
    const data = (window as unknown as { petrelDashboard: { charts: Array<{ data: number[][] }> } }).petrelDashboard.charts[0]!.data[1]!
    return data[data.length - 1]!
  })
  assert.ok(lastRps > 100, `the requests/s chart's last point is ${lastRps}`)
  assert.equal(await page.locator('#status').textContent(), 'live')
  assert.ok((await page.locator('#processes tbody tr').count()) === 1)
  assert.match((await page.locator('#tcp tbody').textContent()) ?? '', new RegExp(`${serving.address.port}ESTABLISHED`))
  assert.ok((await page.locator('#cpus tbody tr').count()) >= 2)
  assert.ok((await page.locator('.uplot canvas').count()) >= 5, 'five uPlot charts drawn')
  mkdirSync(new URL('./output/', import.meta.url), { recursive: true })
  await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true })
  t.diagnostic(`screenshot: ${SCREENSHOT.pathname}`)
  assert.deepEqual(errors, [], 'no script errors on the page')
})
