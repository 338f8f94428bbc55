// Who may read the admin listener: a Host the admin does not know gets 421 (DNS rebinding), the
// data paths need the token when one is set (401 with WWW-Authenticate: Bearer), an admin off
// loopback without a token warns at start — in one process and in a master with workers — and
// the flags that set all this say precisely what is wrong with a bad value.

import { fileURLToPath } from 'node:url'
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startServe, type Serving } from '../src/apps/serve/serve.ts'
import { exchange, req } from './helpers/tcp.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
const TOKEN = 'admin-token-for-tests-0123456789'

/** Status, headers and body of one request sent as raw bytes (so that any Host, or none, can be sent). */
async function ask(port: number, method: string, target: string, headers: Record<string, string>, version = '1.1') {
  const { responses } = await exchange(port, req(method, target, { ...headers, Connection: 'close' }, undefined, version))
  assert.equal(responses.length, 1)
  return responses[0]!
}

async function adminOf(
  t: { after: (fn: () => Promise<void>) => void },
  admin: { host: string; port: number; token?: string; allowedHosts?: string[] },
): Promise<{ serving: Serving; port: number }> {
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin })
  t.after(async () => {
    await serving.admin?.close()
    await serving.server.close()
  })
  return { serving, port: serving.admin!.address.port }
}

describe('Host check (DNS rebinding)', () => {
  test('names the admin does not know get 421 on every path and method; its addresses, localhost and --admin-host names are served', async (t) => {
    const { port } = await adminOf(t, { host: '127.0.0.1', port: 0, allowedHosts: ['admin.example.com'] })
    const refused = [
      'evil.example',
      `evil.example:${port}`,
      '127.0.0.1.nip.io',
      'localhost.evil.example',
      'admin.example.com.evil.example',
      'admin.example.co',
      '[not-an-address]:80',
      '127.0.0.1:99999999',
      '',
    ]
    for (const host of refused) {
      const r = await ask(port, 'GET', '/metrics', { Host: host })
      assert.equal(r.status, 421, `Host: ${JSON.stringify(host)}`)
      assert.match(r.text, /^421 Misdirected Request: .*--admin-host NAME/)
    }
    // A Host that is not host[:port] at all never reaches the admin: the server answers 400 (RFC 9112 §3.2).
    for (const host of [`localhost:${port}x`, '[::1', 'a b', 'a@b']) {
      assert.equal((await ask(port, 'GET', '/metrics', { Host: host })).status, 400, `Host: ${JSON.stringify(host)}`)
    }
    // The dashboard's files, a missing path, another method, OPTIONS *: no way around the check.
    for (const [method, target] of [
      ['GET', '/'],
      ['GET', '/nope'],
      ['POST', '/metrics'],
      ['OPTIONS', '*'],
      ['GET', `http://evil.example:${port}/metrics`],
    ] as const) {
      assert.equal((await ask(port, method, target, { Host: `evil.example:${port}` })).status, 421, `${method} ${target}`)
    }
    // HTTP/1.0 without Host: no browser sends that, and the admin cannot tell whose name was meant.
    assert.equal((await ask(port, 'GET', '/metrics', {}, '1.0')).status, 421)

    const served = [
      `127.0.0.1:${port}`,
      '127.0.0.1',
      'localhost',
      'LOCALHOST:9000',
      'localhost.',
      '[::1]',
      `[::1]:${port}`,
      '10.1.2.3:8081',
      'admin.example.com',
      'Admin.Example.COM.:443',
    ]
    for (const host of served) assert.equal((await ask(port, 'GET', '/metrics', { Host: host })).status, 200, `Host: ${host}`)
  })

  test('an --admin HOST that is a name is one the admin answers to', async (t) => {
    const { port } = await adminOf(t, { host: 'localhost', port: 0 })
    assert.equal((await ask(port, 'GET', '/api/snapshot', { Host: `localhost:${port}` })).status, 200)
    assert.equal((await ask(port, 'GET', '/api/snapshot', { Host: 'other.example' })).status, 421)
  })
})

