// The reverse proxy: balancing, health (passive and active), retries only for idempotent requests,
// 502 and 504, forwarded and hop-by-hop headers both ways, streamed bodies both ways, connection
// reuse, and bounded memory under a 100 MB response read slowly.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { createServer, type HttpServer } from '../src/index.ts'
import { startServe, type ServeOptions } from '../src/apps/serve/serve.ts'
import { serveCommand } from '../src/cli/serve.ts'
import { proxySettings, type ProxyOptions } from '../src/apps/proxy/settings.ts'
import { allowed, ForwardProxy, parseAllowRule } from '../src/apps/proxy/forward.ts'
import { freePort } from './helpers/tcp.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { proxyWithLog } from './helpers/proxy.ts'

interface Upstream {
  server: HttpServer
  port: number
  url: string
  /** Connections it accepted. */
  connections: number
  requests: number
}

/** A Petrel server as an upstream, answering with its name unless `setup` adds routes. */
async function upstream(t: TestContext, name: string, setup?: (s: HttpServer, u: Upstream) => void, port = 0): Promise<Upstream> {
  const server = createServer({ limits: { maxBodyBytes: 64 * 1024 * 1024 } })
  const u: Upstream = { server, port: 0, url: '', connections: 0, requests: 0 }
  server.get('/health', (_req, res) => res.end('ok'))
  setup?.(server, u)
  server.fallback((req, res) => {
    u.requests++
    res.setHeader('X-Upstream', name)
    res.json({ upstream: name, method: req.method, url: req.url, headers: req.headers })
  })
  const address = await server.listen({ host: '127.0.0.1', port })
  u.port = address.port
  u.url = `http://127.0.0.1:${address.port}`
  const before = server.stats.accepted
  Object.defineProperty(u, 'connections', { get: () => server.stats.accepted - before })
  t.after(() => server.close())
  return u
}

async function proxy(t: TestContext, upstreams: string[], options: ProxyOptions = {}, prefix = '/', limits: ServeOptions['limits'] = {}): Promise<string> {
  const serveOptions: ServeOptions = {
    root: null,
    host: '127.0.0.1',
    port: 0,
    limits,
    proxy: { routes: [{ prefix, upstreams }], options: { healthIntervalMs: 0, ...options } },
  }
  const serving = await startServe(serveOptions)
  t.after(async () => {
    serving.proxy?.close()
    await serving.server.close()
  })
  return `http://127.0.0.1:${serving.address.port}`
}

/** A raw client: `send` writes the request (at once or over time); resolves with every byte the proxy sent until it closed. */
function rawRequest(base: string, send: (socket: net.Socket) => unknown): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(base).port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    void send(socket)
  })
}

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(url, init)
  return { status: response.status, body: await response.text(), headers: response.headers }
}

test('round-robin spreads requests evenly; least-conn avoids the busy upstream', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const base = await proxy(t, [a.url, b.url])
  const seen: string[] = []
  for (let i = 0; i < 10; i++) seen.push((await get(`${base}/x`)).headers.get('x-upstream')!)
  assert.deepEqual([seen.filter((s) => s === 'a').length, seen.filter((s) => s === 'b').length], [5, 5])
  assert.deepEqual(seen.slice(0, 4), ['a', 'b', 'a', 'b'])

  const slow = await upstream(t, 'slow', (s) =>
    s.get('/work', async (_req, res) => {
      await new Promise((r) => setTimeout(r, 300))
      res.setHeader('X-Upstream', 'slow')
      res.end('slow')
    }),
  )
  const fast = await upstream(t, 'fast', (s) =>
    s.get('/work', (_req, res) => {
      res.setHeader('X-Upstream', 'fast')
      res.end('fast')
    }),
  )
  const least = await proxy(t, [slow.url, fast.url], { balance: 'least-conn' })
  const first = fetch(`${least}/work`) // ties go round-robin: this one to slow, and it stays busy
  await new Promise((r) => setTimeout(r, 50))
  const rest: Array<string | null> = []
  for (let i = 0; i < 6; i++) rest.push((await get(`${least}/work`)).headers.get('x-upstream'))
  assert.deepEqual(rest, Array(6).fill('fast'), 'while slow is busy, least-conn sends everything to fast')
  assert.equal(await (await first).text(), 'slow')
})

test('a dead upstream is skipped (the request retried elsewhere), and taken back after a health check passes', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const base = await proxy(t, [a.url, b.url], { healthPath: '/health', healthIntervalMs: 100, failTimeoutMs: 60_000 })
  const bPort = b.port
  await b.server.close()
  for (let i = 0; i < 6; i++) {
    const r = await get(`${base}/x`)
    assert.equal(r.status, 200, 'the failed attempt on b was retried on a')
    assert.equal(r.headers.get('x-upstream'), 'a')
  }
  // b comes back on its port; the active check notices within its interval, lifting the passive mark.
  await upstream(t, 'b2', undefined, bPort)
  await new Promise((r) => setTimeout(r, 400))
  const seen = new Set<string>()
  for (let i = 0; i < 6; i++) seen.add((await get(`${base}/x`)).headers.get('x-upstream')!)
  assert.deepEqual([...seen].sort(), ['a', 'b2'])
})

test('retries only idempotent requests; all upstreams refusing is 502; a silent one is 504', async (t) => {
  // An upstream that resets every connection as soon as the request arrives.
  const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()))
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => resetter.close(() => r())))
  const resetUrl = `http://127.0.0.1:${(resetter.address() as net.AddressInfo).port}`
  const good = await upstream(t, 'good')
  // Round-robin starts at the resetter: the POST meets it first and is not sent again.
  const postBase = await proxy(t, [resetUrl, good.url], { failTimeoutMs: 0 })
  const p = await get(`${postBase}/x`, { method: 'POST', body: 'not twice' })
  assert.equal(p.status, 502)
  assert.match(p.body, /502 Bad Gateway/)
  assert.equal(good.requests, 0, 'the POST was not retried')
  const base = await proxy(t, [resetUrl, good.url], { failTimeoutMs: 0 })
  const g = await get(`${base}/x`)
  assert.equal(g.status, 200, 'the GET was')
  assert.equal(g.headers.get('x-upstream'), 'good')

  const refused = await freePort()
  const none = await proxy(t, [`http://127.0.0.1:${refused}`])
  assert.equal((await get(`${none}/x`)).status, 502)

  const silent = net.createServer((socket) => socket.resume())
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.after(() => {
    silent.close()
  })
  const slowBase = await proxy(t, [`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`], { readTimeoutMs: 200 })
  const started = Date.now()
  const r = await get(`${slowBase}/x`)
  assert.equal(r.status, 504)
  assert.ok(Date.now() - started >= 190)
})

