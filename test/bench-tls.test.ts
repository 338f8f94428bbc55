// `petrel bench` over https:// against Petrel's own TLS termination (createServer({ tls })) with
// certificates from a test CA made at run time: requests and handshakes counted, resumption
// counted (and off when asked), a new connection per request, and a certificate the generator
// cannot verify reported as an error line that names the reason, not a crash.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import type { TestContext } from 'node:test'
import { runBench } from '../src/apps/bench/run.ts'
import type { BenchOptions } from '../src/apps/bench/plan.ts'
import type { BenchResult } from '../src/apps/bench/result.ts'
import { BENCH_OPTIONS, benchCli } from './helpers/bench.ts'
import { serve } from './helpers/serve.ts'
import { makeTestCa, type TestCa, type IssuedCertificate } from './helpers/tls.ts'

let dir = ''
let ca: TestCa
let leaf: IssuedCertificate

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'petrel-bench-tls-'))
  ca = makeTestCa(path.join(dir, 'ca'))
  leaf = ca.issue(['localhost', '127.0.0.1'])
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** A Petrel HTTPS server answering GET / with "ok"; `handled()` counts the requests it answered. */
async function httpsServer(t: TestContext, certificate: IssuedCertificate = leaf): Promise<{ port: number; handled: () => number }> {
  let handled = 0
  const { port } = await serve(t, { tls: { cert: readFileSync(certificate.cert), key: readFileSync(certificate.key) } }, (s) => {
    s.get('/', (_req, res) => {
      handled++
      res.end('ok')
    })
  })
  return { port, handled: () => handled }
}

function bench(url: string, options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  return runBench({ ...BENCH_OPTIONS, ca: readFileSync(ca.caCert), ...options, url })
}

const noErrors = { connect: 0, read: 0, write: 0, timeout: 0, parse: 0 }

describe('petrel bench over https', () => {
  test('keep-alive: every request answered over one handshake per connection, verified against --ca, SNI from the URL', async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`)
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.requests > 10, `${result.requests} requests`)
    assert.deepEqual(result.status, { '200': result.requests })
    assert.ok(server.handled() >= result.requests)
    assert.deepEqual(result.tls, { handshakes: 2, handshakes_per_s: result.tls!.handshakes_per_s, resumed: 0 })
    assert.ok(result.tls!.handshakes_per_s > 0)
  })

  test("a new connection per request: every one a handshake, all but each connection's first resumed", async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://127.0.0.1:${server.port}/`, { keepAlive: false })
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.requests > 5, `${result.requests} requests`)
    const tls = result.tls!
    // A handshake may finish just before the window closes, its request unanswered.
    assert.ok(tls.handshakes >= result.requests && tls.handshakes <= result.requests + BENCH_OPTIONS.connections, JSON.stringify(result))
    assert.equal(tls.resumed, tls.handshakes - BENCH_OPTIONS.connections, JSON.stringify(tls))
  })

  test("-H 'Connection: close' with keep-alive on: the server closes each connection and the next one resumes", async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`, { headers: ['Connection: close'] })
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.requests > 5, `${result.requests} requests`)
    assert.ok(result.tls!.handshakes >= result.requests && result.tls!.handshakes <= result.requests + BENCH_OPTIONS.connections)
    assert.equal(result.tls!.resumed, result.tls!.handshakes - BENCH_OPTIONS.connections)
  })

  test('--tls-resume off: every connection a full handshake', async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`, { keepAlive: false, tlsResume: false })
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.requests > 5, `${result.requests} requests`)
    assert.ok(result.tls!.handshakes >= result.requests)
    assert.equal(result.tls!.resumed, 0)
  })

  test('a certificate from a CA it does not trust: connect errors naming the reason, no request, nothing answered', async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`, { ca: null, durationMs: 300 })
    assert.equal(result.requests, 0)
    assert.ok(result.errors.connect > 0)
    assert.match(
      result.first_error ?? '',
      /^connect: TLS certificate rejected: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); trust its CA with --ca FILE, or skip the check with --insecure$/,
    )
    assert.equal(server.handled(), 0)
    assert.deepEqual(result.tls, { handshakes: 0, handshakes_per_s: 0, resumed: 0 })
  })

  test('a certificate for another name: the name check fails and says so', async (t) => {
    const server = await httpsServer(t, ca.issue(['other.example'], { stem: 'other' }))
    const result = await bench(`https://localhost:${server.port}/`, { durationMs: 300 })
    assert.equal(result.requests, 0)
    assert.match(
      result.first_error ?? '',
      /^connect: TLS certificate rejected: Hostname\/IP does not match certificate's altnames: Host: localhost\. is not in the cert's altnames: DNS:other\.example \(ERR_TLS_CERT_ALTNAME_INVALID\); ask for a name the certificate has$/,
    )
  })

  test('--insecure: an untrusted certificate is used anyway', async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`, { ca: null, insecure: true })
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.requests > 10)
  })

  test('a handshake the server refuses (no protocol in common through ALPN): the alert is the reason, no request', async (t) => {
    const h2Only = tls.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), ALPNProtocols: ['h2'] }, (socket) => socket.destroy())
    h2Only.on('tlsClientError', () => {})
    h2Only.listen(0, '127.0.0.1')
    await once(h2Only, 'listening')
    t.after(() => h2Only.close())
    const result = await bench(`https://localhost:${(h2Only.address() as net.AddressInfo).port}/`, { connections: 1, durationMs: 300 })
    assert.equal(result.requests, 0)
    assert.ok(result.errors.connect > 0)
    assert.match(
      result.first_error ?? '',
      /^connect: TLS handshake failed: tlsv1 alert no application protocol \(ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL\)$/,
    )
  })

  test('a server that accepts and never answers the handshake: a connect timeout after --timeout, the connection replaced', async (t) => {
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    t.after(() => {
      for (const socket of sockets) socket.destroy()
      silent.close()
    })
    const port = (silent.address() as net.AddressInfo).port
    const result = await bench(`https://localhost:${port}/`, { connections: 1, timeoutMs: 150, durationMs: 600 })
    assert.equal(result.requests, 0)
    assert.ok(result.errors.connect >= 2, JSON.stringify(result.errors))
    assert.equal(result.first_error, 'connect: no connection within 150 ms')
    assert.ok(sockets.size >= 3, `${sockets.size} connections accepted`)
  })

  test('threads: handshakes and resumptions of every thread are summed', async (t) => {
    const server = await httpsServer(t)
    const result = await bench(`https://localhost:${server.port}/`, { keepAlive: false, threads: 2, connections: 4 })
    assert.deepEqual(result.errors, noErrors, result.first_error ?? '')
    assert.ok(result.tls!.handshakes >= result.requests && result.tls!.handshakes <= result.requests + 4)
    assert.equal(result.tls!.resumed, result.tls!.handshakes - 4)
  })
})

