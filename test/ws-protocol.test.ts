// The WebSocket protocol layer (src/protocol/websocket) without sockets: the frame reader gives the
// same frames whatever the read boundaries (every split point of a stream of frames), checks each
// header as RFC 6455 §5.2 asks, and unmasks; the message reader joins fragments, takes control
// frames between them, checks UTF-8 as it arrives and bounds sizes; the handshake's accept key
// matches the RFC's example, and permessage-deflate offers are accepted or declined as RFC 7692 §7
// says.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { deflateRawSync } from 'node:zlib'
import { closePayload, frameHeader, FrameReader, Opcode } from '../src/protocol/websocket/frames.ts'
import { MessageReader, type MessageEvents } from '../src/protocol/websocket/messages.ts'
import { acceptKey, handshakeProblem, negotiateDeflate } from '../src/protocol/websocket/handshake.ts'
import { inflateMessage } from '../src/server/ws-deflate.ts'

/** A client frame: masked with a fixed key, as a browser sends it. */
function clientFrame(opcode: number, payload: Buffer | string, { fin = true, rsv1 = false, mask = true } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const header = frameHeader(fin, rsv1, opcode, data.length)
  if (!mask) return Buffer.concat([header, data])
  header[1] = header[1]! | 0x80
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d])
  const masked = Buffer.from(data)
  for (let i = 0; i < masked.length; i++) masked[i] = masked[i]! ^ key[i % 4]!
  return Buffer.concat([header, key, masked])
}

interface Seen {
  events: string[]
  messages: Array<string | Buffer>
}

function reader(maxMessage = 1 << 20, maxFrame = 1 << 20, deflate = false): { push: (b: Buffer) => void; seen: Seen } {
  const seen: Seen = { events: [], messages: [] }
  const events: MessageEvents = {
    receivedMessage: (data, binary) => {
      seen.messages.push(data)
      seen.events.push(`${binary ? 'binary' : 'text'} ${data.length}`)
    },
    receivedPing: (p) => seen.events.push(`ping ${p.toString()}`),
    receivedPong: (p) => seen.events.push(`pong ${p.toString()}`),
    receivedClose: (code, reason) => seen.events.push(`close ${code} ${reason}`),
    protocolError: (code, why) => seen.events.push(`error ${code} ${why}`),
  }
  const messages = new MessageReader(events, maxMessage, deflate ? inflateMessage : null)
  const frames = new FrameReader(messages, maxFrame)
  frames.rsv1Allowed = deflate
  return { push: (b) => frames.push(b), seen }
}

describe('frames', () => {
  test('every split point of a stream of frames gives the same messages (16- and 64-bit lengths, a ping between fragments, a close)', () => {
    const stream = Buffer.concat([
      clientFrame(Opcode.TEXT, 'hello'),
      clientFrame(Opcode.BINARY, Buffer.alloc(300, 7)),
      clientFrame(Opcode.TEXT, 'frag-', { fin: false }),
      clientFrame(Opcode.PING, 'p'),
      clientFrame(Opcode.CONTINUATION, 'mented €', { fin: true }),
      clientFrame(Opcode.BINARY, Buffer.alloc(70_000, 3)),
      clientFrame(Opcode.CLOSE, closePayload(1000, 'bye')),
    ])
    const expected = ['text 5', 'binary 300', 'ping p', 'text 13', 'binary 70000', 'close 1000 bye']
    const whole = reader()
    whole.push(Buffer.from(stream))
    assert.deepEqual(whole.seen.events, expected)
    assert.equal(whole.seen.messages[2], 'frag-mented €')
    // Every cut (and a cut into three where the frames' headers are: the split-header path).
    for (let cut = 1; cut < stream.length; cut += cut < 400 ? 1 : 997) {
      const r = reader()
      const copy = Buffer.from(stream)
      r.push(copy.subarray(0, cut))
      r.push(copy.subarray(cut))
      assert.deepEqual(r.seen.events, expected, `cut at ${cut}`)
    }
    const bytewise = reader()
    for (let i = 0; i < stream.length; i++) bytewise.push(Buffer.from([stream[i]!]))
    assert.deepEqual(bytewise.seen.events, expected, 'a byte at a time')
  })

  test('header rules (§5.2): unmasked, RSV bits, reserved opcodes, long or fragmented control frames, a 64-bit length with its top bit, a frame over the limit', () => {
    const cases: Array<[string, Buffer, string]> = [
      ['unmasked', clientFrame(Opcode.TEXT, 'x', { mask: false }), 'error 1002 an unmasked frame from the client'],
      ['RSV1 without deflate', clientFrame(Opcode.TEXT, 'x', { rsv1: true }), 'error 1002 RSV1 set without permessage-deflate'],
      [
        'RSV2',
        (() => {
          const f = clientFrame(Opcode.TEXT, 'x')
          f[0] = f[0]! | 0x20
          return f
        })(),
        'error 1002 RSV2 or RSV3 set without an extension that defines them',
      ],
      ['opcode 3', clientFrame(3, 'x'), 'error 1002 the reserved data opcode 3'],
      ['opcode 0xb', clientFrame(0xb, 'x'), 'error 1002 the reserved control opcode 11'],
      ['fragmented ping', clientFrame(Opcode.PING, 'x', { fin: false }), 'error 1002 a fragmented control frame'],
      ['ping of 126', clientFrame(Opcode.PING, Buffer.alloc(126)), 'error 1002 a control frame of 126 bytes, over 125'],
      ['64-bit top bit', Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]), 'error 1002 a 64-bit payload length with its high bits set'],
      ['over the frame limit', clientFrame(Opcode.BINARY, Buffer.alloc(2000)), 'error 1009 a frame of 2000 bytes, over the 1000 allowed'],
    ]
    for (const [what, bytes, expected] of cases) {
      const r = reader(1 << 20, 1000)
      r.push(bytes)
      assert.deepEqual(r.seen.events, [expected], what)
    }
  })
})

