// WebSocket framing (RFC 6455 §5): a reader that cuts a client's bytes into frames whatever the
// read boundaries, checks each header as §5.2 asks, and unmasks the payload; and the encoder of the
// server's frames (never masked, §5.1). Pure: bytes in, frames out; what a frame means is the
// message layer's business (messages.ts).

import { Buffer } from 'node:buffer'
import { PartialPayload } from '../../core/partial.ts'

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const

/** Close codes (§7.4.1, and the IANA registry's 1012–1014). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Never sent: a close frame without a code (§7.1.5). */
  NO_STATUS: 1005,
  /** Never sent: the connection ended without a close frame (§7.1.5). */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
} as const

/** Whether a peer may send `code` in a close frame (§7.4): the defined ones, and 3000–4999 for libraries and applications. */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

/** The largest control frame payload (§5.5). */
export const MAX_CONTROL_PAYLOAD = 125
/** The longest header: 2 bytes, an 8-byte length, a 4-byte mask. */
const MAX_HEADER_BYTES = 14

export interface FrameHandler {
  /**
   * One frame, its payload unmasked in `payload[start, end)` — a view valid until the call
   * returns. Returns false to stop reading (the connection is closing).
   */
  frame(fin: boolean, rsv1: boolean, opcode: number, payload: Buffer, start: number, end: number): boolean
  /** The bytes cannot be read as frames; `code` is the close code to answer with. */
  framingError(code: number, why: string): void
}

/**
 * Cuts bytes into frames. A frame within one read is unmasked in place and handed on as a view of
 * the read (the read's buffer is the reader's to change); one split across reads is gathered in a
 * buffer of its own, at most maxFrameBytes.
 */
export class FrameReader {
  /** The largest payload accepted; beyond it the connection closes with 1009. */
  maxFrameBytes: number
  /** RSV1 means "compressed" once permessage-deflate is agreed (RFC 7692 §6); before, it is a protocol error. */
  rsv1Allowed = false
  private readonly handler: FrameHandler
  private readonly header = Buffer.alloc(MAX_HEADER_BYTES)
  private headerFill = 0
  /** A payload being gathered across reads. */
  private readonly partial = new PartialPayload()
  private stopped = false
  /** The frame being read: its first byte, and its mask key. */
  private first = 0
  private readonly mask = Buffer.alloc(4)

  constructor(handler: FrameHandler, maxFrameBytes: number) {
    this.handler = handler
    this.maxFrameBytes = maxFrameBytes
  }

  /** Read `chunk[start, end)`; the chunk's bytes may be changed (unmasked in place). */
  push(chunk: Buffer, start = 0, end = chunk.length): void {
    let p = start
    while (p < end && !this.stopped) {
      if (this.partial.buffer !== null) {
        // The rest of a payload split across reads.
        p += this.partial.take(chunk, p, end)
        const payload = this.partial.whole()
        if (payload !== null) this.deliver(payload, 0, payload.length)
        continue
      }
      if (this.headerFill === 0) {
        const headerBytes = headerLength(chunk, p, end)
        if (headerBytes > 0) {
          // The usual case: the whole header in this read, read in place.
          const length = this.begin(chunk, p)
          if (length < 0) return
          p += headerBytes
          if (end - p >= length) {
            this.deliver(chunk, p, p + length)
            p += length
          } else this.gather(length)
          continue
        }
      }
      // A header split across reads: gathered until its length is known and reached.
      this.header[this.headerFill++] = chunk[p++]!
      const headerBytes = headerLength(this.header, 0, this.headerFill)
      if (headerBytes === 0) continue
      this.headerFill = 0
      const length = this.begin(this.header, 0)
      if (length < 0) return
      if (length === 0) this.deliver(this.header, 0, 0)
      else this.gather(length)
    }
  }

  stop(): void {
    this.stopped = true
    this.partial.buffer = null
  }

