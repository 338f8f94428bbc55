// The accounts demo over HTTP: register, log in, the private page, log out — on SQLite and on a
// real PostgreSQL this file starts — plus CSRF, rate limits, injection and oversized input, 200
// concurrent logins through a pool of 4, and sessions shared by two servers on one database.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { startServe, type AccountsSettings, type Serving } from '../src/apps/serve/serve.ts'
import { startPostgres } from './helpers/postgres.ts'
import { parseDatabase, describeDatabase } from '../src/apps/accounts/store.ts'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const dir = mkdtempSync(path.join(tmpdir(), 'petrel-accounts-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function serve(t: TestContext, accounts: AccountsSettings): Promise<{ base: string; serving: Serving }> {
  // Room for 200 hashes in the thread pool's queue: the pool under test here is the database's.
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, accounts, pool: { threads: 2, maxQueue: 400 } })
  t.after(async () => {
    await serving.server.close()
    await serving.accounts?.close()
  })
  return { base: `http://127.0.0.1:${serving.address.port}`, serving }
}

/** A browser in miniature: a cookie jar, no automatic redirects. */
class Browser {
  readonly base: string
  readonly jar = new Map<string, string>()

  constructor(base: string) {
    this.base = base
  }

  async request(
    method: string,
    url: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; location: string | null; response: Response }> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const response = await fetch(new URL(url, this.base), {
      method,
      redirect: 'manual',
      headers: { ...(cookie === '' ? {} : { cookie }), ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }), ...headers },
      body: form === undefined ? undefined : new URLSearchParams(form).toString(),
    })
    for (const set of response.headers.getSetCookie()) {
      const [pair] = set.split(';')
      const eq = pair!.indexOf('=')
      const [name, value] = [pair!.slice(0, eq), pair!.slice(eq + 1)]
      if (/Max-Age=0/.test(set) || value === '') this.jar.delete(name)
      else this.jar.set(name, value)
    }
    return { status: response.status, text: await response.text(), location: response.headers.get('location'), response }
  }

  /** The CSRF token of the form on `url`. */
  async csrf(url: string): Promise<string> {
    const { text } = await this.request('GET', url)
    const match = /name="csrf" value="([^"]+)"/.exec(text)
    assert.ok(match, `a form with a csrf field on ${url}`)
    return match[1]!
  }
}

/** The whole flow, the same on every store. */
async function wholeFlow(base: string): Promise<void> {
  const ann = new Browser(base)
  assert.equal((await ann.request('GET', '/account/')).location, '/account/login', 'the private page sends strangers to log in')
  let csrf = await ann.csrf('/account/register')
  let r = await ann.request('POST', '/account/register', { csrf, username: 'ann', password: 'correct horse battery' })
  assert.equal(r.status, 303)
  assert.equal(r.location, '/account/')
  const setCookie = r.response.headers.getSetCookie().find((c) => c.startsWith('petrel_session='))!
  assert.match(setCookie, /; HttpOnly/)
  assert.match(setCookie, /; SameSite=Lax/)
  r = await ann.request('GET', '/account/')
  assert.equal(r.status, 200)
  assert.match(r.text, /logged in as <strong>ann<\/strong>/)
  const sessionCsrf = /name="csrf" value="([^"]+)"/.exec(r.text)![1]!

  // Another browser cannot take the name, nor log in with a wrong password.
  const bob = new Browser(base)
  csrf = await bob.csrf('/account/register')
  r = await bob.request('POST', '/account/register', { csrf, username: 'ann', password: 'another password' })
  assert.equal(r.status, 409)
  assert.match(r.text, /The name ann is taken/)
  csrf = await bob.csrf('/account/login')
  r = await bob.request('POST', '/account/login', { csrf, username: 'ann', password: 'wrong password!' })
  assert.equal(r.status, 401)
  assert.match(r.text, /Wrong name or password/)
  r = await bob.request('POST', '/account/login', { csrf, username: 'nobody-here', password: 'wrong password!' })
  assert.equal(r.status, 401, 'an unknown name gets the same answer')

  // Log out needs the session's own CSRF token.
  r = await ann.request('POST', '/account/logout', { csrf: 'x'.repeat(43) })
  assert.equal(r.status, 403)
  r = await ann.request('POST', '/account/logout', { csrf: sessionCsrf })
  assert.equal(r.status, 303)
  assert.equal((await ann.request('GET', '/account/')).location, '/account/login')

  // And back in.
  csrf = await ann.csrf('/account/login')
  r = await ann.request('POST', '/account/login', { csrf, username: 'ann', password: 'correct horse battery' })
  assert.equal(r.status, 303)
  assert.equal((await ann.request('GET', '/account/')).status, 200)
}

