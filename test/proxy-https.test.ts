// The reverse proxy's https upstreams: certificates verified against the system CAs plus
// upstreamCa / --proxy-ca, SNI and the name check from the upstream's host name, pooled TLS
// connections reused, a refused certificate handled as a failed connection (the next upstream,
// else 502 with one line naming the upstream and the reason), the connect timeout covering the
// handshake, health checks over TLS, --proxy-tls-insecure as an explicit knob; and
// X-Forwarded-Proto: https for a client whose own connection is TLS.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { createServer, type HttpServer } from '../src/index.ts'
import { ReverseProxy } from '../src/apps/proxy/reverse.ts'
import type { ProxyOptions } from '../src/apps/proxy/settings.ts'
import { makeTestCa, opensslDateIn, type IssuedCertificate, type TestCa } from './helpers/tls.ts'
import { petrel, startPetrel, waitFor } from './helpers/petrel.ts'
import { openFds, settlesTo } from './helpers/sockets.ts'
import { proxyWithLog } from './helpers/proxy.ts'

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-proxy-https-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Two CAs made once for the file: `trusted` is given to the proxies, `stranger` never is. */
const certDir = mkdtempSync(path.join(tmpdir(), 'petrel-proxy-https-ca-'))
process.on('exit', () => rmSync(certDir, { recursive: true, force: true }))
const trusted: TestCa = makeTestCa(path.join(certDir, 'trusted'), 'Petrel Proxy Test CA')
const stranger: TestCa = makeTestCa(path.join(certDir, 'stranger'), 'Stranger CA')
const localhostCert = trusted.issue(['localhost', '127.0.0.1'])
const otherCert = trusted.issue(['other.test'])
const strangerCert = stranger.issue(['localhost', '127.0.0.1'])
const chainedCert = trusted.issue(['localhost'], { stem: 'chained', intermediate: true })
const expiredCert = trusted.issue(['localhost'], { stem: 'expired', startDate: opensslDateIn(-2 * 86_400_000), endDate: opensslDateIn(-86_400_000) })

interface TlsUpstream {
  server: HttpServer
  port: number
  /** Connections (TLS handshakes begun) it accepted. */
  readonly connections: number
  /** Request heads it saw, by field name. */
  seen: Array<Record<string, string | string[] | undefined>>
}

/** A Petrel HTTPS server as an upstream (cleartext for `cert` null), answering with its name; `sni` adds certificates chosen by server name. */
async function tlsUpstream(t: TestContext, name: string, cert: IssuedCertificate | null, sni: IssuedCertificate[] = []): Promise<TlsUpstream> {
  const server =
    cert === null
      ? createServer()
      : createServer({
          tls: {
            cert: readFileSync(cert.cert),
            key: readFileSync(cert.key),
            sni: sni.map((c) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) })),
          },
        })
  const u = { server, port: 0, seen: [] } as unknown as TlsUpstream
  server.get('/health', (_req, res) => res.end('ok'))
  server.fallback((req, res) => {
    u.seen.push(req.headers)
    res.setHeader('X-Upstream', name)
    res.end(`${name} ${req.url}`)
  })
  u.port = (await server.listen({ host: '127.0.0.1', port: 0 })).port
  Object.defineProperty(u, 'connections', { get: () => server.stats.accepted })
  t.after(() => server.close())
  return u
}

/** The proxy under test, its log lines kept; no active checks and no passive marks unless a test asks. */
function proxy(t: TestContext, upstreams: string[], options: ProxyOptions = {}): Promise<{ base: string; lines: string[] }> {
  return proxyWithLog(t, upstreams, { healthIntervalMs: 0, failTimeoutMs: 0, ...options })
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url)
  return { status: response.status, body: await response.text() }
}

/** The server's one log line for a failed response (res.fail) goes to stderr: collect it. */
function captureStderr(t: TestContext): string[] {
  const lines: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    lines.push(String(chunk))
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof process.stderr.write
  t.after(() => {
    process.stderr.write = write
  })
  return lines
}