test('forwarded headers are added and hop-by-hop headers dropped, both ways', async (t) => {
  const u = await upstream(t, 'u')
  const base = await proxy(t, [u.url])
  const sent = (
    await rawRequest(base, (socket) => {
      socket.write(
        'GET /echo HTTP/1.1\r\nHost: example.test\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.1.2.3\r\nX-Kept: ok\r\nConnection: X-Drop\r\nX-Drop: also\r\n\r\n',
      )
    })
  ).toString('latin1')
  const seen = JSON.parse(sent.slice(sent.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }
  assert.equal(seen.headers['x-kept'], 'ok')
  assert.equal(seen.headers['host'], 'example.test')
  assert.equal(seen.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1')
  assert.equal(seen.headers['x-forwarded-proto'], 'http')
  assert.equal(seen.headers['x-forwarded-host'], 'example.test')
  assert.equal(seen.headers['forwarded'], 'for=127.0.0.1;proto=http;host="example.test"')
  for (const hop of ['x-secret', 'keep-alive', 'te', 'x-drop'])
    assert.equal(seen.headers[hop], undefined, `${hop} was not forwarded (every Connection field counts)`)
  // An upstream that names its own hop-by-hop fields (Petrel's server writes Connection itself, so a raw one).
  const raw = net.createServer((socket) =>
    socket.once('data', () =>
      socket.end('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: X-Internal\r\nX-Internal: secret\r\nX-Public: yes\r\nContent-Length: 3\r\n\r\nhop'),
    ),
  )
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  const rawBase = await proxy(t, [`http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`])
  const back = await get(`${rawBase}/hop`)
  assert.equal(back.body, 'hop')
  assert.equal(back.headers.get('x-public'), 'yes')
  assert.equal(back.headers.get('x-internal'), null)
  assert.equal(back.headers.get('keep-alive'), null)
})

/** A raw upstream that records each request head as it arrives and answers 200 "ok". */
async function recordingUpstream(t: TestContext): Promise<{ url: string; heads: string[] }> {
  const heads: string[] = []
  const raw = net.createServer((socket) =>
    socket.on('data', (chunk: Buffer) => {
      heads.push(chunk.toString('latin1'))
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    }),
  )
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  return { url: `http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`, heads }
}

test("the upstream request starts with Host: the client's, or for an HTTP/1.0 client without one the upstream's host:port", async (t) => {
  const { url, heads } = await recordingUpstream(t)
  const port = Number(new URL(url).port)
  const base = await proxy(t, [url])
  const old = (await rawRequest(base, (socket) => socket.write('GET /old HTTP/1.0\r\nX-A: 1\r\n\r\n'))).toString('latin1')
  assert.match(old, /^HTTP\/1\.1 200 OK\r\n/)
  await rawRequest(base, (socket) => socket.write('GET /new HTTP/1.1\r\nX-A: 1\r\nHost: example.test\r\nConnection: close\r\n\r\n'))
  assert.equal(heads.length, 2)
  assert.ok(heads[0]!.startsWith(`GET /old HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-a: 1\r\n`), heads[0]!)
  assert.ok(!heads[0]!.includes('x-forwarded-host'), 'no client Host, no X-Forwarded-Host')
  assert.ok(heads[1]!.startsWith('GET /new HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\n'), heads[1]!)
  assert.ok(heads[1]!.includes('\r\nx-forwarded-host: example.test\r\n'))
})

/** The status line of each of the proxy's answers to `requests`, sent one per connection. */
async function statuses(base: string, requests: string[]): Promise<string[]> {
  const out: string[] = []
  for (const request of requests) {
    const answer = (await rawRequest(base, (socket) => socket.write(request))).toString('latin1')
    out.push(answer.slice(0, answer.indexOf('\r\n')))
  }
  return out
}

test('dot-segments cannot leave the prefix: the upstream gets the normalised path and the query as sent, or nothing', async (t) => {
  const u = await recordingUpstream(t)
  const base = await proxy(t, [u.url], {}, '/api/')
  const get = (target: string): string => `GET ${target} HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n`
  const answers = await statuses(base, [
    get('/api/../private/secret.txt'),
    get('/api/%2e%2e/private/secret.txt'),
    get('/api/%2E%2E/private/secret.txt'),
    get('/api/.%2e/private/secret.txt'),
    get('/api/..%2f..%2fprivate/secret.txt'),
    get('/api/..;/private/secret.txt'),
    get('/api/x/../y?q=/../a%20b'),
    get('/api//a%2Fb%20c/./d'),
    get('/%61pi/e'),
    // A fragment: nginx, Apache and WHATWG URL end the path at "#", then resolve the ".." — "/".
    get('/api/..#'),
    get('/api/v1/..#x'),
  ])
  // Outside the prefix, the demo site answers (404); ".." hidden behind %2f or ";", and any "#", is refused.
  assert.deepEqual(answers, [
    'HTTP/1.1 404 Not Found',
    'HTTP/1.1 404 Not Found',
    'HTTP/1.1 404 Not Found',
    'HTTP/1.1 404 Not Found',
    'HTTP/1.1 400 Bad Request',
    'HTTP/1.1 400 Bad Request',
    'HTTP/1.1 200 OK',
    'HTTP/1.1 200 OK',
    'HTTP/1.1 200 OK',
    'HTTP/1.1 400 Bad Request',
    'HTTP/1.1 400 Bad Request',
  ])
  assert.deepEqual(
    u.heads.map((h) => h.slice(0, h.indexOf('\r\n'))),
    ['GET /api/y?q=/../a%20b HTTP/1.1', 'GET /api/a%2Fb%20c/d HTTP/1.1', 'GET /api/e HTTP/1.1'],
  )
})

test("absolute-form through the proxy: origin-form upstream, and Host, X-Forwarded-Host and Forwarded all name the target's authority", async (t) => {
  const u = await recordingUpstream(t)
  const base = await proxy(t, [u.url], {}, '/api/')
  const answers = await statuses(base, [
    'GET http://evil.example/api/x?y=1 HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n',
    // The path of "http://h?/api/x" is "/", not under /api/: the demo site's index answers.
    'GET http://h?/api/x HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n',
    'GET /api/x HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n',
    'GET /api/x HTTP/1.1\r\nHost: evil.com/x?\r\nConnection: close\r\n\r\n',
  ])
  assert.deepEqual(answers, ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request', 'HTTP/1.1 400 Bad Request'])
  assert.equal(u.heads.length, 1, 'only the first request went upstream')
  const head = u.heads[0]!
  assert.ok(head.startsWith('GET /api/x?y=1 HTTP/1.1\r\nhost: evil.example\r\n'), head)
  assert.ok(!head.includes('front'), head)
  assert.ok(head.includes('\r\nx-forwarded-host: evil.example\r\n'), head)
  assert.ok(head.includes(';host="evil.example"\r\n'), head)
})

test('obs-text bytes in field values pass through unchanged, both ways', async (t) => {
  let seen: Buffer = Buffer.alloc(0)
  const raw = net.createServer((socket) =>
    socket.once('data', (chunk: Buffer) => {
      seen = chunk
      socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Back: caf'), Buffer.from([0xe9]), Buffer.from('\r\nContent-Length: 2\r\n\r\nok')]))
    }),
  )
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  const base = await proxy(t, [`http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`])
  const answer = await rawRequest(base, (socket) =>
    socket.write(
      Buffer.concat([Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\nX-Sent: na'), Buffer.from([0xef, 0x76]), Buffer.from('e\r\nConnection: close\r\n\r\n')]),
    ),
  )
  assert.ok(seen.includes(Buffer.concat([Buffer.from('x-sent: na'), Buffer.from([0xef, 0x76]), Buffer.from('e\r\n')])), "the upstream got the client's bytes")
  assert.ok(answer.includes(Buffer.concat([Buffer.from('X-Back: caf'), Buffer.from([0xe9]), Buffer.from('\r\n')])), "the client got the upstream's bytes")
})

test("response fields pass on as lines: odd spacing made plain, lines split across reads, repeats in order; Date and framing are the proxy's; a control character is a 502", async (t) => {
  const heads: Record<string, Buffer[]> = {
    '/odd': [
      Buffer.from('HTTP/1.1 200 OK\r\nX-Odd:value  \r\nSet-Cookie: a=1\r\nX-Tab:\tv\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nConnection: keep-alive\r\nSet-C'),
      Buffer.from('ookie: b=2\r\nX-Lon'),
      Buffer.from('g: two reads\r\nContent-Length: 2\r\n\r\nok'),
    ],
    '/ctl': [Buffer.from('HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\nok')],
    '/head': [Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n')],
  }
  const raw = net.createServer((socket) =>
    socket.once('data', async (chunk: Buffer) => {
      const path = chunk.toString('latin1').split(' ')[1]!
      for (const piece of heads[path]!) {
        socket.write(piece)
        await new Promise((r) => setTimeout(r, 20))
      }
      socket.end()
    }),
  )
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  const base = await proxy(t, [`http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`])
  const answer = (await rawRequest(base, (socket) => socket.write('GET /odd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toString('latin1')
  const head = answer.slice(0, answer.indexOf('\r\n\r\n'))
  const lines = head.split('\r\n')
  assert.equal(lines[0], 'HTTP/1.1 200 OK')
  assert.deepEqual(lines.slice(1, 6), ['X-Odd: value', 'Set-Cookie: a=1', 'X-Tab: v', 'Set-Cookie: b=2', 'X-Long: two reads'])
  assert.ok(!head.includes('2001'), "the upstream's Date is replaced by the proxy's own")
  assert.equal(lines.filter((l) => l.startsWith('Date: ')).length, 1)
  assert.ok(lines.includes('Content-Length: 2'))
  assert.ok(!lines.includes('Connection: keep-alive'))
  assert.ok(answer.endsWith('\r\n\r\nok'))
  const bad = (await rawRequest(base, (socket) => socket.write('GET /ctl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toString('latin1')
  assert.match(bad, /^HTTP\/1\.1 502 /)
  assert.ok(!bad.includes('X-Bad'))
  const head2 = (await rawRequest(base, (socket) => socket.write('HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toString('latin1')
  assert.match(head2, /^HTTP\/1\.1 200 OK\r\n/)
  assert.ok(head2.includes('\r\nContent-Length: 1234\r\n'), 'HEAD passes the declared length on')
  assert.ok(head2.endsWith('\r\n\r\n'), 'and no body')
})

test('keep-alive to the upstream: sequential requests share one connection', async (t) => {
  const u = await upstream(t, 'u')
  const base = await proxy(t, [u.url])
  for (let i = 0; i < 20; i++) assert.equal((await get(`${base}/x${i}`)).status, 200)
  assert.equal(u.connections, 1)
})

test('timeouts on the upstream connection: idle ones close after idleTimeoutMs; reads and body pieces keep an exchange alive past readTimeoutMs', async (t) => {
  const u = await upstream(t, 'u', (s) => {
    // Six pieces 100 ms apart: 500 ms in all, longer than the read timeout, never silent that long.
    s.get('/drip', async (_req, res) => {
      res.setHeader('Content-Type', 'text/plain')
      for (let i = 0; i < 6; i++) {
        res.write(String(i))
        await new Promise((r) => setTimeout(r, 100))
      }
      res.end()
    })
    s.post('/upload', async (req, res) => res.end(`got ${(await req.text()).length}`))
  })
  const base = await proxy(t, [u.url], { idleTimeoutMs: 150, readTimeoutMs: 300 })
  assert.equal((await get(`${base}/drip`)).body, '012345')
  // A body sent in pieces 100 ms apart, while the upstream says nothing until it has all of it.
  const answer = (
    await rawRequest(base, (socket) => {
      socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\n')
      let sent = 0
      const timer = setInterval(() => {
        socket.write('x')
        if (++sent === 6) clearInterval(timer)
      }, 100)
    })
  ).toString('latin1')
  assert.match(answer, /^HTTP\/1\.1 200 OK[\s\S]*got 6$/)
  assert.equal(u.connections, 1, 'both exchanges went over the one kept-alive connection')
  // Idle past idleTimeoutMs: the proxy closes it, and the next request opens another.
  await new Promise((r) => setTimeout(r, 400))
  assert.equal(u.server.connectionCounts().active, 0)
  assert.equal((await get(`${base}/x`)).status, 200)
  assert.equal(u.connections, 2)
})

test('a chunked upload to an upstream that reads slowly keeps its framing (every chunk keeps its CRLF)', async (t) => {
  let got = Buffer.alloc(0)
  const slow = net.createServer((socket) => {
    // Not read for 300 ms: the proxy's writes to it fill its buffers and report backpressure.
    socket.pause()
    setTimeout(() => socket.resume(), 300)
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c])
      if (got.includes('\r\n0\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
  })
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
  t.after(() => {
    slow.close()
  })
  const base = await proxy(t, [`http://127.0.0.1:${(slow.address() as net.AddressInfo).port}`], {}, '/', { maxBodyBytes: 64 * 1024 * 1024 })
  const piece = Buffer.alloc(40_000, 0x61)
  const answer = (
    await rawRequest(base, async (socket) => {
      socket.write('POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
      for (let i = 0; i < 200; i++) {
        if (!socket.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))) await once(socket, 'drain')
      }
      socket.write('0\r\n\r\n')
    })
  ).toString('latin1')
  assert.match(answer, /^HTTP\/1\.1 200 OK/)
  // Decode what the upstream got as chunked framing, strictly.
  const text = got.toString('latin1')
  let pos = text.indexOf('\r\n\r\n') + 4
  let total = 0
  for (;;) {
    const eol = text.indexOf('\r\n', pos)
    const sizeLine = text.slice(pos, eol)
    assert.match(sizeLine, /^[0-9a-f]+$/, `chunk-size line at byte ${pos}`)
    const size = parseInt(sizeLine, 16)
    if (size === 0) break
    assert.equal(text.slice(eol + 2 + size, eol + 4 + size), '\r\n', `CRLF after the chunk at byte ${pos}`)
    total += size
    pos = eol + 4 + size
  }
  assert.equal(total, 200 * piece.length)
})

test('timeouts of 0 mean none, as for socket.setTimeout(0); a timeout that is not a finite number >= 0 is refused', async (t) => {
  const u = await upstream(t, 'u', (s) =>
    s.get('/late', (_req, res) => {
      setTimeout(() => res.end('late'), 300)
    }),
  )
  const base = await proxy(t, [u.url], { readTimeoutMs: 0, idleTimeoutMs: 0, connectTimeoutMs: 0 })
  assert.equal((await get(`${base}/late`)).body, 'late')
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(u.server.connectionCounts().active, 1, 'the idle connection is kept')
  assert.equal((await get(`${base}/late`)).body, 'late')
  assert.equal(u.connections, 1)
  for (const bad of [Infinity, -1, Number.NaN]) {
    assert.throws(() => proxySettings({ readTimeoutMs: bad }), { name: 'InvalidOptionError', code: 'PETREL_ERR_INVALID_OPTION', message: /readTimeoutMs/ })
  }
})

test('request bodies stream to the upstream (chunked and by length), responses stream back', async (t) => {
  const u = await upstream(t, 'u', (s) =>
    s.post('/count', async (req, res) => {
      let bytes = 0
      for await (const chunk of req.stream()) bytes += (chunk as Buffer).length
      res.end(`${bytes} ${req.head.chunked ? 'chunked' : 'length'}`)
    }),
  )
  const base = await proxy(t, [u.url], {}, '/', { maxBodyBytes: 64 * 1024 * 1024 })
  const body = Buffer.alloc(10 * 1024 * 1024, 7)
  assert.equal((await get(`${base}/count`, { method: 'POST', body })).body, `${body.length} length`)
  const stream = new ReadableStream({
    start(controller) {
      for (let i = 0; i < 10; i++) controller.enqueue(new Uint8Array(100_000))
      controller.close()
    },
  })
  assert.equal((await get(`${base}/count`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)).body, '1000000 chunked')
})

test("a 100 MB response to a client that reads slowly: the proxy's memory stays bounded", async (t) => {
  const SIZE = 100 * 1024 * 1024
  const chunk = Buffer.alloc(256 * 1024, 1)
  const u = await upstream(t, 'big', (s) =>
    s.get('/big', async (_req, res) => {
      res.setHeader('Content-Length', SIZE)
      for (let sent = 0; sent < SIZE; sent += chunk.length) if (!res.write(chunk)) await res.drain()
      res.end()
    }),
  )
  const port = await freePort()
  // A ROOT of its own: the demo site would open its accounts database in the working directory.
  const child = spawn(
    process.execPath,
    ['bin/petrel.js', 'serve', tempDir(t), '--port', String(port), '--proxy', `/=${u.url}`, '--proxy-health-interval', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.after(async () => {
    child.kill('SIGTERM')
    if (child.exitCode === null) await once(child, 'exit')
  })
  await once(child.stdout, 'data')
  const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024
  const baseline = rss()
  let peak = baseline
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  let received = 0
  socket.on('data', (c: Buffer) => {
    received += c.length
    // Read a little, then stop for a while: about 25 MB/s.
    socket.pause()
    setTimeout(() => socket.resume(), 5)
  })
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50)
  await once(socket, 'end')
  clearInterval(sampler)
  assert.ok(received > SIZE, `received ${received}`)
  const growth = (peak - baseline) / 1048576
  assert.ok(growth < 24, `the proxy grew by ${growth.toFixed(1)} MB for a 100 MB response`)
})

describe('forward proxy (petrel proxy)', () => {
  async function forward(t: TestContext, allow: string[]): Promise<number> {
    const proxy = new ForwardProxy({ allow: allow.map(parseAllowRule) })
    const { port } = await proxy.server.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => proxy.close())
    return port
  }

  const curl = (args: string[]): Promise<{ code: number; out: string }> => {
    requireDebianPackage('curl')
    return new Promise((resolve) =>
      execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout) =>
        resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), out: stdout }),
      ),
    )
  }

  test('allow rules: exact host and port, subdomains, any port, bare host = 80 and 443', () => {
    const rules = ['example.com:443', '*.internal.test', '10.0.0.5:*'].map(parseAllowRule)
    assert.ok(allowed(rules, 'example.com', 443))
    assert.ok(!allowed(rules, 'example.com', 80))
    assert.ok(allowed(rules, 'api.internal.test', 80) && allowed(rules, 'internal.test', 443))
    assert.ok(!allowed(rules, 'evilinternal.test', 80))
    assert.ok(allowed(rules, '10.0.0.5', 22))
    assert.ok(!allowed(rules, 'example.org', 443))
    assert.throws(() => parseAllowRule('exa mple.com'), { name: 'InvalidOptionError', code: 'PETREL_ERR_INVALID_OPTION', message: /expected HOST\[:PORT\]/ })
  })

  test('curl -x: absolute-form requests are relayed to allowed destinations; others get 403', async (t) => {
    const u = await upstream(t, 'origin')
    const port = await forward(t, [`127.0.0.1:${u.port}`])
    const ok = await curl(['-x', `http://127.0.0.1:${port}`, `${u.url}/some/path?q=1`])
    assert.equal(ok.code, 0)
    const seen = JSON.parse(ok.out) as { url: string; headers: Record<string, string> }
    assert.equal(seen.url, '/some/path?q=1', 'the origin gets origin-form')
    const spoofed = JSON.parse((await curl(['-x', `http://127.0.0.1:${port}`, '-H', 'Host: internal-admin', `${u.url}/`])).out) as {
      headers: Record<string, string>
    }
    assert.equal(spoofed.headers['host'], `127.0.0.1:${u.port}`, "the URL's host, not the client's Host field")
    assert.equal(seen.headers['proxy-connection'], undefined)
    const other = await freePort()
    const denied = await curl(['-x', `http://127.0.0.1:${port}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${other}/`])
    assert.equal(denied.out, '403')
  })

  test('curl -p -x: a CONNECT tunnel carries the bytes both ways; a CONNECT elsewhere gets 403', async (t) => {
    const u = await upstream(t, 'tunnelled')
    const port = await forward(t, [`127.0.0.1:${u.port}`])
    const through = await curl(['-p', '-x', `http://127.0.0.1:${port}`, `${u.url}/via-tunnel`])
    assert.equal(through.code, 0)
    assert.equal((JSON.parse(through.out) as { url: string }).url, '/via-tunnel', "the origin saw the client's own request, not a proxied one")
    const socket = net.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    const [answer] = await once(socket, 'data')
    assert.match(String(answer), /^HTTP\/1\.1 403 Forbidden\r\n/)
    socket.destroy()
  })
})

test('Upgrade (WebSocket): the 101 goes back and the two connections become a tunnel, bytes both ways', async (t) => {
  // An upstream that switches protocols and then answers every byte in upper case.
  const upstreamServer = net.createServer((socket) => {
    let head = ''
    const onHead = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onHead)
      const request = head.slice(0, end)
      assert.match(request, /^upgrade: websocket$/im)
      assert.match(request, /^connection: upgrade$/im)
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      const rest = head.slice(end + 4)
      if (rest !== '') socket.write(rest.toUpperCase())
      socket.on('data', (c: Buffer) => socket.write(c.toString('latin1').toUpperCase()))
    }
    socket.on('data', onHead)
  })
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r))
  t.after(() => {
    upstreamServer.close()
  })
  const base = await proxy(t, [`http://127.0.0.1:${(upstreamServer.address() as net.AddressInfo).port}`])
  const client = net.connect(Number(new URL(base).port), '127.0.0.1')
  t.after(() => client.destroy())
  await once(client, 'connect')
  let received = ''
  client.on('data', (c: Buffer) => (received += c.toString('latin1')))
  // The first frame rides in the same packet as the request: it must not be lost or parsed as HTTP.
  client.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello ')
  const until = async (text: string): Promise<void> => {
    const deadline = Date.now() + 3000
    while (!received.includes(text)) {
      assert.ok(Date.now() < deadline, `waiting for ${JSON.stringify(text)} in ${JSON.stringify(received)}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  await until('HELLO ')
  assert.match(received, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  assert.match(received, /\r\nUpgrade: websocket\r\n/)
  client.write('over the tunnel')
  await until('OVER THE TUNNEL')
})

test("review fixes: no smuggling through Connection-named framing; an upstream's bad field is a 502, not a crash", async (t) => {
  const u = await upstream(t, 'u')
  const base = await proxy(t, [u.url])
  const port = Number(new URL(base).port)
  const inner = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n'
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (c) => (text += c))
    socket.on('end', () => resolve(text))
    socket.write(`POST /echo HTTP/1.1\r\nHost: x\r\nConnection: content-length, close\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`)
  })
  assert.match(answer, /^HTTP\/1\.1 200 OK/)
  assert.equal(u.requests, 1, 'one request reached the upstream: the body stayed a body')
  assert.doesNotMatch(answer, /"url":"\/admin"/)

  const bad = net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok')))
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r))
  t.after(() => {
    bad.close()
  })
  const badBase = await proxy(t, [`http://127.0.0.1:${(bad.address() as net.AddressInfo).port}`])
  assert.equal((await get(`${badBase}/x`)).status, 502)
  assert.equal((await get(`${badBase}/x`)).status, 502, 'and the proxy is still there')
})

/** A raw upstream on 127.0.0.1: `answer` gets each connection's first read; `closed` counts the connections that ended. */
async function rawUpstream(
  t: TestContext,
  answer: (socket: net.Socket, request: string) => void,
): Promise<{ url: string; connections: number; closed: number }> {
  const stats = { url: '', connections: 0, closed: 0 }
  const server = net.createServer((socket) => {
    stats.connections++
    socket.on('close', () => stats.closed++)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => answer(socket, chunk.toString('latin1')))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => {
    server.close()
  })
  stats.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  return stats
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000
  while (!condition()) {
    assert.ok(Date.now() < deadline, `waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A client that asked the proxy at `port` to upgrade to `protocols`, once the answer's head arrived; `state` fills in as bytes and events come. */
async function upgradeClient(
  t: TestContext,
  port: number,
  protocols = 'websocket',
): Promise<{ socket: net.Socket; state: { received: string; ended: boolean; closed: boolean } }> {
  const socket = net.connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  const state = { received: '', ended: false, closed: false }
  socket.on('data', (c: Buffer) => (state.received += c.toString('latin1')))
  socket.on('end', () => (state.ended = true))
  socket.on('close', () => (state.closed = true))
  socket.write(`GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${protocols}\r\n\r\n`)
  await until("the answer's head", () => state.received.includes('\r\n\r\n'))
  return { socket, state }
}

describe('an upstream response that cannot be framed safely is a 502, and its connection is closed, not pooled', () => {
  test('bare LF line ends', async (t) => {
    // Keeps its side open: only the proxy can close the connection.
    const raw = await rawUpstream(t, (socket) => socket.write('HTTP/1.1 200 OK\nContent-Length: 2\n\nok'))
    const base = await proxy(t, [raw.url])
    const first = await get(`${base}/a`)
    assert.equal(first.status, 502)
    assert.match(first.body, /bare LF/)
    await until('the proxy to close the upstream connection', () => raw.closed === 1)
    assert.equal((await get(`${base}/b`)).status, 502)
    assert.equal(raw.connections, 2, 'the second request came on a new connection')
  })

  test('a 5,000-field head (under the byte limit, over the count), and a head over the byte limit; both knobs raise them', async (t) => {
    const many = `HTTP/1.1 200 OK\r\n${'X-F: v\r\n'.repeat(5000)}Content-Length: 2\r\n\r\nok`
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\nok`
    const raw = await rawUpstream(t, (socket, request) => socket.write(request.startsWith('GET /many') ? many : big))
    const base = await proxy(t, [raw.url])
    const tooMany = await get(`${base}/many`)
    assert.equal(tooMany.status, 502)
    assert.match(tooMany.body, /more header fields than the proxy allows/)
    await until('the proxy to close the upstream connection', () => raw.closed === 1)
    const tooBig = await get(`${base}/big`)
    assert.equal(tooBig.status, 502)
    assert.match(tooBig.body, /response head \(or trailer section\) is larger than the proxy allows/)
    await until('the proxy to close the upstream connection', () => raw.closed === 2)
    const roomy = await proxy(t, [raw.url], { maxResponseHeaderCount: 5001, maxResponseHeaderBytes: 64 * 1024 })
    for (const path of ['/many', '/big']) {
      // A raw client: fetch itself refuses a head of 5,000 fields.
      const answer = (await rawRequest(roomy, (socket) => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))).toString('latin1')
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/, path)
      assert.ok(answer.endsWith('\r\n\r\nok'), path)
    }
    for (const bad of [0, 1.5, -1])
      assert.throws(() => proxySettings({ maxResponseHeaderCount: bad }), {
        name: 'InvalidOptionError',
        code: 'PETREL_ERR_INVALID_OPTION',
        message: /maxResponseHeaderCount/,
      })
  })
})

describe('Upgrade: only the allowed protocols are passed on (websocket by default)', () => {
  /** An upstream that switches to `switchTo` (or to the first protocol offered) when asked, else answers 200 with the request head it got. */
  async function switcher(t: TestContext, switchTo?: string): Promise<{ url: string; heads: string[] }> {
    const heads: string[] = []
    const raw = await rawUpstream(t, (socket, request) => {
      heads.push(request)
      const offered = /^upgrade: (.*)\r$/im.exec(request)
      if (offered === null) {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(request)}\r\n\r\n${request}`)
        return
      }
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${switchTo ?? offered[1]!.split(',')[0]!.trim()}\r\nConnection: Upgrade\r\n\r\n`)
      socket.removeAllListeners('data')
      socket.on('data', (c: Buffer) => socket.write(c.toString('latin1').toUpperCase()))
    })
    return { url: raw.url, heads }
  }
  const h2c = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n'

  test('an h2c upgrade goes up as a plain request (no Upgrade, Connection or HTTP2-Settings) and is answered as one', async (t) => {
    const up = await switcher(t)
    const base = await proxy(t, [up.url])
    const answer = (await rawRequest(base, (socket) => socket.write(h2c))).toString('latin1')
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
    assert.equal(up.heads.length, 1)
    assert.doesNotMatch(up.heads[0]!, /^(upgrade|http2-settings):/im)
    assert.doesNotMatch(up.heads[0]!, /^connection:/im)
  })

  test("of several offered, only the allowed ones go up; a protocol list configured as ['websocket', 'h2c'] lets h2c through", async (t) => {
    const up = await switcher(t)
    const base = await proxy(t, [up.url])
    const { socket, state } = await upgradeClient(t, Number(new URL(base).port), 'h2c, WebSocket/13')
    assert.match(state.received, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
    assert.match(up.heads[0]!, /^upgrade: WebSocket\/13\r$/im)
    socket.write('tunnelled')
    await until('bytes through the tunnel', () => state.received.endsWith('TUNNELLED'))

    const open = await proxy(t, [up.url], { upgradeProtocols: ['websocket', 'H2C'] })
    const switched = (
      await rawRequest(open, (socket) => {
        socket.write(h2c)
        socket.once('data', () => socket.end())
      })
    ).toString('latin1')
    assert.match(switched, /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: h2c\r\n/)
    assert.throws(() => proxySettings({ upgradeProtocols: ['websocket/13'] }), {
      name: 'InvalidOptionError',
      code: 'PETREL_ERR_INVALID_OPTION',
      message: /upgradeProtocols/,
    })
  })

  test('an upstream that switches to a protocol the request did not offer is a 502', async (t) => {
    const up = await switcher(t, 'h2c')
    const base = await proxy(t, [up.url], { upgradeProtocols: ['websocket', 'h2c'] })
    const answer = (
      await rawRequest(base, (socket) => socket.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n'))
    ).toString('latin1')
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/)
  })
})

test('a tunnel passes a half-close on: the client ends its side, the upstream sees the end, answers and ends too', async (t) => {
  const raw = await rawUpstream(t, (socket, request) => {
    if (!request.startsWith('GET ')) return
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.removeAllListeners('data')
    let got = ''
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')))
    // The upstream answers only once the client's side has ended, as a request-then-EOF protocol would.
    socket.on('end', () => socket.end(`${got.toUpperCase()} AND THE END`))
  })
  const base = await proxy(t, [raw.url], { readTimeoutMs: 60_000 })
  const { socket, state } = await upgradeClient(t, Number(new URL(base).port))
  socket.end('last words')
  await until("the upstream's answer and its end", () => state.ended)
  assert.ok(state.received.endsWith('\r\n\r\nLAST WORDS AND THE END'), JSON.stringify(state.received))
  await until('both tunnel connections to close', () => raw.closed === 1)
})

test("closing the reverse proxy closes its open tunnels (they left the server's HTTP, so the server's close does not reach them)", async (t) => {
  const raw = await rawUpstream(t, (socket, request) => {
    if (request.startsWith('GET ')) socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  })
  const serving = await startServe({
    root: null,
    host: '127.0.0.1',
    port: 0,
    proxy: { routes: [{ prefix: '/', upstreams: [raw.url] }], options: { healthIntervalMs: 0 } },
  })
  t.after(() => serving.server.close())
  const { state } = await upgradeClient(t, serving.address.port)
  serving.proxy!.close()
  await until("the client's tunnel to close", () => state.closed)
  await until("the upstream's tunnel to close", () => raw.closed === 1)
})

/**
 * `petrel serve ROOT ARGS` in a child process on a free port, ROOT an empty temp dir (not the demo
 * site, which would open a database in the working directory): resolves once it serves, with its
 * port and what it wrote to stderr so far.
 */
async function petrelServe(t: TestContext, args: string[]): Promise<{ port: number; stderr: () => string }> {
  const child = spawn(process.execPath, ['bin/petrel.js', 'serve', tempDir(t), '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(async () => {
    child.kill('SIGKILL')
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
  })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  let stdout = ''
  for await (const chunk of child.stdout) {
    stdout += (chunk as Buffer).toString('utf8')
    const serving = /serving .* on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)
    if (serving !== null) return { port: Number(serving[1]), stderr: () => stderr }
  }
  throw new Error(`petrel serve exited without serving: ${stderr}`)
}

/** A temp dir removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-proxy-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

describe("request header names with an underscore (nginx's underscores_in_headers)", () => {
  const request = 'GET /h HTTP/1.1\r\nHost: x\r\nX_Real-IP: 6.6.6.6\r\nX-Real-IP: 1.2.3.4\r\nmy_field: 1\r\nX-Fine: 2\r\nConnection: close\r\n\r\n'

  test('are dropped by default, so an upstream that maps names to variables cannot mistake X_Real-IP for X-Real-IP', async (t) => {
    const u = await upstream(t, 'u')
    const seen = (await rawRequest(await proxy(t, [u.url]), (socket) => socket.write(request))).toString('latin1')
    const headers = (JSON.parse(seen.slice(seen.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }).headers
    assert.equal(headers['x-real-ip'], '1.2.3.4')
    assert.equal(headers['x-fine'], '2')
    assert.equal(headers['x_real-ip'], undefined)
    assert.equal(headers['my_field'], undefined)
    const passed = (await rawRequest(await proxy(t, [u.url], { underscoresInHeaders: true }), (socket) => socket.write(request))).toString('latin1')
    const all = (JSON.parse(passed.slice(passed.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }).headers
    assert.equal(all['x_real-ip'], '6.6.6.6')
    assert.equal(all['my_field'], '1')
  })

  test('are passed with --proxy-underscores-in-headers, given as a flag or as a --config key', async (t) => {
    const u = await upstream(t, 'u')
    const config = path.join(tempDir(t), 'petrel.json')
    writeFileSync(config, JSON.stringify({ proxy: [`/=${u.url}`], 'proxy-underscores-in-headers': true }))
    for (const args of [
      ['--proxy', `/=${u.url}`, '--proxy-underscores-in-headers'],
      ['--config', config],
    ]) {
      const { port } = await petrelServe(t, args)
      const seen = (await rawRequest(`http://127.0.0.1:${port}`, (socket) => socket.write(request))).toString('latin1')
      assert.match(seen, /"x_real-ip":"6\.6\.6\.6"/, args.join(' '))
    }
  })
})

describe('health checks and retries (which failures are retried, for which methods)', () => {
  /** An upstream that answers every request 200 with its name, and 404 to /health (it has no such route). */
  async function noHealthRoute(t: TestContext, name: string): Promise<string> {
    const raw = await rawUpstream(t, (socket, request) => {
      const status = request.startsWith('GET /health ') ? '404 Not Found' : '200 OK'
      socket.write(`HTTP/1.1 ${status}\r\nX-Upstream: ${name}\r\nContent-Length: 0\r\n\r\n`)
    })
    return raw.url
  }

  test('no active checks without a health path: an upstream without /health keeps its share; with the path it is taken out', async (t) => {
    const a = await upstream(t, 'a')
    const b = await noHealthRoute(t, 'b')
    const base = await proxy(t, [a.url, b], { healthIntervalMs: 50 })
    await new Promise((r) => setTimeout(r, 300))
    const seen: string[] = []
    for (let i = 0; i < 6; i++) seen.push((await get(`${base}/x`)).headers.get('x-upstream')!)
    assert.deepEqual(seen.sort(), ['a', 'a', 'a', 'b', 'b', 'b'])
    const checked = await proxy(t, [a.url, b], { healthPath: '/health', healthIntervalMs: 50 })
    await new Promise((r) => setTimeout(r, 300))
    for (let i = 0; i < 4; i++) assert.equal((await get(`${checked}/x`)).headers.get('x-upstream'), 'a', 'b failed its check')
    assert.throws(() => proxySettings({ healthPath: 'health' }), { name: 'InvalidOptionError', code: 'PETREL_ERR_INVALID_OPTION', message: /healthPath/ })
  })

  test('a POST (with a body) to an upstream that refuses connections goes to the next one: nothing of it was sent', async (t) => {
    const refused = `http://127.0.0.1:${await freePort()}`
    const good = await upstream(t, 'good', (s) => s.post('/up', async (req, res) => res.end(`got ${(await req.text()).length}`)))
    const base = await proxy(t, [refused, good.url], { failTimeoutMs: 0 })
    const r = await get(`${base}/up`, { method: 'POST', body: 'x'.repeat(5000) })
    assert.equal(r.status, 200)
    assert.equal(r.body, 'got 5000')
  })

  test('a POST whose connection could not be made within the connect timeout goes to the next one too', async (t) => {
    // A listener whose accept queue is full: the kernel drops the proxy's SYN and the connect hangs.
    requireDebianPackage('python3')
    const blackhole = spawn(
      'python3',
      [
        '-c',
        [
          'import socket, sys, time',
          's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
          'fill = [socket.socket() for i in range(3)]',
          'for c in fill:\n  c.setblocking(False)\n  try: c.connect(s.getsockname())\n  except BlockingIOError: pass',
          'time.sleep(0.2); print(s.getsockname()[1], flush=True); sys.stdin.read()',
        ].join('\n'),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    )
    t.after(() => blackhole.stdin.end())
    const [portLine] = await once(blackhole.stdout, 'data')
    const good = await upstream(t, 'good', (s) => s.post('/up', async (req, res) => res.end(`got ${(await req.text()).length}`)))
    // The proxy on a server of the test's own, to read its log lines.
    const { base, lines } = await proxyWithLog(t, [`http://127.0.0.1:${Number(String(portLine).trim())}`, good.url], {
      connectTimeoutMs: 200,
      failTimeoutMs: 0,
      healthIntervalMs: 0,
    })
    const r = await get(`${base}/up`, { method: 'POST', body: 'abc' })
    assert.equal(r.status, 200)
    assert.equal(r.body, 'got 3')
    assert.equal(lines.length, 1)
    assert.match(lines[0]!, /POST \/up: .*no connection to .* within 200 ms; trying the next upstream$/)
  })

  test('a kept-alive connection that fails after the request was written: a GET is sent again on a new connection, a POST is a 502 and reached the upstream once', async (t) => {
    // Answers the first request on each connection, then reads the next one and closes without a word,
    // as an upstream that timed the idle connection out while the request was on its way would.
    const seen: string[] = []
    const raw = await rawUpstream(t, (socket, request) => {
      seen.push(request.slice(0, request.indexOf('\r\n')))
      const n = ((socket as net.Socket & { served?: number }).served ??= 0)
      ;(socket as net.Socket & { served?: number }).served = n + 1
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst')
      else socket.destroy()
    })
    const base = await proxy(t, [raw.url])
    assert.equal((await get(`${base}/warm`)).body, 'first')
    const retried = await get(`${base}/again`)
    assert.equal(retried.status, 200, 'the GET went again, on a new connection')
    assert.equal(raw.connections, 2)
    assert.equal((await get(`${base}/warm2`)).body, 'first', 'kept alive again')
    seen.length = 0
    const post = await get(`${base}/post`, { method: 'POST', body: 'once' })
    assert.equal(post.status, 502)
    assert.deepEqual(seen, ['POST /post HTTP/1.1'], 'not sent twice')
  })
})

describe('a failed exchange logs one line, not a stack trace', () => {
  test('on stderr, and in the --error-log file: one line per failed attempt (a GET tried on two refusing upstreams: two), none with "    at "', async (t) => {
    const refused = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`]
    const resetter = await rawUpstream(t, (socket) => socket.resetAndDestroy())
    const errorLog = path.join(tempDir(t), 'error.log')
    for (const logArgs of [[], ['--error-log', errorLog, '--log-level', 'warn']]) {
      const petrel = await petrelServe(t, ['--proxy', `/a/=${refused.join(',')}`, '--proxy', `/b/=${resetter.url}`, '--proxy-fail-timeout', '0', ...logArgs])
      const base = `http://127.0.0.1:${petrel.port}`
      assert.equal((await get(`${base}/a/x`)).status, 502)
      assert.equal((await get(`${base}/b/y`, { method: 'POST', body: 'z' })).status, 502)
      const logged = (): string => (logArgs.length === 0 ? petrel.stderr() : readFileSync(errorLog, 'utf8'))
      await until(
        'three lines',
        () =>
          logged()
            .split('\n')
            .filter((l) => l !== '').length >= 3,
      )
      await new Promise((r) => setTimeout(r, 100))
      const lines = logged()
        .split('\n')
        .filter((l) => l !== '')
      assert.equal(lines.length, 3, lines.join('\n'))
      assert.match(lines[0]!, /GET \/a\/x: .*ECONNREFUSED; trying the next upstream$/)
      assert.match(lines[1]!, /GET \/a\/x: \[PETREL_ERR_UPSTREAM_FAILED\] .*ECONNREFUSED$/)
      assert.match(lines[2]!, /POST \/b\/y: \[PETREL_ERR_UPSTREAM_FAILED\] .*ECONNRESET$/)
      assert.ok(!logged().includes('    at '), 'no stack trace')
    }
  })
})

test('proxy flags that cannot work are refused at start, naming the flag and the fix (exit 2)', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string[], RegExp]> = [
    [['--proxy-health-interval', '5s'], /--proxy-health-interval needs --proxy-health-path PATH/],
    [['--proxy-health-timeout', '1s'], /--proxy-health-timeout needs --proxy-health-path PATH/],
    [['--proxy-health-path', 'health'], /bad value for --proxy-health-path: "health"; a path starts with \//],
    [['--proxy-upgrade-protocols', 'websocket/13'], /bad value for --proxy-upgrade-protocols: "websocket\/13"; expected protocol names/],
    [['--proxy-max-response-header-count', '0'], /--proxy-max-response-header-count/],
  ]
  const argv = (args: string[]): string[] => [dir, '--port', '0', '--proxy', '/=http://127.0.0.1:9', ...args]
  // The command itself, once: the exit status and the one line a user sees.
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/petrel.js', 'serve', ...argv(cases[0]![0])], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.on('exit', (code) => resolve({ code, stderr }))
  })
  assert.equal(code, 2, stderr)
  assert.match(stderr, cases[0]![1])
  // Every case in-process, before anything starts: the usage error the command line prints.
  for (const [args, message] of cases) await assert.rejects(serveCommand(argv(args)), { name: 'UsageError', message }, args.join(' '))
  // A prefix no normalised request path can start with: refused naming the flag, not a crash at start.
  for (const prefix of ['/api/../x/', '/a//b/', '/%61pi/', '/secret!/', '/caf%C3%A9/']) {
    await assert.rejects(
      serveCommand([dir, '--port', '0', '--proxy', `${prefix}=http://127.0.0.1:9`]),
      { name: 'UsageError', message: /^bad value for --proxy: ".*": a prefix is a normalised path/ },
      prefix,
    )
  }
  assert.equal(
    (await petrelServe(t, ['--proxy', '/=http://127.0.0.1:9', '--proxy-health-interval', '0'])).port > 0,
    true,
    'an interval of 0 says "no checks" and is accepted alone',
  )
})

test('a proxied request the server itself refuses mid-body (a malformed chunk) gets its 400 and a clean close, not a reset', async (t) => {
  const u = await upstream(t, 'a', (s) => {
    s.post('/upload', async (req, res) => res.end(`got ${(await req.body()).length}`))
  })
  const base = await proxy(t, [u.url])
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1')
  const chunks: Buffer[] = []
  let error: NodeJS.ErrnoException | null = null
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err))
  await once(socket, 'connect')
  // A valid head, one good chunk, then a chunk size that is not hex — and more bytes behind it,
  // which the server will not read (so closing at once would reset the connection).
  socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n')
  await new Promise((r) => setTimeout(r, 100))
  socket.write(Buffer.concat([Buffer.from('zz\r\n'), Buffer.alloc(256 * 1024, 0x61)]))
  await once(socket, 'close')
  const text = Buffer.concat(chunks).toString('latin1')
  assert.equal(error, null, `the client saw ${(error as NodeJS.ErrnoException | null)?.code}`)
  assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/)
})
