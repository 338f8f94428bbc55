// The `auth` rule of a site (docs/sites.md, docs/auth.md), through the real CLI with files made by
// Debian's `htpasswd`: a protected path answers 401 with the site's realm, the right user gets in,
// other sites on the same server are not protected, the rule order (a redirect answers before
// auth; a rewrite cannot reach a protected path without a password), a reload that changes the
// file, and a bad file at start and on reload named by its JSON path, file, line and user.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exchange, parseAll, req, type HttpResponse } from './helpers/tcp.ts'
import { petrel, startPetrel, waitFor } from './helpers/petrel.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { makeTestCa } from './helpers/tls.ts'

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-site-auth-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** `htpasswd -b ARGS` (the password on the command line); throws when it fails. */
function htpasswd(...args: string[]): void {
  requireDebianPackage('apache2-utils')
  const r = spawnSync('htpasswd', ['-b', ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`htpasswd ${args.join(' ')}: ${r.stderr}`)
}

/** One request over its own connection (closed after it), as raw bytes. */
async function ask(port: number, target: string, host: string, user?: string): Promise<HttpResponse> {
  const headers: Record<string, string> = { Host: host, Connection: 'close' }
  if (user !== undefined) headers.Authorization = `Basic ${Buffer.from(user).toString('base64')}`
  const { raw } = await exchange(port, req('GET', target, headers))
  const { responses } = parseAll(raw, { eof: true })
  assert.equal(responses.length, 1)
  return responses[0]!
}

/**
 * Three sites over the same files: a.test protects /admin/* (realm: its first host name), with a
 * redirect and rewrites around it; b.test protects nothing; c.test protects everything in realm
 * "staff", with a CORS rule for https://app.c.test. users.htpasswd holds alice (bcrypt) and bob (apr1).
 */
function sitesWithAuth(dir: string): string {
  for (const site of ['a', 'b', 'c']) {
    mkdirSync(path.join(dir, site, 'admin'), { recursive: true })
    writeFileSync(path.join(dir, site, 'index.html'), `${site} home\n`)
    writeFileSync(path.join(dir, site, 'admin', 'secret.txt'), `${site} secret\n`)
  }
  const users = path.join(dir, 'users.htpasswd')
  htpasswd('-c', '-B', '-C', '5', users, 'alice', 'alice-pw')
  htpasswd('-m', users, 'bob', 'bob-pw')
  const config = {
    port: 0,
    sites: [
      {
        hosts: ['a.test'],
        root: './a',
        redirects: [{ from: '/admin/old', to: '/admin/secret.txt' }],
        rewrites: [
          { from: '/open/*', to: '/admin/:splat' },
          { from: '/admin/hidden', to: '/index.html' },
        ],
        auth: { path: '/admin/*', htpasswd: './users.htpasswd' },
      },
      { hosts: ['b.test'], root: './b' },
      {
        hosts: ['c.test'],
        root: './c',
        auth: { realm: 'staff', htpasswd: 'users.htpasswd' },
        cors: { path: '/*', origins: ['https://app.c.test'], credentials: true, methods: ['GET', 'PUT'] },
      },
    ],
  }
  const file = path.join(dir, 'petrel.json')
  writeFileSync(file, JSON.stringify(config))
  return file
}

const challenge = (realm: string): string => `Basic realm="${realm}", charset="UTF-8"`

test("a site's auth: 401 with the site's realm on its path, the right users get in, other paths and other sites need nothing", async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', sitesWithAuth(dir)])
  for (const target of ['/admin/secret.txt', '/admin']) {
    const refused = await ask(m.port, target, 'a.test')
    assert.equal(refused.status, 401, target)
    assert.equal(refused.headers['www-authenticate'], challenge('a.test'), target)
    assert.doesNotMatch(refused.text, /secret/)
  }
  assert.equal((await ask(m.port, '/admin/secret.txt', 'a.test', 'alice:wrong')).status, 401)
  assert.equal((await ask(m.port, '/admin/secret.txt', 'a.test', 'mallory:alice-pw')).status, 401)
  for (const user of ['alice:alice-pw', 'bob:bob-pw']) {
    const allowed = await ask(m.port, '/admin/secret.txt', 'a.test', user)
    assert.equal(allowed.status, 200, user)
    assert.equal(allowed.text, 'a secret\n', user)
  }
  assert.equal((await ask(m.port, '/', 'a.test')).text, 'a home\n')
  // Another site on the same server, same files: nothing protected.
  const other = await ask(m.port, '/admin/secret.txt', 'b.test')
  assert.equal(other.status, 200)
  assert.equal(other.text, 'b secret\n')
  // "path" defaults to the whole site; the realm is the one given.
  const whole = await ask(m.port, '/', 'c.test')
  assert.equal(whole.status, 401)
  assert.equal(whole.headers['www-authenticate'], challenge('staff'))
  assert.equal((await ask(m.port, '/', 'c.test', 'alice:alice-pw')).text, 'c home\n')
})

