// HTTP/2 framing (RFC 9113 §4, §6): the connection preface, a reader that cuts a byte stream into
// frames at any split point, the checks every frame must pass before its type is acted on — with
// the error code §4.2, §5.4 and §6 name for each failure — and writers for the frames a server
// sends. The connection's state machine (streams, flow control, the HPACK context) sits on top.

import { Buffer } from 'node:buffer'
import { PartialPayload } from '../../core/partial.ts'

/** The client connection preface (§3.4): this, then a SETTINGS frame. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const

/** Error codes (§7). */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const
export type H2Error = (typeof H2Error)[keyof typeof H2Error]

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const

export const FRAME_HEADER_BYTES = 9
/** The smallest SETTINGS_MAX_FRAME_SIZE, and every peer's until it says otherwise (§4.2). */
export const DEFAULT_MAX_FRAME_SIZE = 16_384
export const MAX_ALLOWED_FRAME_SIZE = 16_777_215
export const MAX_WINDOW = 0x7fffffff

/** What a frame check found: no problem, or an error of the connection or of the frame's stream (§5.4). */
export interface FrameProblem {
  code: H2Error
  /** A stream error (RST_STREAM on that stream) rather than a connection error (GOAWAY). */
  stream: boolean
  why: string
}

const problem = (code: H2Error, why: string, stream = false): FrameProblem => ({ code, stream, why })

/**
 * The checks of §6 that need only the frame itself: which frames belong on stream 0 and which on
 * a stream, the fixed payload lengths, padding that does not fit, a SETTINGS ACK with a payload.
 * `length` is the payload length; `padLength` the payload's first byte when the frame is PADDED
 * (0 otherwise).
 */
