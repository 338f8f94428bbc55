// The reverse proxy: balancing, health (passive and active), retries only for idempotent requests,
// 502 and 504, forwarded and hop-by-hop headers both ways, streamed bodies both ways, connection
// reuse, and bounded memory under a 100 MB response read slowly.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { TestContext } from 'node:test'
import { createServer, type HttpServer } from '../src/index.ts'
import { startServe, type ServeOptions } from '../src/apps/serve/serve.ts'
import { proxySettings, type ProxyOptions } from '../src/apps/proxy/reverse.ts'
import { allowed, ForwardProxy, parseAllowRule } from '../src/apps/proxy/forward.ts'
import { freePort } from './helpers/tcp.ts'

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
  const serveOptions: ServeOptions = { root: null, host: '127.0.0.1', port: 0, limits, proxy: { routes: [{ prefix, upstreams }], options: { healthIntervalMs: 0, ...options } } }
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

  const slow = await upstream(t, 'slow', (s) => s.get('/work', async (_req, res) => {
    await new Promise((r) => setTimeout(r, 300))
    res.setHeader('X-Upstream', 'slow')
    res.end('slow')
  }))
  const fast = await upstream(t, 'fast', (s) => s.get('/work', (_req, res) => {
    res.setHeader('X-Upstream', 'fast')
    res.end('fast')
  }))
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
  const base = await proxy(t, [a.url, b.url], { healthIntervalMs: 100, failTimeoutMs: 60_000 })
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
  const sent = (await rawRequest(base, (socket) => {
  socket.write('GET /echo HTTP/1.1\r\nHost: example.test\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.1.2.3\r\nX-Kept: ok\r\nConnection: X-Drop\r\nX-Drop: also\r\n\r\n')
  })).toString('latin1')
  const seen = JSON.parse(sent.slice(sent.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }
  assert.equal(seen.headers['x-kept'], 'ok')
  assert.equal(seen.headers['host'], 'example.test')
  assert.equal(seen.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1')
  assert.equal(seen.headers['x-forwarded-proto'], 'http')
  assert.equal(seen.headers['x-forwarded-host'], 'example.test')
  assert.equal(seen.headers['forwarded'], 'for=127.0.0.1;proto=http;host="example.test"')
  for (const hop of ['x-secret', 'keep-alive', 'te', 'x-drop']) assert.equal(seen.headers[hop], undefined, `${hop} was not forwarded (every Connection field counts)`)
  // An upstream that names its own hop-by-hop fields (Petrel's server writes Connection itself, so a raw one).
  const raw = net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: X-Internal\r\nX-Internal: secret\r\nX-Public: yes\r\nContent-Length: 3\r\n\r\nhop')))
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
  const raw = net.createServer((socket) => socket.on('data', (chunk: Buffer) => {
    heads.push(chunk.toString('latin1'))
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  }))
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  return { url: `http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`, heads }
}

test('the upstream request starts with Host: the client\'s, or for an HTTP/1.0 client without one the upstream\'s host:port', async (t) => {
  const { url, heads } = await recordingUpstream(t)
  const port = Number(new URL(url).port)
  const base = await proxy(t, [url])
  const old = (await rawRequest(base, (socket) => socket.write('GET /old HTTP/1.0\r\nX-A: 1\r\n\r\n'))).toString('latin1')
  assert.match(old, /^HTTP\/1\.1 200 OK\r\n/)
  await rawRequest(base, (socket) => socket.write('GET /new HTTP/1.1\r\nX-A: 1\r\nHost: example.test\r\nConnection: close\r\n\r\n'))
  assert.equal(heads.length, 2)
  assert.ok(heads[0]!.startsWith(`GET /old HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-a: 1\r\n`), heads[0])
  assert.ok(!heads[0]!.includes('x-forwarded-host'), 'no client Host, no X-Forwarded-Host')
  assert.ok(heads[1]!.startsWith('GET /new HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\n'), heads[1])
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
  ])
  // Outside the prefix, the demo site answers (404); ".." hidden behind %2f or ";" is refused.
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
  ])
  assert.deepEqual(u.heads.map((h) => h.slice(0, h.indexOf('\r\n'))), [
    'GET /api/y?q=/../a%20b HTTP/1.1',
    'GET /api/a%2Fb%20c/d HTTP/1.1',
    'GET /api/e HTTP/1.1',
  ])
})

