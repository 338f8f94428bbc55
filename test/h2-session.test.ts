// The HTTP/2 session (src/protocol/http2/session.ts) driven with raw frames, its output read back
// as frames: the server preface and SETTINGS ACK, requests with and without bodies, header blocks
// across CONTINUATION, flow control both ways (a response held by a zero window and released by
// WINDOW_UPDATE; request bodies within the window this side announced), the stream and connection
// errors RFC 9113 names, and the attack limits: rapid reset, CONTINUATION flood, PING flood,
// streams past the concurrency limit, an HPACK bomb.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import {
  Flag,
  frame,
  FrameReader,
  FrameType,
  H2Error,
  headersFrames,
  PREFACE,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../src/protocol/http2/frames.ts'
import { HpackEncoder } from '../src/protocol/http2/hpack.ts'
import { H2Session, type H2Stream, type SessionLimits } from '../src/protocol/http2/session.ts'

interface OutFrame {
  type: number
  flags: number
  streamId: number
  payload: Buffer
}

/** A session with a fake socket and a client-side HPACK context. */
function harness(limits: Partial<SessionLimits> = {}, now = () => 0) {
  const written: Buffer[] = []
  let ended = false
  const events: string[] = []
  const requests: Array<{ stream: H2Stream; fields: string[]; endStream: boolean }> = []
  const bodies = new Map<number, string>()
  let session: H2Session
  session = new H2Session(
    { write: (b) => (written.push(Buffer.from(b)), true), end: () => void (ended = true) },
    {
      request: (stream, fields, endStream) => requests.push({ stream, fields: fields.slice(), endStream }),
      data: (stream, chunk, start, end, endStream) => {
        bodies.set(stream.id, (bodies.get(stream.id) ?? '') + chunk.toString('latin1', start, end))
        session.consume(stream, end - start)
        if (endStream) events.push(`end ${stream.id}`)
      },
      trailers: (stream, fields) => events.push(`trailers ${stream.id} ${fields.join(' ')}`),
      reset: (stream, code) => events.push(`reset ${stream.id} ${code}`),
      writable: (stream) => events.push(`writable ${stream.id}`),
      headersTooLarge: (stream) => events.push(`too large ${stream.id}`),
      streamsDone: () => events.push('streams done'),
      closed: (code, why) => events.push(`closed ${code} ${why}`),
    },
    limits,
    now,
  )
  session.start()
  const encoder = new HpackEncoder()
  const read = (): OutFrame[] => {
    const frames: OutFrame[] = []
    const reader = new FrameReader(
      {
        frame: (type, flags, streamId, payload, s, e) => (frames.push({ type, flags, streamId, payload: Buffer.from(payload.subarray(s, e)) }), true),
        framingError: (c, w) => assert.fail(`${c} ${w}`),
      },
      false,
    )
    reader.maxFrameSize = 1 << 24
    reader.push(Buffer.concat(written.splice(0)))
    return frames
  }
  const headers = (streamId: number, fields: Array<[string, string]>, endStream: boolean): Buffer =>
    headersFrames(streamId, Buffer.from(encoder.encode(fields)), endStream, 16_384)
  const GET: Array<[string, string]> = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/'],
    [':authority', 'example.test'],
  ]
  return { session, read, headers, GET, events, requests, bodies, ended: () => ended, push: (...bufs: Buffer[]) => session.push(Buffer.concat(bufs)) }
}

const goawayCode = (frames: OutFrame[]): number | undefined => {
  const g = frames.find((f) => f.type === FrameType.GOAWAY)
  return g === undefined ? undefined : g.payload.readUInt32BE(4)
}