test('a valid certificate: 200 and the body; the second request reuses the pooled TLS connection; SNI names the host', async (t) => {
  // The default certificate is for other.test: only a client that sends SNI "localhost" gets the one for localhost.
  const up = await tlsUpstream(t, 'secure', otherCert, [localhostCert])
  const { base, lines } = await proxy(t, [`https://localhost:${up.port}`], { upstreamCa: readFileSync(trusted.caCert) })
  const first = await get(`${base}/a`)
  assert.deepEqual(first, { status: 200, body: 'secure /a' }, lines.join('\n'))
  const second = await get(`${base}/b`)
  assert.deepEqual(second, { status: 200, body: 'secure /b' })
  assert.equal(up.connections, 1, 'both requests went over one TLS connection')
  assert.deepEqual(lines, [])
})

test('a new connection resumes the TLS session the upstream gave the last one (no full handshake)', async (t) => {
  // node:tls's server tells whether each connection resumed; it answers one request per connection.
  const resumed: boolean[] = []
  const origin = tls.createServer({ cert: readFileSync(localhostCert.cert), key: readFileSync(localhostCert.key) }, (socket) => {
    socket.on('error', () => {})
    resumed.push(socket.isSessionReused())
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'))
  })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.after(() => origin.close())
  const { base, lines } = await proxy(t, [`https://localhost:${(origin.address() as net.AddressInfo).port}`], { upstreamCa: readFileSync(trusted.caCert) })
  for (let i = 0; i < 3; i++) assert.deepEqual(await get(`${base}/${i}`), { status: 200, body: 'ok' }, lines.join('\n'))
  assert.deepEqual(resumed, [false, true, true])
})

test('a certificate signed by an intermediate CA, sent with its chain: trusted through the root given with upstreamCa', async (t) => {
  const up = await tlsUpstream(t, 'chained', chainedCert)
  const { base, lines } = await proxy(t, [`https://localhost:${up.port}`], { upstreamCa: readFileSync(trusted.caCert) })
  assert.deepEqual(await get(`${base}/c`), { status: 200, body: 'chained /c' }, lines.join('\n'))
})

test("an IP address upstream: checked against the certificate's IP names, no SNI sent", async (t) => {
  // The SNI certificate is for other.test only, so it cannot be picked by mistake; the default one has IP:127.0.0.1.
  const up = await tlsUpstream(t, 'by-ip', localhostCert, [otherCert])
  const { base, lines } = await proxy(t, [`https://127.0.0.1:${up.port}`], { upstreamCa: readFileSync(trusted.caCert) })
  assert.deepEqual(await get(`${base}/x`), { status: 200, body: 'by-ip /x' }, lines.join('\n'))
})

test('an untrusted CA, a wrong name, an expired certificate, a cleartext port: 502, and one line naming the upstream and the reason', async (t) => {
  const errors = captureStderr(t)
  const untrusted = await tlsUpstream(t, 'untrusted', strangerCert)
  const wrongName = await tlsUpstream(t, 'wrong-name', otherCert)
  // Petrel's own server refuses to serve an expired certificate: node:tls's serves anything.
  const expired = tls.createServer({ cert: readFileSync(expiredCert.cert), key: readFileSync(expiredCert.key) }, (socket) => socket.end())
  await new Promise<void>((resolve) => expired.listen(0, '127.0.0.1', resolve))
  t.after(() => expired.close())
  const expiredPort = (expired.address() as net.AddressInfo).port
  const plain = await tlsUpstream(t, 'plain', null)
  const ca = readFileSync(trusted.caCert)
  const cases: Array<[string, number, string]> = [
    ['/u', untrusted.port, 'certificate not trusted \\(self-signed / unknown CA: [A-Z_]+\\): give its CA with --proxy-ca'],
    ['/w', wrongName.port, 'certificate is for other.test, not localhost'],
    ['/e', expiredPort, 'certificate expired: renew it on the upstream'],
    ['/p', plain.port, 'answered without TLS \\(ERR_SSL_WRONG_VERSION_NUMBER\\): is it an http:// upstream\\?'],
  ]
  for (const [target, port, reason] of cases) {
    const { base } = await proxy(t, [`https://localhost:${port}`], { upstreamCa: ca })
    assert.equal((await get(`${base}${target}`)).status, 502)
    const failed = (): string[] =>
      errors
        .join('')
        .split('\n')
        .filter((l) => l.includes(`GET ${target}: `))
    await waitFor('the log line', () => failed().length > 0, 5_000)
    assert.equal(failed().length, 1, failed().join('\n'))
    assert.match(failed()[0]!, new RegExp(`GET ${target}: \\[PETREL_ERR_UPSTREAM_FAILED\\] .*: upstream https://localhost:${port}: ${reason}$`))
  }
  assert.ok(!errors.join('').includes('    at '), 'no stack trace')
})

