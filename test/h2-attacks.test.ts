// The known attacks on HTTP/2 servers, each over a real socket against a server that another
// client keeps using: rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316), an HPACK
// bomb, PING, SETTINGS and empty-frame floods, streams opened past the concurrency limit. Each
// attacker is stopped as the RFC and the advisories ask (GOAWAY ENHANCE_YOUR_CALM and a close, or
// a 431 on the stream for the bomb), while the second client is answered throughout; afterwards
// the server holds no connection, no stream and no timer, and reported no error.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { createServer, type HttpServer } from '../src/index.ts'
import { DEFAULT_HTTP2 } from '../src/core/limits.ts'
import { Flag, frame, FrameType, H2Error } from '../src/protocol/http2/frames.ts'
import { settlesTo } from './helpers/sockets.ts'
import { body, ended, H2Client, status, type Got } from './helpers/h2-client.ts'

let server: HttpServer
let port: number
const errors: Error[] = []
const seenBomb: string[] = []

before(async () => {
  server = createServer({ onError: (err) => errors.push(err) })
  server.get('/plaintext', (req, res) => {
    const bomb = req.header('x-bomb')
    if (bomb !== undefined) seenBomb.push(bomb)
    res.end('Hello')
  })
  server.get('/slow', async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    res.end('slow')
  })
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port
})

after(() => server.close({ destroy: true }))

const GET: Array<[string, string]> = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/plaintext'],
  [':authority', 'localhost'],
]
const SLOW: Array<[string, string]> = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/slow'],
  [':authority', 'localhost'],
]

function headers(streamId: number, block: Buffer, flags: number): Buffer {
  return frame(FrameType.HEADERS, flags, streamId, block)
}

const goawayCode = (frames: Got[]): number | undefined => frames.find((f) => f.type === FrameType.GOAWAY)?.payload.readUInt32BE(4)

/**
 * While `attack` runs, a second client asks for /plaintext every 20 ms on its own connection;
 * every answer must come, each within a second. Returns how many it got.
 */
