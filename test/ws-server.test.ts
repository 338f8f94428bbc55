// WebSocket in the server (server.websocket(), server/websocket.ts) with real clients: Node's
// built-in WebSocket and the `ws` package — echo of text and binary, permessage-deflate agreed and
// used, the close handshake both ways; the upgrade hook (user data, refusals, async), the Origin
// hook, a plain GET (426); pings from the server and a client that never answers them; a handler
// that throws (1011); a client that never reads (closed at maxBackpressureBytes, cut after the
// close timeout); drain; topics (once per subscriber, the sender left out, compressed and plain
// side by side); a graceful stop (1001); and nothing left behind.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { once } from 'node:events'
import net from 'node:net'
import WsClient from 'ws'
import { createServer, type HttpServer } from '../src/index.ts'
import { refuse, type WebSocket as PetrelSocket } from '../src/server/websocket.ts'
import { settlesTo } from './helpers/sockets.ts'

let server: HttpServer
let port: number
const errors: Error[] = []
const closes: Array<[string, number, string]> = []

before(async () => {
  server = createServer({ onError: (err) => errors.push(err) })
  server.websocket(
    '/echo',
    {
      message: (ws, data, binary) => ws.send(data, { binary }),
      close: (_ws, code, reason) => closes.push(['echo', code, reason]),
    },
    { compress: true, compressMinBytes: 100 },
  )
  server.websocket<{ user: string }>('/hello', {
    upgrade: async (req) => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      const user = req.query.get('user')
      return user === null ? refuse(401, 'say who you are') : { user }
    },
    open: (ws) => ws.send(`hello ${ws.data.user}`),
  })
  server.websocket('/origin', { open: (ws) => ws.send('in') }, { allowOrigin: (origin) => origin === 'https://good.example' })
  server.websocket('/throws', {
    message: () => {
      throw new Error('handler broke')
    },
  })
  server.websocket('/pinged', { open: (ws) => ws.send('hi') }, { pingIntervalMs: 150, pongTimeoutMs: 150, closeTimeoutMs: 300 })
  server.websocket(
    '/flood',
    {
      open: (ws) => {
        const chunk = Buffer.alloc(64 * 1024, 'f')
        // A client that never reads: the server keeps sending until the limit closes it.
        const pump = (): void => {
          for (let i = 0; i < 64 && ws.open; i++) ws.send(chunk)
          if (ws.open) setImmediate(pump)
        }
        pump()
      },
    },
    { maxBackpressureBytes: 512 * 1024, closeTimeoutMs: 300 },
  )
  server.websocket<{ sent: number }>('/drain', { upgrade: () => ({ sent: 0 }), open: sendUntilFull, drain: sendUntilFull })
  server.websocket<{ name: string }>(
    '/room',
    {
      upgrade: (req) => ({ name: req.query.get('name') ?? '?' }),
      open: (ws) => ws.subscribe('room'),
      message: (ws, data) => {
        if (data === 'leave') ws.unsubscribe('room')
        else ws.publish('room', `${ws.data.name}: ${String(data)}`)
      },
    },
    { compress: true, compressMinBytes: 10 },
  )
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port
})

after(() => server.close({ destroy: true }))

/** 40 messages of 64 KiB, as fast as send() allows: on a false, wait for drain. */
function sendUntilFull(ws: PetrelSocket<{ sent: number }>): void {
  while (ws.data.sent < 40) {
    ws.data.sent++
    if (!ws.send(Buffer.alloc(64 * 1024, ws.data.sent))) return
  }
  ws.close(1000, 'all sent')
}

/** Collect the next `n` messages of a built-in WebSocket. */
function nextMessages(ws: globalThis.WebSocket, n: number): Promise<Array<string | ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const got: Array<string | ArrayBuffer> = []
    ws.addEventListener('message', function onMessage(e) {
      got.push(e.data as string | ArrayBuffer)
      if (got.length === n) {
        ws.removeEventListener('message', onMessage)
        resolve(got)
      }
    })
    ws.addEventListener('close', () => reject(new Error(`closed after ${got.length} of ${n} messages`)))
  })
}

