// HTTP/2 timers on the server's timing wheel, with tiny timeouts and raw frames over cleartext
// (prior knowledge): a handler that never answers gets 503 on its stream, a request body that
// stops arriving 408, a stream answered while its body is still owed is reset (NO_ERROR) after
// bodyMs, an idle connection gets GOAWAY after keepAliveMs and is closed, a client that keeps its
// window shut is cut after sendMs — each stream's timer only touches its stream, and the server
// forgets every stream and connection. Response trailers: a HEADERS frame after the DATA, after
// window-blocked DATA too; in the last chunk on HTTP/1.1. Lower bounds are exact (a timer must not
// fire early, less one tick); upper bounds are generous.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import net from 'node:net'
import { createServer, type HttpServer } from '../src/index.ts'
import { Response } from '../src/server/response.ts'
import { Flag, frame, FrameType, H2Error, Setting } from '../src/protocol/http2/frames.ts'
import { settlesTo } from './helpers/sockets.ts'
import { body, ended, H2Client, reset, status } from './helpers/h2-client.ts'

const TICK = 30
const SLACK = 1500
const T = { keepAliveMs: 400, bodyMs: 300, handlerMs: 300, sendMs: 500, lingerMs: 300 }
let server: HttpServer
let port: number
const errors: Error[] = []
let neverSignalled = 0
const headFirstErrors: string[] = []

before(async () => {
  server = createServer({ timeouts: T, onError: (err) => errors.push(err) })
  server.get('/never', (_req, res) => {
    res.signal.addEventListener('abort', () => neverSignalled++)
  })
  server.post('/read', async (req, res) => {
    try {
      res.end(`read ${(await req.body()).length}`)
    } catch {}
  })
  server.post('/ignore', (_req, res) => res.end('not read'))
  server.post('/read-then-think', async (req, res) => {
    const body = await req.body()
    await new Promise((resolve) => setTimeout(resolve, 100))
    res.end(`thought about ${body.length}`)
  })
  server.post('/head-first', async (req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    res.write('started\n')
    try {
      await req.body()
      res.end('never')
    } catch (err) {
      headFirstErrors.push((err as { code?: string }).code ?? String(err))
    }
  })
  server.get('/plaintext', (_req, res) => res.end('Hello'))
  server.get('/big', (_req, res) => res.end(Buffer.alloc(200_000, 'b')))
  server.get('/trailers', (_req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    res.write('part ')
    res.addTrailers({ 'X-Checksum': 'abc', 'Server-Timing': 'db;dur=5' })
    res.end('end')
  })
  server.get('/trailers-whole', (_req, res) => {
    res.addTrailers({ 'x-checksum': 'whole' })
    res.end('whole body')
  })
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port
})

after(() => server.close({ destroy: true }))

