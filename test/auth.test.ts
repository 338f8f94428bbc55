// HTTP Basic authentication against an htpasswd file (`petrel serve --auth-htpasswd`), end to end:
// files made by the real `htpasswd` command (Debian's apache2-utils), a real `petrel serve`
// process, curl as the client users would have and raw bytes for malformed Authorization fields.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { requireDebianPackage } from './helpers/debian.ts'
import { petrel, startPetrel, waitFor } from './helpers/petrel.ts'
import { exchange, req } from './helpers/tcp.ts'
import { makeTestCa } from './helpers/tls.ts'
import { parseHtpasswd } from '../src/apps/serve/htpasswd.ts'
import { BasicAuth } from '../src/apps/serve/basic-auth.ts'
import verifyHtpasswd from '../src/apps/serve/htpasswd-work.ts'
import { serve } from './helpers/serve.ts'

const run = promisify(execFile)

let work: string
let root: string

/** `htpasswd ARGS` (batch mode: the password on the command line); throws when it fails. */
function htpasswd(...args: string[]): void {
  const r = spawnSync('htpasswd', ['-b', ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`htpasswd ${args.join(' ')}: ${r.stderr}`)
}

before(() => {
  requireDebianPackage('apache2-utils')
  requireDebianPackage('curl')
  work = mkdtempSync(path.join(tmpdir(), 'petrel-auth-'))
  root = path.join(work, 'root')
  mkdirSync(path.join(root, 'admin'), { recursive: true })
  writeFileSync(path.join(root, 'index.html'), 'public page\n')
  writeFileSync(path.join(root, 'admin', 'index.html'), 'admin page\n')
})
after(() => rmSync(work, { recursive: true, force: true }))

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(work, 't-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A file with alice (bcrypt, `htpasswd -B`) and bob (apr1, `htpasswd -m`). */
function usersFile(dir: string): string {
  const file = path.join(dir, 'users.htpasswd')
  htpasswd('-c', '-B', file, 'alice', 'alice-secret')
  htpasswd('-m', file, 'bob', 'bob:secret')
  return file
}

/** curl's status code and headers for `url` (-i), with ARGS before it. */
function curl(url: string, ...args: string[]): { code: number; head: string; body: string } {
  const r = spawnSync('curl', ['-sS', '-i', '--max-time', '20', ...args, url], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const end = r.stdout.indexOf('\r\n\r\n')
  // "HTTP/1.1 401 …", or over HTTPS (HTTP/2 by ALPN) "HTTP/2 401".
  return { code: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(r.stdout)?.[1]), head: r.stdout.slice(0, end), body: r.stdout.slice(end + 4) }
}

const CHALLENGE = /^WWW-Authenticate: Basic realm="petrel", charset="UTF-8"\r?$/m

test('bcrypt and apr1 users get in; a wrong password, an unknown user and no credentials get 401 with the challenge; other paths need nothing', async (t) => {
  const dir = tempDir(t)
  const file = usersFile(dir)
  const accessLog = path.join(dir, 'access.log')
  const errorLog = path.join(dir, 'error.log')
  const m = await startPetrel(t, [root, '--auth-htpasswd', file, '--auth-path', '/admin/*', '--access-log', accessLog, '--error-log', errorLog])
  const url = `http://127.0.0.1:${m.port}`
  const alice = curl(`${url}/admin/`, '-u', 'alice:alice-secret')
  assert.equal(alice.code, 200)
  assert.equal(alice.body, 'admin page\n')
  // The password holds a colon: only the first one ends the user name (RFC 7617 §2).
  assert.equal(curl(`${url}/admin/index.html`, '-u', 'bob:bob:secret').code, 200)
  for (const args of [[], ['-u', 'alice:wrong'], ['-u', 'bob:bob'], ['-u', 'mallory:alice-secret'], ['-H', 'Authorization: Bearer abc']]) {
    const r = curl(`${url}/admin/`, ...args)
    assert.equal(r.code, 401, args.join(' '))
    assert.match(r.head, CHALLENGE, args.join(' '))
    assert.doesNotMatch(r.body, /admin page/)
  }
  // "/admin/*" covers the directory's own name, which would otherwise reach the file server.
  assert.equal(curl(`${url}/admin`).code, 401)
  assert.equal(curl(`${url}/%61dmin/`).code, 401, 'every spelling of the path is checked')
  assert.equal(curl(`${url}/`).code, 200)
  assert.equal(curl(`${url}/admin/`, '-I').code, 401, 'HEAD too')
  // No password, and no hash, in any log line.
  m.child.kill('SIGTERM')
  await waitFor('the server to stop', () => m.child.exitCode !== null || m.child.signalCode !== null, 10_000)
  const logs =
    readFileSync(accessLog, 'utf8') +
    (() => {
      try {
        return readFileSync(errorLog, 'utf8')
      } catch {
        return ''
      }
    })() +
    m.log()
  assert.match(logs, /GET \/admin\/ HTTP\/1.1" 401/)
  for (const secret of ['alice-secret', 'bob:secret', '$2y$', '$apr1$', 'YWxpY2U']) assert.ok(!logs.includes(secret), `${secret} in a log`)
})

test('UTF-8 user names and passwords (charset="UTF-8"), as htpasswd stores them', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'users.htpasswd')
  htpasswd('-c', '-B', file, 'jörg', 'pässwörd✓')
  const m = await startPetrel(t, [root, '--auth-htpasswd', file])
  assert.equal(curl(`http://127.0.0.1:${m.port}/`, '-u', 'jörg:pässwörd✓').code, 200)
  assert.equal(curl(`http://127.0.0.1:${m.port}/`, '-u', 'jörg:passwort').code, 401)
})

test('a malformed Basic field gets 400 (not a prompt again); another scheme gets 401', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, [root, '--auth-htpasswd', usersFile(dir)])
  const b64 = (bytes: Buffer | string): string => Buffer.from(bytes).toString('base64')
  const cases: Array<[string, string, number]> = [
    ['not base64', 'Basic !!!!', 400],
    ['base64 without its padding', `Basic ${b64('alice:alice-secret').replace(/=+$/, '')}x`, 400],
    ['padding in the middle', 'Basic YW=jZTph', 400],
    ['no colon', `Basic ${b64('alice')}`, 400],
    ['a control character', `Basic ${b64('alice:alice\x01secret')}`, 400],
    ['not UTF-8', `Basic ${b64(Buffer.from([0x61, 0x3a, 0xff, 0xfe]))}`, 400],
    ['too long', `Basic ${b64(`alice:${'x'.repeat(2000)}`)}`, 400],
    ['Basic and nothing', 'Basic', 400],
    ['another scheme', 'Digest username="alice"', 401],
    ['a scheme that only starts like Basic', `Basicx ${b64('alice:alice-secret')}`, 401],
  ]
  for (const [what, field, status] of cases) {
    const { client, responses } = await exchange(m.port, req('GET', '/', { Host: 'x', Connection: 'close', Authorization: field }))
    client.destroy()
    assert.equal(responses[0]?.status, status, what)
    assert.equal(responses[0]?.headers['www-authenticate'] === undefined, status === 400, what)
  }
  // Two Authorization fields: which one counts would be a guess, so neither does.
  const twice = `Authorization: Basic ${b64('alice:alice-secret')}\r\n`
  const doubled = await exchange(m.port, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${twice}${twice}\r\n`)
  doubled.client.destroy()
  assert.equal(doubled.responses[0]?.status, 400, 'two Authorization fields')
  // The scheme's name is case-insensitive and may be followed by several spaces.
  const ok = await exchange(m.port, req('GET', '/', { Host: 'x', Connection: 'close', Authorization: `bAsIc   ${b64('alice:alice-secret')}` }))
  ok.client.destroy()
  assert.equal(ok.responses[0]?.status, 200)
})

test('password checks per client address are limited (429 with Retry-After); credentials already checked still pass', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, [root, '--auth-htpasswd', usersFile(dir), '--auth-attempts', '3'])
  const url = `http://127.0.0.1:${m.port}/`
  assert.equal(curl(url, '-u', 'alice:alice-secret').code, 200)
  assert.equal(curl(url, '-u', 'alice:wrong1').code, 401)
  assert.equal(curl(url, '-u', 'alice:wrong2').code, 401)
  const limited = curl(url, '-u', 'alice:wrong3')
  assert.equal(limited.code, 429)
  assert.match(limited.head, /^Retry-After: ([1-9]\d?)\r?$/m)
  assert.equal(curl(url, '-u', 'bob:bob:secret').code, 429, 'a right password not yet checked is a check too')
  assert.equal(curl(url, '-u', 'alice:alice-secret').code, 200, 'checked credentials are remembered, not checked again')
})