describe('--database', () => {
  test('takes postgres://, postgresql://, sqlite:PATH and a path without ":"; refuses other schemes naming the forms', () => {
    assert.deepEqual(parseDatabase('postgres://app@db/app'), { kind: 'postgres', url: 'postgres://app@db/app' })
    assert.deepEqual(parseDatabase('postgresql://app@db/app'), { kind: 'postgres', url: 'postgresql://app@db/app' })
    assert.deepEqual(parseDatabase('sqlite:data/a.db'), { kind: 'sqlite', file: 'data/a.db' })
    assert.deepEqual(parseDatabase('sqlite:/var/lib/a:b.db'), { kind: 'sqlite', file: '/var/lib/a:b.db' })
    assert.deepEqual(parseDatabase('data/a.db'), { kind: 'sqlite', file: 'data/a.db' })
    for (const bad of ['mysql://db/app', 'postgres:/db', 'redis://x', 'c:stuff', '', 'sqlite:']) {
      assert.throws(() => parseDatabase(bad), { code: 'PETREL_ERR_INVALID_OPTION' }, bad)
    }
    assert.throws(() => parseDatabase('mysql://db/app'), /postgres:\/\/USER@HOST\/DB, postgresql:\/\/…, sqlite:PATH, or a file path without ":"/)
  })

  test('is described without its password', () => {
    assert.equal(describeDatabase('postgres://app:s3cret@db.internal:5433/accounts?password=also'), 'postgres://app@db.internal:5433/accounts')
    assert.equal(describeDatabase('postgresql://db/accounts'), 'postgresql://db/accounts')
    assert.equal(describeDatabase('data/a.db'), 'sqlite:data/a.db')
  })

  test('petrel serve --database mysql://… exits 2 with one line naming the forms, and creates no file', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'petrel-db-'))
    try {
      const r = spawnSync(process.execPath, [path.resolve('bin/petrel.js'), 'serve', '--port', '0', '--database', 'mysql://db/app'], {
        cwd,
        encoding: 'utf8',
        timeout: 30_000,
      })
      assert.equal(r.status, 2, r.stderr)
      assert.match(r.stderr, /^petrel: bad value for --database: "mysql:\/\/db\/app" names no database Petrel can use; give postgres:\/\/USER@HOST\/DB/)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.equal(existsSync(path.join(cwd, 'mysql:')), false, 'no SQLite file named "mysql:"')
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  test('--trust-proxy takes addresses and CIDR blocks; anything else exits 2 naming the entry', () => {
    const r = spawnSync(
      process.execPath,
      [path.resolve('bin/petrel.js'), 'serve', '--port', '0', '--database', `sqlite:${dir}/flag.db`, '--trust-proxy', '10.0.0.0/8,proxy.local'],
      { encoding: 'utf8', timeout: 30_000 },
    )
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, /^petrel: bad value for --trust-proxy: "proxy\.local" is not an address or CIDR block/)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  })
})