export function checkFrame(type: number, flags: number, streamId: number, length: number, padLength: number): FrameProblem | null {
  switch (type) {
    case FrameType.DATA:
    case FrameType.HEADERS:
    case FrameType.CONTINUATION:
    case FrameType.PRIORITY:
    case FrameType.RST_STREAM:
      if (streamId === 0) return problem(H2Error.PROTOCOL_ERROR, `a frame of type ${type} on stream 0`)
      break
    case FrameType.SETTINGS:
    case FrameType.PING:
    case FrameType.GOAWAY:
      if (streamId !== 0) return problem(H2Error.PROTOCOL_ERROR, `a frame of type ${type} on stream ${streamId}`)
      break
    case FrameType.PUSH_PROMISE:
      // A client never pushes (§8.4): PUSH_PROMISE from one is a connection error.
      return problem(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE from a client')
  }
  switch (type) {
    case FrameType.PRIORITY:
      if (length !== 5) return problem(H2Error.FRAME_SIZE_ERROR, `PRIORITY of ${length} bytes`, true)
      break
    case FrameType.RST_STREAM:
      if (length !== 4) return problem(H2Error.FRAME_SIZE_ERROR, `RST_STREAM of ${length} bytes`)
      break
    case FrameType.SETTINGS:
      if (flags & Flag.ACK ? length !== 0 : length % 6 !== 0) return problem(H2Error.FRAME_SIZE_ERROR, `SETTINGS of ${length} bytes`)
      break
    case FrameType.PING:
      if (length !== 8) return problem(H2Error.FRAME_SIZE_ERROR, `PING of ${length} bytes`)
      break
    case FrameType.GOAWAY:
      if (length < 8) return problem(H2Error.FRAME_SIZE_ERROR, `GOAWAY of ${length} bytes`)
      break
    case FrameType.WINDOW_UPDATE:
      if (length !== 4) return problem(H2Error.FRAME_SIZE_ERROR, `WINDOW_UPDATE of ${length} bytes`)
      break
    case FrameType.DATA:
    case FrameType.HEADERS: {
      if ((flags & Flag.PADDED) === 0) break
      // The pad length byte, the priority fields of HEADERS and the padding must fit (§6.1, §6.2).
      const fixed = 1 + (type === FrameType.HEADERS && flags & Flag.PRIORITY ? 5 : 0)
      if (length < fixed || padLength > length - fixed) return problem(H2Error.PROTOCOL_ERROR, `padding of ${padLength} in a frame of ${length} bytes`)
      break
    }
  }
  if (type === FrameType.HEADERS && flags & Flag.PRIORITY && !(flags & Flag.PADDED) && length < 5)
    return problem(H2Error.FRAME_SIZE_ERROR, `HEADERS with priority in ${length} bytes`)
  return null
}

/** What the reader hands on: one frame whose payload is `payload[start, end)` (valid until the handler returns). */
export interface FrameHandler {
  /** Returns false to stop reading (the connection is ending). */
  frame(type: number, flags: number, streamId: number, payload: Buffer, start: number, end: number): boolean
  /** The stream cannot be read as frames: a bad preface, or a frame over the size this side allows. */
  framingError(code: H2Error, why: string): void
}

/**
 * Cuts bytes into frames, whatever the read boundaries: the preface first (when `expectPreface`),
 * then 9-byte headers and their payloads. A payload within one read is handed on as a view of
 * it; one split across reads is gathered in a buffer of its own, at most maxFrameSize bytes.
 */
export class FrameReader {
  /** The largest payload accepted (the SETTINGS_MAX_FRAME_SIZE this side announced). */
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE
  private readonly handler: FrameHandler
  private prefaceLeft: number
  /** A payload being gathered across reads. */
  private readonly partial = new PartialPayload()
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES)
  private headerFill = 0
  private stopped = false

  constructor(handler: FrameHandler, expectPreface = true) {
    this.handler = handler
    this.prefaceLeft = expectPreface ? PREFACE.length : 0
  }

  /** Read `chunk[start, end)`. */
  push(chunk: Buffer, start = 0, end = chunk.length): void {
    let p = start
    while (p < end && !this.stopped) {
      if (this.prefaceLeft > 0) {
        const at = PREFACE.length - this.prefaceLeft
        const n = Math.min(this.prefaceLeft, end - p)
        if (PREFACE.compare(chunk, p, p + n, at, at + n) !== 0) return this.fail(H2Error.PROTOCOL_ERROR, 'the connection did not start with the HTTP/2 preface')
        this.prefaceLeft -= n
        p += n
        continue
      }
      if (this.partial.buffer !== null) {
        // The rest of a payload split across reads.
        p += this.partial.take(chunk, p, end)
        const payload = this.partial.whole()
        if (payload !== null) this.deliver(payload, 0, payload.length)
        continue
      }
      if (this.headerFill === 0 && end - p >= FRAME_HEADER_BYTES) {
        // The usual case: the whole header in this read, read in place.
        const length = chunk.readUIntBE(p, 3)
        if (!this.begin(chunk, p, length)) return
        p += FRAME_HEADER_BYTES
        if (end - p >= length) {
          this.deliver(chunk, p, p + length)
          p += length
        } else {
          this.gather(length)
        }
        continue
      }
      // A header split across reads.
      const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, end - p)
      chunk.copy(this.header, this.headerFill, p, p + n)
      this.headerFill += n
      p += n
      if (this.headerFill < FRAME_HEADER_BYTES) return
      this.headerFill = 0
      const length = this.header.readUIntBE(0, 3)
      if (!this.begin(this.header, 0, length)) return
      if (length === 0) this.deliver(EMPTY, 0, 0)
      else this.gather(length)
    }
  }

  /** Bytes of the current frame (its header read): type, flags and stream of the frame being read. */
  private type = 0
  private flags = 0
  private streamId = 0

  private begin(buf: Buffer, at: number, length: number): boolean {
    if (length > this.maxFrameSize) {
      this.fail(H2Error.FRAME_SIZE_ERROR, `a frame of ${length} bytes, over the ${this.maxFrameSize} allowed`)
      return false
    }
    this.type = buf[at + 3]!
    this.flags = buf[at + 4]!
    // The reserved bit is ignored (§4.1).
    this.streamId = buf.readUInt32BE(at + 5) & MAX_WINDOW
    return true
  }

  private gather(length: number): void {
    this.partial.start(length)
  }

  private deliver(payload: Buffer, start: number, end: number): void {
    if (!this.handler.frame(this.type, this.flags, this.streamId, payload, start, end)) this.stopped = true
  }

  private fail(code: H2Error, why: string): void {
    this.stopped = true
    this.handler.framingError(code, why)
  }

  /** Stop reading: nothing more is handed on. */
  stop(): void {
    this.stopped = true
  }
}