test('reload (SIGHUP) reads the file again: a new user gets in; a bad file is refused, named, and the old users keep working', async (t) => {
  const dir = tempDir(t)
  const file = usersFile(dir)
  const m = await startPetrel(t, [root, '--auth-htpasswd', file])
  const url = `http://127.0.0.1:${m.port}/`
  assert.equal(curl(url, '-u', 'carol:carol-secret').code, 401)
  htpasswd('-B', file, 'carol', 'carol-secret')
  m.child.kill('SIGHUP')
  await waitFor('the reload', () => /reloaded/.test(m.log()), 20_000)
  assert.equal(curl(url, '-u', 'carol:carol-secret').code, 200)
  // A changed password: the old one, remembered as checked before the reload, no longer passes.
  htpasswd('-B', file, 'carol', 'carol-new')
  m.child.kill('SIGHUP')
  await waitFor('the second reload', () => m.log().match(/reloaded/g)?.length === 2, 20_000)
  assert.equal(curl(url, '-u', 'carol:carol-secret').code, 401)
  assert.equal(curl(url, '-u', 'carol:carol-new').code, 200)
  // A {SHA} line (htpasswd -s) on line 4: refused, with the file, the line and the user named.
  htpasswd('-s', file, 'dave', 'dave-secret')
  m.child.kill('SIGHUP')
  await waitFor('the refused reload', () => /reload refused/.test(m.log()), 20_000)
  assert.match(m.log(), new RegExp(`reload refused.*--auth-htpasswd ${file.replaceAll('/', '\\/')} line 4 \\(user "dave"\\): a \\{SHA\\} hash`))
  assert.equal(curl(url, '-u', 'carol:carol-new').code, 200)
  assert.equal(curl(url, '-u', 'dave:dave-secret').code, 401)
})