describe('on SQLite', () => {
  test('register, the private page, a taken name, a wrong password, log out, log in', async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/flow.db` })
    await wholeFlow(base)
  })

  test('CSRF, injection and oversized input are refused with clear answers', async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/refuse.db`, attemptsPerWindow: 1000 })
    const b = new Browser(base)
    const csrf = await b.csrf('/account/register')
    assert.equal((await b.request('POST', '/account/register', { username: 'eve', password: 'long enough pw' })).status, 403, 'no token')
    assert.equal(
      (await new Browser(base).request('POST', '/account/register', { csrf, username: 'eve', password: 'long enough pw' })).status,
      403,
      'a token without its cookie',
    )
    let r = await b.request('POST', '/account/register', { csrf, username: "x' OR '1'='1", password: 'long enough pw' })
    assert.equal(r.status, 400)
    assert.match(r.text, /A name is 3 to 32 of the letters/)
    r = await b.request('POST', '/account/register', { csrf, username: 'a'.repeat(33), password: 'long enough pw' })
    assert.equal(r.status, 400)
    r = await b.request('POST', '/account/register', { csrf, username: 'eve', password: 'short' })
    assert.equal(r.status, 400)
    assert.match(r.text, /A password is 8 to 128 characters/)
    r = await b.request('POST', '/account/register', { csrf, username: 'eve', password: 'p'.repeat(129) })
    assert.equal(r.status, 400)
    r = await b.request('POST', '/account/register', { csrf, username: 'eve', password: 'x'.repeat(5000) })
    assert.equal(r.status, 413)
    assert.match(r.text, /A form is at most 4096 bytes/)
    r = await b.request('POST', '/account/login', undefined, { 'content-type': 'application/json' })
    assert.equal(r.status, 415)
    // SQL in the password is only a password: stored hashed, matched by parameter.
    const sql = "'; DROP TABLE users; --"
    assert.equal((await b.request('POST', '/account/register', { csrf, username: 'mallory', password: sql })).status, 303)
    const c = new Browser(base)
    const token = await c.csrf('/account/login')
    assert.equal((await c.request('POST', '/account/login', { csrf: token, username: 'mallory', password: sql })).status, 303)
    assert.equal((await c.request('POST', '/account/login', { csrf: token, username: 'mallory', password: "' OR '1'='1" })).status, 401)
    // Markup in a name cannot get onto the page: names are a fixed alphabet, pages escape anyway.
    r = await b.request('POST', '/account/register', { csrf, username: '<script>', password: 'long enough pw' })
    assert.equal(r.status, 400)
    assert.doesNotMatch(r.text, /<script>/)
  })

  test('login attempts per address are limited: 429 with Retry-After', async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/limit.db`, attemptsPerWindow: 3 })
    const b = new Browser(base)
    const csrf = await b.csrf('/account/login')
    for (let i = 0; i < 3; i++) assert.equal((await b.request('POST', '/account/login', { csrf, username: 'ann', password: 'not the one' })).status, 401)
    const r = await b.request('POST', '/account/login', { csrf, username: 'ann', password: 'not the one' })
    assert.equal(r.status, 429)
    assert.ok(Number(r.response.headers.get('retry-after')) > 0)
  })

  test("a CSRF pair the attacker made up fails: the token must carry the server's signature", async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/forged.db`, attemptsPerWindow: 1000 })
    const made = 'A'.repeat(43)
    const madeSigned = `${'A'.repeat(43)}.${'B'.repeat(43)}`
    for (const forged of [made, madeSigned]) {
      const b = new Browser(base)
      // A cookie planted from a sibling subdomain, and the same value in the form.
      b.jar.set('petrel_csrf', forged)
      const r = await b.request('POST', '/account/register', { csrf: forged, username: 'victim', password: 'long enough pw' })
      assert.equal(r.status, 403, `a made-up pair ${forged.slice(0, 10)}… is refused`)
      // The form page replaces a cookie it did not sign.
      const issued = await b.csrf('/account/register')
      assert.notEqual(issued, forged)
      assert.equal(b.jar.get('petrel_csrf'), issued)
    }
  })

  test('a pair the server issued, planted by another site and posted from its page, is refused by Origin and Sec-Fetch-Site', async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/planted.db`, attemptsPerWindow: 1000 })
    const host = new URL(base).host
    // The attacker fetches a genuine token pair for itself...
    const attacker = new Browser(base)
    const issued = await attacker.csrf('/account/register')
    // ...plants the cookie in the victim's browser (a sibling subdomain can) and posts from its page.
    const victim = new Browser(base)
    victim.jar.set('petrel_csrf', attacker.jar.get('petrel_csrf')!)
    const form = { csrf: issued, username: 'victim', password: 'long enough pw' }
    const posts: Array<Record<string, string>> = [
      { origin: 'http://evil.example.test' },
      { origin: `http://sub.${host}` },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: base },
      { origin: 'null' },
    ]
    for (const headers of posts) {
      const r = await victim.request('POST', '/account/register', form, headers)
      assert.equal(r.status, 403, JSON.stringify(headers))
      assert.match(r.text, /posted from another site/)
    }
    // The same post from the site's own page goes through.
    const own = await victim.request('POST', '/account/register', form, { origin: base, 'sec-fetch-site': 'same-origin' })
    assert.equal(own.status, 303)
    // Logging out is a form too.
    assert.equal((await victim.request('POST', '/account/logout', { csrf: 'x' }, { origin: 'http://evil.example.test' })).status, 403)
  })

  test("two servers on one SQLite file accept each other's forms (the signing key is in the database)", async (t) => {
    const one = await serve(t, { database: `sqlite:${dir}/shared-key.db` })
    const two = await serve(t, { database: `sqlite:${dir}/shared-key.db` })
    const b = new Browser(one.base)
    const csrf = await b.csrf('/account/register')
    const onTwo = new Browser(two.base)
    onTwo.jar.set('petrel_csrf', b.jar.get('petrel_csrf')!)
    assert.equal((await onTwo.request('POST', '/account/register', { csrf, username: 'roamer', password: 'long enough pw' })).status, 303)
  })

  test('posts that fail the CSRF check do not count toward the login limit', async (t) => {
    const { base } = await serve(t, { database: `sqlite:${dir}/csrf-limit.db`, attemptsPerWindow: 2 })
    const b = new Browser(base)
    const csrf = await b.csrf('/account/login')
    // A cross-site page posting as the visitor: no token, or a wrong one.
    for (let i = 0; i < 5; i++)
      assert.equal((await b.request('POST', '/account/login', { csrf: 'nope', username: 'ann', password: 'not the one' })).status, 403)
    for (let i = 0; i < 2; i++) assert.equal((await b.request('POST', '/account/login', { csrf, username: 'ann', password: 'not the one' })).status, 401)
    assert.equal((await b.request('POST', '/account/login', { csrf, username: 'ann', password: 'not the one' })).status, 429)
  })

  test('--trust-proxy: from a trusted proxy the limit counts the client X-Forwarded-For names; without it the header is ignored', async (t) => {
    const attempt = async (b: Browser, csrf: string, forwardedFor: string): Promise<number> =>
      (await b.request('POST', '/account/login', { csrf, username: 'ann', password: 'not the one' }, { 'x-forwarded-for': forwardedFor })).status
    const behind = await serve(t, { database: `sqlite:${dir}/trusted.db`, attemptsPerWindow: 2, trustProxy: ['127.0.0.0/8', '10.0.0.0/8'] })
    const b = new Browser(behind.base)
    const csrf = await b.csrf('/account/login')
    assert.equal(await attempt(b, csrf, '203.0.113.5'), 401)
    // What the client wrote left of the hop the proxy vouched for proves nothing; trusted hops are passed.
    assert.equal(await attempt(b, csrf, '198.51.100.1, 203.0.113.5, 10.1.2.3'), 401)
    assert.equal(await attempt(b, csrf, '203.0.113.5'), 429, 'the third attempt of 203.0.113.5')
    assert.equal(await attempt(b, csrf, '203.0.113.6'), 401, 'another client behind the same proxy has its own count')
    const direct = await serve(t, { database: `sqlite:${dir}/untrusted.db`, attemptsPerWindow: 2 })
    const d = new Browser(direct.base)
    const token = await d.csrf('/account/login')
    assert.equal(await attempt(d, token, '203.0.113.7'), 401)
    assert.equal(await attempt(d, token, '203.0.113.8'), 401)
    assert.equal(await attempt(d, token, '203.0.113.9'), 429, 'X-Forwarded-For from an untrusted peer is ignored')
  })

  test('200 concurrent logins through a pool of 4: every one answered, nothing left borrowed', async (t) => {
    const { base, serving } = await serve(t, { database: `sqlite:${dir}/busy.db`, poolMax: 4, attemptsPerWindow: 10_000 })
    await concurrentLogins(base, serving, 200)
  })
})

