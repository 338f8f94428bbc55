// `petrel serve` over HTTPS end to end, driving the real CLI with real clients: curl trusting a
// test CA made here with openssl, `openssl s_client` for SNI, chains and session resumption, a
// raw node:tls client for certificate reloads, wrk for load. Bad certificate files stop the
// start with exit 2 and one line naming the flag, the file and the problem.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeTestCa, opensslDateIn, type IssuedCertificate, type TestCa } from './helpers/tls.ts'
import { childPids, petrel, startPetrel, waitFor, type Running } from './helpers/petrel.ts'
import { RawClient, freePort, parseResponse, type HttpResponse } from './helpers/tcp.ts'
import { requireDebianPackage } from './helpers/debian.ts'

let work: string
let ca: TestCa
/** EC P-256, for localhost and 127.0.0.1: the default certificate of most tests. */
let ec: IssuedCertificate
let rsa: IssuedCertificate
/** Signed by an intermediate CA: the file holds the leaf, then the intermediate. */
let chained: IssuedCertificate
/** A second name for SNI. */
let other: IssuedCertificate

before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'petrel-https-'))
  ca = makeTestCa(path.join(work, 'ca'))
  ec = ca.issue(['localhost', '127.0.0.1'])
  rsa = ca.issue(['localhost', '127.0.0.1'], { keyType: 'rsa', stem: 'rsa' })
  chained = ca.issue(['localhost', '127.0.0.1'], { intermediate: true, stem: 'chained' })
  other = ca.issue(['other.test'])
})
after(() => rmSync(work, { recursive: true, force: true }))

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-https-t-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The processes (masters, single processes, workers) of every server started here: the last test checks they are gone. */
const startedPids: number[] = []

/** startPetrel, remembering the processes it started. */
async function serve(t: { after: (fn: () => void) => void }, args: string[]): Promise<Running> {
  const m = await startPetrel(t, args)
  startedPids.push(m.child.pid!, ...childPids(m.child.pid!))
  return m
}

/** The flags that serve `pair` over HTTPS. */
const tlsFlags = (...pairs: IssuedCertificate[]): string[] => pairs.flatMap((p) => ['--tls-cert', p.cert, '--tls-key', p.key])

/** `curl ARGS` trusting the test CA; its exit status and output (headers with -i). */
function curl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('curl', ['-sS', '--cacert', ca.caCert, '--max-time', '10', ...args], { encoding: 'utf8' })
}

/** `openssl s_client -connect 127.0.0.1:PORT ARGS`, sending nothing; its output. */
function sClient(port: number, ...args: string[]): string {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', ca.caCert, ...args], {
    encoding: 'utf8',
    input: '',
    timeout: 10_000,
  })
  return r.stdout + r.stderr
}

/** SHA-256 fingerprint of a certificate file's first certificate, as node:tls reports a peer's. */
const fingerprintOf = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256

/** A fresh TLS connection (no session to resume: a full handshake); the server certificate's fingerprint. */
async function servedFingerprint(port: number, servername = 'localhost'): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: readFileSync(ca.caCert) })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    return socket.getPeerCertificate().fingerprint256
  } finally {
    socket.destroy()
  }
}