describe('H2Session: the connection', () => {
  test('server preface: SETTINGS (push off, limits) and a connection WINDOW_UPDATE; the client SETTINGS is acknowledged, PING answered', () => {
    const h = harness()
    const first = h.read()
    assert.equal(first[0]!.type, FrameType.SETTINGS)
    const settings = new Map<number, number>()
    for (let p = 0; p < first[0]!.payload.length; p += 6) settings.set(first[0]!.payload.readUInt16BE(p), first[0]!.payload.readUInt32BE(p + 2))
    assert.equal(settings.get(Setting.ENABLE_PUSH), 0)
    assert.equal(settings.get(Setting.MAX_CONCURRENT_STREAMS), 100)
    assert.equal(first[1]!.type, FrameType.WINDOW_UPDATE)
    h.push(
      PREFACE,
      settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1000]]),
      frame(FrameType.PING, 0, 0, Buffer.from('pingpong')),
      frame(FrameType.SETTINGS, Flag.ACK, 0),
    )
    const answer = h.read()
    assert.deepEqual(
      answer.map((f) => [f.type, f.flags]),
      [
        [FrameType.SETTINGS, Flag.ACK],
        [FrameType.PING, Flag.ACK],
      ],
    )
    assert.equal(answer[1]!.payload.toString(), 'pingpong')
    assert.ok(h.session.settingsAcknowledged)
  })

  test('a request without a body, a request with a body in two DATA frames, and trailers', () => {
    const h = harness()
    h.read()
    h.push(PREFACE, settingsFrame([]), h.headers(1, h.GET, true))
    h.push(
      h.headers(
        3,
        [
          [':method', 'POST'],
          [':scheme', 'https'],
          [':path', '/up'],
          [':authority', 'x'],
        ],
        false,
      ),
      frame(FrameType.DATA, 0, 3, Buffer.from('hello ')),
      frame(FrameType.DATA, 0, 3, Buffer.from('world')),
      h.headers(3, [['x-checksum', 'abc']], true),
    )
    assert.deepEqual(
      h.requests.map((r) => [r.stream.id, r.fields.slice(0, 2), r.endStream]),
      [
        [1, [':method', 'GET'], true],
        [3, [':method', 'POST'], false],
      ],
    )
    assert.equal(h.bodies.get(3), 'hello world')
    assert.deepEqual(h.events, ['trailers 3 x-checksum abc'])
  })

  test('a header block across CONTINUATION frames; a frame of another stream in between is a PROTOCOL_ERROR', () => {
    const h = harness()
    h.read()
    const block = Buffer.from(new HpackEncoder().encode([...h.GET, ['x-long', 'v'.repeat(40)]]))
    const split = Buffer.concat([
      frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 10)),
      frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 20)),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(20)),
    ])
    h.push(PREFACE, settingsFrame([]), split)
    assert.equal(h.requests.length, 1)
    assert.equal(h.requests[0]!.fields.at(-1), 'v'.repeat(40))
    const bad = harness()
    bad.read()
    bad.push(PREFACE, settingsFrame([]), frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)), frame(FrameType.PING, 0, 0, Buffer.alloc(8)))
    assert.equal(goawayCode(bad.read()), H2Error.PROTOCOL_ERROR)
    assert.ok(bad.ended())
  })

  test('stream ids: even, or skipped and used later, are PROTOCOL_ERROR; a closed one reused STREAM_CLOSED; DATA on an idle stream is a PROTOCOL_ERROR', () => {
    const even = harness()
    even.push(PREFACE, settingsFrame([]), even.headers(2, even.GET, true))
    assert.equal(goawayCode(even.read()), H2Error.PROTOCOL_ERROR)
    const lower = harness()
    lower.push(PREFACE, settingsFrame([]), lower.headers(5, lower.GET, true), lower.headers(3, lower.GET, true))
    assert.equal(goawayCode(lower.read()), H2Error.PROTOCOL_ERROR, 'stream 3 was skipped, never opened (§5.1.1)')
    const reused = harness()
    reused.push(PREFACE, settingsFrame([]), reused.headers(1, reused.GET, true), reused.headers(3, reused.GET, true))
    const answered = reused.requests[0]!.stream
    reused.session.sendHeaders(answered, [[':status', '204']], true)
    reused.push(reused.headers(1, reused.GET, true))
    assert.equal(goawayCode(reused.read()), H2Error.STREAM_CLOSED, 'stream 1 was opened and closed')
    const idle = harness()
    idle.push(PREFACE, settingsFrame([]), frame(FrameType.DATA, 0, 7, Buffer.from('x')))
    assert.equal(goawayCode(idle.read()), H2Error.PROTOCOL_ERROR)
  })

  test('DATA after END_STREAM is a STREAM_CLOSED stream error; a body longer than its content-length a PROTOCOL_ERROR stream error', () => {
    const h = harness()
    h.push(PREFACE, settingsFrame([]), h.headers(1, h.GET, true), frame(FrameType.DATA, 0, 1, Buffer.from('late')))
    const out = h.read()
    const rst = out.find((f) => f.type === FrameType.RST_STREAM)
    assert.equal(rst?.streamId, 1)
    assert.equal(rst?.payload.readUInt32BE(0), H2Error.STREAM_CLOSED)
    assert.equal(goawayCode(out), undefined, 'the connection goes on')
    const long = harness()
    long.push(
      PREFACE,
      settingsFrame([]),
      long.headers(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'https'],
          [':path', '/'],
          [':authority', 'x'],
        ],
        false,
      ),
    )
    long.requests[0]!.stream.declaredLength = 3
    long.push(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('four')))
    assert.ok(long.events.includes(`reset 1 ${H2Error.PROTOCOL_ERROR}`))
  })

  test('a request answered before its body ended: the body ending closes the stream (it no longer counts against the limit); trailers too', () => {
    const h = harness({ maxConcurrentStreams: 1 })
    const post: Array<[string, string]> = [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':path', '/'],
      [':authority', 'x'],
    ]
    h.push(PREFACE, settingsFrame([]), h.headers(1, post, false))
    h.session.sendHeaders(h.requests[0]!.stream, [[':status', '204']], true)
    h.push(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('late body')))
    assert.equal(h.session.streams.size, 0)
    h.push(h.headers(3, post, false))
    h.session.sendHeaders(h.requests[1]!.stream, [[':status', '204']], true)
    h.push(h.headers(3, [['x-trailer', '1']], true))
    assert.equal(h.session.streams.size, 0, 'trailers on a half-closed (local) stream end it, and the connection goes on')
    h.push(h.headers(5, h.GET, true))
    assert.equal(h.requests.length, 3, 'not refused: the earlier streams were closed')
    assert.equal(goawayCode(h.read()), undefined)
  })

  test('DATA on closed streams is answered with RST_STREAM only up to the control limit, then the connection ends', () => {
    const h = harness({ maxControlPerWindow: 20 })
    h.push(PREFACE, settingsFrame([]), h.headers(1, h.GET, true))
    h.session.sendHeaders(h.requests[0]!.stream, [[':status', '204']], true)
    for (let i = 0; i < 30 && !h.ended(); i++) h.push(frame(FrameType.DATA, 0, 1, Buffer.alloc(0)))
    assert.ok(h.ended())
    assert.equal(goawayCode(h.read()), H2Error.ENHANCE_YOUR_CALM)
  })

  test('GOAWAY from this side: no new streams; the last one finishing ends the connection', () => {
    const h = harness()
    h.push(PREFACE, settingsFrame([]), h.headers(1, h.GET, true))
    h.read()
    h.session.goaway()
    const out = h.read()
    assert.equal(goawayCode(out), H2Error.NO_ERROR)
    assert.equal(out.find((f) => f.type === FrameType.GOAWAY)!.payload.readUInt32BE(0), 1, 'the last stream id')
    h.push(h.headers(3, h.GET, true))
    assert.equal(h.requests.length, 1, 'a stream opened after GOAWAY is not served')
    assert.ok(!h.ended())
    h.session.sendHeaders(h.requests[0]!.stream, [[':status', '204']], true)
    assert.ok(h.ended(), 'the connection ends with its last stream')
  })
})