describe('HTTP/2 stream timers', () => {
  test('a handler that does not start its response within handlerMs: 503 on its stream, its signal aborted; the connection goes on', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    const before = server.stats.timeouts.PETREL_ERR_HANDLER_TIMEOUT ?? 0
    const sentAt = performance.now()
    c.request(1, 'GET', '/never', true)
    for (let i = 0; i < 100 && server.connectionCounts().streams === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    // What metrics, `petrel top` and the dashboard read: one HTTP/2 connection with one stream open.
    const counts = server.connectionCounts()
    assert.equal(counts.http2, 1)
    assert.equal(counts.streams, 1)
    assert.equal(counts.idle, 0)
    await c.until((f) => ended(c.on(1)), 'an answer on stream 1')
    const took = performance.now() - sentAt
    assert.equal(status(c.on(1)), '503')
    assert.match(body(c.on(1)), /^503 Service Unavailable: the handler did not start its response within timeouts\.handlerMs/)
    assert.ok(took >= T.handlerMs - TICK, `answered after ${Math.round(took)} ms`)
    assert.equal(server.stats.timeouts.PETREL_ERR_HANDLER_TIMEOUT, before + 1)
    assert.equal(neverSignalled, 1, "the handler's work was told to stop")
    const reported = errors.splice(
      errors.findIndex((e) => (e as { code?: string }).code === 'PETREL_ERR_HANDLER_TIMEOUT'),
      1,
    )
    assert.equal(reported.length, 1, 'the timeout is reported, as on HTTP/1.1')
    c.request(3, 'GET', '/plaintext', true)
    await c.until((f) => ended(c.on(3)), 'the next answer')
    assert.equal(body(c.on(3)), 'Hello')
  })

  test('a request body that stops arriving for bodyMs: 408 on its stream, then RST_STREAM NO_ERROR; other streams unharmed', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'POST', '/read', false)
    c.data(1, 'some of the body', false)
    const sentAt = performance.now()
    // Meanwhile another stream is answered at once.
    c.request(3, 'GET', '/plaintext', true)
    await c.until(() => ended(c.on(3)), 'the answer on stream 3')
    await c.until(() => reset(c.on(1)) !== undefined, 'the reset of stream 1')
    const took = performance.now() - sentAt
    assert.equal(status(c.on(1)), '408')
    assert.equal(reset(c.on(1)), H2Error.NO_ERROR)
    assert.ok(took >= T.bodyMs - TICK, `timed out after ${Math.round(took)} ms`)
    assert.equal(
      c.frames.find((f) => f.type === FrameType.GOAWAY),
      undefined,
      'the connection goes on',
    )
  })

  test('a body that keeps arriving is not timed out, though it takes longer than bodyMs in all', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'POST', '/read', false)
    for (let i = 0; i < 5; i++) {
      c.data(1, 'x'.repeat(10), false)
      await new Promise((resolve) => setTimeout(resolve, T.bodyMs / 3))
    }
    c.data(1, '', true)
    await c.until(() => ended(c.on(1)), 'the answer')
    assert.equal(status(c.on(1)), '200')
    assert.equal(body(c.on(1)), 'read 50')
  })

  test('an upload longer than handlerMs, its body arriving steadily, is not a handler timeout: the handler’s time starts when the body is whole', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'POST', '/read-then-think', false)
    // 2 × handlerMs of body, a DATA frame every bodyMs / 3.
    for (let i = 0; i < (2 * T.handlerMs) / (T.bodyMs / 3); i++) {
      c.data(1, 'y'.repeat(10), false)
      await new Promise((resolve) => setTimeout(resolve, T.bodyMs / 3))
    }
    c.data(1, '', true)
    await c.until(() => ended(c.on(1)), 'the answer')
    assert.equal(status(c.on(1)), '200')
    assert.match(body(c.on(1)), /^thought about \d+$/)
  })

  test('a body that stalls after the response head went out: the stream is reset (CANCEL) after bodyMs and the handler’s read fails', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'POST', '/head-first', false)
    c.data(1, 'a little', false)
    await c.until(() => status(c.on(1)) !== undefined, 'the head')
    await c.until(() => reset(c.on(1)) !== undefined, 'the reset', T.bodyMs + SLACK)
    assert.equal(reset(c.on(1)), H2Error.CANCEL)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.deepEqual(headFirstErrors, ['PETREL_ERR_BODY_TIMEOUT'])
  })

  test('a stream answered while its body is owed (the handler did not read it) is reset after bodyMs if the client goes quiet', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'POST', '/ignore', false)
    await c.until(() => ended(c.on(1)), 'the answer')
    const answeredAt = performance.now()
    assert.equal(body(c.on(1)), 'not read')
    await c.until(() => reset(c.on(1)) !== undefined, 'the reset')
    assert.equal(reset(c.on(1)), H2Error.NO_ERROR)
    assert.ok(performance.now() - answeredAt >= T.bodyMs - TICK - 50)
  })
})

describe('HTTP/2 connection timers', () => {
  test('no stream for keepAliveMs: GOAWAY NO_ERROR, then the server closes (lingerMs at most for a client that stays)', async () => {
    const c = new H2Client(port)
    c.request(1, 'GET', '/plaintext', true)
    await c.until(() => ended(c.on(1)), 'the answer')
    const idleFrom = performance.now()
    await c.until((f) => f.some((x) => x.type === FrameType.GOAWAY), 'GOAWAY', T.keepAliveMs + SLACK)
    const goaway = c.frames.find((x) => x.type === FrameType.GOAWAY)!
    assert.ok(performance.now() - idleFrom >= T.keepAliveMs - TICK)
    assert.equal(goaway.payload.readUInt32BE(0), 1, 'the last stream id')
    assert.equal(goaway.payload.readUInt32BE(4), H2Error.NO_ERROR)
    // The client keeps its side open: the server closes anyway.
    await c.closed(T.lingerMs + SLACK)
  })

  test('a client that keeps its window shut while DATA waits is cut after sendMs, counted as a send timeout', async () => {
    const before = server.stats.timeouts.PETREL_ERR_SEND_TIMEOUT ?? 0
    const c = new H2Client(port, [[Setting.INITIAL_WINDOW_SIZE, 0]])
    c.request(1, 'GET', '/big', true)
    await c.until(() => status(c.on(1)) !== undefined, 'the head')
    const from = performance.now()
    const closedAt = await c.closed(T.sendMs + SLACK * 2)
    assert.ok(closedAt - from >= T.sendMs - TICK - 50, `cut after ${Math.round(closedAt - from)} ms`)
    assert.equal(body(c.on(1)), '', 'no DATA went through a shut window')
    assert.equal(server.stats.timeouts.PETREL_ERR_SEND_TIMEOUT, before + 1)
  })

  test('after all of the above, the server holds no connection and no timer but its own', async () => {
    assert.equal(await settlesTo(() => server.connections.size, 0, 3000), 0)
    assert.equal(await settlesTo(() => server.timersArmed(), 0, 3000), 0)
  })
})