test('bad certificate flags and files: exit 2, one stderr line naming the flag, the file and the problem', () => {
  const dir = path.join(work, 'bad')
  mkdirSync(dir, { recursive: true })
  const notPem = path.join(dir, 'not-pem.pem')
  writeFileSync(notPem, 'this is not a certificate\n')
  const missing = path.join(dir, 'missing.pem')
  const expired = ca.issue(['localhost'], { stem: 'expired', startDate: opensslDateIn(-3 * 86_400_000), endDate: opensslDateIn(-86_400_000) })
  const notYet = ca.issue(['localhost'], { stem: 'not-yet', startDate: opensslDateIn(86_400_000), endDate: opensslDateIn(2 * 86_400_000) })
  const encrypted = path.join(dir, 'encrypted.key')
  spawnSync('openssl', ['pkey', '-in', ec.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted])
  // The traditional form ("Proc-Type: 4,ENCRYPTED" headers), as `openssl rsa -aes256` writes it.
  const encryptedRsa = path.join(dir, 'encrypted-rsa.key')
  spawnSync('openssl', ['pkey', '-in', rsa.key, '-traditional', '-aes256', '-passout', 'pass:secret', '-out', encryptedRsa])
  const cases: Array<[string, string[], RegExp]> = [
    ['missing file', ['--tls-cert', missing, '--tls-key', ec.key], new RegExp(`--tls-cert ${missing}: cannot read it: no such file`)],
    // Root reads any file whatever its mode; a directory cannot be read as a file by anyone.
    ['a directory', ['--tls-cert', ec.cert, '--tls-key', dir], new RegExp(`--tls-key ${dir}: cannot read it: a directory`)],
    ['not PEM', ['--tls-cert', notPem, '--tls-key', ec.key], new RegExp(`--tls-cert ${notPem}: not a PEM certificate`)],
    [
      'key of another certificate',
      ['--tls-cert', ec.cert, '--tls-key', other.key],
      new RegExp(`--tls-key ${other.key}: this key is not the one --tls-cert ${ec.cert}`),
    ],
    ['expired', tlsFlags(expired), new RegExp(`--tls-cert ${expired.cert}: expired on `)],
    ['not yet valid', tlsFlags(notYet), new RegExp(`--tls-cert ${notYet.cert}: not valid before `)],
    ['encrypted key', ['--tls-cert', ec.cert, '--tls-key', encrypted], new RegExp(`--tls-key ${encrypted}: the key is encrypted`)],
    ['encrypted RSA key', ['--tls-cert', rsa.cert, '--tls-key', encryptedRsa], new RegExp(`--tls-key ${encryptedRsa}: the key is encrypted`)],
    ['cert without key', ['--tls-cert', ec.cert], /--tls-cert and --tls-key come in pairs.*got 1 --tls-cert and 0 --tls-key/],
    ['two certs, one key', ['--tls-cert', ec.cert, '--tls-cert', other.cert, '--tls-key', ec.key], /got 2 --tls-cert and 1 --tls-key/],
    ['--hsts without --tls-cert', ['--hsts', '100'], /--hsts applies to HTTPS: give --tls-cert FILE --tls-key FILE too/],
    ['--http-port without --tls-cert', ['--http-port', '0'], /--http-port applies to HTTPS: give --tls-cert FILE --tls-key FILE too/],
    ['bad --tls-min', [...tlsFlags(ec), '--tls-min', '1.1'], /bad value for --tls-min: "1.1"; expected 1.2 or 1.3/],
    ['bad --tls-ciphers', [...tlsFlags(ec), '--tls-ciphers', 'NO-SUCH-CIPHER'], /bad value for --tls-ciphers: OpenSSL takes no cipher of "NO-SUCH-CIPHER"/],
    [
      'bad --admin-tls-key',
      ['--admin', '127.0.0.1:0', '--admin-tls-cert', ec.cert, '--admin-tls-key', rsa.key],
      /--admin-tls-key .*: this key is not the one --admin-tls-cert/,
    ],
  ]
  for (const [name, args, expected] of cases) {
    const r = petrel('serve', '--port', '0', ...args)
    assert.equal(r.status, 2, `${name}: exit code (stderr: ${r.stderr})`)
    const lines = r.stderr.split('\n').filter((line) => line !== '')
    assert.equal(lines.length, 1, `${name}: one line: ${r.stderr}`)
    assert.match(lines[0]!, expected, name)
    assert.equal(r.stdout, '', `${name}: nothing started`)
  }
})