describe('messages', () => {
  test('fragmentation rules (§5.4): a continuation with nothing to continue, a new message inside one; control frames between fragments are fine', () => {
    const lone = reader()
    lone.push(clientFrame(Opcode.CONTINUATION, 'x'))
    assert.match(lone.seen.events[0]!, /^error 1002 a continuation frame without a message/)
    const nested = reader()
    nested.push(Buffer.concat([clientFrame(Opcode.TEXT, 'a', { fin: false }), clientFrame(Opcode.TEXT, 'b')]))
    assert.match(nested.seen.events[0]!, /^error 1002 a new message before the fragmented one ended/)
    const between = reader()
    between.push(Buffer.concat([clientFrame(Opcode.BINARY, 'a', { fin: false }), clientFrame(Opcode.PONG, 'q'), clientFrame(Opcode.CONTINUATION, 'b')]))
    assert.deepEqual(between.seen.events, ['pong q', 'binary 2'])
  })

  test('UTF-8: invalid text closes with 1007, in a fragment at once (before the message ends), and a code point split between fragments is fine', () => {
    const bad = reader()
    bad.push(clientFrame(Opcode.TEXT, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80])))
    assert.deepEqual(bad.seen.events, ['error 1007 a text message that is not UTF-8'])
    const early = reader()
    early.push(clientFrame(Opcode.TEXT, Buffer.from([0x61, 0xff]), { fin: false }))
    assert.deepEqual(early.seen.events, ['error 1007 a text message that is not UTF-8'], 'fail fast: no waiting for the last fragment')
    const euro = Buffer.from('€')
    const split = reader()
    split.push(Buffer.concat([clientFrame(Opcode.TEXT, euro.subarray(0, 1), { fin: false }), clientFrame(Opcode.CONTINUATION, euro.subarray(1))]))
    assert.deepEqual(split.seen.messages, ['€'])
    const truncated = reader()
    truncated.push(clientFrame(Opcode.TEXT, euro.subarray(0, 2)))
    assert.deepEqual(truncated.seen.events, ['error 1007 a text message that is not UTF-8'])
  })

  test('sizes: a message over the limit across fragments closes with 1009', () => {
    const r = reader(10)
    r.push(Buffer.concat([clientFrame(Opcode.BINARY, Buffer.alloc(6), { fin: false }), clientFrame(Opcode.CONTINUATION, Buffer.alloc(6))]))
    assert.deepEqual(r.seen.events, ['error 1009 a message over 10 bytes'])
  })

  test('close frames (§5.5.1, §7.4): empty is 1005, one byte and reserved codes are 1002, a reason that is not UTF-8 1007; nothing after a close is read', () => {
    const expectations: Array<[Buffer, string]> = [
      [Buffer.alloc(0), 'close 1005 '],
      [Buffer.from([0x03]), 'error 1002 a close frame of one byte'],
      [closePayload(1004), 'error 1002 the close code 1004'],
      [closePayload(1005), 'error 1002 the close code 1005'],
      [closePayload(2999), 'error 1002 the close code 2999'],
      [closePayload(3000, 'app'), 'close 3000 app'],
      [Buffer.concat([closePayload(1000), Buffer.from([0xff])]), 'error 1007 a close reason that is not UTF-8'],
    ]
    for (const [payload, expected] of expectations) {
      const r = reader()
      r.push(Buffer.concat([clientFrame(Opcode.CLOSE, payload), clientFrame(Opcode.TEXT, 'after')]))
      assert.deepEqual(r.seen.events, [expected], expected)
    }
  })

  test('a close reason is cut at a character to stay within 125 bytes', () => {
    const payload = closePayload(1000, '€'.repeat(60))
    assert.ok(payload.length <= 125)
    assert.equal(payload.subarray(2).toString('utf8'), '€'.repeat(41))
  })

  test('permessage-deflate: a compressed message (RSV1, fragmented too) is inflated; a zip bomb stops at the limit with 1009; bad deflate is 1007', () => {
    const text = 'compressed '.repeat(50)
    const deflated = deflateRawSync(Buffer.from(text))
    const r = reader(1 << 20, 1 << 20, true)
    r.push(
      Buffer.concat([
        clientFrame(Opcode.TEXT, deflated, { rsv1: true }),
        clientFrame(Opcode.TEXT, deflated.subarray(0, 5), { rsv1: true, fin: false }),
        clientFrame(Opcode.CONTINUATION, deflated.subarray(5)),
      ]),
    )
    assert.deepEqual(r.seen.messages, [text, text])
    const bomb = deflateRawSync(Buffer.alloc(20 * 1024 * 1024))
    assert.ok(bomb.length < 100_000)
    const b = reader(1 << 20, 1 << 20, true)
    b.push(clientFrame(Opcode.BINARY, bomb, { rsv1: true }))
    assert.deepEqual(b.seen.events, ['error 1009 a compressed message inflating past 1048576 bytes'])
    const junk = reader(1 << 20, 1 << 20, true)
    junk.push(clientFrame(Opcode.BINARY, Buffer.from([0xff, 0xff, 0xff]), { rsv1: true }))
    assert.deepEqual(junk.seen.events, ['error 1007 a compressed message that does not inflate'])
  })
})