  /** Check a whole header at `at`; its payload length, or -1 (the reader stopped with a close code). */
  private begin(buf: Buffer, at: number): number {
    const first = buf[at]!
    const second = buf[at + 1]!
    const opcode = first & 0x0f
    const fin = (first & 0x80) !== 0
    let length = second & 0x7f
    let p = at + 2
    if (length === 126) {
      length = buf.readUInt16BE(p)
      p += 2
    } else if (length === 127) {
      const high = buf.readUInt32BE(p)
      // §5.2: the most significant bit must be 0; anything past 2^53 is far past any limit anyway.
      if (high > 0x1fffff) return this.fail(1002, 'a 64-bit payload length with its high bits set')
      length = high * 0x1_0000_0000 + buf.readUInt32BE(p + 4)
      p += 8
    }
    if ((first & 0x30) !== 0) return this.fail(1002, 'RSV2 or RSV3 set without an extension that defines them')
    if (first & 0x40 && (!this.rsv1Allowed || opcode >= 0x8 || opcode === Opcode.CONTINUATION))
      return this.fail(1002, this.rsv1Allowed ? 'RSV1 on a control or continuation frame' : 'RSV1 set without permessage-deflate')
    if (opcode >= 0x8) {
      if (opcode > Opcode.PONG) return this.fail(1002, `the reserved control opcode ${opcode}`)
      if (!fin) return this.fail(1002, 'a fragmented control frame')
      if (length > MAX_CONTROL_PAYLOAD) return this.fail(1002, `a control frame of ${length} bytes, over 125`)
    } else if (opcode > Opcode.BINARY) return this.fail(1002, `the reserved data opcode ${opcode}`)
    // §5.1: every frame from a client is masked.
    if ((second & 0x80) === 0) return this.fail(1002, 'an unmasked frame from the client')
    if (length > this.maxFrameBytes) return this.fail(1009, `a frame of ${length} bytes, over the ${this.maxFrameBytes} allowed`)
    this.first = first
    buf.copy(this.mask, 0, p, p + 4)
    return length
  }

  private gather(length: number): void {
    this.partial.start(length)
  }

  private deliver(payload: Buffer, start: number, end: number): void {
    const mask = this.mask
    unmask(payload, start, end, mask[0]!, mask[1]!, mask[2]!, mask[3]!)
    const first = this.first
    if (!this.handler.frame((first & 0x80) !== 0, (first & 0x40) !== 0, first & 0x0f, payload, start, end)) this.stop()
  }

  private fail(code: number, why: string): -1 {
    this.stop()
    this.handler.framingError(code, why)
    return -1
  }
}

/** The length of the header starting at `buf[at]` if all of it is in `buf[at, end)`, else 0. */
function headerLength(buf: Buffer, at: number, end: number): number {
  if (end - at < 2) return 0
  const len7 = buf[at + 1]! & 0x7f
  // Client frames carry a 4-byte mask; an unmasked one is refused in begin() all the same.
  const bytes = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (buf[at + 1]! & 0x80 ? 4 : 0)
  return end - at >= bytes ? bytes : 0
}

/** XOR `buf[start, end)` with the mask key, in place (§5.3). */
export function unmask(buf: Buffer, start: number, end: number, m0: number, m1: number, m2: number, m3: number): void {
  let i = start
  // Four bytes a step while they last: one loop test for four XORs.
  for (const stop = end - 3; i < stop; i += 4) {
    buf[i] = buf[i]! ^ m0
    buf[i + 1] = buf[i + 1]! ^ m1
    buf[i + 2] = buf[i + 2]! ^ m2
    buf[i + 3] = buf[i + 3]! ^ m3
  }
  // At most three bytes left: the key's first three.
  if (i < end) buf[i] = buf[i++]! ^ m0
  if (i < end) buf[i] = buf[i++]! ^ m1
  if (i < end) buf[i] = buf[i]! ^ m2
}

/** The size of a server frame's header (unmasked) for a payload of `length` bytes. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10
}

/** Write a server frame's header into `out` at 0; returns its size. */
function writeHeader(out: Buffer, fin: boolean, rsv1: boolean, opcode: number, length: number): number {
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode
  if (length < 126) {
    out[1] = length
    return 2
  }
  if (length < 0x10000) {
    out[1] = 126
    out.writeUInt16BE(length, 2)
    return 4
  }
  out[1] = 127
  out.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2)
  out.writeUInt32BE(length >>> 0, 6)
  return 10
}

/** The header of a server frame (unmasked) with a payload of `length` bytes, for a payload written apart. */
export function frameHeader(fin: boolean, rsv1: boolean, opcode: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(headerBytes(length))
  writeHeader(out, fin, rsv1, opcode, length)
  return out
}

/** A whole server frame in one buffer (header and payload, one allocation), as control frames and small messages are sent. */
export function frame(opcode: number, payload: Buffer | string, rsv1 = false): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const out = Buffer.allocUnsafe(headerBytes(length) + length)
  const at = writeHeader(out, true, rsv1, opcode, length)
  if (typeof payload === 'string') out.write(payload, at, 'utf8')
  else payload.copy(out, at)
  return out
}

/** A close frame's payload: the code, then the reason (UTF-8, cut at a character so the payload stays within 125 bytes). */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.allocUnsafe(2 + Buffer.byteLength(reason))
  out.writeUInt16BE(code, 0)
  out.write(reason, 2, 'utf8')
  if (out.length <= MAX_CONTROL_PAYLOAD) return out
  let cut = MAX_CONTROL_PAYLOAD
  // Back to the start of a character: UTF-8 continuation bytes are 10xxxxxx.
  while ((out[cut]! & 0xc0) === 0x80) cut--
  return out.subarray(0, cut)
}
