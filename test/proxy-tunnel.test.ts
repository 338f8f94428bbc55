// The one tunnel (src/apps/proxy/tunnel.ts) that a CONNECT through the forward proxy and an Upgrade
// through the reverse proxy both end in: each is driven through it the same way. A peer that does
// not read pauses the far side (what the sender got into its socket stops growing while it still
// has bytes it cannot hand to the kernel), so what the proxy holds is bounded by the sockets'
// buffers, whatever the size of the stream; once the reader reads, every byte arrives. A half-close
// passes on, an origin's close reaches the client after the bytes before it, and a client that
// leaves takes the upstream with it.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { ForwardProxy, parseAllowRule } from '../src/apps/proxy/forward.ts'
import { startServe } from '../src/apps/serve/serve.ts'

/** Bytes the sender has to send: far more than every socket buffer on the way can hold. */
const TOTAL_BYTES = 64 * 1024 * 1024
/** What may be in flight when the reader reads nothing: loopback socket buffers (a few MB each, autotuned) and the proxy's own. */
const IN_FLIGHT_BOUND_BYTES = 32 * 1024 * 1024
const CHUNK = Buffer.alloc(1024 * 1024, 'x')

type Path = 'CONNECT' | 'Upgrade'

/** An origin behind the proxy: for an Upgrade it reads the request head and answers 101 first. Each connection is handed to `onTunnel`. */
async function origin(t: TestContext, path: Path, onTunnel: (socket: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  const server = net.createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    if (path === 'CONNECT') return onTunnel(socket)
    let head = ''
    const onHead = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onHead)
      socket.pause()
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      onTunnel(socket)
    }
    socket.on('data', onHead)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as net.AddressInfo).port, sockets }
}

/** The proxy for `path`, in front of the origin on `originPort`; resolves with its port. */
async function proxyFor(t: TestContext, path: Path, originPort: number): Promise<number> {
  if (path === 'CONNECT') {
    const proxy = new ForwardProxy({ allow: [parseAllowRule(`127.0.0.1:${originPort}`)] })
    const { port } = await proxy.server.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => proxy.close())
    return port
  }
  const serving = await startServe({
    root: null,
    host: '127.0.0.1',
    port: 0,
    proxy: { routes: [{ prefix: '/', upstreams: [`http://127.0.0.1:${originPort}`] }], options: { healthIntervalMs: 0 } },
  })
  t.after(async () => {
    serving.proxy?.close()
    await serving.server.close()
  })
  return serving.address.port
}

/** A client through the tunnel: its socket, paused, once the proxy's answer (200 or 101) has been read; `received` counts the bytes after it. */
async function client(
  t: TestContext,
  path: Path,
  proxyPort: number,
  originPort: number,
  allowHalfOpen = false,
): Promise<{ socket: net.Socket; received: () => number }> {
  const socket = net.connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen })
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  socket.write(
    path === 'CONNECT'
      ? `CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`
      : 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  )
  let head = Buffer.alloc(0)
  let received = 0
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      socket.pause()
      assert.match(head.toString('latin1', 0, end), path === 'CONNECT' ? /^HTTP\/1\.1 200 / : /^HTTP\/1\.1 101 /)
      received = head.length - end - 4
      socket.on('data', (c: Buffer) => (received += c.length))
      resolve()
    }
    socket.on('data', onData)
  })
  return { socket, received: () => received }
}

/** Write TOTAL_BYTES to `socket` as fast as it takes them: paused on write() false, on until its drain. */
function flood(socket: net.Socket): { written: () => number } {
  let written = 0
  const more = (): void => {
    while (written < TOTAL_BYTES) {
      written += CHUNK.length
      if (!socket.write(CHUNK)) return void socket.once('drain', more)
    }
    socket.end()
  }
  more()
  return { written: () => written }
}

/** Wait until `sent()` has not grown for a second while the sender still holds bytes it cannot write: it is paused. */
async function pausedAt(sent: () => number, sender: net.Socket): Promise<number> {
  let last = -1
  let stableSince = Date.now()
  const deadline = Date.now() + 30_000
  for (;;) {
    const now = sent()
    assert.ok(now < TOTAL_BYTES || sender.writableLength > 0, `nothing paused the sender: all ${now} bytes went into the tunnel while the other side read none`)
    if (now !== last) {
      last = now
      stableSince = Date.now()
    } else if (Date.now() - stableSince >= 1000 && sender.writableLength > 0) {
      return now
    }
    assert.ok(Date.now() < deadline, `the sender never stopped: ${now} bytes sent`)
    await sleep(50)
  }
}

async function arrives(received: () => number, bytes: number): Promise<void> {
  const deadline = Date.now() + 60_000
  while (received() < bytes) {
    assert.ok(Date.now() < deadline, `${received()} of ${bytes} bytes arrived`)
    await sleep(20)
  }
  assert.equal(received(), bytes)
}