function opened(ws: globalThis.WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve())
    ws.addEventListener('error', () => reject(new Error('the handshake failed')))
  })
}

function closed(ws: globalThis.WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })))
}

describe('echo with real clients', () => {
  test("Node's built-in WebSocket: text, binary, a compressed large message, the close handshake with the client's code", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`)
    ws.binaryType = 'arraybuffer'
    await opened(ws)
    assert.equal(ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover')
    const replies = nextMessages(ws, 3)
    ws.send('héllo')
    ws.send(new Uint8Array([0, 1, 2, 255]))
    ws.send('z'.repeat(100_000))
    const [text, binary, large] = await replies
    assert.equal(text, 'héllo')
    assert.deepEqual([...new Uint8Array(binary as ArrayBuffer)], [0, 1, 2, 255])
    assert.equal(large, 'z'.repeat(100_000))
    const done = closed(ws)
    ws.close(4000, 'done here')
    assert.deepEqual(await done, { code: 4000, reason: '' })
    await settlesTo(() => (closes.some(([route, code, reason]) => route === 'echo' && code === 4000 && reason === 'done here') ? 0 : 1), 0, 2000)
  })

  test('the ws package: echo with and without compression, its ping answered', async () => {
    for (const perMessageDeflate of [true, false]) {
      const ws = new WsClient(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate })
      await once(ws, 'open')
      assert.equal(ws.extensions !== '', perMessageDeflate)
      const pong = once(ws, 'pong')
      ws.ping(Buffer.from('are you there'))
      assert.equal(String((await pong)[0]), 'are you there')
      const echoed = once(ws, 'message')
      ws.send(Buffer.alloc(5000, 'c'), { binary: true })
      const [data, isBinary] = await echoed
      assert.equal(isBinary, true)
      assert.ok((data as Buffer).equals(Buffer.alloc(5000, 'c')))
      ws.close()
      const [code] = await once(ws, 'close')
      assert.equal(code, 1005, 'an empty close answered with an empty close')
    }
  })
})

describe('the handshake', () => {
  test('upgrade() attaches data (async), or refuses with its status; the Origin hook answers 403; a plain GET gets 426 with Upgrade', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hello?user=ada`)
    const [greeting] = await nextMessages(ws, 1)
    assert.equal(greeting, 'hello ada')
    ws.close()
    const refused = new WsClient(`ws://127.0.0.1:${port}/hello`)
    const [, res] = (await once(refused, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage]
    assert.equal(res.statusCode, 401)
    refused.on('error', () => {})
    refused.terminate()
    const foreign = new WsClient(`ws://127.0.0.1:${port}/origin`, { origin: 'https://evil.example' })
    const [, res403] = (await once(foreign, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage]
    assert.equal(res403.statusCode, 403)
    foreign.on('error', () => {})
    foreign.terminate()
    const friend = new WsClient(`ws://127.0.0.1:${port}/origin`, { origin: 'https://good.example' })
    assert.equal(String((await once(friend, 'message'))[0]), 'in')
    friend.close()
    const plain = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1')
      let got = ''
      c.setEncoding('latin1')
      c.on('data', (d: string) => (got += d))
      c.on('close', () => resolve(got))
      c.write('GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    })
    assert.match(plain, /^HTTP\/1\.1 426 Upgrade Required\r\n/)
    assert.match(plain, /\r\nUpgrade: websocket\r\n/)
    assert.match(plain, /\r\n\r\n426 Upgrade Required: this resource speaks WebSocket/)
  })
})

describe('when things go wrong', () => {
  test('a handler that throws: the error is reported, the client gets 1011', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/throws`)
    await opened(ws)
    const done = closed(ws)
    ws.send('boom')
    assert.equal((await done).code, 1011)
    assert.deepEqual(
      errors.splice(0).map((e) => e.message),
      ['handler broke'],
    )
  })

  test('the server pings a quiet client; one that answers stays, one that never answers is cut after pongTimeoutMs', async () => {
    const good = new WsClient(`ws://127.0.0.1:${port}/pinged`)
    await once(good, 'message')
    let pings = 0
    good.on('ping', () => pings++)
    const before = server.stats.timeouts.PETREL_ERR_WS_PONG_TIMEOUT ?? 0
    // A raw client that completes the handshake and then reads nothing and answers nothing.
    const mute = net.connect(port, '127.0.0.1')
    mute.write(
      'GET /pinged HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    mute.on('error', () => {})
    // It reads (to see the end) but never answers a ping.
    mute.on('data', () => {})
    const started = performance.now()
    await once(mute, 'close')
    const took = performance.now() - started
    assert.ok(took >= 250, `cut after ${Math.round(took)} ms, before a ping and its pong timeout`)
    assert.equal(server.stats.timeouts.PETREL_ERR_WS_PONG_TIMEOUT, before + 1)
    assert.ok(pings >= 1, 'the answering client was pinged')
    assert.equal(good.readyState, WsClient.OPEN, 'and is still connected')
    good.close()
  })

  test('a client that never reads is closed with 1008 once maxBackpressureBytes wait, and cut after the close timeout', async () => {
    const before = server.stats.timeouts.PETREL_ERR_WS_BACKPRESSURE ?? 0
    const sink = net.connect(port, '127.0.0.1')
    sink.on('error', () => {})
    sink.write(
      'GET /flood HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    sink.pause()
    // The server's side goes (the close frame queued behind what waits, then cut): the client
    // never reads, so it is the server's count that shows it.
    assert.equal(await settlesTo(() => 1 - ((server.stats.timeouts.PETREL_ERR_WS_BACKPRESSURE ?? 0) - before), 0, 5000), 0)
    assert.equal(await settlesTo(() => server.connectionCounts().websockets, 0, 3000), 0)
    sink.destroy()
  })

  test('send() says when to wait, and drain says when to go on: 40 × 64 KiB arrive whole and in order', async () => {
    const ws = new WsClient(`ws://127.0.0.1:${port}/drain`)
    const got: number[] = []
    ws.on('message', (data: Buffer) => {
      assert.equal(data.length, 64 * 1024)
      got.push(data[0]!)
    })
    const [code, reason] = await once(ws, 'close')
    assert.equal(code, 1000)
    assert.equal(String(reason), 'all sent')
    assert.deepEqual(
      got,
      Array.from({ length: 40 }, (_, i) => i + 1),
    )
  })
})

describe('topics', () => {
  test('a publish reaches every other subscriber once, compressed for those that agreed deflate; unsubscribed and closed ones get nothing', async () => {
    const join = async (name: string, perMessageDeflate: boolean) => {
      const ws = new WsClient(`ws://127.0.0.1:${port}/room?name=${name}`, { perMessageDeflate })
      await once(ws, 'open')
      const got: string[] = []
      ws.on('message', (d: Buffer) => got.push(String(d)))
      return { ws, got }
    }
    const a = await join('a', true)
    const b = await join('b', false)
    const c = await join('c', true)
    await settlesTo(() => 3 - server.topics().count('room'), 0, 1000)
    a.ws.send('hi all, a long enough line to be compressed')
    await settlesTo(() => 2 - b.got.length - c.got.length, 0, 2000)
    assert.deepEqual(a.got, [], 'not to the sender')
    assert.deepEqual(b.got, ['a: hi all, a long enough line to be compressed'])
    assert.deepEqual(c.got, ['a: hi all, a long enough line to be compressed'])
    c.ws.send('leave')
    await settlesTo(() => server.topics().count('room') - 2, 0, 1000)
    b.ws.close()
    await settlesTo(() => server.topics().count('room') - 1, 0, 1000)
    assert.equal(server.publish('room', 'from the server'), 1)
    await settlesTo(() => (a.got.includes('from the server') ? 0 : 1), 0, 1000)
    assert.equal(c.got.length, 1, 'c left the topic')
    a.ws.close()
    c.ws.close()
  })
})

test('a graceful stop closes WebSockets with 1001, and the server forgets every connection and timer', async () => {
  const s = createServer()
  s.websocket('/x', { message: (ws, d) => ws.send(d) })
  const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
  const ws = new WebSocket(`ws://127.0.0.1:${p}/x`)
  await opened(ws)
  const done = closed(ws)
  const stopped = s.close()
  assert.equal((await done).code, 1001)
  await stopped
  assert.equal(s.connections.size, 0)
  assert.equal(await settlesTo(() => server.connections.size, 0, 3000), 0, [...server.connections].map((c) => c.constructor.name).join())
  assert.equal(await settlesTo(() => server.timersArmed(), 0, 3000), 0)
  assert.deepEqual(errors, [])
})

test('the demo site (npm start) answers on /ws/echo, compressed when offered, and links the echo page', async (t) => {
  const { startPetrel } = await import('./helpers/petrel.ts')
  const m = await startPetrel(t, [])
  const ws = new WsClient(`ws://127.0.0.1:${m.port}/ws/echo`)
  await once(ws, 'open')
  assert.match(ws.extensions, /^permessage-deflate/)
  ws.send('echo me')
  assert.equal(String((await once(ws, 'message'))[0]), 'echo me')
  ws.close()
  const page = await fetch(`http://127.0.0.1:${m.port}/echo.html`)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /new WebSocket\(`\$\{scheme\}\/\/\$\{location\.host\}\/ws\/echo`\)/)
})

test('over TLS (wss): the handshake on the HTTPS listener (ALPN http/1.1, as browsers open WebSockets), echo both ways', async (t) => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const path = await import('node:path')
  const { makeTestCa } = await import('./helpers/tls.ts')
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-wss-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const ca = makeTestCa(dir)
  const leaf = ca.issue(['localhost', '127.0.0.1'])
  const s = createServer({ tls: { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) } })
  s.websocket('/secure', { message: (ws, d, binary) => ws.send(d, { binary }) }, { compress: true })
  const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
  t.after(() => s.close({ destroy: true }))
  const ws = new WsClient(`wss://127.0.0.1:${p}/secure`, { ca: readFileSync(ca.caCert) })
  await once(ws, 'open')
  ws.send('over tls')
  assert.equal(String((await once(ws, 'message'))[0]), 'over tls')
  ws.close()
  await once(ws, 'close')
})