test('absolute-form through the proxy: origin-form upstream, and Host, X-Forwarded-Host and Forwarded all name the target\'s authority', async (t) => {
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
  const raw = net.createServer((socket) => socket.once('data', (chunk: Buffer) => {
    seen = chunk
    socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Back: caf'), Buffer.from([0xe9]), Buffer.from('\r\nContent-Length: 2\r\n\r\nok')]))
  }))
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
  t.after(() => {
    raw.close()
  })
  const base = await proxy(t, [`http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`])
  const answer = await rawRequest(base, (socket) => socket.write(Buffer.concat([Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\nX-Sent: na'), Buffer.from([0xef, 0x76]), Buffer.from('e\r\nConnection: close\r\n\r\n')])))
  assert.ok(seen.includes(Buffer.concat([Buffer.from('x-sent: na'), Buffer.from([0xef, 0x76]), Buffer.from('e\r\n')])), 'the upstream got the client\'s bytes')
  assert.ok(answer.includes(Buffer.concat([Buffer.from('X-Back: caf'), Buffer.from([0xe9]), Buffer.from('\r\n')])), 'the client got the upstream\'s bytes')
})

test('response fields pass on as lines: odd spacing made plain, lines split across reads, repeats in order; Date and framing are the proxy\'s; a control character is a 502', async (t) => {
  const heads: Record<string, Buffer[]> = {
    '/odd': [
      Buffer.from('HTTP/1.1 200 OK\r\nX-Odd:value  \r\nSet-Cookie: a=1\r\nX-Tab:\tv\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nConnection: keep-alive\r\nSet-C'),
      Buffer.from('ookie: b=2\r\nX-Lon'),
      Buffer.from('g: two reads\r\nContent-Length: 2\r\n\r\nok'),
    ],
    '/ctl': [Buffer.from('HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\nok')],
    '/head': [Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n')],
  }
  const raw = net.createServer((socket) => socket.once('data', async (chunk: Buffer) => {
    const path = chunk.toString('latin1').split(' ')[1]!
    for (const piece of heads[path]!) {
      socket.write(piece)
      await new Promise((r) => setTimeout(r, 20))
    }
    socket.end()
  }))
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
  assert.ok(!head.includes('2001'), 'the upstream\'s Date is replaced by the proxy\'s own')
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
  const answer = (await rawRequest(base, (socket) => {
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\n')
  let sent = 0
  const timer = setInterval(() => {
    socket.write('x')
    if (++sent === 6) clearInterval(timer)
  }, 100)
  })).toString('latin1')
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
  const answer = (await rawRequest(base, async (socket) => {
    socket.write('POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
    for (let i = 0; i < 200; i++) {
      if (!socket.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))) await once(socket, 'drain')
    }
    socket.write('0\r\n\r\n')
  })).toString('latin1')
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
  const u = await upstream(t, 'u', (s) => s.get('/late', (_req, res) => {
    setTimeout(() => res.end('late'), 300)
  }))
  const base = await proxy(t, [u.url], { readTimeoutMs: 0, idleTimeoutMs: 0, connectTimeoutMs: 0 })
  assert.equal((await get(`${base}/late`)).body, 'late')
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(u.server.connectionCounts().active, 1, 'the idle connection is kept')
  assert.equal((await get(`${base}/late`)).body, 'late')
  assert.equal(u.connections, 1)
  for (const bad of [Infinity, -1, Number.NaN]) {
    assert.throws(() => proxySettings({ readTimeoutMs: bad }), { name: 'RangeError', message: /readTimeoutMs/ })
  }
})

test('request bodies stream to the upstream (chunked and by length), responses stream back', async (t) => {
  const u = await upstream(t, 'u', (s) => s.post('/count', async (req, res) => {
    let bytes = 0
    for await (const chunk of req.stream()) bytes += (chunk as Buffer).length
    res.end(`${bytes} ${req.head.chunked ? 'chunked' : 'length'}`)
  }))
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

test('a 100 MB response to a client that reads slowly: the proxy\'s memory stays bounded', async (t) => {
  const SIZE = 100 * 1024 * 1024
  const chunk = Buffer.alloc(256 * 1024, 1)
  const u = await upstream(t, 'big', (s) => s.get('/big', async (_req, res) => {
    res.setHeader('Content-Length', SIZE)
    for (let sent = 0; sent < SIZE; sent += chunk.length) if (!res.write(chunk)) await res.drain()
    res.end()
  }))
  const port = await freePort()
  const child = spawn(process.execPath, ['bin/petrel.js', 'serve', '--port', String(port), '--proxy', `/=${u.url}`, '--proxy-health-interval', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
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

  const curl = (args: string[]): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), out: stdout })))

  test('allow rules: exact host and port, subdomains, any port, bare host = 80 and 443', () => {
    const rules = ['example.com:443', '*.internal.test', '10.0.0.5:*'].map(parseAllowRule)
    assert.ok(allowed(rules, 'example.com', 443))
    assert.ok(!allowed(rules, 'example.com', 80))
    assert.ok(allowed(rules, 'api.internal.test', 80) && allowed(rules, 'internal.test', 443))
    assert.ok(!allowed(rules, 'evilinternal.test', 80))
    assert.ok(allowed(rules, '10.0.0.5', 22))
    assert.ok(!allowed(rules, 'example.org', 443))
    assert.throws(() => parseAllowRule('exa mple.com'), /expected HOST\[:PORT\]/)
  })

  test('curl -x: absolute-form requests are relayed to allowed destinations; others get 403', async (t) => {
    const u = await upstream(t, 'origin')
    const port = await forward(t, [`127.0.0.1:${u.port}`])
    const ok = await curl(['-x', `http://127.0.0.1:${port}`, `${u.url}/some/path?q=1`])
    assert.equal(ok.code, 0)
    const seen = JSON.parse(ok.out) as { url: string; headers: Record<string, string> }
    assert.equal(seen.url, '/some/path?q=1', 'the origin gets origin-form')
    const spoofed = JSON.parse((await curl(['-x', `http://127.0.0.1:${port}`, '-H', 'Host: internal-admin', `${u.url}/`])).out) as { headers: Record<string, string> }
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
    assert.equal((JSON.parse(through.out) as { url: string }).url, '/via-tunnel', 'the origin saw the client\'s own request, not a proxied one')
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

test('review fixes: no smuggling through Connection-named framing; an upstream\'s bad field is a 502, not a crash', async (t) => {
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