test('a missing file, and lines of {SHA}, crypt and plain text, stop the start: exit 2 naming the flag, the file, the line and the user', (t) => {
  const dir = tempDir(t)
  const missing = petrel('serve', root, '--port', '0', '--auth-htpasswd', path.join(dir, 'nope'))
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, new RegExp(`--auth-htpasswd ${dir}/nope: cannot read it: no such file`))
  // A FIFO would stop a reload's event loop waiting for a writer, a huge file fill memory: both refused at once.
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const piped = petrel('serve', root, '--port', '0', '--auth-htpasswd', fifo)
  assert.equal(piped.status, 2)
  assert.match(piped.stderr, /--auth-htpasswd .*fifo: cannot read it: not a regular file/)
  const huge = path.join(dir, 'huge')
  writeFileSync(huge, '')
  truncateSync(huge, 17 * 1024 * 1024)
  const tooBig = petrel('serve', root, '--port', '0', '--auth-htpasswd', huge)
  assert.equal(tooBig.status, 2)
  assert.match(tooBig.stderr, /--auth-htpasswd .*huge: cannot read it: over 16777216 bytes/)
  for (const [flag, user, what] of [
    ['-s', 'sha', /a \{SHA\} hash/],
    ['-d', 'des', /a DES crypt hash/],
    ['-p', 'plain', /not a bcrypt or apr1 hash/],
  ] as const) {
    const file = usersFile(dir)
    // A password no temporary path can contain by chance: with -p the file holds it as it is.
    htpasswd(flag, file, user, `${user}-Secret-7q`)
    const r = petrel('serve', root, '--port', '0', '--auth-htpasswd', file)
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, new RegExp(`--auth-htpasswd ${file} line 3 \\(user "${user}"\\): `))
    assert.match(r.stderr, what)
    assert.match(r.stderr, /htpasswd -B FILE USER/)
    assert.ok(!r.stderr.includes(readFileSync(file, 'utf8').split('\n')[2]!.split(':')[1]!), 'the hash is not printed')
  }
  const given = petrel('serve', root, '--port', '0', '--auth-realm', 'x')
  assert.equal(given.status, 2)
  assert.match(given.stderr, /--auth-realm applies to HTTP Basic authentication: give --auth-htpasswd FILE too/)
  const realm = petrel('serve', root, '--port', '0', '--auth-htpasswd', usersFile(dir), '--auth-realm', 'a"b')
  assert.equal(realm.status, 2)
  assert.match(realm.stderr, /bad value for --auth-realm/)
})

