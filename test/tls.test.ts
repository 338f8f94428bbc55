// HTTPS in the library: createServer({ tls }) — certificates and SNI, versions and ALPN, the
// handshake on the timing wheel, refusing over maxConnections before any handshake work,
// resumption and the ticket keys, certificate replacement, clients that break TLS, and that a
// connection that leaves frees everything. Clients are node:tls sockets and raw TCP bytes;
// certificates are made at run time by test/helpers/tls.ts.

import { test, before, describe, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServer, PetrelError, type HttpServer, type TlsOptions } from '../src/index.ts'
import { TicketRatchet, ticketPeriod } from '../src/server/tls.ts'
import { makeTestCa, opensslDateIn, type IssuedCertificate, type TestCa } from './helpers/tls.ts'
import { serve } from './helpers/serve.ts'
import { openFds, settlesTo, socketsIn } from './helpers/sockets.ts'
import { waitFor } from './helpers/petrel.ts'

let dir: string
let ca: TestCa
let caPem: Buffer
let localhost: IssuedCertificate
let wildcard: IssuedCertificate
let other: IssuedCertificate

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'petrel-tls-'))
  ca = makeTestCa(dir)
  caPem = readFileSync(ca.caCert)
  localhost = ca.issue(['localhost', '127.0.0.1'])
  wildcard = ca.issue(['*.example.test'], { intermediate: true })
  other = ca.issue(['other.test'], { keyType: 'rsa' })
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
})

function pair(cert: IssuedCertificate): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }
}

function tlsOptions(extra: Partial<TlsOptions> = {}): TlsOptions {
  return { ...pair(localhost), ...extra }
}

function hello(s: HttpServer): void {
  s.get('/', (req, res) => res.end(`secure=${req.secure} path=${req.path}\n`))
}

interface Exchange {
  socket: tls.TLSSocket
  /** Everything read so far. */
  text(): string
  /** The last session (ticket) the server sent, for a later connection to resume; null until one came. */
  session(): Buffer | null
  closed: Promise<void>
}

/** A node:tls client that trusts the test CA; resolves once the handshake is done. */
function connectTls(port: number, options: tls.ConnectionOptions = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    let received = ''
    let session: Buffer | null = null
    const socket = tls.connect({ port, host: '127.0.0.1', ca: caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'], ...options }, () =>
      resolve({ socket, text: () => received, session: () => session, closed }),
    )
    // TLS 1.2 gives its ticket during the handshake, TLS 1.3 after it: listen from the start.
    socket.on('session', (ticket: Buffer) => (session = ticket))
    const closed = new Promise<void>((done) => socket.once('close', () => done()))
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (received += chunk))
    socket.once('error', reject)
  })
}

async function get(exchange: Exchange, target: string, count = 1): Promise<string> {
  const before = exchange.text().split('HTTP/1.1 ').length
  exchange.socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  await waitFor('the answer', () => exchange.text().split('HTTP/1.1 ').length - before >= count && /\n\n?$|\n[^\n]*\n$/.test(exchange.text()), 5000)
  return exchange.text()
}

/** The handshake fails: the error the client sees. */
async function refusedHandshake(port: number, options: tls.ConnectionOptions): Promise<Error> {
  try {
    const exchange = await connectTls(port, options)
    exchange.socket.destroy()
  } catch (err) {
    return err as Error
  }
  throw new Error('the handshake succeeded')
}