test('curl over HTTPS: the demo site, /plaintext, a static file, HEAD and a Range, with an EC and an RSA certificate', async (t) => {
  const root = tempDir(t)
  writeFileSync(path.join(root, 'file.txt'), 'abcdefghijklmnopqrstuvwxyz')
  for (const pair of [ec, rsa]) {
    const demo = await serve(t, tlsFlags(pair))
    assert.match(demo.log(), /serving the demo site on https:\/\/127\.0\.0\.1:\d+\//)
    const base = `https://127.0.0.1:${demo.port}`
    const home = curl('-i', `${base}/`)
    assert.equal(home.status, 0, home.stderr)
    // curl offers h2 by ALPN, and the server takes it (HTTP/2 is on by default).
    assert.match(home.stdout, /^HTTP\/2 200 \r\n/)
    assert.match(home.stdout, /<html/i)
    const plain = curl(`${base}/plaintext`, '-w', '%{http_version} %{ssl_verify_result}')
    assert.equal(plain.stdout, 'Hello, World!2 0', 'the body, HTTP/2, and the certificate verified against the test CA')
    // The key type curl negotiated with: an ECDSA or RSA signature in the cipher suite of TLS 1.2.
    const suite = sClient(demo.port, '-tls1_2', '-servername', 'localhost')
    assert.match(suite, pair === ec ? /Cipher is ECDHE-ECDSA-/ : /Cipher is ECDHE-RSA-/)
    const files = await serve(t, [root, ...tlsFlags(pair)])
    const url = `https://localhost:${files.port}/file.txt`
    assert.equal(curl('--resolve', `localhost:${files.port}:127.0.0.1`, url).stdout, 'abcdefghijklmnopqrstuvwxyz')
    const head = curl('--resolve', `localhost:${files.port}:127.0.0.1`, '-I', url)
    assert.match(head.stdout, /^HTTP\/2 200 \r\n/)
    assert.match(head.stdout, /\r\nContent-Length: 26\r\n/i)
    const range = curl('--resolve', `localhost:${files.port}:127.0.0.1`, '-i', '-r', '3-5', url)
    assert.match(range.stdout, /^HTTP\/2 206 \r\n/)
    assert.match(range.stdout, /\r\nContent-Range: bytes 3-5\/26\r\n/i)
    assert.match(range.stdout, /\r\n\r\ndef$/)
  }
})

test('a chain in the certificate file is sent whole: s_client sees the leaf and the intermediate, curl trusting only the root verifies it', async (t) => {
  const m = await serve(t, tlsFlags(chained))
  const out = sClient(m.port, '-showcerts', '-servername', 'localhost')
  assert.equal(out.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, out)
  assert.match(out, /Verify return code: 0 \(ok\)/)
  const r = curl(`https://127.0.0.1:${m.port}/plaintext`)
  assert.equal(r.stdout, 'Hello, World!', r.stderr)
})

test('SNI through the CLI: each name gets its certificate, an unknown name or none gets the first pair', async (t) => {
  const m = await serve(t, tlsFlags(ec, other))
  const subject = (out: string): string | undefined => /subject=CN ?= ?([^\n]+)/.exec(out)?.[1]?.trim()
  assert.equal(subject(sClient(m.port, '-servername', 'other.test')), 'other.test')
  assert.equal(subject(sClient(m.port, '-servername', 'localhost')), 'localhost')
  assert.equal(subject(sClient(m.port, '-servername', 'unknown.test')), 'localhost', 'an unknown name: the default')
  assert.equal(subject(sClient(m.port, '-noservername')), 'localhost', 'no name: the default')
  const r = curl('--resolve', `other.test:${m.port}:127.0.0.1`, `https://other.test:${m.port}/plaintext`)
  assert.equal(r.stdout, 'Hello, World!', r.stderr)
})

/** The port of the --http-port redirect listener, from the start-up line that names it. */
async function redirectPort(m: Running): Promise<number> {
  const line = /petrel: redirecting http:\/\/127\.0\.0\.1:(\d+)\/ to https/
  await waitFor(`the start-up line naming the redirect listener: ${m.log()}`, () => line.test(m.log()), 10_000)
  return Number(line.exec(m.log())![1])
}

test('--http-port: 308 to the https URL with the same target, the method kept, Host port and IPv6 literal handled; --hsts on HTTPS only', async (t) => {
  const root = tempDir(t)
  writeFileSync(path.join(root, 'small.txt'), 'small file\n')
  const httpPort = await freePort()
  const m = await serve(t, [root, ...tlsFlags(ec), '--http-port', String(httpPort), '--hsts', '31536000'])
  assert.equal(await redirectPort(m), httpPort)
  const get = curl('-i', `http://127.0.0.1:${httpPort}/same/target?q=1&r`, '-H', 'Host: example.com')
  assert.match(get.stdout, /^HTTP\/1\.1 308 Permanent Redirect\r\n/)
  assert.match(get.stdout, new RegExp(`\\r\\nLocation: https://example\\.com:${m.port}/same/target\\?q=1&r\\r\\n`, 'i'))
  assert.doesNotMatch(get.stdout, /Strict-Transport-Security/i, 'no HSTS over cleartext (RFC 6797 7.2)')
  const post = curl('-i', '-X', 'POST', '-d', 'body', `http://127.0.0.1:${httpPort}/form?x`, '-H', 'Host: example.com:8080')
  assert.match(post.stdout, /^HTTP\/1\.1 308 /, 'a POST is 308 too: the method and body are kept')
  assert.match(post.stdout, new RegExp(`\\r\\nLocation: https://example\\.com:${m.port}/form\\?x\\r\\n`, 'i'), 'the Host port is replaced')
  const v6 = curl('-i', `http://127.0.0.1:${httpPort}/a`, '-H', 'Host: [::1]:8080')
  assert.match(v6.stdout, new RegExp(`\\r\\nLocation: https://\\[::1\\]:${m.port}/a\\r\\n`, 'i'))
  // Targets that name no resource (OPTIONS *, CONNECT's authority) go to the root: "https://host:port*" would be no URL.
  for (const [request, location] of [
    ['OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n', `https://example.com:${m.port}/`],
    ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', `https://example.com:${m.port}/`],
    ['GET http://other.example/p?q HTTP/1.1\r\nHost: other.example\r\n\r\n', `https://other.example:${m.port}/p?q`],
  ] as const) {
    const client = await RawClient.connect(httpPort)
    await client.write(request)
    const [answer] = await client.readResponses(1)
    client.destroy()
    assert.equal(answer!.status, 308, request)
    assert.equal(answer!.headers.location, location, request)
  }
  // curl follows it, keeping the POST, to the HTTPS listener: the file there is 405 for a POST.
  const followed = curl('-L', '-o', '/dev/null', '-w', '%{http_code} %{url_effective}', '-d', 'x', `http://localhost:${httpPort}/small.txt`)
  assert.equal(followed.stdout, `405 https://localhost:${m.port}/small.txt`, followed.stderr)
  // HSTS on HTTPS answers: a small file from memory (the prepared head), the listing's 403, a 404.
  for (const target of ['/small.txt', '/', '/missing']) {
    const r = curl('-i', `https://127.0.0.1:${m.port}${target}`)
    assert.match(r.stdout, /\r\nStrict-Transport-Security: max-age=31536000\r\n/i, target)
  }
  const twice = curl('-i', `https://127.0.0.1:${m.port}/small.txt`, `https://127.0.0.1:${m.port}/small.txt`)
  assert.equal(twice.stdout.match(/Strict-Transport-Security/gi)?.length, 2, 'each response of a keep-alive connection has it')
})

for (const workers of [[], ['--workers', '2', '--user', 'root']]) {
  test(`--http-port 0 is refused${workers.length === 0 ? '' : ' with --workers'}: each server would listen on a free port of its own`, () => {
    const r = petrel('serve', '--port', '0', ...workers, ...tlsFlags(ec), '--http-port', '0')
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--http-port 0: every worker and every reload would pick a free port of its own; give a port number/)
  })
}

