// HTTP/2 framing (src/protocol/http2/frames.ts): the reader cuts the same frames out of a byte
// stream however it is split (every split point of a connection's opening, and three-way splits),
// refuses a bad preface and an oversized frame with the right code, and the per-frame checks of
// RFC 9113 §6 each answer with the error code and scope (connection or stream) the RFC names.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import {
  checkFrame,
  Flag,
  frame,
  FrameReader,
  FrameType,
  goawayFrame,
  H2Error,
  headersFrames,
  PREFACE,
  readSettings,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../src/protocol/http2/frames.ts'

interface Seen {
  type: number
  flags: number
  streamId: number
  payload: string
}

function readAll(chunks: Buffer[], maxFrameSize?: number): { frames: Seen[]; error: string | null } {
  const frames: Seen[] = []
  let error: string | null = null
  const reader = new FrameReader({
    frame: (type, flags, streamId, payload, start, end) => {
      frames.push({ type, flags, streamId, payload: payload.toString('hex', start, end) })
      return true
    },
    framingError: (code, why) => {
      error = `${code}: ${why}`
    },
  })
  if (maxFrameSize !== undefined) reader.maxFrameSize = maxFrameSize
  for (const chunk of chunks) reader.push(chunk)
  return { frames, error }
}

const padded = Buffer.concat([Buffer.from([3]), Buffer.from('body'), Buffer.alloc(3)])
const OPENING = Buffer.concat([
  PREFACE,
  settingsFrame([
    [Setting.MAX_CONCURRENT_STREAMS, 100],
    [Setting.INITIAL_WINDOW_SIZE, 65_535],
  ]),
  frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0xf, 0, 1])),
  headersFrames(1, Buffer.from('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'.replace(/ /g, ''), 'hex'), false, 16_384),
  frame(FrameType.DATA, Flag.PADDED, 1, padded),
  frame(FrameType.PING, 0, 0, Buffer.from('01234567')),
  frame(FrameType.DATA, Flag.END_STREAM, 1),
])

describe('FrameReader', () => {
  const whole = readAll([OPENING])

  test('reads the opening of a connection: preface, SETTINGS, WINDOW_UPDATE, HEADERS, padded DATA, PING, empty DATA', () => {
    assert.equal(whole.error, null)
    assert.deepEqual(
      whole.frames.map((f) => [f.type, f.flags, f.streamId]),
      [
        [FrameType.SETTINGS, 0, 0],
        [FrameType.WINDOW_UPDATE, 0, 0],
        [FrameType.HEADERS, Flag.END_HEADERS, 1],
        [FrameType.DATA, Flag.PADDED, 1],
        [FrameType.PING, 0, 0],
        [FrameType.DATA, Flag.END_STREAM, 1],
      ],
    )
    assert.equal(whole.frames[4]!.payload, Buffer.from('01234567').toString('hex'))
    assert.equal(whole.frames[5]!.payload, '')
  })

  test('every split point in two, and every byte alone, gives the same frames', () => {
    for (let cut = 0; cut <= OPENING.length; cut++) assert.deepEqual(readAll([OPENING.subarray(0, cut), OPENING.subarray(cut)]), whole, `cut at ${cut}`)
    assert.deepEqual(readAll([...OPENING].map((b) => Buffer.from([b]))), whole)
  })

  test('three-way splits (every pair of cut points 7 bytes apart) give the same frames', () => {
    for (let a = 0; a < OPENING.length; a += 7)
      for (let b = a; b <= OPENING.length; b += 7)
        assert.deepEqual(readAll([OPENING.subarray(0, a), OPENING.subarray(a, b), OPENING.subarray(b)]), whole, `cuts at ${a}, ${b}`)
  })

  test('a connection that does not start with the preface is a PROTOCOL_ERROR, found at the first wrong byte', () => {
    const r = readAll([Buffer.from('GET / HTTP/1.1\r\n\r\n')])
    assert.match(r.error ?? '', /^1: the connection did not start with the HTTP\/2 preface/)
    assert.deepEqual(r.frames, [])
    const split = readAll([PREFACE.subarray(0, 10), Buffer.from('X')])
    assert.match(split.error ?? '', /^1:/)
  })

  test('a frame over the allowed size is a FRAME_SIZE_ERROR before its payload is read', () => {
    const big = frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385))
    const r = readAll([PREFACE, big.subarray(0, 9)])
    assert.match(r.error ?? '', /^6: a frame of 16385 bytes, over the 16384 allowed/)
    assert.equal(readAll([PREFACE, big], 32_768).error, null)
  })

  test('a handler that returns false stops the reader', () => {
    let count = 0
    const reader = new FrameReader({
      frame: () => ++count < 2,
      framingError: () => assert.fail('no error'),
    })
    reader.push(OPENING)
    assert.equal(count, 2)
  })
})