/** Register one user, then 200 logins at once; each is a 303 (or a 503 from the pool, never a hang). */
let crowds = 0

async function concurrentLogins(base: string, serving: Serving, count: number, allow503 = false): Promise<number[]> {
  const b = new Browser(base)
  const csrf = await b.csrf('/account/register')
  const username = `crowd${++crowds}`
  assert.equal((await b.request('POST', '/account/register', { csrf, username, password: 'the crowd password' })).status, 303)
  const statuses = await Promise.all(
    Array.from({ length: count }, async () => {
      const c = new Browser(base)
      c.jar.set('petrel_csrf', csrf)
      return (await c.request('POST', '/account/login', { csrf, username, password: 'the crowd password' })).status
    }),
  )
  for (const status of statuses) assert.ok(status === 303 || (allow503 && status === 503), `status ${status}`)
  const stats = serving.accounts!.poolStats()
  assert.equal(stats.borrowed, 0, 'every connection came back')
  assert.equal(stats.waiting, 0)
  assert.ok(stats.size <= 4, `pool size ${stats.size}`)
  return statuses
}

describe('on PostgreSQL', () => {
  let url = ''
  let stop = async (): Promise<void> => {}
  // A PostgreSQL that is missing or does not start fails these tests (the helper's error names
  // the package and scripts/install-test-tools.sh): a skip would pass a run that tested nothing.
  before(async () => {
    const pg = await startPostgres()
    url = pg.url
    stop = pg.stop
  })
  after(() => stop())

  test('the whole flow', async (t) => {
    const { base } = await serve(t, { database: url })
    await wholeFlow(base)
  })

  test('two servers on one database share sessions (workers, or machines)', async (t) => {
    const one = await serve(t, { database: url })
    const two = await serve(t, { database: url })
    const b = new Browser(one.base)
    const csrf = await b.csrf('/account/register')
    assert.equal((await b.request('POST', '/account/register', { csrf, username: 'roamer', password: 'travels a lot' })).status, 303)
    const elsewhere = new Browser(two.base)
    elsewhere.jar.set('petrel_session', b.jar.get('petrel_session')!)
    const r = await elsewhere.request('GET', '/account/')
    assert.equal(r.status, 200)
    assert.match(r.text, /logged in as <strong>roamer<\/strong>/)
  })

  test('200 concurrent logins through a pool of 4; through one connection and a 1 ms wait, the overflow gets 503, not a hang', async (t) => {
    const roomy = await serve(t, { database: url, poolMax: 4, attemptsPerWindow: 10_000 })
    await concurrentLogins(roomy.base, roomy.serving, 200)
    const tight = await serve(t, { database: url, poolMax: 1, acquireTimeoutMs: 1, attemptsPerWindow: 10_000 })
    const statuses = await concurrentLogins(tight.base, tight.serving, 200, true)
    assert.ok(statuses.includes(503), 'some waited too long')
    assert.ok(statuses.includes(303), 'and the rest logged in')
  })
})