/** A keep-alive TLS connection that sends requests and reads their responses whole. */
class TlsClient {
  /** Chunks read since the last look: joined only when a response is looked for (a large download comes in thousands). */
  private chunks: Buffer[] = []
  private bytes = Buffer.alloc(0)
  private cursor = 0
  closed = false
  readonly socket: tls.TLSSocket
  private constructor(socket: tls.TLSSocket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk))
    socket.on('close', () => (this.closed = true))
    socket.on('error', () => {})
  }

  static async connect(port: number, servername = 'localhost'): Promise<TlsClient> {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: readFileSync(ca.caCert) })
    await once(socket, 'secureConnect')
    return new TlsClient(socket)
  }

  /** GET `target`; the response, or null when the connection closed first. */
  get(target: string): Promise<HttpResponse | null> {
    this.socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
    return this.response(10_000)
  }

  /** The next response, or null when the connection closed first. */
  async response(timeoutMs: number): Promise<HttpResponse | null> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.chunks.length > 0) {
        this.bytes = Buffer.concat([this.bytes, ...this.chunks])
        this.chunks = []
      }
      const parsed = parseResponse(this.bytes, this.cursor)
      if (parsed !== null) {
        this.cursor = parsed.end
        return parsed.response
      }
      if (this.closed) return null
      await sleep(20)
    }
    throw new Error('no response')
  }
}