describe('token', () => {
  test("the data paths need Authorization: Bearer TOKEN; the dashboard's files do not", async (t) => {
    const { port } = await adminOf(t, { host: '127.0.0.1', port: 0, token: TOKEN })
    const host = `127.0.0.1:${port}`
    for (const target of ['/metrics', '/api/snapshot', '/events']) {
      const none = await ask(port, 'GET', target, { Host: host })
      assert.equal(none.status, 401, `${target} without a token`)
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="petrel admin"')
      assert.equal(none.headers['cache-control'], 'no-store')
      assert.doesNotMatch(none.text, /petrel_requests_total|"totals"/)
      const wrong = await ask(port, 'GET', target, { Host: host, Authorization: `Bearer ${TOKEN}x` })
      assert.equal(wrong.status, 401, `${target} with a wrong token`)
      assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="petrel admin", error="invalid_token"')
      assert.equal((await ask(port, 'GET', target, { Host: host, Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` })).status, 401)
    }
    const metrics = await ask(port, 'GET', '/metrics', { Host: host, Authorization: `Bearer ${TOKEN}` })
    assert.equal(metrics.status, 200)
    assert.match(metrics.text, /^petrel_requests_total \d+$/m)
    // The scheme is case-insensitive (RFC 9110 §11.1).
    assert.equal((await ask(port, 'GET', '/api/snapshot', { Host: host, Authorization: `bearer  ${TOKEN}` })).status, 200)
    for (const target of ['/', '/dashboard.js', '/vendor/uPlot.iife.min.js']) assert.equal((await ask(port, 'GET', target, { Host: host })).status, 200, target)
    // The Host check comes first: a rebinding page learns nothing, not even that a token is needed.
    assert.equal((await ask(port, 'GET', '/metrics', { Host: 'evil.example', Authorization: `Bearer ${TOKEN}` })).status, 421)
  })
})

/** Start `petrel serve`; resolves with its output once it printed `ready`, and stops it after the test. */
async function startCli(
  t: { after: (fn: () => Promise<void>) => void },
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text))
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const deadline = Date.now() + 20_000
  while (!ready.test(stdout + stderr)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `petrel serve ${args.join(' ')} did not get ready: ${stdout}${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return { child, output: () => `${stdout}${stderr}` }
}

const WARNING =
  /^petrel(\[master\])?: warning: the admin listener on 0\.0\.0\.0:\d+ is not on loopback and has no token: .*give --admin-token-file FILE, or bind it to 127\.0\.0\.1$/m
const WORKERS = ['--workers', '1', ...(process.getuid?.() === 0 ? ['--user', 'root'] : [])]

describe('an admin off loopback without a token warns at start', () => {
  for (const [name, extra, ready] of [
    ['one process', [], /admin \(dashboard, \/metrics\) on/],
    ['a master with workers', WORKERS, /worker\(s\) serving/],
  ] as const) {
    test(`${name}: one warning line on stderr; none with a token, none on loopback`, { timeout: 60_000 }, async (t) => {
      const open = await startCli(t, ['--admin', '0.0.0.0:0', ...extra], ready)
      assert.equal(open.output().match(new RegExp(WARNING, 'gm'))?.length, 1, open.output())
      const withToken = await startCli(t, ['--admin', '0.0.0.0:0', '--admin-token', TOKEN, ...extra], ready)
      assert.doesNotMatch(withToken.output(), /warning/)
      const loopback = await startCli(t, ['--admin', '127.0.0.1:0', ...extra], ready)
      assert.doesNotMatch(loopback.output(), /warning/)
    })
  }
})

test("with --workers, the master's admin listener applies the same Host rule and token", { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-admin-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const tokenFile = path.join(dir, 'token')
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
  const { output } = await startCli(
    t,
    ['--admin', '127.0.0.1:0', '--admin-token-file', tokenFile, '--admin-host', 'admin.example.com', ...WORKERS],
    /worker\(s\) serving/,
  )
  const port = Number(/admin .* on http:\/\/127\.0\.0\.1:(\d+)/.exec(output())![1])
  assert.equal((await ask(port, 'GET', '/metrics', { Host: 'evil.example', Authorization: `Bearer ${TOKEN}` })).status, 421)
  assert.equal((await ask(port, 'GET', '/metrics', { Host: 'admin.example.com' })).status, 401)
  assert.equal((await ask(port, 'GET', '/metrics', { Host: 'admin.example.com', Authorization: `Bearer ${TOKEN}` })).status, 200)
  assert.equal((await ask(port, 'GET', '/', { Host: `127.0.0.1:${port}` })).status, 200)
})

test('bad admin flags are one-line usage errors naming the flag, exit status 2', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-admin-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'short'), 'tooshort\n')
  writeFileSync(path.join(dir, 'empty'), '\n')
  const cases: Array<[string[], RegExp]> = [
    [
      ['--admin', '127.0.0.1:0', '--admin-token', 'tooshort'],
      /^petrel: bad value for --admin-token: the token has 8 characters; use at least 16, e\.g\. from `openssl rand -hex 32`$/,
    ],
    [
      ['--admin', '127.0.0.1:0', '--admin-token', 'has spaces in it, sixteen+'],
      /^petrel: bad value for --admin-token: the token may hold only letters, digits/,
    ],
    [['--admin', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'short')], /^petrel: bad value for --admin-token-file: the token has 8 characters/],
    [['--admin', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'empty')], /^petrel: bad value for --admin-token-file: the token has 0 characters/],
    [
      ['--admin', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'missing')],
      /^petrel: bad value for --admin-token-file: cannot read .*missing: ENOENT; give a file that holds the token$/,
    ],
    [
      ['--admin', '127.0.0.1:0', '--admin-token', TOKEN, '--admin-token-file', path.join(dir, 'short')],
      /^petrel: give --admin-token or --admin-token-file, not both$/,
    ],
    [['--admin-token', TOKEN], /^petrel: --admin-token applies to the admin listener: give --admin HOST:PORT too$/],
    [['--admin-host', 'admin.example.com'], /^petrel: --admin-host applies to the admin listener/],
    [
      ['--admin', '127.0.0.1:0', '--admin-host', 'http://admin.example.com'],
      /^petrel: bad value for --admin-host: "http:\/\/admin\.example\.com"; expected a host name without scheme or port/,
    ],
    [['--admin', '127.0.0.1:0', '--admin-host', 'admin.example.com:8081'], /^petrel: bad value for --admin-host: .*without scheme or port/],
    [['--admin', 'nowhere'], /^petrel: bad value for --admin: "nowhere"; expected HOST:PORT/],
  ]
  for (const [args, message] of cases) {
    const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
    const [code] = await once(child, 'exit')
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`)
    assert.match(stderr.trim(), message, args.join(' '))
    assert.equal(stderr.trim().split('\n').length, 1, 'one line')
  }
})