describe('petrel bench https on the command line', () => {
  test('the text report has a tls line; --json a tls object', async (t) => {
    const server = await httpsServer(t)
    const url = `https://localhost:${server.port}/`
    const text = await benchCli(['-c', '2', '-d', '300ms', '--no-keepalive', '--ca', ca.caCert, url])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /\n  0\.3s, 1 thread, 2 connections, a new connection per request, TLS with resumption\n/)
    assert.match(text.stdout, /\n  tls        [\d,]+ handshakes, [\d,.]+\/s, [\d,]+ resumed \(\d+\.\d%\)\n/)
    const json = await benchCli(['-c', '2', '-d', '300ms', '--tls-resume', 'off', '--json', '--ca', ca.caCert, url])
    assert.equal(json.code, 0, json.stderr)
    const result = JSON.parse(json.stdout) as BenchResult
    assert.equal(result.tls?.handshakes, 2)
    assert.equal(result.tls?.resumed, 0)
    assert.equal(typeof result.tls?.handshakes_per_s, 'number')
  })

  test('an untrusted certificate: the first error names it, exit 1, no crash', async (t) => {
    const server = await httpsServer(t)
    const r = await benchCli(['-c', '1', '-d', '300ms', `https://localhost:${server.port}/`])
    assert.equal(r.code, 1)
    assert.match(
      r.stdout,
      /\n             first: connect: TLS certificate rejected: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); trust its CA with --ca FILE/,
    )
    assert.equal(r.stderr, 'petrel bench: every request failed\n')
  })

  test('plain http:// results have no tls part', async (t) => {
    const { port } = await serve(t, {}, (s) => s.get('/', (_req, res) => res.end('ok')))
    const r = await benchCli(['-c', '1', '-d', '200ms', '--json', `http://127.0.0.1:${port}/`])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as BenchResult).tls, null)
  })

  for (const [args, message] of [
    [['--insecure', 'http://127.0.0.1:1/'], /^petrel: --insecure applies to https:\/\/ URLs only; drop it or use https:\/\/\n$/],
    [['--tls-resume', 'off', 'http://127.0.0.1:1/'], /^petrel: --tls-resume applies to https:\/\/ URLs only; drop it or use https:\/\/\n$/],
    [['--tls-resume', 'maybe', 'https://127.0.0.1:1/'], /^petrel: bad value for --tls-resume: "maybe"; expected on or off\n$/],
    [['--ca', '/nonexistent/ca.pem', 'https://127.0.0.1:1/'], /^petrel: bad value for --ca: cannot read \/nonexistent\/ca\.pem \(ENOENT\)\n$/],
    [['ftp://127.0.0.1/'], /^petrel: unsupported scheme ftp: in ftp:\/\/127\.0\.0\.1\/; petrel bench speaks http:\/\/ and https:\/\/\n$/],
  ] as const) {
    test(`one-line error and exit 2: ${args.join(' ')}`, async () => {
      const r = await benchCli([...args])
      assert.equal(r.code, 2)
      assert.match(r.stderr, message)
      assert.equal(r.stdout, '')
    })
  }

  test('--ca with a file that is not PEM: exit 2 naming the file', async () => {
    const notPem = path.join(dir, 'not.pem')
    writeFileSync(notPem, 'hello')
    const r = await benchCli(['--ca', notPem, 'https://127.0.0.1:1/'])
    assert.equal(r.code, 2)
    assert.equal(r.stderr, `petrel: bad value for --ca: ${notPem} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)\n`)
  })
})