/** Copy a pair over the files the server was started with (in place: the same inodes). */
function install(pair: IssuedCertificate, files: IssuedCertificate): void {
  writeFileSync(files.cert, readFileSync(pair.cert))
  writeFileSync(files.key, readFileSync(pair.key))
}

for (const workers of [[], ['--workers', '2', '--user', 'root']]) {
  const mode = workers.length === 0 ? 'a single process' : '--workers 2'
  test(`SIGHUP reload in ${mode}: a connection open across it is answered, new handshakes get the new certificate, a bad file is refused and the old one kept`, async (t) => {
    const dir = tempDir(t)
    const root = path.join(dir, 'root')
    mkdirSync(root)
    writeFileSync(path.join(root, 'small.txt'), 'small\n')
    // Larger than the kernel buffers of both ends on loopback can hold: the server is still sending.
    const big = Buffer.alloc(32 * 1024 * 1024, 7)
    writeFileSync(path.join(root, 'big.bin'), big)
    const files = { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') }
    install(ec, files)
    const renewed = ca.issue(['localhost', '127.0.0.1'], { stem: `renewed-${workers.length}` })
    const m = await serve(t, [root, ...tlsFlags(files), ...workers])
    assert.equal(await servedFingerprint(m.port), fingerprintOf(ec.cert))
    const idle = await TlsClient.connect(m.port)
    assert.equal((await idle.get('/small.txt'))?.status, 200)
    // A download the client does not read yet: still going out when the reload comes.
    const downloading = await TlsClient.connect(m.port)
    downloading.socket.pause()
    downloading.socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await sleep(200)
    install(renewed, files)
    m.child.kill('SIGHUP')
    if (workers.length === 0) {
      // A single process answers the idle connection's next request (with Connection: close)
      // during the reload's grace for idle connections; a retiring worker does the same, but
      // the test cannot tell when its grace starts.
      await waitFor('the reload', () => /reloaded/.test(m.log()), 20_000)
      const next = await idle.get('/small.txt')
      assert.equal(next?.status, 200, 'the idle connection made before the reload is answered after it')
      assert.equal(next?.text, 'small\n')
    }
    // New handshakes get the new certificate once a new server (or worker) listens; with
    // workers, the reload ends only when the old ones have finished, the download included.
    const wanted = fingerprintOf(renewed.cert)
    let served = ''
    const deadline = Date.now() + 20_000
    while (served !== wanted && Date.now() < deadline) {
      served = await servedFingerprint(m.port)
      if (served !== wanted) await sleep(100)
    }
    assert.equal(served, wanted, 'a new handshake gets the new certificate')
    downloading.socket.resume()
    const download = await downloading.response(30_000)
    assert.equal(download?.status, 200, 'the download in flight across the reload finished')
    assert.equal(download?.body.length, big.length)
    await waitFor('the reload', () => /reloaded/.test(m.log()), 20_000)
    for (let i = 0; i < 4; i++) assert.equal(await servedFingerprint(m.port), wanted, 'every worker serves the new certificate')
    idle.socket.destroy()
    downloading.socket.destroy()
    writeFileSync(files.cert, 'not a certificate\n')
    const logged = m.log().length
    m.child.kill('SIGHUP')
    await waitFor('the refusal', () => /reload refused/.test(m.log().slice(logged)), 20_000)
    assert.match(m.log().slice(logged), new RegExp(`reload refused, .*--tls-cert ${files.cert}: not a PEM certificate`))
    assert.equal(await servedFingerprint(m.port), fingerprintOf(renewed.cert), 'the certificate in use stays')
    assert.equal(m.child.exitCode, null, 'still running')
  })
}

for (const workers of [[], ['--workers', '2', '--user', 'root']]) {
  test(`--tls-watch${workers.length === 0 ? '' : ' (--workers 2: the master watches)'}: files rewritten in place or renamed over make new handshakes use them within seconds`, async (t) => {
    const dir = tempDir(t)
    const files = { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') }
    install(ec, files)
    const renewed = ca.issue(['localhost', '127.0.0.1'], { stem: `watched-${workers.length}` })
    const m = await serve(t, [...tlsFlags(files), '--tls-watch', ...workers])
    assert.equal(await servedFingerprint(m.port), fingerprintOf(ec.cert))
    install(renewed, files)
    const wanted = fingerprintOf(renewed.cert)
    let served = ''
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && served !== wanted) {
      await sleep(200)
      served = await servedFingerprint(m.port)
    }
    assert.equal(served, wanted, `the new certificate within 10 s: ${m.log()}`)
    // Replaced by renames, as certbot and editors do (a new inode under the same name).
    const again = ca.issue(['localhost', '127.0.0.1'], { stem: `watched-again-${workers.length}` })
    writeFileSync(`${files.cert}.new`, readFileSync(again.cert))
    writeFileSync(`${files.key}.new`, readFileSync(again.key))
    renameSync(`${files.key}.new`, files.key)
    renameSync(`${files.cert}.new`, files.cert)
    const wantedAgain = fingerprintOf(again.cert)
    const deadlineAgain = Date.now() + 10_000
    while (Date.now() < deadlineAgain && served !== wantedAgain) {
      await sleep(200)
      served = await servedFingerprint(m.port)
    }
    assert.equal(served, wantedAgain, `the renamed-in certificate within 10 s: ${m.log()}`)
  })
}

/** The pids owning established connections on local port `port` (`ss -tnp`). */
function connectionOwners(port: number): number[] {
  const out = spawnSync('ss', ['-tnpH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' }).stdout
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))
}