test('a refused certificate is a failed connection: the next upstream is tried (mixed http and https in one group)', async (t) => {
  const bad = await tlsUpstream(t, 'bad', strangerCert)
  const good = await tlsUpstream(t, 'good', localhostCert)
  const plain = createServer()
  plain.fallback((req, res) => res.end(`plain ${req.url}`))
  const plainPort = (await plain.listen({ host: '127.0.0.1', port: 0 })).port
  t.after(() => plain.close())
  const { base, lines } = await proxy(t, [`https://localhost:${bad.port}`, `https://localhost:${good.port}`, `http://127.0.0.1:${plainPort}`], {
    upstreamCa: readFileSync(trusted.caCert),
  })
  const bodies: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = await get(`${base}/r${i}`)
    assert.equal(r.status, 200)
    bodies.push(r.body)
  }
  // Round-robin: the first pick (bad) falls through to good; then good, then the cleartext one.
  assert.deepEqual(bodies, ['good /r0', 'good /r1', 'plain /r2'])
  assert.equal(lines.length, 1, lines.join('\n'))
  assert.match(lines[0]!, new RegExp(`GET /r0: .*: upstream https://localhost:${bad.port}: certificate not trusted .*; trying the next upstream$`))
})

test('upstreamTlsInsecure: an untrusted certificate is accepted, with one warning line at start', async (t) => {
  const up = await tlsUpstream(t, 'insecure', strangerCert)
  const { base, lines } = await proxy(t, [`https://localhost:${up.port}`], { upstreamTlsInsecure: true })
  assert.equal(lines.length, 1)
  assert.match(lines[0]!, /certificates of https upstreams are NOT verified/)
  assert.deepEqual(await get(`${base}/i`), { status: 200, body: 'insecure /i' })
  assert.equal(lines.length, 1)
})

/** A TCP server that reads and drops what it is sent and never answers (or closes at once): `open` holds its live sockets. */
async function tcpPeer(t: TestContext, closeAtOnce: boolean): Promise<{ port: number; open: Set<net.Socket> }> {
  const open = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => {})
    // Read (and drop) what comes, so that the proxy's FIN is seen.
    socket.resume()
    if (closeAtOnce) socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const s of open) s.destroy()
    server.close()
  })
  return { port: (server.address() as net.AddressInfo).port, open }
}

test('an upstream that accepts TCP but never finishes the handshake: 504 at the connect timeout, its socket closed; one that closes at once: 502', async (t) => {
  const stalled = await tcpPeer(t, false)
  const errors = captureStderr(t)
  const { base } = await proxy(t, [`https://localhost:${stalled.port}`], { connectTimeoutMs: 300 })
  assert.equal((await get(`${base}/s`)).status, 504)
  await waitFor('the log line', () => errors.join('').includes('PETREL_ERR_UPSTREAM_TIMEOUT'), 5_000)
  assert.match(
    errors.join(''),
    new RegExp(`GET /s: \\[PETREL_ERR_UPSTREAM_TIMEOUT\\] .*: no TLS connection to https://localhost:${stalled.port} within 300 ms`),
  )
  assert.equal(await settlesTo(() => stalled.open.size, 0, 5_000), 0, 'the proxy closed the stalled connection')

  const closing = await tcpPeer(t, true)
  const other = await proxy(t, [`https://127.0.0.1:${closing.port}`], { connectTimeoutMs: 60_000 })
  assert.equal((await get(`${other.base}/c`)).status, 502)
  await waitFor('the log line', () => errors.join('').includes('GET /c:'), 5_000)
  assert.match(errors.join(''), new RegExp(`GET /c: \\[PETREL_ERR_UPSTREAM_FAILED\\] .*: upstream https://127.0.0.1:${closing.port}: ECONNRESET`))
})

