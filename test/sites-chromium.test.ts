// Chromium (playwright-core) against a site's CORS rule: a page of one site fetches from another
// with a custom header and credentials, so Chromium sends its own preflight first; an origin the
// rule does not name is refused by the browser.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { startPetrel } from './helpers/petrel.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { freePort } from './helpers/tcp.ts'

let work: string
let browser: Browser | undefined

before(async () => {
  requireDebianPackage('chromium')
  work = mkdtempSync(path.join(tmpdir(), 'petrel-sites-chromium-'))
  // Every *.test name is this machine, so the sites are told apart by Host alone.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP *.test 127.0.0.1'],
  })
})

after(async () => {
  await browser?.close()
  rmSync(work, { recursive: true, force: true })
})

test("Chromium's preflight and credentialed fetch pass a site's CORS rule; an origin it does not name is refused", async (t) => {
  const port = await freePort()
  const page = (name: string): string =>
    `<!doctype html><title>${name}</title><script>
      window.result = fetch('http://api.test:${port}/data.json', { credentials: 'include', headers: { 'X-Token': 'secret' } })
        .then((r) => r.json()).then((j) => 'ok ' + j.answer, (e) => 'refused ' + e.name)
    </script>`
  const files: Record<string, string> = { 'app/index.html': page('app'), 'evil/index.html': page('evil'), 'api/data.json': '{"answer": 42}\n' }
  for (const [dir, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(work, dir)), { recursive: true })
    writeFileSync(path.join(work, dir), content)
  }
  const accessLog = path.join(work, 'access.log')
  const file = path.join(work, 'petrel.json')
  writeFileSync(
    file,
    JSON.stringify({
      port,
      'access-log': accessLog,
      sites: [
        { hosts: ['app.test'], root: './app' },
        { hosts: ['evil.test'], root: './evil' },
        { hosts: ['api.test'], root: './api', cors: { origins: [`http://app.test:${port}`], credentials: true, headers: ['x-token'] } },
      ],
    }),
  )
  await startPetrel(t, ['--config', file], { portFromConfig: true })
  const tab = await browser!.newPage()
  t.after(() => tab.close())
  await tab.goto(`http://app.test:${port}/`)
  assert.equal(await tab.evaluate(() => (window as unknown as { result: Promise<string> }).result), 'ok 42')
  await tab.goto(`http://evil.test:${port}/`)
  assert.equal(await tab.evaluate(() => (window as unknown as { result: Promise<string> }).result), 'refused TypeError')
  // The preflight was Chromium's own, answered 204 by the rule (the access log is written as lines complete).
  const deadline = Date.now() + 5000
  let log = ''
  while (Date.now() < deadline && !/"OPTIONS \/data\.json HTTP\/1\.1" 204/.test(log)) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    log = readFileSync(accessLog, 'utf8')
  }
  assert.match(log, /"OPTIONS \/data\.json HTTP\/1\.1" 204/)
  assert.match(log, /"GET \/data\.json HTTP\/1\.1" 200/)
})
