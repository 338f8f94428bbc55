// What the ws suite's load generator needs of RFC 6455, and no more: the handshake request,
// pre-built masked client frames, and a reader of the server's (unmasked) frames that counts
// whole data frames at any split of the byte stream and, for the clients that look, hands over
// the first bytes of each payload (where the fan-out scenario puts its timestamp).

import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'

/** The handshake request for `path` (one fixed key: the generator does not check the accept). */
export function handshakeRequest(host: string, port: number, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    'latin1',
  )
}

/** A masked client frame (FIN, `opcode`) carrying `payload`, with a random mask key. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8
  const frame = Buffer.allocUnsafe(2 + extended + 4 + length)
  frame[0] = 0x80 | opcode
  if (extended === 0) frame[1] = 0x80 | length
  else if (extended === 2) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  const maskAt = 2 + extended
  randomBytes(4).copy(frame, maskAt)
  for (let i = 0; i < length; i++) frame[maskAt + 4 + i] = payload[i]! ^ frame[maskAt + (i & 3)]!
  return frame
}

/** How many payload bytes the reader keeps of each frame for a client that looks (`peek`). */
export const PEEK_BYTES = 16

/**
 * Reads the server's frames of one connection. `read` returns how many whole data frames
 * (text, binary, continuation) ended in the bytes given; control frames are passed over
 * (a close frame sets `closed`). With `peek`, the first PEEK_BYTES of each data frame's payload
 * are given to `onPeek` once the frame is whole.
 */
export class FrameCounter {
  /** Payload bytes of the current frame still to come. */
  private remaining = 0
  /** The current frame's payload length, and whether it is a data frame. */
  private length = 0
  private data = false
  /** Bytes of a header cut by a read (at most 10). */
  private readonly header = Buffer.alloc(10)
  private headerBytes = 0
  private readonly peeked: Buffer | null
  private readonly onPeek: ((payload: Buffer) => void) | null
  closed = false

  constructor(onPeek: ((payload: Buffer) => void) | null = null) {
    this.onPeek = onPeek
    this.peeked = onPeek === null ? null : Buffer.alloc(PEEK_BYTES)
  }

  read(bytes: Buffer, start: number, end: number): number {
    let frames = 0
    let at = start
    while (at < end) {
      if (this.remaining > 0) {
        const take = this.remaining < end - at ? this.remaining : end - at
        if (this.peeked !== null && this.data) {
          const offset = this.length - this.remaining
          if (offset < PEEK_BYTES) bytes.copy(this.peeked, offset, at, at + Math.min(take, PEEK_BYTES - offset))
        }
        at += take
        this.remaining -= take
        if (this.remaining === 0 && this.data) {
          frames++
          this.onPeek?.(this.peeked!)
        }
        continue
      }
      // A header: the fast path has it whole in this read with a 7-bit length.
      let b0: number
      let length: number
      if (this.headerBytes === 0 && end - at >= 2 && (bytes[at + 1]! & 127) < 126) {
        b0 = bytes[at]!
        length = bytes[at + 1]! & 127
        at += 2
      } else {
        while (this.headerBytes < 2 && at < end) this.header[this.headerBytes++] = bytes[at++]!
        if (this.headerBytes < 2) break
        const length7 = this.header[1]! & 127
        const size = length7 === 126 ? 4 : length7 === 127 ? 10 : 2
        while (this.headerBytes < size && at < end) this.header[this.headerBytes++] = bytes[at++]!
        if (this.headerBytes < size) break
        this.headerBytes = 0
        b0 = this.header[0]!
        length = length7 === 126 ? this.header.readUInt16BE(2) : length7 === 127 ? Number(this.header.readBigUInt64BE(2)) : length7
      }
      const opcode = b0 & 15
      if (opcode === 8) this.closed = true
      this.data = opcode < 3
      this.length = length
      this.remaining = length
      if (length === 0 && this.data) {
        frames++
        if (this.peeked !== null) {
          this.peeked.fill(0)
          this.onPeek?.(this.peeked)
        }
      }
    }
    return frames
  }
}