test('an Upgrade (WebSocket) to an https upstream tunnels over the TLS connection, both ways', async (t) => {
  // A TLS origin that answers the upgrade with 101, then echoes what comes in upper-cased.
  const origin = tls.createServer({ cert: readFileSync(localhostCert.cert), key: readFileSync(localhostCert.key) }, (socket) => {
    socket.on('error', () => {})
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return void socket.write(chunk.toString('latin1').toUpperCase())
      head += chunk.toString('latin1')
      if (head.includes('\r\n\r\n')) socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    })
  })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.after(() => origin.close())
  const { base } = await proxy(t, [`https://localhost:${(origin.address() as net.AddressInfo).port}`], { upstreamCa: readFileSync(trusted.caCert) })
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1')
  t.after(() => socket.destroy())
  let received = ''
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
  socket.write('GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
  await waitFor('the 101', () => received.includes('\r\n\r\n'), 5_000)
  assert.match(received, /^HTTP\/1\.1 101 /)
  received = ''
  socket.write('hello through tls')
  await waitFor('the echo', () => received === 'HELLO THROUGH TLS', 5_000)
})

test('health checks go over TLS, and an upstream whose certificate is refused is down', async (t) => {
  const bad = await tlsUpstream(t, 'bad', otherCert)
  const good = await tlsUpstream(t, 'good', localhostCert)
  const { base, lines } = await proxy(t, [`https://localhost:${bad.port}`, `https://localhost:${good.port}`], {
    upstreamCa: readFileSync(trusted.caCert),
    healthPath: '/health',
    healthIntervalMs: 50,
    failTimeoutMs: 60_000,
  })
  await waitFor('the bad upstream marked down', () => lines.some((l) => l.includes('is down')), 5_000)
  assert.deepEqual(lines, [`proxy /: upstream https://localhost:${bad.port} is down (GET /health failed)`])
  const before = good.connections
  assert.ok(before >= 1, 'the good one was checked over TLS')
  // Every request goes to the healthy upstream, without trying the one that is down.
  for (let i = 0; i < 4; i++) assert.deepEqual(await get(`${base}/h${i}`), { status: 200, body: `good /h${i}` })
  assert.deepEqual(lines, [`proxy /: upstream https://localhost:${bad.port} is down (GET /health failed)`])
})

test("X-Forwarded-Proto and Forwarded say https to a client on TLS and http to one on cleartext (a client's own value is replaced)", async (t) => {
  // A cleartext upstream: what it is told depends on the client's connection, not on its own.
  const up = await tlsUpstream(t, 'up', null)
  const reverse = new ReverseProxy([{ prefix: '/', upstreams: [`http://127.0.0.1:${up.port}`] }], { healthIntervalMs: 0 })
  const front = localhostCert
  const secureFront = createServer({ tls: { cert: readFileSync(front.cert), key: readFileSync(front.key) } })
  const plainFront = createServer()
  for (const s of [secureFront, plainFront]) s.mount('/', (req, res) => reverse.handle(reverse.groups[0]!, req, res))
  const securePort = (await secureFront.listen({ host: '127.0.0.1', port: 0 })).port
  const plainPort = (await plainFront.listen({ host: '127.0.0.1', port: 0 })).port
  t.after(async () => {
    reverse.close()
    await secureFront.close()
    await plainFront.close()
  })
  const head = 'GET /p HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-Proto: ftp\r\nConnection: close\r\n\r\n'
  const ask = (socket: net.Socket): Promise<string> =>
    new Promise((resolve, reject) => {
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')))
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
      socket.write(head)
    })
  // Alternately, from the same address and Host: the forwarding fields are kept between requests, and must follow the connection.
  for (let round = 0; round < 2; round++) {
    const overTls = await ask(tls.connect({ host: '127.0.0.1', port: securePort, servername: 'localhost', ca: readFileSync(trusted.caCert) }))
    assert.match(overTls, /^HTTP\/1\.1 200 /)
    const overTcp = await ask(net.connect(plainPort, '127.0.0.1'))
    assert.match(overTcp, /^HTTP\/1\.1 200 /)
  }
  assert.deepEqual(
    up.seen.map((h) => [h['x-forwarded-proto'], h['forwarded']]),
    [
      ['https', 'for=127.0.0.1;proto=https;host="example.test"'],
      ['http', 'for=127.0.0.1;proto=http;host="example.test"'],
      ['https', 'for=127.0.0.1;proto=https;host="example.test"'],
      ['http', 'for=127.0.0.1;proto=http;host="example.test"'],
    ],
  )
})