async function whileServing(attack: () => Promise<void>): Promise<number> {
  const bystander = new H2Client(port)
  let id = 1
  let answered = 0
  let stop = false
  const asking = (async () => {
    while (!stop) {
      const streamId = id
      id += 2
      const sentAt = performance.now()
      bystander.request(streamId, 'GET', '/plaintext', true)
      await bystander.until(() => ended(bystander.on(streamId)), `the bystander's answer on stream ${streamId}`, 1000)
      assert.equal(body(bystander.on(streamId)), 'Hello')
      assert.ok(performance.now() - sentAt < 1000)
      answered++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  try {
    await attack()
  } finally {
    stop = true
    await asking
    bystander.socket.destroy()
  }
  return answered
}

/** An attacker that must end with GOAWAY ENHANCE_YOUR_CALM and the server closing the connection. */
async function calmedDown(c: H2Client): Promise<void> {
  await c
    .until((f) => goawayCode(f) !== undefined, 'GOAWAY', 5000)
    .catch((err: Error) => {
      // The server may cut before the GOAWAY is read when the attacker floods faster than it reads.
      if (c.closedAt === 0) throw err
    })
  const code = goawayCode(c.frames)
  if (code !== undefined) assert.equal(code, H2Error.ENHANCE_YOUR_CALM)
  await c.closed(5000)
}

test('rapid reset: streams opened and reset at once, far past the limit, end with ENHANCE_YOUR_CALM; the bystander is served', async () => {
  const answered = await whileServing(async () => {
    const c = new H2Client(port)
    const rst = (id: number) => frame(FrameType.RST_STREAM, 0, id, Buffer.from([0, 0, 0, H2Error.CANCEL]))
    const burst: Buffer[] = []
    // Each stream's handler is still at work when its reset comes: what the attack exploits.
    for (let id = 1; id < 2 * 2000; id += 2) burst.push(headers(id, c.encode(SLOW), Flag.END_HEADERS | Flag.END_STREAM), rst(id))
    c.send(...burst)
    await calmedDown(c)
  })
  assert.ok(answered >= 1)
})

test('rapid reset of streams answered at once: the resets count all the same', async () => {
  const c = new H2Client(port)
  const rst = (id: number) => frame(FrameType.RST_STREAM, 0, id, Buffer.from([0, 0, 0, H2Error.CANCEL]))
  const burst: Buffer[] = []
  for (let id = 1; id < 2 * 2000; id += 2) burst.push(headers(id, c.encode(GET), Flag.END_HEADERS | Flag.END_STREAM), rst(id))
  c.send(...burst)
  await calmedDown(c)
})

test('CONTINUATION flood: a header block that never ends is cut past maxHeaderBlockBytes, before it is decoded', async () => {
  const answered = await whileServing(async () => {
    const c = new H2Client(port)
    c.send(headers(1, c.encode(GET), 0))
    const filler = Buffer.alloc(16_000, 0x41)
    let sent = 0
    // Far more than the limit (64 KiB): the server must not gather it.
    while (sent < 2 * 1024 * 1024 && c.closedAt === 0) {
      if (!c.send(frame(FrameType.CONTINUATION, 0, 1, filler))) await new Promise((resolve) => c.socket.once('drain', resolve))
      sent += filler.length
      if (goawayCode(c.frames) !== undefined) break
    }
    await calmedDown(c)
    assert.ok(sent < 2 * 1024 * 1024 || c.closedAt > 0)
  })
  assert.ok(answered >= 1)
})

/** An HPACK integer with an `n`-bit prefix, its first byte OR'ed with `high`. */
function hpackInt(value: number, n: number, high: number): Buffer {
  const max = (1 << n) - 1
  if (value < max) return Buffer.from([high | value])
  const out = [high | max]
  value -= max
  while (value >= 128) {
    out.push((value % 128) | 0x80)
    value = Math.floor(value / 128)
  }
  out.push(value)
  return Buffer.from(out)
}

/**
 * A GET's header block that leaves the dynamic table alone (static indexes, literals without
 * indexing), so it reads the same whatever the server's table holds.
 */
function plainGet(path: string): Buffer {
  const literal = (index: number, value: string) => Buffer.concat([hpackInt(index, 4, 0), hpackInt(value.length, 7, 0), Buffer.from(value)])
  // :method GET (2), :scheme http (6) indexed; :path (4) and :authority (1) as literals.
  return Buffer.concat([Buffer.from([0x82, 0x86]), literal(4, path), literal(1, 'localhost')])
}

test('HPACK bomb: one 4 KB entry referenced 3,000 times (12 MB decoded) is answered 431 on its stream; the connection goes on', async () => {
  const c = new H2Client(port)
  const answered = await whileServing(async () => {
    const value = Buffer.alloc(4000, 0x62)
    const name = Buffer.from('x-bomb')
    const block = Buffer.concat([
      plainGet('/plaintext'),
      // Literal with incremental indexing, a new name: the entry becomes index 62.
      Buffer.from([0x40]),
      hpackInt(name.length, 7, 0),
      name,
      hpackInt(value.length, 7, 0),
      value,
      Buffer.alloc(3000, 0x80 | 62),
    ])
    c.send(headers(1, block, Flag.END_HEADERS | Flag.END_STREAM))
    await c.until(() => ended(c.on(1)), 'the answer to the bomb')
    assert.equal(status(c.on(1)), '431')
    // The decoder stayed in step (the entry is in its table): the next request is read as meant.
    c.send(headers(3, Buffer.concat([plainGet('/plaintext'), Buffer.from([0x80 | 62])]), Flag.END_HEADERS | Flag.END_STREAM))
    await c.until(() => ended(c.on(3)), 'the next answer')
    assert.equal(body(c.on(3)), 'Hello')
  })
  c.socket.destroy()
  assert.equal(seenBomb.at(-1), 'b'.repeat(4000), 'the handler saw the x-bomb field of the next request, taken from the table')
  assert.ok(answered >= 1)
})

for (const [what, flood] of [
  ['PING', (_c: H2Client) => frame(FrameType.PING, 0, 0, Buffer.alloc(8))],
  ['SETTINGS', (_c: H2Client) => frame(FrameType.SETTINGS, 0, 0)],
  ['empty DATA', (_c: H2Client) => frame(FrameType.DATA, 0, 1)],
] as const) {
  test(`${what} flood: past ${DEFAULT_HTTP2.maxControlPerWindow} in ${DEFAULT_HTTP2.controlWindowMs / 1000} s the connection ends with ENHANCE_YOUR_CALM; the bystander is served`, async () => {
    const answered = await whileServing(async () => {
      const c = new H2Client(port)
      // Empty DATA needs an open stream with a body to come: a POST the server answers 404 to.
      if (what === 'empty DATA')
        c.send(
          headers(
            1,
            c.encode([
              [':method', 'POST'],
              [':scheme', 'http'],
              [':path', '/slow'],
              [':authority', 'localhost'],
            ]),
            Flag.END_HEADERS,
          ),
        )
      c.send(...Array.from({ length: 5000 }, () => flood(c)))
      await calmedDown(c)
      if (what === 'PING')
        assert.ok(c.frames.filter((f) => f.type === FrameType.PING).length <= DEFAULT_HTTP2.maxControlPerWindow, 'PINGs past the limit are not answered')
    })
    assert.ok(answered >= 1)
  })
}

test('streams opened past SETTINGS_MAX_CONCURRENT_STREAMS are refused, and a client that keeps opening them is cut', async () => {
  const answered = await whileServing(async () => {
    const c = new H2Client(port)
    const burst: Buffer[] = []
    for (let i = 0, id = 1; i < 3 * DEFAULT_HTTP2.maxConcurrentStreams; i++, id += 2)
      burst.push(headers(id, c.encode(SLOW), Flag.END_HEADERS | Flag.END_STREAM))
    c.send(...burst)
    await calmedDown(c)
    const refused = c.frames.filter((f) => f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) === H2Error.REFUSED_STREAM)
    assert.ok(refused.length >= 1, 'streams past the limit are refused first')
  })
  assert.ok(answered >= 1)
})

test('after the attacks: no connection, no stream, no timer left; no server error reported', async () => {
  assert.equal(await settlesTo(() => server.connections.size, 0, 3000), 0)
  assert.equal(await settlesTo(() => server.timersArmed(), 0, 3000), 0)
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  )
})