describe('frame checks (RFC 9113 §6)', () => {
  const cases: Array<[string, [number, number, number, number, number], number | null, boolean?]> = [
    ['DATA on stream 0', [FrameType.DATA, 0, 0, 4, 0], H2Error.PROTOCOL_ERROR],
    ['HEADERS on stream 0', [FrameType.HEADERS, Flag.END_HEADERS, 0, 4, 0], H2Error.PROTOCOL_ERROR],
    ['SETTINGS on a stream', [FrameType.SETTINGS, 0, 1, 0, 0], H2Error.PROTOCOL_ERROR],
    ['PING on a stream', [FrameType.PING, 0, 3, 8, 0], H2Error.PROTOCOL_ERROR],
    ['GOAWAY on a stream', [FrameType.GOAWAY, 0, 1, 8, 0], H2Error.PROTOCOL_ERROR],
    ['PUSH_PROMISE from a client', [FrameType.PUSH_PROMISE, 0, 1, 4, 0], H2Error.PROTOCOL_ERROR],
    ['SETTINGS ACK with a payload', [FrameType.SETTINGS, Flag.ACK, 0, 6, 0], H2Error.FRAME_SIZE_ERROR],
    ['SETTINGS of 5 bytes', [FrameType.SETTINGS, 0, 0, 5, 0], H2Error.FRAME_SIZE_ERROR],
    ['PING of 7 bytes', [FrameType.PING, 0, 0, 7, 0], H2Error.FRAME_SIZE_ERROR],
    ['RST_STREAM of 3 bytes', [FrameType.RST_STREAM, 0, 1, 3, 0], H2Error.FRAME_SIZE_ERROR],
    ['WINDOW_UPDATE of 5 bytes', [FrameType.WINDOW_UPDATE, 0, 0, 5, 0], H2Error.FRAME_SIZE_ERROR],
    ['GOAWAY of 7 bytes', [FrameType.GOAWAY, 0, 0, 7, 0], H2Error.FRAME_SIZE_ERROR],
    ['PRIORITY of 4 bytes: a stream error', [FrameType.PRIORITY, 0, 1, 4, 0], H2Error.FRAME_SIZE_ERROR, true],
    ['DATA whose padding does not fit', [FrameType.DATA, Flag.PADDED, 1, 4, 4], H2Error.PROTOCOL_ERROR],
    ['HEADERS with priority whose padding does not fit', [FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, 8, 3], H2Error.PROTOCOL_ERROR],
    ['HEADERS with priority in 4 bytes', [FrameType.HEADERS, Flag.PRIORITY, 1, 4, 0], H2Error.FRAME_SIZE_ERROR],
    ['DATA with padding that fits exactly', [FrameType.DATA, Flag.PADDED, 1, 4, 3], null],
    ['an empty DATA', [FrameType.DATA, Flag.END_STREAM, 1, 0, 0], null],
    ['an unknown type on any stream', [0x42, 0xff, 7, 100, 0], null],
  ]
  for (const [name, args, code, stream] of cases) {
    test(name, () => {
      const found = checkFrame(...args)
      if (code === null) assert.equal(found, null)
      else {
        assert.equal(found?.code, code)
        assert.equal(found?.stream, stream === true)
      }
    })
  }

  test('SETTINGS values: ENABLE_PUSH 2 and MAX_FRAME_SIZE out of range are PROTOCOL_ERROR, a window over 2^31 - 1 FLOW_CONTROL_ERROR; unknown ids ignored', () => {
    const payload = (pairs: Array<[number, number]>) => settingsFrame(pairs).subarray(9)
    const check = (pairs: Array<[number, number]>) => {
      const applied: Array<[number, number]> = []
      const p = payload(pairs)
      return { problem: readSettings(p, 0, p.length, (id, value) => applied.push([id, value])), applied }
    }
    assert.equal(check([[Setting.ENABLE_PUSH, 2]]).problem?.code, H2Error.PROTOCOL_ERROR)
    assert.equal(check([[Setting.MAX_FRAME_SIZE, 16_383]]).problem?.code, H2Error.PROTOCOL_ERROR)
    assert.equal(check([[Setting.MAX_FRAME_SIZE, 16_777_216]]).problem?.code, H2Error.PROTOCOL_ERROR)
    assert.equal(check([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]]).problem?.code, H2Error.FLOW_CONTROL_ERROR)
    assert.deepEqual(
      check([
        [0x99, 1],
        [Setting.HEADER_TABLE_SIZE, 0],
        [Setting.MAX_FRAME_SIZE, 16_777_215],
      ]),
      {
        problem: null,
        applied: [
          [Setting.HEADER_TABLE_SIZE, 0],
          [Setting.MAX_FRAME_SIZE, 16_777_215],
        ],
      },
    )
  })
})

describe('frame writers', () => {
  test('a header block larger than the peer frame size goes as HEADERS then CONTINUATIONs, END_HEADERS on the last only', () => {
    const block = Buffer.alloc(40_000, 7)
    const bytes = headersFrames(5, block, true, 16_384)
    const { frames, error } = readAll([PREFACE, bytes])
    assert.equal(error, null)
    assert.deepEqual(
      frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length / 2]),
      [
        [FrameType.HEADERS, Flag.END_STREAM, 5, 16_384],
        [FrameType.CONTINUATION, 0, 5, 16_384],
        [FrameType.CONTINUATION, Flag.END_HEADERS, 5, 7_232],
      ],
    )
  })

  test('GOAWAY, RST_STREAM and WINDOW_UPDATE carry their fields', () => {
    const { frames } = readAll([PREFACE, goawayFrame(7, H2Error.ENHANCE_YOUR_CALM, 'calm'), rstStreamFrame(3, H2Error.CANCEL), windowUpdateFrame(0, 1 << 20)])
    assert.deepEqual(frames, [
      { type: FrameType.GOAWAY, flags: 0, streamId: 0, payload: `00000007${'0000000b'}${Buffer.from('calm').toString('hex')}` },
      { type: FrameType.RST_STREAM, flags: 0, streamId: 3, payload: '00000008' },
      { type: FrameType.WINDOW_UPDATE, flags: 0, streamId: 0, payload: '00100000' },
    ])
  })
})