/** An `openssl s_client` that resumes `session` and holds its connection open; its "New"/"Reused" line. */
async function heldResumption(
  t: { after: (fn: () => void) => void },
  port: number,
  session: string,
  version: string[],
): Promise<{ line: string; close: () => void }> {
  const child = spawn(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', ca.caCert, '-sess_in', session, ...version],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  await waitFor('s_client to report its session', () => /^(New|Reused), /m.test(out) || child.exitCode !== null, 10_000)
  return { line: /^(New|Reused), [^\n]*/m.exec(out)?.[0] ?? out, close: () => child.kill('SIGKILL') }
}

test('session resumption across --workers 2: tickets from one worker resume on the other, TLS 1.3 and 1.2, and across a reload', async (t) => {
  const m = await serve(t, [...tlsFlags(ec), '--workers', '2', '--user', 'root'])
  for (const version of [[], ['-tls1_2']]) {
    const workers = childPids(m.child.pid!)
    assert.equal(workers.length, 2)
    const session = path.join(m.dir, `session${version.join('')}.pem`)
    // A request answered before the connection closes: a TLS 1.3 ticket comes after the handshake.
    const first = spawnSync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${m.port}`, '-servername', 'localhost', '-CAfile', ca.caCert, '-sess_out', session, '-ign_eof', ...version],
      { encoding: 'utf8', input: 'GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', timeout: 10_000 },
    )
    assert.match(first.stdout, /^New, /m)
    assert.match(first.stdout, /Hello, World!/)
    const held = []
    for (let i = 0; i < 12; i++) held.push(await heldResumption(t, m.port, session, version))
    const lines = held.map((h) => h.line)
    for (const line of lines) assert.match(line, version.length === 0 ? /^Reused, TLSv1\.3/ : /^Reused, TLSv1\/SSLv3|^Reused, TLSv1\.2/, lines.join('\n'))
    const owners = new Set(connectionOwners(m.port))
    assert.ok(owners.size >= 2, `both workers hold resumed connections: ${[...owners]} of ${workers}`)
    for (const pid of owners) assert.ok(workers.includes(pid), `${pid} is a worker`)
    for (const h of held) h.close()
    // A session from before a reload resumes on the new workers (the same ticket secret).
    m.child.kill('SIGHUP')
    const logged = m.log().length
    await waitFor('the reload', () => /reloaded/.test(m.log().slice(logged)), 30_000)
    const afterReload = await heldResumption(t, m.port, session, version)
    afterReload.close()
    assert.match(afterReload.line, /^Reused, /)
  }
})

test('CGI over HTTPS gets HTTPS=on, REQUEST_SCHEME=https and the HTTPS port; account cookies carry Secure over HTTPS only', async (t) => {
  const dir = tempDir(t)
  const database = `sqlite:${path.join(dir, 'accounts.db')}`
  const m = await serve(t, [...tlsFlags(ec), '--database', database])
  const env = curl(`https://127.0.0.1:${m.port}/cgi-bin/env.py`)
  assert.equal(env.status, 0, env.stderr)
  const variable = (name: string): string | undefined => new RegExp(`<tr><th>${name}</th><td>([^<]*)</td></tr>`).exec(env.stdout)?.[1]
  assert.equal(variable('HTTPS'), 'on')
  assert.equal(variable('REQUEST_SCHEME'), 'https')
  assert.equal(variable('SERVER_PORT'), String(m.port))
  const secure = curl('-si', `https://127.0.0.1:${m.port}/account/login`)
  const cookies = secure.stdout.match(/^Set-Cookie: [^\r]*/gim) ?? []
  assert.ok(cookies.length > 0, secure.stdout)
  for (const cookie of cookies) assert.match(cookie, /; Secure(;|$)/, cookie)
  // The same server over cleartext: no HTTPS, and cookies without Secure (a browser would drop them).
  const plain = await serve(t, ['--database', `sqlite:${path.join(dir, 'plain.db')}`])
  const plainEnv = curl(`http://127.0.0.1:${plain.port}/cgi-bin/env.py`)
  assert.doesNotMatch(plainEnv.stdout, /<th>HTTPS<\/th>/)
  assert.match(plainEnv.stdout, /<th>REQUEST_SCHEME<\/th><td>http<\/td>/)
  const plainCookies = curl('-si', `http://127.0.0.1:${plain.port}/account/login`).stdout.match(/^Set-Cookie: [^\r]*/gim) ?? []
  assert.ok(plainCookies.length > 0)
  for (const cookie of plainCookies) assert.doesNotMatch(cookie, /Secure/i, cookie)
})

for (const workers of [[], ['--workers', '2', '--user', 'root']]) {
  test(`admin listener over TLS${workers.length === 0 ? '' : ' (--workers 2)'}: https /metrics works, cleartext does not`, async (t) => {
    const m = await serve(t, [...workers, '--admin', '127.0.0.1:0', '--admin-tls-cert', rsa.cert, '--admin-tls-key', rsa.key])
    const adminLine = /admin \(dashboard, \/metrics\) on (https?):\/\/127\.0\.0\.1:(\d+)\//
    // The admin line may come after the serving line the start-up helper waited for.
    await waitFor('the admin start-up line', () => adminLine.test(m.log()), 10_000).catch(() => assert.fail(m.log()))
    const line = adminLine.exec(m.log())
    assert.ok(line, m.log())
    assert.equal(line[1], 'https', `the start-up line says https: ${line[0]}`)
    const metrics = curl('-i', `https://127.0.0.1:${line[2]}/metrics`)
    assert.match(metrics.stdout, /^HTTP\/2 200 /)
    assert.match(metrics.stdout, /petrel_/)
    // Plain HTTP to the TLS admin port: a 400 saying so, none of the figures.
    const cleartext = curl('-i', `http://127.0.0.1:${line[2]}/metrics`)
    assert.match(cleartext.stdout, /^HTTP\/1\.1 400 [\s\S]*plain HTTP request was sent to the HTTPS port/)
    assert.doesNotMatch(cleartext.stdout, /petrel_/)
  })
}

test('wrk over HTTPS: requests answered, no socket errors, no non-2xx', async (t) => {
  requireDebianPackage('wrk')
  const m = await serve(t, tlsFlags(ec))
  const child = spawn('wrk', ['-t1', '-c10', '-d1s', `https://127.0.0.1:${m.port}/plaintext`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const [code] = await once(child, 'exit')
  assert.equal(code, 0, out)
  const requests = Number(/(\d+) requests in /.exec(out)?.[1] ?? 0)
  assert.ok(requests > 0, out)
  assert.doesNotMatch(out, /Socket errors|Non-2xx/, out)
})

test('no process of the servers started above is left (each test kills its own in an after hook)', async () => {
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  await waitFor('every process started to be gone', () => startedPids.every((pid) => !alive(pid)), 5_000).catch(() => {})
  assert.deepEqual(
    startedPids.filter((pid) => alive(pid)),
    [],
  )
})

test('the admin listener counts TLS handshakes and resumptions (Prometheus /metrics)', async (t) => {
  const m = await serve(t, ['--tls-cert', ec.cert, '--tls-key', ec.key, '--admin', '127.0.0.1:0'])
  const adminLine = /admin \(dashboard, \/metrics\) on http:\/\/127\.0\.0\.1:(\d+)\//
  await waitFor('the admin start-up line', () => adminLine.test(m.log()), 10_000)
  const adminPort = Number(adminLine.exec(m.log())![1])
  const sessionFile = path.join(tempDir(t), 'session.pem')
  const request = 'GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
  const client = (...args: string[]): string =>
    spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${m.port}`, '-servername', 'localhost', '-CAfile', ca.caCert, '-ign_eof', ...args], {
      encoding: 'utf8',
      input: request,
      timeout: 10_000,
    }).stdout
  // A request answered before the connection closes: a TLS 1.3 ticket comes after the handshake.
  assert.match(client('-sess_out', sessionFile), /^New, /m)
  assert.match(client('-sess_in', sessionFile), /^Reused, /m)
  const value = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
  await waitFor(
    'both handshakes counted',
    () => value(spawnSync('curl', ['-sS', `http://127.0.0.1:${adminPort}/metrics`], { encoding: 'utf8' }).stdout, 'petrel_tls_handshakes_total') === 2,
    5000,
  )
  const metrics = spawnSync('curl', ['-sS', `http://127.0.0.1:${adminPort}/metrics`], { encoding: 'utf8' }).stdout
  assert.equal(value(metrics, 'petrel_tls_resumed_total'), 1, metrics)
})

test('--tls-watch follows a reload: the files a --config names after it are the ones watched', async (t) => {
  const dir = tempDir(t)
  const first = { cert: path.join(dir, 'first.pem'), key: path.join(dir, 'first.key') }
  const second = { cert: path.join(dir, 'second.pem'), key: path.join(dir, 'second.key') }
  install(ec, first)
  install(ec, second)
  const config = path.join(dir, 'petrel.json')
  writeFileSync(config, JSON.stringify({ 'tls-cert': [first.cert], 'tls-key': [first.key], 'tls-watch': true }))
  const m = await serve(t, ['--config', config])
  writeFileSync(config, JSON.stringify({ 'tls-cert': [second.cert], 'tls-key': [second.key], 'tls-watch': true }))
  process.kill(m.child.pid!, 'SIGHUP')
  await waitFor('the reload', () => /reloaded/.test(m.log()), 10_000)
  const reloads = (): number => m.log().match(/reloaded/g)?.length ?? 0
  // A change to the file the configuration no longer names reloads nothing; one to the file it names does.
  install(ca.issue(['localhost', '127.0.0.1'], { stem: 'unwatched' }), first)
  await sleep(2000)
  assert.equal(reloads(), 1, m.log())
  const renewed = ca.issue(['localhost', '127.0.0.1'], { stem: 'followed' })
  install(renewed, second)
  await waitFor('the renewed certificate served', () => reloads() === 2, 10_000).catch(() => assert.fail(m.log()))
  assert.equal(await servedFingerprint(m.port), fingerprintOf(renewed.cert))
})

test('--http-port in a single process: reloads under load reset no connection (the socket is kept across them)', async (t) => {
  const httpPort = await freePort()
  const m = await serve(t, [...tlsFlags(ec), '--http-port', String(httpPort)])
  let answered = 0
  const failures: string[] = []
  let running = true
  const client = async (): Promise<void> => {
    while (running) {
      const c = await RawClient.connect(httpPort).catch((err: Error) => {
        failures.push(`connect: ${err.message}`)
        return null
      })
      if (c === null) continue
      try {
        await c.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
        const text = (await c.readUntilClose(5000)).toString('latin1')
        if (text.startsWith('HTTP/1.1 308 ')) answered++
        else failures.push(`answer: ${JSON.stringify(text.slice(0, 40))}`)
      } catch (err) {
        failures.push(`read: ${(err as Error).message}`)
      } finally {
        c.destroy()
      }
    }
  }
  const clients = Array.from({ length: 30 }, () => client())
  for (let i = 1; i <= 3; i++) {
    await sleep(300)
    process.kill(m.child.pid!, 'SIGHUP')
    await waitFor(`reload ${i}`, () => (m.log().match(/reloaded/g)?.length ?? 0) === i, 10_000)
  }
  await sleep(300)
  running = false
  await Promise.all(clients)
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed of ${answered + failures.length}`)
  assert.ok(answered > 0)
})
