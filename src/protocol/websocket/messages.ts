// WebSocket messages from frames (RFC 6455 §5.4–5.5, §8.1): fragments joined, control frames
// taken between them, text checked as UTF-8 as it arrives (a bad byte closes at once, not at the
// message's end), messages bounded in size, compressed messages (RFC 7692) inflated by the
// owner's function within that bound, close frames read (code, UTF-8 reason). Pure: frames in,
// events out.
//
// A fragmented message is gathered in one buffer that grows by doubling up to the size limit:
// its memory is its bytes, however many fragments (empty ones included) it came in.

import { Buffer, isUtf8 } from 'node:buffer'
import { CloseCode, Opcode, isValidCloseCode, type FrameHandler } from './frames.ts'
import { Utf8Check } from './utf8.ts'

export interface MessageEvents {
  /** A whole message: text as a string (valid UTF-8), binary as a Buffer of its own. */
  receivedMessage(data: string | Buffer, binary: boolean): void
  /** A ping's payload: a view valid until the call returns. */
  receivedPing(payload: Buffer): void
  /** A pong's payload: a view valid until the call returns. */
  receivedPong(payload: Buffer): void
  /** The client's close frame: its code (1005 when it gave none) and reason. */
  receivedClose(code: number, reason: string): void
  /** A protocol error: the connection closes with `code`. */
  protocolError(code: number, why: string): void
}

/**
 * Inflates a compressed message (RFC 7692 §7.2.2): the whole payload, at most `maxBytes` of
 * output. Returns the bytes, or null when the output would pass `maxBytes` (a zip bomb: 1009).
 * Throws when the data is not valid deflate (1007).
 */
export type Inflate = (compressed: Buffer, maxBytes: number) => Buffer | null

/** The first size of a fragmented message's buffer; it doubles as needed. */
const FIRST_BYTES = 4096

export class MessageReader implements FrameHandler {
  /** The largest message, after inflation; beyond it the connection closes with 1009. */
  maxMessageBytes: number
  private readonly events: MessageEvents
  private readonly inflate: Inflate | null
  /** The fragmented message under way: its opcode (0: none), whether compressed, its bytes so far. */
  private opcode = 0
  private compressed = false
  private buffer: Buffer | null = null
  private fill = 0
  private readonly utf8 = new Utf8Check()

  constructor(events: MessageEvents, maxMessageBytes: number, inflate: Inflate | null) {
    this.events = events
    this.maxMessageBytes = maxMessageBytes
    this.inflate = inflate
  }

  framingError(code: number, why: string): void {
    this.events.protocolError(code, why)
  }

  frame(fin: boolean, rsv1: boolean, opcode: number, payload: Buffer, start: number, end: number): boolean {
    if (opcode >= Opcode.CLOSE) return this.control(opcode, payload, start, end)
    if (opcode === Opcode.CONTINUATION) {
      if (this.opcode === 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'a continuation frame without a message to continue')
    } else {
      if (this.opcode !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'a new message before the fragmented one ended')
      if (fin && !rsv1) return this.whole(opcode, payload, start, end)
      this.opcode = opcode
      this.compressed = rsv1
      this.fill = 0
      this.utf8.reset()
    }
    const length = end - start
    if (this.fill + length > this.maxMessageBytes) return this.fail(CloseCode.MESSAGE_TOO_BIG, `a message over ${this.maxMessageBytes} bytes`)
    // Checked as it arrives (Autobahn's "fail fast"): a bad sequence closes now.
    if (this.opcode === Opcode.TEXT && !this.compressed && !this.utf8.push(payload, start, end, fin))
      return this.fail(CloseCode.INVALID_PAYLOAD, 'a text message that is not UTF-8')
    if (length > 0) this.append(payload, start, end)
    return fin ? this.finish() : true
  }

  /** A message in one uncompressed frame: the usual case, no copy for text. */
  private whole(opcode: number, payload: Buffer, start: number, end: number): boolean {
    if (end - start > this.maxMessageBytes) return this.fail(CloseCode.MESSAGE_TOO_BIG, `a message over ${this.maxMessageBytes} bytes`)
    if (opcode === Opcode.TEXT) {
      if (!isUtf8(payload.subarray(start, end))) return this.fail(CloseCode.INVALID_PAYLOAD, 'a text message that is not UTF-8')
      this.events.receivedMessage(payload.toString('utf8', start, end), false)
    } else this.events.receivedMessage(Buffer.from(payload.subarray(start, end)), true)
    return true
  }

  /** Add a fragment's bytes, growing the buffer by doubling (never past the limit). */
  private append(payload: Buffer, start: number, end: number): void {
    const need = this.fill + (end - start)
    let buffer = this.buffer
    if (buffer === null || buffer.length < need) {
      let size = Math.max(FIRST_BYTES, buffer === null ? 0 : buffer.length * 2)
      while (size < need) size *= 2
      const grown = Buffer.allocUnsafe(Math.min(size, Math.max(need, this.maxMessageBytes)))
      if (buffer !== null) buffer.copy(grown, 0, 0, this.fill)
      this.buffer = buffer = grown
    }
    payload.copy(buffer, this.fill, start, end)
    this.fill = need
  }

  private finish(): boolean {
    const opcode = this.opcode
    // The message's bytes leave with it: the next message starts a buffer of its own.
    const joined = this.buffer === null ? Buffer.alloc(0) : this.buffer.subarray(0, this.fill)
    this.buffer = null
    this.opcode = 0
    let body = joined
    if (this.compressed) {
      this.compressed = false
      let inflated: Buffer | null
      try {
        inflated = this.inflate!(joined, this.maxMessageBytes)
      } catch {
        return this.fail(CloseCode.INVALID_PAYLOAD, 'a compressed message that does not inflate')
      }
      if (inflated === null) return this.fail(CloseCode.MESSAGE_TOO_BIG, `a compressed message inflating past ${this.maxMessageBytes} bytes`)
      body = inflated
      if (opcode === Opcode.TEXT && !isUtf8(body)) return this.fail(CloseCode.INVALID_PAYLOAD, 'a text message that is not UTF-8')
    }
    this.events.receivedMessage(opcode === Opcode.TEXT ? body.toString('utf8') : body, opcode === Opcode.BINARY)
    return true
  }

  private control(opcode: number, payload: Buffer, start: number, end: number): boolean {
    if (opcode === Opcode.PING) this.events.receivedPing(payload.subarray(start, end))
    else if (opcode === Opcode.PONG) this.events.receivedPong(payload.subarray(start, end))
    else {
      // Close (§5.5.1): empty, or a code and a UTF-8 reason.
      const length = end - start
      if (length === 0) this.events.receivedClose(CloseCode.NO_STATUS, '')
      else if (length === 1) return this.fail(CloseCode.PROTOCOL_ERROR, 'a close frame of one byte')
      else {
        const code = payload.readUInt16BE(start)
        if (!isValidCloseCode(code)) return this.fail(CloseCode.PROTOCOL_ERROR, `the close code ${code}`)
        const reason = payload.subarray(start + 2, end)
        if (!isUtf8(reason)) return this.fail(CloseCode.INVALID_PAYLOAD, 'a close reason that is not UTF-8')
        this.events.receivedClose(code, reason.toString('utf8'))
      }
      // Nothing after a close frame is read (§5.5.1).
      return false
    }
    return true
  }

  private fail(code: number, why: string): false {
    this.buffer = null
    this.opcode = 0
    this.events.protocolError(code, why)
    return false
  }
}