test('rule order: a redirect answers before auth; auth runs before rewrites, and a rewrite into the protected path is checked too', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', sitesWithAuth(dir)])
  const redirected = await ask(m.port, '/admin/old', 'a.test')
  assert.equal(redirected.status, 308)
  assert.equal(redirected.headers.location, '/admin/secret.txt')
  // A protected path rewritten to a public file still needs the password: auth comes first.
  assert.equal((await ask(m.port, '/admin/hidden', 'a.test')).status, 401)
  assert.equal((await ask(m.port, '/admin/hidden', 'a.test', 'alice:alice-pw')).text, 'a home\n')
  // A public path rewritten into /admin/ cannot dodge the check.
  const dodged = await ask(m.port, '/open/secret.txt', 'a.test')
  assert.equal(dodged.status, 401)
  assert.equal(dodged.headers['www-authenticate'], challenge('a.test'))
  assert.doesNotMatch(dodged.text, /secret/)
  assert.equal((await ask(m.port, '/open/secret.txt', 'a.test', 'bob:bob-pw')).text, 'a secret\n')
})

test("CORS behind auth: an allowed origin's preflight (never credentialed) gets 204 without a password; another origin's, and the real request, need one", async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', sitesWithAuth(dir)])
  const preflight = async (origin: string): Promise<HttpResponse> => {
    const { raw } = await exchange(
      m.port,
      req('OPTIONS', '/admin/secret.txt', {
        Host: 'c.test',
        Origin: origin,
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'content-type',
        Connection: 'close',
      }),
    )
    return parseAll(raw, { eof: true }).responses[0]!
  }
  const allowed = await preflight('https://app.c.test')
  assert.equal(allowed.status, 204)
  assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.c.test')
  assert.equal(allowed.headers['access-control-allow-methods'], 'GET, PUT')
  assert.equal(allowed.headers['access-control-allow-credentials'], 'true')
  assert.equal(allowed.headers['www-authenticate'], undefined)
  const other = await preflight('https://evil.test')
  assert.equal(other.status, 401)
  assert.equal(other.headers['access-control-allow-origin'], undefined)
  // The real request from the allowed origin still needs the password, and gets the CORS fields with it.
  const { raw } = await exchange(m.port, req('GET', '/admin/secret.txt', { Host: 'c.test', Origin: 'https://app.c.test', Connection: 'close' }))
  assert.equal(parseAll(raw, { eof: true }).responses[0]!.status, 401)
  const { raw: withUser } = await exchange(
    m.port,
    req('GET', '/admin/secret.txt', {
      Host: 'c.test',
      Origin: 'https://app.c.test',
      Authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`,
      Connection: 'close',
    }),
  )
  const ok = parseAll(withUser, { eof: true }).responses[0]!
  assert.equal(ok.status, 200)
  assert.equal(ok.text, 'c secret\n')
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.c.test')
})

test('a reload re-reads the htpasswd file: a new user gets in, a removed one is refused; a bad file is refused and the old users stay', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', sitesWithAuth(dir)])
  assert.equal((await ask(m.port, '/admin/secret.txt', 'a.test', 'alice:alice-pw')).status, 200)
  const users = path.join(dir, 'users.htpasswd')
  htpasswd('-c', '-B', '-C', '5', users, 'carol', 'carol-pw')
  m.child.kill('SIGHUP')
  const deadline = Date.now() + 10_000
  let status = 0
  while (Date.now() < deadline && status !== 200) {
    status = (await ask(m.port, '/admin/secret.txt', 'a.test', 'carol:carol-pw').catch(() => ({ status: 0 }))).status
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(status, 200)
  // alice was remembered as checked by the old server; the new one has no alice.
  assert.equal((await ask(m.port, '/admin/secret.txt', 'a.test', 'alice:alice-pw')).status, 401)
  writeFileSync(users, `${'carol:$apr1$abcdefgh$abcdefghijklmnopqrstuv'}\ndave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n`)
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(
    m.log(),
    /reload refused, still serving with the old configuration: config file .*petrel\.json: sites\[0\]\.auth\.htpasswd: .*users\.htpasswd line 2 \(user "dave"\): a \{SHA\} hash/,
  )
  assert.equal((await ask(m.port, '/admin/secret.txt', 'a.test', 'carol:carol-pw')).status, 200)
})

test('a bad auth at start: exit 2, naming the config file, the JSON path, and for a bad htpasswd file its name, line and user', (t) => {
  const dir = tempDir(t)
  mkdirSync(path.join(dir, 'a'))
  const users = path.join(dir, 'users.htpasswd')
  htpasswd('-c', '-B', '-C', '5', users, 'alice', 'alice-pw')
  writeFileSync(path.join(dir, 'plain.htpasswd'), `# staff\n${readFileSync(users, 'utf8').trim()}\nerin:erin-plain\n`)
  const file = path.join(dir, 'petrel.json')
  const site = (auth: unknown): unknown => ({
    sites: [
      { hosts: ['a.test'], root: './a' },
      { hosts: ['b.test'], root: './a', auth },
    ],
  })
  const cases: Array<[unknown, RegExp]> = [
    [site({ htpasswd: './plain.htpasswd' }), /sites\[1\]\.auth\.htpasswd: .*plain\.htpasswd line 3 \(user "erin"\): not a bcrypt or apr1 hash/],
    [site({ htpasswd: './missing.htpasswd' }), /sites\[1\]\.auth\.htpasswd: the htpasswd file .*missing\.htpasswd: cannot read it: no such file/],
    [site({ htpasswd: './a' }), /sites\[1\]\.auth\.htpasswd: .*: cannot read it: a directory, not a file/],
    [site({ path: 'admin', htpasswd: './users.htpasswd' }), /sites\[1\]\.auth\.path: "admin": a pattern starts with "\/"/],
    [site({ realm: 'a "b"', htpasswd: './users.htpasswd' }), /sites\[1\]\.auth\.realm: .*a realm cannot hold "/],
    [site({ htpasswd: './users.htpasswd', users: [] }), /sites\[1\]\.auth\.users: unknown key; expected path, realm, htpasswd/],
    [site('./users.htpasswd'), /sites\[1\]\.auth: expected an object such as/],
  ]
  for (const [config, expected] of cases) {
    writeFileSync(file, JSON.stringify(config))
    const r = petrel('serve', '--port', '0', '--config', file)
    assert.equal(r.status, 2, `${JSON.stringify(config)}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), JSON.stringify(config))
    assert.match(r.stderr, expected, JSON.stringify(config))
    assert.doesNotMatch(r.stderr, /\$2y\$05\$/, 'a message never quotes a hash')
  }
  // --auth-attempts limits the sites' checks too; without any auth it is refused.
  writeFileSync(file, JSON.stringify({ sites: [{ hosts: ['a.test'], root: './a' }] }))
  const r = petrel('serve', '--port', '0', '--config', file, '--auth-attempts', '3')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--auth-attempts applies to HTTP Basic authentication: give --auth-htpasswd FILE or a site an "auth" too/)
})

test("a site's auth over HTTPS through curl: 401 with the challenge, the user in with -u, one --auth-attempts limit shared by the sites", async (t) => {
  requireDebianPackage('curl')
  const dir = tempDir(t)
  const ca = makeTestCa(path.join(dir, 'ca'))
  const leaf = ca.issue(['a.test', 'b.test', 'c.test'])
  const m = await startPetrel(t, ['--config', sitesWithAuth(dir), '--tls-cert', leaf.cert, '--tls-key', leaf.key, '--auth-attempts', '2'])
  const curl = (host: string, ...args: string[]): { code: string; out: string } => {
    const r = spawnSync(
      'curl',
      [
        '-sS',
        '-i',
        '--max-time',
        '20',
        '--cacert',
        ca.caCert,
        '--resolve',
        `${host}:${m.port}:127.0.0.1`,
        ...args,
        `https://${host}:${m.port}/admin/secret.txt`,
      ],
      { encoding: 'utf8' },
    )
    assert.equal(r.status, 0, r.stderr)
    // "HTTP/2 401": curl takes h2 by ALPN (HTTP/2 is on by default).
    return { code: /^HTTP\/[\d.]+ (\d{3})/.exec(r.stdout)?.[1] ?? '', out: r.stdout }
  }
  const refused = curl('a.test')
  assert.equal(refused.code, '401')
  assert.match(refused.out, /^www-authenticate: Basic realm="a\.test", charset="UTF-8"\r$/im)
  const allowed = curl('a.test', '-u', 'alice:alice-pw')
  assert.equal(allowed.code, '200')
  assert.match(allowed.out, /a secret\n$/)
  assert.equal(curl('b.test').code, '200')
  // Two checks a minute per address for the whole process (alice's on a.test was one, bob's on
  // c.test the other): the next password check on a.test is refused with 429.
  assert.equal(curl('c.test', '-u', 'bob:wrong').code, '401')
  assert.equal(curl('a.test', '-u', 'bob:bob-pw').code, '429')
  // Credentials already checked are remembered, not checked again.
  assert.equal(curl('a.test', '-u', 'alice:alice-pw').code, '200')
})