describe('H2Session: flow control', () => {
  test('a response body waits for window: the peer window of 10 bytes sends 10, WINDOW_UPDATE releases the rest, then writable', () => {
    const h = harness()
    h.push(PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 10]]), h.headers(1, h.GET, true))
    h.read()
    const stream = h.requests[0]!.stream
    h.session.sendHeaders(stream, [[':status', '200']], false)
    assert.equal(h.session.sendData(stream, Buffer.from('0123456789abcdefghij'), false), false)
    let out = h.read().filter((f) => f.type === FrameType.DATA)
    assert.deepEqual(
      out.map((f) => [f.payload.toString(), f.flags]),
      [['0123456789', 0]],
    )
    h.push(windowUpdateFrame(1, 100))
    out = h.read().filter((f) => f.type === FrameType.DATA)
    assert.deepEqual(
      out.map((f) => [f.payload.toString(), f.flags]),
      [['abcdefghij', 0]],
    )
    assert.ok(h.events.includes('writable 1'))
    assert.equal(h.session.sendData(stream, Buffer.alloc(0), true), true)
    assert.deepEqual(
      h.read().map((f) => [f.type, f.flags]),
      [[FrameType.DATA, Flag.END_STREAM]],
    )
  })

  test('a SETTINGS change of the initial window moves open streams; one past 2^31 - 1 is a FLOW_CONTROL_ERROR', () => {
    const h = harness()
    h.push(PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]), h.headers(1, h.GET, true))
    h.read()
    const stream = h.requests[0]!.stream
    h.session.sendHeaders(stream, [[':status', '200']], false)
    h.session.sendData(stream, Buffer.from('abc'), true)
    assert.equal(h.read().filter((f) => f.type === FrameType.DATA && f.payload.length > 0).length, 0)
    h.push(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 100]]))
    assert.deepEqual(
      h
        .read()
        .filter((f) => f.type === FrameType.DATA)
        .map((f) => f.payload.toString()),
      ['abc'],
    )
    const over = harness()
    over.push(PREFACE, settingsFrame([]), over.headers(1, over.GET, false), windowUpdateFrame(1, 0x7fffffff))
    assert.ok(over.events.includes(`reset 1 ${H2Error.FLOW_CONTROL_ERROR}`))
  })

  test('request bodies: DATA beyond the window announced is a FLOW_CONTROL_ERROR; consumed bytes are given back with WINDOW_UPDATE', () => {
    const h = harness({ initialWindowBytes: 100, connectionWindowBytes: 65_535 })
    h.push(
      PREFACE,
      settingsFrame([]),
      h.headers(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'https'],
          [':path', '/'],
          [':authority', 'x'],
        ],
        false,
      ),
    )
    h.read()
    h.push(frame(FrameType.DATA, 0, 1, Buffer.alloc(60)))
    const updates = h.read().filter((f) => f.type === FrameType.WINDOW_UPDATE)
    assert.deepEqual(
      updates.map((f) => [f.streamId, f.payload.readUInt32BE(0)]),
      [[1, 60]],
      'half the stream window consumed: given back',
    )
    h.push(frame(FrameType.DATA, 0, 1, Buffer.alloc(100)))
    assert.equal(h.bodies.get(1)?.length, 160)
    h.push(frame(FrameType.DATA, 0, 1, Buffer.alloc(1)))
    assert.ok(!h.events.some((e) => e.startsWith('reset')), 'within the window after the update')
    const over = harness({ initialWindowBytes: 100 })
    over.push(
      PREFACE,
      settingsFrame([]),
      over.headers(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'https'],
          [':path', '/'],
          [':authority', 'x'],
        ],
        false,
      ),
    )
    over.push(frame(FrameType.DATA, 0, 1, Buffer.alloc(101)))
    assert.ok(over.events.includes(`reset 1 ${H2Error.FLOW_CONTROL_ERROR}`))
  })
})