test('over HTTPS: the challenge, and the credentials, through curl', async (t) => {
  const dir = tempDir(t)
  const ca = makeTestCa(path.join(dir, 'ca'))
  const cert = ca.issue(['localhost', '127.0.0.1'])
  const m = await startPetrel(t, [root, '--auth-htpasswd', usersFile(dir), '--auth-realm', 'staff only', '--tls-cert', cert.cert, '--tls-key', cert.key])
  const url = `https://127.0.0.1:${m.port}/`
  const refused = curl(url, '--cacert', ca.caCert)
  assert.equal(refused.code, 401)
  // Over h2 the field's name is lower case.
  assert.match(refused.head, /^WWW-Authenticate: Basic realm="staff only", charset="UTF-8"\r?$/im)
  assert.equal(curl(url, '--cacert', ca.caCert, '-u', 'alice:alice-secret').code, 200)
  assert.equal(curl(url, '--cacert', ca.caCert, '-u', 'bob:bob:secret').code, 200)
})

test('bcrypt checks run on the thread pool: the event loop answers other requests while they run; unknown users are checked too; a full queue answers 503', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'users.htpasswd')
  // Cost 12: a few hundred ms of one core per check in JavaScript.
  htpasswd('-c', '-B', '-C', '12', file, 'alice', 'alice-secret')
  const m = await startPetrel(t, [root, '--auth-htpasswd', file, '--auth-path', '/admin/*', '--pool-threads', '1', '--pool-queue', '4'])
  const url = `http://127.0.0.1:${m.port}`
  const answered: number[] = []
  const checks = Array.from({ length: 5 }, (_, i) =>
    run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '60', '-u', `alice:wrong${i}`, `${url}/admin/`]).then((r) => {
      answered.push(Number(r.stdout))
      return Number(r.stdout)
    }),
  )
  // The five checks are with the server (one running, four queued) once the public page is asked for.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const page = await run('curl', ['-s', '--max-time', '60', `${url}/`])
  const stillChecking = 5 - answered.length
  assert.equal(page.stdout, 'public page\n')
  assert.ok(stillChecking >= 3, `the public page was answered after ${5 - stillChecking} of the 5 checks: the loop waited for them`)
  assert.deepEqual((await Promise.all(checks)).sort(), [401, 401, 401, 401, 401])
  // Six at once for one thread and four places in the queue: the sixth is refused at once. They
  // are users the file does not have: each is checked against a dummy hash of the same cost, so
  // that a name cannot be found out by how fast its 401 comes — they fill the queue as alice does.
  const burst = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '60', '-u', `nobody${i}:pw`, `${url}/admin/`]),
    ),
  )
  const codes = burst.map((r) => Number(r.stdout)).sort()
  assert.ok(codes.includes(503), `no 503 in ${codes.join(' ')}`)
  assert.ok(
    codes.every((c) => c === 401 || c === 503),
    codes.join(' '),
  )
})