const EMPTY = Buffer.alloc(0)

/** A frame header written into `out` at `at`. */
export function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, at, 3)
  out[at + 3] = type
  out[at + 4] = flags
  out.writeUInt32BE(streamId & MAX_WINDOW, at + 5)
}

/** A whole frame with `payload` as its body. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  writeFrameHeader(out, 0, payload.length, type, flags, streamId)
  payload.copy(out, FRAME_HEADER_BYTES)
  return out
}

/** A SETTINGS frame with these [id, value] pairs. */
export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6)
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6)
    payload.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(FrameType.SETTINGS, 0, 0, payload)
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0)

export function goawayFrame(lastStreamId: number, code: H2Error, debug = ''): Buffer {
  const text = Buffer.from(debug, 'utf8')
  const payload = Buffer.allocUnsafe(8 + text.length)
  payload.writeUInt32BE(lastStreamId & MAX_WINDOW, 0)
  payload.writeUInt32BE(code, 4)
  text.copy(payload, 8)
  return frame(FrameType.GOAWAY, 0, 0, payload)
}

export function rstStreamFrame(streamId: number, code: H2Error): Buffer {
  const payload = Buffer.allocUnsafe(4)
  payload.writeUInt32BE(code, 0)
  return frame(FrameType.RST_STREAM, 0, streamId, payload)
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4)
  payload.writeUInt32BE(increment & MAX_WINDOW, 0)
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload)
}

/**
 * A header block as HEADERS then CONTINUATION frames of at most `maxFrameSize` bytes each (the
 * peer's SETTINGS_MAX_FRAME_SIZE), END_HEADERS on the last; END_STREAM on HEADERS when asked.
 */
export function headersFrames(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number, spare = 0): Buffer {
  const pieces = Math.max(1, Math.ceil(block.length / maxFrameSize))
  // `spare` bytes after the frames are the caller's (the DATA frame of a whole response).
  const out = Buffer.allocUnsafe(block.length + pieces * FRAME_HEADER_BYTES + spare)
  let p = 0
  for (let i = 0; i < pieces; i++) {
    const from = i * maxFrameSize
    const to = Math.min(block.length, from + maxFrameSize)
    const last = i === pieces - 1
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION
    const flags = (last ? Flag.END_HEADERS : 0) | (i === 0 && endStream ? Flag.END_STREAM : 0)
    writeFrameHeader(out, p, to - from, type, flags, streamId)
    block.copy(out, p + FRAME_HEADER_BYTES, from, to)
    p += FRAME_HEADER_BYTES + to - from
  }
  return out
}

/**
 * The peer's settings from a SETTINGS payload, checked (§6.5.2): unknown ids are ignored;
 * ENABLE_PUSH other than 0 or 1 and MAX_FRAME_SIZE out of range are PROTOCOL_ERROR, an
 * INITIAL_WINDOW_SIZE above 2^31 - 1 a FLOW_CONTROL_ERROR. `apply` gets each known setting in order.
 */
export function readSettings(payload: Buffer, start: number, end: number, apply: (id: number, value: number) => void): FrameProblem | null {
  for (let p = start; p + 6 <= end; p += 6) {
    const id = payload.readUInt16BE(p)
    const value = payload.readUInt32BE(p + 2)
    if (id === Setting.ENABLE_PUSH && value > 1) return problem(H2Error.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH of ${value}`)
    if (id === Setting.INITIAL_WINDOW_SIZE && value > MAX_WINDOW) return problem(H2Error.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE of ${value}`)
    if (id === Setting.MAX_FRAME_SIZE && (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE))
      return problem(H2Error.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE of ${value}`)
    if (id >= Setting.HEADER_TABLE_SIZE && id <= Setting.MAX_HEADER_LIST_SIZE) apply(id, value)
  }
  return null
}