describe('handshake', () => {
  test("Sec-WebSocket-Accept of RFC 6455 §1.3's example; what makes a request a handshake", () => {
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
    const good = { method: 'GET', httpVersion: '1.1', upgrade: 'websocket', connection: 'keep-alive, Upgrade', key: 'dGhlIHNhbXBsZSBub25jZQ==', version: '13' }
    assert.equal(handshakeProblem(good), null)
    assert.equal(handshakeProblem({ ...good, upgrade: undefined })?.status, 426)
    assert.equal(handshakeProblem({ ...good, version: '8' })?.status, 426)
    assert.equal(handshakeProblem({ ...good, method: 'POST' })?.status, 400)
    assert.equal(handshakeProblem({ ...good, connection: 'keep-alive' })?.status, 400)
    assert.equal(handshakeProblem({ ...good, key: 'short' })?.status, 400)
    assert.equal(handshakeProblem({ ...good, httpVersion: '1.0' })?.status, 400)
  })

  test('permessage-deflate offers (RFC 7692 §7): the first acceptable one, both sides without context takeover; unknown, repeated or bad parameters decline an offer', () => {
    const chrome = negotiateDeflate('permessage-deflate; client_max_window_bits')
    assert.equal(chrome?.response, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover')
    assert.equal(chrome?.serverMaxWindowBits, 15)
    const bits = negotiateDeflate('permessage-deflate; server_max_window_bits=10')
    assert.equal(bits?.response, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10')
    assert.equal(negotiateDeflate('permessage-deflate; server_max_window_bits=8'), null, 'zlib has no 8-bit raw window')
    assert.equal(negotiateDeflate('permessage-deflate; foo'), null)
    assert.equal(negotiateDeflate('permessage-deflate; client_no_context_takeover; client_no_context_takeover'), null)
    assert.equal(negotiateDeflate('permessage-deflate; client_max_window_bits=16'), null)
    assert.equal(negotiateDeflate('x-webkit-deflate-frame'), null)
    const second = negotiateDeflate('permessage-deflate; server_max_window_bits=8, permessage-deflate')
    assert.equal(second?.serverMaxWindowBits, 15, 'the first offer declined, the second taken')
  })
})

describe('fragments in bulk', () => {
  test('100,000 one-byte fragments and as many empty ones make one message; UTF-8 is checked across every cut, a bad prefix failing at once', async () => {
    const { Utf8Check } = await import('../src/protocol/websocket/utf8.ts')
    const r = reader(1 << 20)
    const parts: Buffer[] = [clientFrame(Opcode.BINARY, 'a', { fin: false })]
    for (let i = 0; i < 100_000; i++) parts.push(clientFrame(Opcode.CONTINUATION, i % 2 === 0 ? 'b' : '', { fin: false }))
    parts.push(clientFrame(Opcode.CONTINUATION, 'c'))
    r.push(Buffer.concat(parts))
    assert.deepEqual(r.seen.events, ['binary 50002'])
    const text = Buffer.from('aé€😀z')
    for (let size = 1; size <= 4; size++) {
      const check = new Utf8Check()
      let ok = true
      for (let p = 0; p < text.length; p += size) ok &&= check.push(text, p, Math.min(text.length, p + size), p + size >= text.length)
      assert.ok(ok, `cut every ${size} bytes`)
    }
    for (const [bad, what] of [
      [[0xf4, 0x90], 'past U+10FFFF'],
      [[0xed, 0xa0], 'a surrogate'],
      [[0xe0, 0x80], 'an overlong form'],
      [[0xc0], 'a lead no character has'],
    ] as const) {
      const check = new Utf8Check()
      assert.equal(check.push(Buffer.from([0x61, ...bad]), 0, 1 + bad.length, false), false, `${what}: known bad before the rest comes`)
    }
    const open = new Utf8Check()
    assert.equal(open.push(Buffer.from([0xe2, 0x82]), 0, 2, true), false, 'a sequence left open at the message end')
  })
})