test("a CGI script's local Location to a protected path is checked again (an internal redirect passes the guard)", async (t) => {
  const dir = tempDir(t)
  const cgiBin = path.join(dir, 'cgi-bin')
  mkdirSync(cgiBin)
  writeFileSync(path.join(cgiBin, 'to-admin.sh'), '#!/bin/sh\nprintf "Location: /admin/index.html\\n\\n"\n')
  chmodSync(path.join(cgiBin, 'to-admin.sh'), 0o755)
  const m = await startPetrel(t, [root, '--cgi-bin', cgiBin, '--auth-htpasswd', usersFile(dir), '--auth-path', '/admin/*'])
  const url = `http://127.0.0.1:${m.port}/cgi-bin/to-admin.sh`
  const refused = curl(url)
  assert.equal(refused.code, 401)
  assert.doesNotMatch(refused.body, /admin page/)
  const allowed = curl(url, '-u', 'alice:alice-secret')
  assert.equal(allowed.code, 200)
  assert.equal(allowed.body, 'admin page\n')
})

test('parseHtpasswd: comments, blank lines, CRLF and a third field are read as Apache reads them; duplicates, costs out of range and lines without a hash are refused, named', () => {
  const bcrypt = `$2y$05$${'a'.repeat(53)}`
  const apr1 = `$apr1$abcdefgh$${'b'.repeat(22)}`
  const users = parseHtpasswd(`# staff\r\n\r\nalice:${bcrypt}\r\nbob:${apr1}:Bob Smith\n`, 'f')
  assert.deepEqual(
    [...users],
    [
      ['alice', bcrypt],
      ['bob', apr1],
    ],
  )
  const refused: Array<[string, RegExp]> = [
    [`alice:${bcrypt}\nalice:${apr1}`, /f line 2 \(user "alice"\): the user is in the file twice/],
    [`carol:$2y$18$${'a'.repeat(53)}`, /f line 1 \(user "carol"\): bcrypt cost 18 is outside 4 to 17/],
    [`dave:$2y$05$${'a'.repeat(52)}`, /f line 1 \(user "dave"\): a malformed bcrypt or apr1 hash/],
    ['erin', /f line 1: not USER:HASH/],
    [':nobody', /f line 1: not USER:HASH/],
    ['frank:$6$salt$hash', /f line 1 \(user "frank"\): SHA-crypt/],
  ]
  for (const [text, message] of refused) assert.throws(() => parseHtpasswd(text, 'f'), message, text)
})

test('the attempts limit is per window: on a fake clock, an address refused with 429 is checked again once its window has passed', async (t) => {
  const dir = tempDir(t)
  let nowMs = 1_000_000
  const auth = new BasicAuth({
    users: parseHtpasswd(readFileSync(usersFile(dir), 'utf8'), 'users.htpasswd'),
    attemptsPerWindow: 2,
    windowMs: 60_000,
    nowMs: () => nowMs,
    verify: async (task) => verifyHtpasswd(task),
  })
  const { port } = await serve(t, {}, (server) => {
    server.guard((req, res) => auth.check(req, res))
    server.get('/', (_req, res) => res.end('in'))
  })
  const status = async (credentials: string): Promise<number | undefined> => {
    const { client, responses } = await exchange(
      port,
      req('GET', '/', { Host: 'x', Connection: 'close', Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` }),
    )
    client.destroy()
    return responses[0]?.status
  }
  assert.equal(await status('alice:wrong1'), 401)
  assert.equal(await status('alice:wrong2'), 401)
  assert.equal(await status('alice:alice-secret'), 429)
  nowMs += 59_999
  assert.equal(await status('alice:alice-secret'), 429)
  nowMs += 1
  assert.equal(await status('alice:alice-secret'), 200)
})