describe('H2Session: a hostile client', () => {
  test('rapid reset: streams opened and reset past the limit end the connection with ENHANCE_YOUR_CALM', () => {
    const h = harness({ maxControlPerWindow: 50 })
    h.push(PREFACE, settingsFrame([]))
    for (let id = 1; id < 400 && !h.ended(); id += 2) h.push(h.headers(id, h.GET, false), rstStreamFrame(id, H2Error.CANCEL))
    assert.ok(h.ended())
    assert.equal(goawayCode(h.read()), H2Error.ENHANCE_YOUR_CALM)
  })

  test('the control window passes: resets spread over time are allowed', () => {
    let clock = 0
    const h = harness({ maxControlPerWindow: 50, controlWindowMs: 1000 }, () => clock)
    h.push(PREFACE, settingsFrame([]))
    for (let id = 1; id < 400; id += 2) {
      clock += 100
      h.push(h.headers(id, h.GET, false), rstStreamFrame(id, H2Error.CANCEL))
    }
    assert.ok(!h.ended())
  })

  test('CONTINUATION flood: a header block past maxHeaderBlockBytes ends the connection before it is decoded', () => {
    const h = harness({ maxHeaderBlockBytes: 4096 })
    h.push(PREFACE, settingsFrame([]), frame(FrameType.HEADERS, 0, 1, Buffer.alloc(100, 0x82)))
    for (let i = 0; i < 100 && !h.ended(); i++) h.push(frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(100, 0x82)))
    assert.ok(h.ended())
    assert.equal(goawayCode(h.read()), H2Error.ENHANCE_YOUR_CALM)
    assert.equal(h.requests.length, 0)
  })

  test('PING flood ends the connection; streams past the concurrency limit are refused, and a client that keeps opening them is cut', () => {
    const ping = harness({ maxControlPerWindow: 20 })
    ping.push(PREFACE, settingsFrame([]))
    for (let i = 0; i < 30 && !ping.ended(); i++) ping.push(frame(FrameType.PING, 0, 0, Buffer.alloc(8)))
    assert.equal(goawayCode(ping.read()), H2Error.ENHANCE_YOUR_CALM)
    const many = harness({ maxConcurrentStreams: 2 })
    many.push(PREFACE, settingsFrame([]), many.headers(1, many.GET, false), many.headers(3, many.GET, false), many.headers(5, many.GET, false))
    const refused = many.read().find((f) => f.type === FrameType.RST_STREAM)
    assert.equal(refused?.streamId, 5)
    assert.equal(refused?.payload.readUInt32BE(0), H2Error.REFUSED_STREAM)
    for (let id = 7; id < 40 && !many.ended(); id += 2) many.push(many.headers(id, many.GET, false))
    assert.equal(goawayCode(many.read()), H2Error.ENHANCE_YOUR_CALM)
  })

  test('an HPACK bomb: the header list past the limit is not passed on (the owner answers 431); the connection goes on', () => {
    const h = harness({ maxHeaderListBytes: 1024 })
    h.push(PREFACE, settingsFrame([]), h.headers(1, [...h.GET, ['x-big', 'b'.repeat(2000)]], true))
    assert.deepEqual(h.events, ['too large 1'])
    assert.equal(h.requests.length, 0)
    h.push(h.headers(3, h.GET, true))
    assert.equal(h.requests.length, 1, 'the HPACK context stayed in step')
  })

  test('the HPACK decoder of the session refuses a table size update above what it announced: COMPRESSION_ERROR', () => {
    const h = harness({ headerTableBytes: 256 })
    h.push(PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.from([0x3f, 0xe2, 0x1f, 0x82])))
    assert.equal(goawayCode(h.read()), H2Error.COMPRESSION_ERROR)
  })
})