describe('serving HTTPS', () => {
  test('the same handlers answer over TLS: req.secure, keep-alive, ALPN http/1.1, TLS 1.3 by default', async (t) => {
    const { port } = await serve(t, { tls: tlsOptions() }, hello)
    const exchange = await connectTls(port)
    t.after(() => exchange.socket.destroy())
    assert.equal(exchange.socket.alpnProtocol, 'http/1.1')
    assert.equal(exchange.socket.getProtocol(), 'TLSv1.3')
    await get(exchange, '/')
    const text = await get(exchange, '/a/../', 1)
    assert.equal(text.match(/secure=true path=\//g)?.length, 2, text)
    assert.equal(exchange.socket.destroyed, false, 'the connection is kept alive')
  })

  test('TLS 1.2 with an ECDHE AEAD suite; minVersion TLSv1.3 refuses it; TLS 1.1 is never accepted', async (t) => {
    const { port, server } = await serve(t, { tls: tlsOptions() }, hello)
    const tls12 = await connectTls(port, { maxVersion: 'TLSv1.2' })
    t.after(() => tls12.socket.destroy())
    assert.equal(tls12.socket.getProtocol(), 'TLSv1.2')
    assert.match(tls12.socket.getCipher().name, /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/)
    assert.match(await get(tls12, '/'), /secure=true/)
    const old = await refusedHandshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })
    assert.match(old.message, /protocol version|no protocols available|unsupported protocol/i)
    await waitFor('the refusal counted', () => server.stats.protocolErrors.PETREL_ERR_TLS_PROTOCOL === 1, 2000)

    const strict = await serve(t, { tls: tlsOptions({ minVersion: 'TLSv1.3' }) }, hello)
    const refused = await refusedHandshake(strict.port, { maxVersion: 'TLSv1.2' })
    assert.match(refused.message, /protocol version/i)
    const modern = await connectTls(strict.port)
    t.after(() => modern.socket.destroy())
    assert.equal(modern.socket.getProtocol(), 'TLSv1.3')
  })

  test('SNI picks the certificate whose DNS names match (exact, then one-label wildcards, any case); others get the first', async (t) => {
    const { port } = await serve(t, { tls: tlsOptions({ sni: [pair(wildcard), pair(other)] }) }, hello)
    const served = async (servername: string | undefined, checkName = servername ?? 'localhost'): Promise<string> => {
      const exchange = await connectTls(port, {
        ...(servername === undefined ? { servername: '' } : { servername }),
        checkServerIdentity: () => undefined,
      })
      const subject = exchange.socket.getPeerCertificate().subject.CN as string
      // The client checks the chain against the CA: a chain sent whole verifies from the root alone.
      assert.equal(exchange.socket.authorized, true, `${checkName}: ${exchange.socket.authorizationError}`)
      exchange.socket.destroy()
      return subject
    }
    assert.equal(await served('localhost'), 'localhost')
    assert.equal(await served('a.example.test'), '*.example.test')
    assert.equal(await served('A.Example.TEST'), '*.example.test')
    assert.equal(await served('other.test'), 'other.test')
    assert.equal(await served('a.b.example.test'), 'localhost', 'a wildcard covers one label only')
    assert.equal(await served('example.test'), 'localhost', 'a wildcard does not cover its parent')
    assert.equal(await served('unknown.test'), 'localhost')
    assert.equal(await served('other.test.'), 'other.test', 'a trailing dot names the same host')
    assert.equal(await served(undefined), 'localhost')
  })

  test('a chain in the certificate file is sent whole: a client that trusts only the root verifies it', async (t) => {
    const { port } = await serve(t, { tls: { ...pair(wildcard) } }, hello)
    const exchange = await connectTls(port, { servername: 'www.example.test' })
    t.after(() => exchange.socket.destroy())
    assert.equal(exchange.socket.authorized, true)
    const chain = exchange.socket.getPeerCertificate(true)
    assert.equal(chain.subject.CN, '*.example.test')
    assert.equal(chain.issuerCertificate.subject.CN, 'Petrel Test Intermediate')
  })

  test('responseHeaders go on every handler response (HSTS); a bad one is refused at construction', async (t) => {
    const { port } = await serve(t, { tls: tlsOptions(), responseHeaders: { 'Strict-Transport-Security': 'max-age=600' } }, hello)
    const exchange = await connectTls(port)
    t.after(() => exchange.socket.destroy())
    assert.match(await get(exchange, '/'), /^HTTP\/1\.1 200 OK\r\nStrict-Transport-Security: max-age=600\r\n/)
    // The server's own answers too: a request the parser refuses.
    const refused = await connectTls(port)
    t.after(() => refused.socket.destroy())
    refused.socket.write('GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await refused.closed
    assert.match(refused.text(), /^HTTP\/1\.1 400 [^\r]*\r\n[\s\S]*Strict-Transport-Security: max-age=600\r\n/)
    assert.throws(() => createServer({ responseHeaders: { 'X-Bad': 'a\r\nSet-Cookie: x=1' } }), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => createServer({ responseHeaders: { 'Content-Length': '5' } }), { code: 'PETREL_ERR_INVALID_OPTION' })
  })
})

describe('certificates that cannot be used are refused, naming them', () => {
  const refusal = (options: TlsOptions): string => {
    try {
      createServer({ tls: options })
    } catch (err) {
      assert.ok(err instanceof PetrelError)
      assert.equal(err.code, 'PETREL_ERR_TLS_CERTIFICATE')
      return err.message
    }
    assert.fail('the server was made')
  }

  test('not PEM, another certificate key, expired, not yet valid, encrypted key', () => {
    const named = { certSource: 'cert.pem', keySource: 'key.pem' }
    assert.match(refusal({ cert: 'hello', key: readFileSync(localhost.key), ...named }), /cert\.pem: not a PEM certificate/)
    assert.match(refusal({ cert: readFileSync(localhost.cert), key: 'nope', ...named }), /key\.pem: not a PEM private key/)
    assert.match(
      refusal({ cert: readFileSync(localhost.cert), key: readFileSync(other.key), ...named }),
      /key\.pem: this key is not the one cert\.pem was made for/,
    )
    const expired = ca.issue(['old.test'], { startDate: opensslDateIn(-3 * 86_400_000), endDate: opensslDateIn(-86_400_000) })
    assert.match(refusal({ ...pair(expired), ...named }), /cert\.pem: expired on \d{4}-/)
    const early = ca.issue(['early.test'], { startDate: opensslDateIn(86_400_000), endDate: opensslDateIn(2 * 86_400_000) })
    assert.match(refusal({ ...pair(early), ...named }), /cert\.pem: not valid before \d{4}-/)
    const encrypted = path.join(dir, 'encrypted.key')
    execFileSync('openssl', ['pkey', '-in', localhost.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted])
    assert.match(refusal({ cert: readFileSync(localhost.cert), key: readFileSync(encrypted), ...named }), /key\.pem: the key is encrypted/)
    // A CA first in the file (the chain in the wrong order), and a key on a curve clients do not take.
    const wrongOrder = Buffer.concat([readFileSync(ca.caCert), readFileSync(localhost.cert)])
    assert.match(
      refusal({ cert: wrongOrder, key: readFileSync(localhost.key), ...named }),
      /cert\.pem: the first certificate in the file is a CA, not the one the key was made for/,
    )
    // A self-signed certificate (a CA to OpenSSL) with its own key is taken.
    createServer({ tls: { cert: readFileSync(ca.caCert), key: readFileSync(path.join(dir, 'ca.key')) } }).tls!.close()
    const k1 = path.join(dir, 'k1.key')
    const k1cert = path.join(dir, 'k1.pem')
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-out', k1])
    execFileSync('openssl', ['req', '-x509', '-new', '-key', k1, '-out', k1cert, '-days', '2', '-subj', '/CN=k1.test', '-addext', 'basicConstraints=CA:FALSE'])
    assert.match(refusal({ cert: readFileSync(k1cert), key: readFileSync(k1), ...named }), /key\.pem: a ec secp256k1 key, which clients cannot use/)
    // An SNI pair is checked as the first is.
    assert.match(refusal({ ...pair(localhost), sni: [{ ...pair(expired), certSource: 'sni.pem' }] }), /sni\.pem: expired/)
  })

  test('replaceCertificates(): new handshakes get the new certificate, an open connection keeps going; a bad one changes nothing', async (t) => {
    const { port, server } = await serve(t, { tls: tlsOptions() }, hello)
    const before = await connectTls(port)
    t.after(() => before.socket.destroy())
    const fingerprintOf = async (): Promise<string> => {
      const exchange = await connectTls(port, { checkServerIdentity: () => undefined })
      const fingerprint = exchange.socket.getPeerCertificate().fingerprint256
      exchange.socket.destroy()
      return fingerprint
    }
    const original = await fingerprintOf()
    const renewed = ca.issue(['localhost'], { stem: 'renewed' })
    server.tls!.replaceCertificates(pair(renewed))
    const now = await fingerprintOf()
    assert.notEqual(now, original)
    assert.match(await get(before, '/'), /secure=true/, 'the connection made before the replacement still answers')
    assert.equal(before.socket.getPeerCertificate().fingerprint256, original)
    assert.throws(() => server.tls!.replaceCertificates({ cert: readFileSync(renewed.cert), key: readFileSync(other.key) }), {
      code: 'PETREL_ERR_TLS_CERTIFICATE',
    })
    assert.equal(await fingerprintOf(), now, 'a refused replacement leaves the certificates in use')
  })
})

describe('the handshake', () => {
  test('a client that connects and says nothing is closed at handshakeMs, counted, without an error logged', async (t) => {
    const { server, connect } = await serve(t, { tls: tlsOptions(), timeouts: { handshakeMs: 300 } }, hello)
    const client = await connect()
    await sleep(150)
    assert.equal(client.closedByServer, false, 'not before the timeout')
    assert.equal(await client.waitClosed(3000), true, 'the server closed it')
    assert.equal(server.stats.timeouts.PETREL_ERR_TLS_HANDSHAKE_TIMEOUT, 1)
    await waitFor('the handshake gone', () => server.handshakes.size === 0, 2000)
  })

  test('a client that stalls mid-handshake is closed at handshakeMs', async (t) => {
    const { server, connect } = await serve(t, { tls: tlsOptions(), timeouts: { handshakeMs: 300 } }, hello)
    const client = await connect()
    // A handshake record header announcing 512 bytes, and 10 of them.
    client.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), Buffer.alloc(10, 1)]))
    assert.equal(await client.waitClosed(3000), true, 'the server closed it')
    assert.equal(server.stats.timeouts.PETREL_ERR_TLS_HANDSHAKE_TIMEOUT, 1)
  })

  test('after the handshake, the request head has headersMs of its own', async (t) => {
    const { server, port } = await serve(t, { tls: tlsOptions(), timeouts: { handshakeMs: 200, headersMs: 600 } }, hello)
    const started = performance.now()
    const exchange = await connectTls(port)
    exchange.socket.write('GET / HTTP/1.1\r\n')
    await exchange.closed
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 500, `closed after ${elapsed} ms: the head's timeout, not the handshake's`)
    assert.match(exchange.text(), /^HTTP\/1\.1 408 /)
    assert.equal(server.stats.timeouts.PETREL_ERR_TLS_HANDSHAKE_TIMEOUT, undefined)
  })

  test('plain HTTP sent to the HTTPS port: a 400 in plain HTTP saying so, then closed; counted, not logged', async (t) => {
    const answers: number[] = []
    const { server, connect } = await serve(t, { tls: tlsOptions(), onServerAnswer: (answer) => answers.push(answer.status) }, hello)
    const client = await connect()
    await client.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const text = (await client.readUntilClose(3000)).toString('latin1')
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*Connection: close\r\n\r\n[\s\S]*plain HTTP request was sent to the HTTPS port/)
    assert.equal(server.stats.protocolErrors.PETREL_ERR_PLAIN_HTTP_TO_HTTPS, 1)
    assert.deepEqual(answers, [400], 'the access log is told')
    // Bytes that are neither TLS nor HTTP: closed without an answer.
    const garbage = await connect()
    await garbage.write(Buffer.alloc(64, 0))
    assert.equal(await garbage.waitClosed(3000), true)
    assert.equal(garbage.received.length, 0)
    assert.equal(server.stats.protocolErrors.PETREL_ERR_TLS_PROTOCOL, 1)
  })

  test('a bad record after the handshake: closed at once and counted, not logged', async (t) => {
    const { server, port } = await serve(t, { tls: tlsOptions() }, hello)
    const raw = net.connect(port, '127.0.0.1')
    await new Promise((resolve) => raw.once('connect', resolve))
    const exchange = await connectTls(port, { socket: raw })
    exchange.socket.on('error', () => {})
    // Once the server is past its handshake (a record in the same read would be the handshake's).
    await get(exchange, '/')
    const started = performance.now()
    // An application-data record of garbage, written under the TLS layer.
    raw.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32, 7)]))
    await exchange.closed
    assert.ok(performance.now() - started < 2000, 'closed at the bad record, not by a timer')
    await waitFor('the bad record counted', () => server.stats.protocolErrors.PETREL_ERR_TLS_PROTOCOL === 1, 2000)
  })

  test('over maxConnections, a connection is closed before any handshake work; handshakes under way count', async (t) => {
    const { server, port, connect } = await serve(t, { tls: tlsOptions(), limits: { maxConnections: 2 } }, hello)
    const first = await connectTls(port)
    t.after(() => first.socket.destroy())
    // A client still in its handshake holds the second place.
    const silent = await connect()
    await waitFor('the handshake under way', () => server.handshakes.size === 1, 2000)
    const refused = await connect()
    assert.equal(await refused.waitClosed(3000), true, 'the server closed it')
    assert.equal(refused.received.length, 0, 'nothing is sent: no answer can be read without a handshake')
    assert.equal(server.stats.rejected, 1)
    silent.destroy()
    await waitFor('the place freed', () => server.handshakes.size === 0, 2000)
    const again = await connectTls(port)
    t.after(() => again.socket.destroy())
    assert.match(await get(again, '/'), /secure=true/)
  })

  test('a client that half-closes after its request still gets the answer', async (t) => {
    const { port } = await serve(t, { tls: tlsOptions() }, (s) => s.get('/slow', (_req, res) => void setTimeout(() => res.end('late answer\n'), 100)))
    const exchange = await connectTls(port, { allowHalfOpen: true } as tls.ConnectionOptions)
    exchange.socket.end('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await exchange.closed
    assert.match(exchange.text(), /^HTTP\/1\.1 200 OK[\s\S]*late answer\n$/)
  })

  test('a TLS 1.2 client cannot renegotiate (one connection would make the server do handshakes without end)', async (t) => {
    const { server, port } = await serve(t, { tls: tlsOptions() }, hello)
    const exchange = await connectTls(port, { maxVersion: 'TLSv1.2' })
    let refusal: Error | null = null
    exchange.socket.on('error', (err) => (refusal = err))
    assert.equal(
      exchange.socket.renegotiate({}, () => {}),
      true,
      'the client asks',
    )
    await exchange.closed
    assert.match((refusal as Error | null)?.message ?? '', /no renegotiation/)
    assert.equal(server.stats.tlsHandshakes, 1)
  })

  test('close() closes handshakes under way and resolves', async (t) => {
    const server = createServer({ tls: tlsOptions(), timeouts: { handshakeMs: 60_000 } })
    const { port } = await server.listen({ port: 0 })
    const raw = net.connect(port, '127.0.0.1')
    raw.on('error', () => {})
    const closed = new Promise((resolve) => raw.once('close', resolve))
    await waitFor('the handshake under way', () => server.handshakes.size === 1, 2000)
    await server.close()
    await closed
    t.diagnostic('closed')
  })
})