describe('response trailers', () => {
  test('HTTP/2: a HEADERS frame with END_STREAM after the DATA, names lower-cased; also after a body given whole', async (t) => {
    const c = new H2Client(port)
    t.after(() => c.socket.destroy())
    c.request(1, 'GET', '/trailers', true)
    c.request(3, 'GET', '/trailers-whole', true)
    await c.until(() => ended(c.on(1)) && ended(c.on(3)), 'both answers')
    for (const [id, text, trailer] of [
      [1, 'part end', ['x-checksum', 'abc']],
      [3, 'whole body', ['x-checksum', 'whole']],
    ] as const) {
      const frames = c.on(id)
      const last = frames.at(-1)!
      assert.equal(last.type, FrameType.HEADERS, 'the trailers come last')
      assert.ok(last.flags & Flag.END_STREAM)
      assert.deepEqual(last.fields![0], trailer)
      assert.equal(body(frames), text)
      assert.ok(
        frames.filter((f) => f.type === FrameType.DATA).every((f) => !(f.flags & Flag.END_STREAM)),
        'no DATA ends the stream',
      )
    }
    assert.deepEqual(c.on(1).at(-1)!.fields, [
      ['x-checksum', 'abc'],
      ['server-timing', 'db;dur=5'],
    ])
  })

  test('HTTP/2: trailers wait for DATA held back by a small window', async (t) => {
    const c = new H2Client(port, [[Setting.INITIAL_WINDOW_SIZE, 3]])
    t.after(() => c.socket.destroy())
    c.request(1, 'GET', '/trailers', true)
    await c.until(() => body(c.on(1)).length === 3, 'the first window of DATA')
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(c.on(1).filter((f) => f.type === FrameType.HEADERS).length, 1, 'only the head: the trailers wait behind the DATA')
    c.socket.write(frame(FrameType.WINDOW_UPDATE, 0, 1, Buffer.from([0, 0, 0, 100])))
    await c.until(() => ended(c.on(1)), 'the end')
    assert.equal(body(c.on(1)), 'part end')
    assert.equal(c.on(1).at(-1)!.type, FrameType.HEADERS)
  })

  test('HTTP/1.1: in the last chunk of a chunked body; dropped where the body has a length', async () => {
    const exchange = (path: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1')
        let got = ''
        s.setEncoding('latin1')
        s.on('data', (d: string) => (got += d))
        s.on('error', reject)
        s.on('close', () => resolve(got))
        s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
      })
    const chunked = await exchange('/trailers')
    assert.match(chunked, /\r\nTransfer-Encoding: chunked\r\n/)
    assert.ok(chunked.endsWith('\r\n5\r\npart \r\n3\r\nend\r\n0\r\nX-Checksum: abc\r\nServer-Timing: db;dur=5\r\n\r\n'), chunked)
    const whole = await exchange('/trailers-whole')
    assert.match(whole, /\r\nContent-Length: 10\r\n/)
    assert.ok(whole.endsWith('\r\n\r\nwhole body'), whole)
  })

  test('trailers that could break the framing or the head are refused', () => {
    // A Response on a sink that takes nothing: addTrailers() checks before anything is sent.
    const res = new Response({ open: true } as never, { head: false, http11: true, keepAlive: true, serverFields: '' })
    const bads: Array<Record<string, string>> = [{ 'Content-Length': '5' }, { 'transfer-encoding': 'chunked' }, { 'x-a': 'a\r\nb' }, { 'bad name': 'x' }]
    for (const bad of bads) assert.throws(() => res.addTrailers(bad), { code: 'PETREL_ERR_INVALID_HEADER_FOR_RESPONSE' }, JSON.stringify(bad))
  })
})

test('no server errors were reported but the handler timeout above', () => {
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  )
})