test('petrel serve --workers 2 on one SQLite file: a session made on one worker works on every worker', async (t) => {
  const { spawn } = await import('node:child_process')
  const { once } = await import('node:events')
  const args = [
    'bin/petrel.js',
    'serve',
    '--port',
    '0',
    '--workers',
    '2',
    '--database',
    `sqlite:${dir}/workers.db`,
    ...(process.getuid?.() === 0 ? ['--user', 'root'] : []),
  ]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (c: Buffer) => (log += c))
  child.stderr.on('data', (c: Buffer) => (log += c))
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const deadline = Date.now() + 15_000
  while (!/serving http:\/\/127\.0\.0\.1:(\d+)/.test(log) || !log.includes('accounts (/account/) on')) {
    assert.ok(Date.now() < deadline && child.exitCode === null, log)
    await new Promise((r) => setTimeout(r, 50))
  }
  const base = `http://127.0.0.1:${/serving http:\/\/127\.0\.0\.1:(\d+)/.exec(log)![1]}`
  assert.ok(log.includes(`accounts (/account/) on sqlite:${dir}/workers.db`), `the start-up lines name the database: ${log}`)
  const b = new Browser(base)
  const csrf = await b.csrf('/account/register')
  assert.equal((await b.request('POST', '/account/register', { csrf, username: 'everywhere', password: 'one session for all' })).status, 303)
  // A new connection each time: the kernel spreads them over both workers.
  for (let i = 0; i < 12; i++) {
    const r = await b.request('GET', '/account/', undefined, { connection: 'close' })
    assert.equal(r.status, 200)
    assert.match(r.text, /logged in as <strong>everywhere<\/strong>/)
  }
})