describe('session resumption', () => {
  async function resumes(port: number, session: Buffer, options: tls.ConnectionOptions = {}): Promise<boolean> {
    const exchange = await connectTls(port, { session, ...options })
    const reused = exchange.socket.isSessionReused()
    await get(exchange, '/')
    exchange.socket.destroy()
    return reused
  }

  async function sessionFrom(port: number, options: tls.ConnectionOptions = {}): Promise<Buffer> {
    const exchange = await connectTls(port, options)
    await get(exchange, '/')
    await waitFor('a session ticket', () => exchange.session() !== null, 2000)
    exchange.socket.destroy()
    return exchange.session()!
  }

  test('TLS 1.3 and 1.2 tickets resume on the same server; the server counts handshakes and resumptions', async (t) => {
    const { port, server } = await serve(t, { tls: tlsOptions() }, hello)
    assert.equal(await resumes(port, await sessionFrom(port)), true)
    const tls12 = { maxVersion: 'TLSv1.2' } as const
    assert.equal(await resumes(port, await sessionFrom(port, tls12), tls12), true)
    await waitFor('the handshakes counted', () => server.stats.tlsHandshakes === 4, 2000).catch(() => assert.fail(JSON.stringify(server.stats)))
    assert.equal(server.stats.tlsResumed, 2)
  })

  test('servers given the same ticketSecret resume each other’s sessions (workers); another secret does not', async (t) => {
    const ticketSecret = 'a secret shared by the workers of one master'
    const a = await serve(t, { tls: tlsOptions({ ticketSecret }) }, hello)
    const b = await serve(t, { tls: tlsOptions({ ticketSecret }) }, hello)
    const c = await serve(t, { tls: tlsOptions({ ticketSecret: 'some other secret of enough bytes' }) }, hello)
    const session = await sessionFrom(a.port)
    assert.equal(await resumes(b.port, session), true)
    assert.equal(await resumes(c.port, session), false)
    const tls12 = { maxVersion: 'TLSv1.2' } as const
    assert.equal(await resumes(b.port, await sessionFrom(a.port, tls12), tls12), true)
  })

  test('the ticket key rotates each ticketRotationMs: a session from an earlier period makes a full handshake', async (t) => {
    const periodMs = 2000
    const { port } = await serve(t, { tls: tlsOptions({ ticketRotationMs: periodMs }) }, hello)
    const period = (): number => Math.floor(Date.now() / periodMs)
    // Start just after a period begins, so that the ticket and its use fall in the same one — on
    // a loaded machine they may not: then the pair is taken again in the next period.
    let session: Buffer | null = null
    for (let attempt = 0; attempt < 3 && session === null; attempt++) {
      await sleep(periodMs - (Date.now() % periodMs) + 20)
      const issuedIn = period()
      const ticket = await sessionFrom(port)
      const reused = await resumes(port, ticket)
      if (period() !== issuedIn) continue
      assert.equal(reused, true, 'resumed within the period')
      session = ticket
    }
    assert.ok(session !== null, 'three periods went by before a ticket could be used in its own')
    // The key changes on a timer at the period's end, which a loaded machine may run late: a
    // quarter of a period is left for it (CI once saw it later than 20 ms).
    await sleep(periodMs - (Date.now() % periodMs) + periodMs / 4)
    assert.equal(await resumes(port, session), false)
  })

  test('the secret ratchets: a server given an older period’s secret steps to today’s key, and shares sessions with one given today’s', async (t) => {
    const rotationMs = 60_000
    const today = ticketPeriod(Date.now(), rotationMs)
    const ratchet = new TicketRatchet('the secret of a master started earlier', rotationMs, today - 3)
    const older = { ticketSecret: 'the secret of a master started earlier', ticketSecretPeriod: today - 3, ticketRotationMs: rotationMs }
    const current = ratchet.current()
    assert.equal(current.period, today)
    assert.notEqual(current.secret, Buffer.from('the secret of a master started earlier').toString('hex'), 'the old secret is not kept')
    const a = await serve(t, { tls: tlsOptions(older) }, hello)
    const b = await serve(
      t,
      { tls: tlsOptions({ ticketSecret: Buffer.from(current.secret, 'hex'), ticketSecretPeriod: today, ticketRotationMs: rotationMs }) },
      hello,
    )
    assert.equal(await resumes(b.port, await sessionFrom(a.port)), true)
    // The same secret named for another period gives another key.
    const c = await serve(
      t,
      { tls: tlsOptions({ ticketSecret: 'the secret of a master started earlier', ticketSecretPeriod: today, ticketRotationMs: rotationMs }) },
      hello,
    )
    assert.equal(await resumes(c.port, await sessionFrom(a.port)), false)
  })

  test('a ticket secret shorter than 16 bytes is refused', () => {
    assert.throws(() => createServer({ tls: tlsOptions({ ticketSecret: 'short' }) }), { code: 'PETREL_ERR_INVALID_OPTION' })
  })
})