test('petrel serve: --proxy-ca makes a private CA trusted, --proxy-tls-insecure warns once; failed handshakes leave no descriptor behind', async (t) => {
  const untrustedUp = await tlsUpstream(t, 'private', localhostCert)
  const strangerUp = await tlsUpstream(t, 'stranger', strangerCert)
  const root = tempDir(t)
  const withCa = await startPetrel(t, [
    root,
    '--proxy',
    `/ok/=https://localhost:${untrustedUp.port}`,
    '--proxy',
    `/bad/=https://localhost:${strangerUp.port}`,
    '--proxy-ca',
    trusted.caCert,
    '--proxy-fail-timeout',
    '0',
  ])
  const base = `http://127.0.0.1:${withCa.port}`
  assert.deepEqual(await get(`${base}/ok/1`), { status: 200, body: 'private /ok/1' })
  // Descriptors after a warm-up, then after many refused handshakes: they all went back.
  assert.equal((await get(`${base}/bad/0`)).status, 502)
  const baseline = openFds(withCa.child.pid!)
  for (let i = 0; i < 20; i++) assert.equal((await get(`${base}/bad/${i}`)).status, 502)
  assert.ok((await settlesTo(() => openFds(withCa.child.pid!), baseline, 5_000)) <= baseline, `descriptors: ${openFds(withCa.child.pid!)}, were ${baseline}`)
  assert.match(
    withCa.log(),
    new RegExp(`GET /bad/1: \\[PETREL_ERR_UPSTREAM_FAILED\\] .*: upstream https://localhost:${strangerUp.port}: certificate not trusted`),
  )

  const insecure = await startPetrel(t, [root, '--proxy', `/=https://localhost:${strangerUp.port}`, '--proxy-tls-insecure'])
  assert.deepEqual(await get(`http://127.0.0.1:${insecure.port}/x`), { status: 200, body: 'stranger /x' })
  assert.equal(
    insecure
      .log()
      .split('\n')
      .filter((l) => l.includes('are NOT verified')).length,
    1,
    insecure.log(),
  )
})

test('petrel serve --tls-cert --workers 1 with an https upstream: TLS on both sides, and the upstream is told X-Forwarded-Proto: https', async (t) => {
  const up = await tlsUpstream(t, 'behind', localhostCert)
  const root = tempDir(t)
  const front = await startPetrel(t, [
    root,
    '--tls-cert',
    localhostCert.cert,
    '--tls-key',
    localhostCert.key,
    '--proxy',
    `/api/=https://localhost:${up.port}`,
    '--proxy-ca',
    trusted.caCert,
    // The CA's text goes to the worker with the rest of the options.
    '--workers',
    '1',
    // Workers refuse to run as root unless told to (the test may run as root, with the certificates in its temp dir).
    ...(process.getuid?.() === 0 ? ['--user', 'root'] : []),
  ])
  assert.match(front.log(), /serving https:\/\/127\.0\.0\.1:/)
  const text = await new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: front.port, servername: 'localhost', ca: readFileSync(trusted.caCert) })
    let received = ''
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.write('GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  })
  assert.match(text, /^HTTP\/1\.1 200 /)
  assert.ok(text.endsWith('behind /api/x'), text)
  assert.equal(up.seen.at(-1)?.['x-forwarded-proto'], 'https')
})

test('petrel serve: a bad --proxy-ca, or the https flags without an https upstream, exit 2 naming the flag and the file', async (t) => {
  const dir = tempDir(t)
  const notPem = path.join(dir, 'not.pem')
  writeFileSync(notPem, 'hello\n')
  const missing = path.join(dir, 'missing.pem')
  const cases: Array<[string[], RegExp]> = [
    [['--proxy', '/=https://localhost:1', '--proxy-ca', missing], new RegExp(`--proxy-ca ${missing}: cannot read it: no such file`)],
    [['--proxy', '/=https://localhost:1', '--proxy-ca', notPem], new RegExp(`--proxy-ca ${notPem}: no PEM certificate in it`)],
    [['--proxy', '/=http://localhost:1', '--proxy-ca', trusted.caCert], /--proxy-ca applies to https:\/\/ upstreams/],
    [['--proxy', '/=http://localhost:1', '--proxy-tls-insecure'], /--proxy-tls-insecure applies to https:\/\/ upstreams/],
    [['--proxy-ca', trusted.caCert], /--proxy-ca applies to the reverse proxy: give --proxy PREFIX=URL \(or a site.s "proxy" in the config file\) too/],
  ]
  for (const [args, expected] of cases) {
    const r = petrel('serve', '--port', '0', ...args)
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, expected)
  }
})