for (const path of ['CONNECT', 'Upgrade'] as const) {
  test(`${path}: a client that does not read pauses the origin; the proxy holds no more than the sockets' buffers, and every byte arrives once it reads`, async (t) => {
    let sender: { written: () => number } | null = null
    const o = await origin(t, path, (socket) => (sender = flood(socket)))
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port)
    while (sender === null) await sleep(10)
    const floodOf = sender as { written: () => number }
    const sent = await pausedAt(floodOf.written, o.sockets[0]!)
    assert.ok(sent < IN_FLIGHT_BOUND_BYTES, `the origin got ${sent} bytes into the tunnel while the client read none`)
    c.socket.resume()
    await arrives(c.received, TOTAL_BYTES)
  })

  test(`${path}: an origin that does not read pauses the client; every byte arrives once it reads, and the client's end reaches it`, async (t) => {
    let received = 0
    let originSocket: net.Socket | null = null
    let ended = false
    const o = await origin(t, path, (socket) => {
      socket.pause()
      socket.on('data', (chunk: Buffer) => (received += chunk.length))
      socket.on('end', () => (ended = true))
      originSocket = socket
    })
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port)
    const sender = flood(c.socket)
    const sent = await pausedAt(sender.written, c.socket)
    assert.ok(sent < IN_FLIGHT_BOUND_BYTES, `the client got ${sent} bytes into the tunnel while the origin read none`)
    ;(originSocket as net.Socket | null)!.resume()
    await arrives(() => received, TOTAL_BYTES)
    // flood() ended the client's side after its last byte: the half-close passes on.
    while (!ended) await sleep(20)
  })

  test(`${path}: an origin that sends and closes: a client that reads slowly still gets every byte, then the end`, async (t) => {
    const bytes = 16 * 1024 * 1024
    const o = await origin(t, path, (socket) => {
      socket.end(Buffer.alloc(bytes, 'y'))
      socket.resume()
    })
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port)
    let ended = false
    c.socket.on('end', () => (ended = true))
    c.socket.on('close', () => (ended = true))
    // A read now and then: the proxy's writes to the client queue up behind it when the origin closes.
    while (!ended) {
      c.socket.resume()
      await Promise.race([once(c.socket, 'data'), once(c.socket, 'close')])
      c.socket.pause()
      await sleep(2)
    }
    assert.equal(c.received(), bytes)
  })

  test(`${path}: the client leaving closes the origin's connection`, async (t) => {
    let originSocket: net.Socket | null = null
    const o = await origin(t, path, (socket) => {
      socket.resume()
      originSocket = socket
    })
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port)
    while (originSocket === null) await sleep(10)
    const closed = once(originSocket as net.Socket, 'close')
    c.socket.destroy()
    await closed
  })

  test(`${path}: an origin that half-closes still gets what the client sends after its end, then the client's end`, async (t) => {
    const bytes = 1024 * 1024
    let received = 0
    let ended = false
    const o = await origin(t, path, (socket) => {
      // The origin only ends its sending side, as a client of `shutdown(SHUT_WR)` does.
      socket.allowHalfOpen = true
      socket.on('data', (chunk: Buffer) => (received += chunk.length))
      socket.on('end', () => (ended = true))
      socket.resume()
      socket.end('hello')
    })
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port, true)
    c.socket.resume()
    await once(c.socket, 'end')
    assert.equal(c.received(), 5)
    c.socket.end(Buffer.alloc(bytes, 'z'))
    const deadline = Date.now() + 10_000
    while (!ended) {
      assert.ok(Date.now() < deadline, `the origin got ${received} bytes and no end`)
      await sleep(20)
    }
    assert.equal(received, bytes)
  })

  test(`${path}: an origin that closes while the client is still sending: the client's connection closes at once, not at the idle timeout`, async (t) => {
    let originSocket: net.Socket | null = null
    const o = await origin(t, path, (socket) => {
      socket.resume()
      originSocket = socket
    })
    const proxyPort = await proxyFor(t, path, o.port)
    const c = await client(t, path, proxyPort, o.port, true)
    // Closed, by its FIN or by a reset (the proxy closes a socket it has unread bytes of): either is what the client should see.
    c.socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()))
    while (originSocket === null) await sleep(10)
    // The client keeps writing (and reads nothing) while the origin goes away under it; it allows
    // half-open, so the proxy's FIN alone does not close it: the proxy must close the connection.
    let writing = true
    void (async () => {
      while (writing && !c.socket.destroyed) {
        c.socket.write(CHUNK)
        await sleep(5)
      }
    })()
    await sleep(100)
    ;(originSocket as net.Socket).destroy()
    const cut = await Promise.race([closed.then(() => true), sleep(10_000).then(() => false)])
    writing = false
    assert.ok(cut, 'the client connection was still open 10 s after the origin closed')
  })
}

test('ForwardProxy refuses a tunnel idle timeout or DNS TTL that is not a finite number >= 0 (it used to answer 200 and leave both sockets open)', () => {
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new ForwardProxy({ allow: [], tunnelIdleMs: bad }), { code: 'PETREL_ERR_INVALID_OPTION', message: /tunnelIdleMs/ })
    assert.throws(() => new ForwardProxy({ allow: [], dnsTtlMs: bad }), { code: 'PETREL_ERR_INVALID_OPTION', message: /dnsTtlMs/ })
  }
})