describe('the review’s cases', () => {
  test('a client that pings and never reads is closed by the backlog limit (pongs count), not left to grow', async (t) => {
    const s = createServer()
    s.websocket('/p', {}, { maxBackpressureBytes: 64 * 1024, closeTimeoutMs: 200 })
    const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
    t.after(() => s.close({ destroy: true }))
    const c = net.connect(p, '127.0.0.1')
    c.on('error', () => {})
    t.after(() => c.destroy())
    c.write(
      'GET /p HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    c.pause()
    for (let i = 0; i < 100 && s.connectionCounts().websockets === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    // A masked ping with a 125-byte payload, over and over.
    const ping = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 0, 0, 0, 0]), Buffer.alloc(125, 1)])
    const burst = Buffer.concat(Array.from({ length: 2000 }, () => ping))
    for (let i = 0; i < 20 && s.connectionCounts().websockets > 0; i++) {
      c.write(burst)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.equal(await settlesTo(() => s.connectionCounts().websockets, 0, 3000), 0)
    assert.ok((s.stats.timeouts.PETREL_ERR_WS_BACKPRESSURE ?? 0) >= 1)
  })

  test('pause() in open() holds; subscribe() after the close does nothing; end() delivers nothing more; close(1006) and a long ping are refused', async (t) => {
    const got: string[] = []
    let late: PetrelSocket<unknown> | null = null
    const s = createServer()
    s.websocket('/hold', {
      open: (ws) => {
        ws.pause()
        setTimeout(() => ws.resume(), 200)
      },
      message: (ws, d) => ws.send(`held ${String(d)}`),
    })
    s.websocket('/late', { open: (ws) => void (late = ws) })
    s.websocket('/end', {
      message: (ws, d) => {
        got.push(String(d))
        ws.end()
      },
    })
    s.websocket('/bad', {
      open: (ws) => {
        assert.throws(() => ws.close(1006), { code: 'PETREL_ERR_INVALID_OPTION' })
        assert.throws(() => ws.ping(Buffer.alloc(126)), { code: 'PETREL_ERR_INVALID_OPTION' })
        ws.send('checked')
      },
    })
    const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
    t.after(() => s.close({ destroy: true }))
    const held = new WsClient(`ws://127.0.0.1:${p}/hold`)
    await once(held, 'open')
    const sentAt = performance.now()
    held.send('x')
    await once(held, 'message')
    assert.ok(performance.now() - sentAt >= 150, 'not read before resume()')
    held.close()
    const lateClient = new WsClient(`ws://127.0.0.1:${p}/late`)
    await once(lateClient, 'open')
    lateClient.terminate()
    await settlesTo(() => s.connectionCounts().websockets, 0, 2000)
    late!.subscribe('after')
    assert.equal(s.topics().count('after'), 0)
    const ender = new WsClient(`ws://127.0.0.1:${p}/end`)
    await once(ender, 'open')
    // Three messages in one write: the first ends the connection, the others are not delivered.
    ender.send('one')
    ender.send('two')
    ender.send('three')
    await once(ender, 'close')
    assert.deepEqual(got, ['one'])
    const bad = new WsClient(`ws://127.0.0.1:${p}/bad`)
    assert.equal(String((await once(bad, 'message'))[0]), 'checked')
    bad.close()
  })

  test('a subprotocol chosen among the offers; an upgrade that resolves after a graceful stop began gets 503; a client that half-closed while upgrade() decided gets no WebSocket', async (t) => {
    const s = createServer()
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    s.websocket('/proto', { open: (ws) => ws.send(ws.protocol) }, { protocol: (offered) => offered.find((p) => p === 'chat.v2') })
    s.websocket('/slow', { upgrade: async () => gate.then(() => ({})), open: () => assert.fail('opened during a stop') })
    const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
    const proto = new WsClient(`ws://127.0.0.1:${p}/proto`, ['chat.v1', 'chat.v2'])
    assert.equal(String((await once(proto, 'message'))[0]), 'chat.v2')
    assert.equal(proto.protocol, 'chat.v2')
    proto.close()
    await once(proto, 'close')
    const halfClosed = net.connect(p, '127.0.0.1')
    halfClosed.on('error', () => {})
    halfClosed.end(
      'GET /slow HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    const slow = new WsClient(`ws://127.0.0.1:${p}/slow`)
    slow.on('error', () => {})
    const answer = once(slow, 'unexpected-response')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const stopped = s.close()
    release()
    const [, res] = (await answer) as [unknown, import('node:http').IncomingMessage]
    assert.equal(res.statusCode, 503)
    slow.terminate()
    await stopped
    assert.equal(s.connections.size, 0)
    t.after(() => halfClosed.destroy())
  })
})

