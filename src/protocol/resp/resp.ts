// RESP2, Redis's wire protocol: commands out as arrays of bulk strings, replies in through an
// incremental parser. The parser takes bytes as they arrive, in any split, and hands out each
// complete reply; a reply cut by a read waits, its bytes kept, until the rest comes.

import { Buffer } from 'node:buffer'

/** A reply: simple and bulk strings as text, integers, arrays, nil as null, errors as RedisError. */
export type Reply = string | number | null | RedisError | Reply[]

export class RedisError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RedisError'
  }
}

export const RESP_LIMITS = {
  /** Bytes buffered for one unfinished reply before the connection is declared broken. */
  maxReplyBytes: 64 * 1024 * 1024,
  /** Elements of one array. */
  maxArrayLength: 1024 * 1024,
} as const

/** `*N\r\n$len\r\narg\r\n…`: how every command is sent. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = Buffer.from(String(arg))
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF)
  }
  return Buffer.concat(parts)
}

const CRLF = Buffer.from('\r\n')
/** Returned inside the parser when the buffer ends before the reply does. */
const INCOMPLETE = Symbol('incomplete')

export class ProtocolError extends Error {
  constructor(message: string) {
    super(`RESP: ${message}`)
    this.name = 'ProtocolError'
  }
}

export class ReplyParser {
  private buffer: Buffer = Buffer.alloc(0)
  private offset = 0
  /** Start of the reply being parsed, in `buffer`. */
  private replyStart = 0
  /** Bytes an unfinished reply is known to need (from a bulk length); 0 when unknown. */
  private need = 0
  /** Chunks held back while fewer than `need` bytes are here: joined once, not once per read. */
  private held: Buffer[] = []
  private heldBytes = 0

  /** Feed bytes; returns the replies they complete, in order. Throws ProtocolError on garbage. */
  push(chunk: Buffer): Reply[] {
    const rest = this.buffer.length - this.offset
    if (this.need > 0 && rest + this.heldBytes + chunk.length < this.need) {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      return []
    }
    this.buffer = rest > 0 || this.held.length > 0 ? Buffer.concat([this.buffer.subarray(this.offset), ...this.held, chunk]) : chunk
    this.held = []
    this.heldBytes = 0
    this.offset = 0
    this.need = 0
    const replies: Reply[] = []
    while (this.offset < this.buffer.length) {
      this.replyStart = this.offset
      const reply = this.parse()
      if (reply === INCOMPLETE) {
        this.offset = this.replyStart
        break
      }
      this.need = 0
      replies.push(reply)
    }
    if (this.buffer.length - this.offset > RESP_LIMITS.maxReplyBytes) throw new ProtocolError(`a reply is larger than ${RESP_LIMITS.maxReplyBytes} bytes`)
    return replies
  }

  /** The line from the offset to CRLF (exclusive), moving past it. */
  private line(): string | typeof INCOMPLETE {
    const cr = this.buffer.indexOf(13, this.offset)
    if (cr < 0 || cr + 1 >= this.buffer.length) return INCOMPLETE
    if (this.buffer[cr + 1] !== 10) throw new ProtocolError('a line ends in CR without LF')
    const text = this.buffer.toString('utf8', this.offset, cr)
    this.offset = cr + 2
    return text
  }

  private integer(text: string): number {
    if (!/^-?\d+$/.test(text)) throw new ProtocolError(`expected an integer, got ${JSON.stringify(text.slice(0, 40))}`)
    return Number(text)
  }

  private parse(): Reply | typeof INCOMPLETE {
    const type = this.buffer[this.offset++]
    const text = this.line()
    if (text === INCOMPLETE) return INCOMPLETE
    switch (type) {
      case 0x2b: // + simple string
        return text
      case 0x2d: // - error
        return new RedisError(text)
      case 0x3a: // : integer
        return this.integer(text)
      case 0x24: { // $ bulk string
        const length = this.integer(text)
        if (length === -1) return null
        if (length < 0 || length > RESP_LIMITS.maxReplyBytes) throw new ProtocolError(`bulk length ${length}`)
        if (this.buffer.length - this.offset < length + 2) {
          this.need = this.offset + length + 2 - this.replyStart
          return INCOMPLETE
        }
        if (this.buffer[this.offset + length] !== 13 || this.buffer[this.offset + length + 1] !== 10) throw new ProtocolError('a bulk string does not end in CRLF')
        const value = this.buffer.toString('utf8', this.offset, this.offset + length)
        this.offset += length + 2
        return value
      }
      case 0x2a: { // * array
        const length = this.integer(text)
        if (length === -1) return null
        if (length < 0 || length > RESP_LIMITS.maxArrayLength) throw new ProtocolError(`array length ${length}`)
        const items: Reply[] = []
        for (let i = 0; i < length; i++) {
          if (this.offset >= this.buffer.length) return INCOMPLETE
          const item = this.parse()
          if (item === INCOMPLETE) return INCOMPLETE
          items.push(item)
        }
        return items
      }
      default:
        throw new ProtocolError(`unknown reply type ${JSON.stringify(String.fromCharCode(type ?? 0))}`)
    }
  }
}