test('every descriptor is freed when TLS clients leave: handshakes done, failed, timed out and cut', async (t: TestContext) => {
  const { server, port, connect } = await serve(t, { tls: tlsOptions(), timeouts: { handshakeMs: 300 } }, hello)
  // Warm up: the first TLS connection loads what later ones reuse.
  const warm = await connectTls(port)
  await get(warm, '/')
  warm.socket.destroy()
  await waitFor('the warm-up connection gone', () => server.connections.size === 0, 2000)
  const baseline = openFds(process.pid)
  const clients: Array<Promise<unknown>> = []
  for (let i = 0; i < 10; i++) {
    clients.push(
      connectTls(port).then(async (exchange) => {
        await get(exchange, '/')
        exchange.socket.destroy()
      }),
    )
    clients.push(connect().then(async (raw) => assert.equal(await raw.waitClosed(3000), true)))
    clients.push(
      connect().then(async (raw) => {
        raw.write('GET / HTTP/1.1\r\n\r\n')
        assert.equal(await raw.waitClosed(3000), true, 'the server closed it')
      }),
    )
  }
  await Promise.all(clients)
  await waitFor('every connection gone', () => server.connections.size === 0 && server.handshakes.size === 0, 3000)
  assert.equal(server.timersArmed(), 0, 'no timer left armed')
  assert.equal(await settlesTo(() => openFds(process.pid), baseline, 3000), baseline)
  assert.equal(socketsIn([process.pid], port, 'CLOSE_WAIT'), 0)
})