test('publishes of one turn reach a subscriber in one write and in order, and a send() after them does not overtake them', async (t) => {
  const s = createServer()
  let member: PetrelSocket<unknown> | null = null
  s.websocket('/t', {
    open: (ws) => {
      ws.subscribe('t')
      member = ws
    },
  })
  const p = (await s.listen({ port: 0, host: '127.0.0.1' })).port
  t.after(() => s.close({ destroy: true }))
  const c = new WsClient(`ws://127.0.0.1:${p}/t`)
  await once(c, 'open')
  await settlesTo(() => 1 - s.topics().count('t'), 0, 1000)
  const got: string[] = []
  c.on('message', (d) => got.push(String(d)))
  const writes = { n: 0 }
  const socket = member!.socket
  const write = socket.write.bind(socket)
  socket.write = ((...args: Parameters<typeof socket.write>) => {
    writes.n++
    return write(...args)
  }) as typeof socket.write
  assert.equal(s.publish('t', 'one'), 1)
  s.publish('t', 'two')
  s.publish('t', 'three')
  member!.send('after')
  await settlesTo(() => 4 - got.length, 0, 2000)
  assert.deepEqual(got, ['one', 'two', 'three', 'after'])
  assert.equal(writes.n, 2, 'the three publishes in one write, then the send')
  c.close()
})
