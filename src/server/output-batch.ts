// A connection's output batch: what is sent while one read is parsed (or while a response is
// corked) waits here and leaves in one socket write, so sixteen pipelined requests cost one read
// and one write. The batch is kept as one string as long as it can be — heads and small bodies —
// because a plain string write is cheaper than a corked writev with a completion callback.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'

/** What the batch's string holds, which decides how it is encoded for the socket. */
const BatchText = {
  /** ASCII only: written as latin1, a straight copy (UTF-8 would be the same bytes, made slower). */
  ASCII: 0,
  /** Text not known to be ASCII: written as UTF-8. */
  UTF8: 1,
  /** Bytes of small Buffers, copied in one character per byte: written as latin1. */
  BYTES: 2,
} as const
type BatchText = (typeof BatchText)[keyof typeof BatchText]

/**
 * Buffers up to this size are copied into the batch's string instead of joining the batch as a
 * piece of their own: one plain write instead of a corked writev of a string and a Buffer, with
 * its completion callback. A proxied or pre-built small body is the usual case.
 */
const COPY_INTO_BATCH_BYTES = 1024

/** True when add() copies `data` into the batch's string, so its owner may have it back at once. */
export function copiedIntoBatch(data: string | Buffer): boolean {
  return typeof data !== 'string' && data.length <= COPY_INTO_BATCH_BYTES
}

export class OutputBatch {
  /** What waits, in characters of text and bytes of Buffers: weighed against the write high-water mark. */
  size = 0
  /** Text waiting for the flush, in one string (see `kind` for how it is encoded). */
  private text = ''
  /** Pieces before `text` when Buffers were sent too: ASCII strings and Buffers, written in order under one cork. */
  private list: Array<string | Buffer> | null = null
  /** What `text` holds: ASCII only (written as latin1: a straight copy), or text that must go as UTF-8, or bytes copied in as latin1. */
  private kind: BatchText = BatchText.ASCII

  /** Nothing is waiting. */
  get empty(): boolean {
    return this.text === '' && this.list === null
  }

  /**
   * Text the caller knows is ASCII (a head, a body whose UTF-8 length equals its length). A batch
   * of nothing else goes to the socket as latin1 — for ASCII the same bytes as UTF-8, but copied
   * straight out of the string, where UTF-8 first flattens the batch's concatenation into a new
   * string, then measures and converts it.
   */
  addAscii(text: string): void {
    this.text += text
    this.size += text.length
  }

  /** Text not known to be ASCII (it goes as UTF-8), or bytes: small ones are copied (see copiedIntoBatch). */
  add(data: string | Buffer): void {
    if (typeof data === 'string') {
      this.appendText(data, BatchText.UTF8)
    } else if (data.length <= COPY_INTO_BATCH_BYTES) {
      // The batch stays one write (not a corked writev), and the caller has its buffer back at once.
      this.appendText(data.toString('latin1'), BatchText.BYTES)
    } else {
      const list = (this.list ??= [])
      this.seal(list)
      list.push(data)
    }
    this.size += data.length
  }

  /** Write out what waits, and empty the batch. Returns false when the socket's buffer is over its mark. */
  writeTo(socket: Socket): boolean {
    // Kept small, so that V8 inlines it into the read path: the rare list of pieces is apart.
    if (this.list !== null) return this.writeList(socket)
    const data = this.text
    const kind = this.kind
    this.size = 0
    this.kind = BatchText.ASCII
    if (data === '') return true
    this.text = ''
    return socket.write(data, kind === BatchText.UTF8 ? 'utf8' : 'latin1')
  }

  /** Pieces, Buffers among them, written in order under one cork. */
  private writeList(socket: Socket): boolean {
    const list = this.list!
    this.list = null
    this.seal(list)
    this.size = 0
    let ok = true
    socket.cork()
    // Strings in the list are ASCII: latin1 is the cheaper way to the same bytes.
    for (const chunk of list) ok = typeof chunk === 'string' ? socket.write(chunk, 'latin1') : socket.write(chunk)
    socket.uncork()
    return ok
  }

  /** Add `text` to the batch's string; text that needs the other encoding than what is there first moves that to the list. */
  private appendText(text: string, kind: BatchText): void {
    if (this.kind !== kind) {
      if (this.kind !== BatchText.ASCII) this.seal((this.list ??= []))
      this.kind = kind
    }
    this.text += text
  }

  /** Move the batch's string to the end of `list`: as is when it is ASCII, else as the bytes it stands for. */
  private seal(list: Array<string | Buffer>): void {
    if (this.text !== '') list.push(this.kind === BatchText.ASCII ? this.text : Buffer.from(this.text, this.kind === BatchText.UTF8 ? 'utf8' : 'latin1'))
    this.text = ''
    this.kind = BatchText.ASCII
  }
}
