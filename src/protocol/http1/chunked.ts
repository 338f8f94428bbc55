// The one decoder of the chunked transfer coding (RFC 9112 §7.1), for request bodies and upstream
// responses alike, as nginx's ngx_http_parse_chunked serves both: a byte-driven state machine
// over the caller's buffer that records offsets, a small state struct owned by each parser, and
// named limits. It reads the framing — each chunk-size line with its extensions, the CRLF after
// each chunk's data, the last chunk's line — and leaves two things to its owner:
//
// - the data, which it hands back as a count (`take`), so the owner passes buf[pos, pos + n) on
//   without a copy and keeps its own body accounting;
// - the trailer section, which the request parser keeps and validates and the response parser
//   only counts (state TRAILERS: the decoder is done, the owner reads on).
//
// Use: `chunks.begin()` when a chunked body starts; then, while the owner has bytes, if
// `chunks.state === ChunkState.DATA` it calls `take(end - pos)` and passes that many bytes on,
// else `pos = chunks.parse(buf, pos, end)` and looks at the state: TRAILERS (the body is
// complete), ERROR (`error` says why; the stream cannot be framed), or anything else (more bytes
// are needed, or data follows). The owner maps `error` to a code of its own in the one table.

import { CR, LF, SP, HTAB, SEMICOLON, HEX_PLUS_ONE } from './chars.ts'

/** Hex digits in a chunk size: 13 digits stay below 2^53, so the arithmetic stays exact. */
export const MAX_CHUNK_SIZE_DIGITS = 13

export const ChunkState = {
  /** Hex digits of a chunk size. */
  SIZE: 0,
  /** After the size: whitespace (BWS) before a ";", a ";", or the line's end. */
  SIZE_BWS: 1,
  /** After a ";": extension bytes, skipped, until the line's CR. */
  EXTENSION: 2,
  /** The chunk-size line's CR arrived; its LF must follow. */
  SIZE_LF: 3,
  /** Data bytes of the current chunk: the owner takes them (`take`). */
  DATA: 4,
  /** The CR after a chunk's data. */
  DATA_CR: 5,
  /** The LF after a chunk's data. */
  DATA_LF: 6,
  /** The last chunk's line ended: the trailer section follows, and it is the owner's. */
  TRAILERS: 7,
  /** The body cannot be framed; `error` says why. */
  ERROR: 8,
} as const
export type ChunkState = (typeof ChunkState)[keyof typeof ChunkState]

/** Why a chunked body was refused; each owner turns it into a code of src/core/errors.ts. */
export type ChunkError =
  /** A chunk-size line that does not start with a hex digit. */
  | 'no-size'
  /** More than MAX_CHUNK_SIZE_DIGITS hex digits. */
  | 'size-too-large'
  /** The chunk sizes so far add up to more than maxBodyBytes. */
  | 'body-too-large'
  /** A byte that the chunk-size line's grammar does not allow, or a CR not followed by LF. */
  | 'malformed-line'
  /** A chunk-size line longer than maxLineBytes. */
  | 'line-too-long'
  /** A chunk line that ends in LF without a CR (and the owner does not allow it). */
  | 'bare-lf'
  /** The byte after a chunk's data is not its CRLF: the data was longer than its size said. */
  | 'data-overrun'

export interface ChunkedDecoderOptions {
  /** Bytes of one chunk-size line, its size, whitespace, extensions and CRLF included. */
  maxLineBytes: number
  /** Sum of the chunk sizes of one body; more is 'body-too-large', refused at the size that passes it. */
  maxBodyBytes: number
  /** Byte table (chars.ts) of what an extension may contain; CR and LF must not be in it. */
  extensionBytes: Uint8Array
  /** Accept chunk lines that end in a bare LF (RFC 9112 §2.2 lets a recipient, a load generator, do so). */
  allowBareLf: boolean
  /** Accept whitespace after the size that no ";" follows ("5 \r\n"), as nginx does; the grammar allows BWS only before ";". */
  allowWhitespaceAfterSize: boolean
}

export class ChunkedDecoder {
  state: ChunkState = ChunkState.SIZE
  /** Set when state is ERROR. */
  error: ChunkError | null = null
  /** Data bytes of the current chunk not taken yet, or the size read so far while in SIZE. */
  remaining = 0
  /** Sum of the sizes of the chunks read so far in this body. */
  declaredBytes = 0

  private readonly maxLineBytes: number
  private readonly maxBodyBytes: number
  private readonly extensionBytes: Uint8Array
  private readonly allowBareLf: boolean
  private readonly allowWhitespaceAfterSize: boolean
  private sizeDigits = 0
  /** Bytes of the current chunk-size line so far, against maxLineBytes. */
  private lineBytes = 0

  constructor(options: ChunkedDecoderOptions) {
    this.maxLineBytes = options.maxLineBytes
    this.maxBodyBytes = options.maxBodyBytes
    this.extensionBytes = options.extensionBytes
    this.allowBareLf = options.allowBareLf
    this.allowWhitespaceAfterSize = options.allowWhitespaceAfterSize
  }

  /** A chunked body starts. */
  begin(): void {
    this.error = null
    this.declaredBytes = 0
    this.beginChunk()
  }

  /**
   * The owner has `available` bytes at its position while state is DATA: returns how many of
   * them are the current chunk's data (the owner passes exactly those on), and moves past the
   * data once all of it is taken.
   */
  take(available: number): number {
    const n = available < this.remaining ? available : this.remaining
    this.remaining -= n
    if (this.remaining === 0) this.state = ChunkState.DATA_CR
    return n
  }

  /**
   * Read framing bytes of buf[pos, end). Returns where it stopped: at `end`, where data begins
   * (DATA), just past the last chunk's line (TRAILERS), or at the byte that is refused (ERROR).
   */
  parse(buf: Uint8Array, pos: number, end: number): number {
    while (pos < end) {
      switch (this.state) {
        case ChunkState.SIZE: {
          // The digits in one loop, not one state step each.
          let p = pos
          let size = this.remaining
          let digits = this.sizeDigits
          for (; p < end; p++) {
            const digit = HEX_PLUS_ONE[buf[p]!]!
            if (digit === 0) break
            if (++digits > MAX_CHUNK_SIZE_DIGITS) return this.fail('size-too-large', p)
            size = size * 16 + (digit - 1)
          }
          this.remaining = size
          this.sizeDigits = digits
          pos = p
          if (p === end) break
          if (digits === 0) return this.fail('no-size', p)
          // Refused at the size that passes the limit, before any of that chunk's data is read.
          if (this.declaredBytes + size > this.maxBodyBytes) return this.fail('body-too-large', p)
          this.declaredBytes += size
          this.lineBytes = digits
          // Nearly every chunk line is the size and CRLF, whole in the read: ended here at once.
          if (p + 1 < end && buf[p] === CR && buf[p + 1] === LF && digits + 2 <= this.maxLineBytes) {
            return this.endSizeLine(p + 2)
          }
          this.state = ChunkState.SIZE_BWS
          break
        }

        case ChunkState.SIZE_BWS: {
          const c = buf[pos]!
          if (c === SP || c === HTAB || c === SEMICOLON) {
            if (++this.lineBytes > this.maxLineBytes) return this.fail('line-too-long', pos)
            if (c === SEMICOLON) this.state = ChunkState.EXTENSION
            pos++
          } else if ((c === CR || c === LF) && (this.lineBytes === this.sizeDigits || this.allowWhitespaceAfterSize)) {
            if (c === LF) return this.bareLineEnd(pos)
            if (++this.lineBytes > this.maxLineBytes) return this.fail('line-too-long', pos)
            this.state = ChunkState.SIZE_LF
            pos++
          } else {
            return this.fail(c === LF ? 'bare-lf' : 'malformed-line', pos)
          }
          break
        }

        case ChunkState.EXTENSION: {
          // Extensions carry nothing Petrel acts on: they are checked against the owner's byte
          // table and skipped, bounded so that a chunk line cannot grow without end.
          const table = this.extensionBytes
          const room = this.maxLineBytes - this.lineBytes
          const limit = end - pos < room ? end : pos + room
          let p = pos
          while (p < limit && table[buf[p]!] === 1) p++
          this.lineBytes += p - pos
          pos = p
          if (p === end) break
          const c = buf[p]!
          if (c === LF) return this.bareLineEnd(pos)
          if (c !== CR) return this.fail(table[c] === 1 ? 'line-too-long' : 'malformed-line', pos)
          if (++this.lineBytes > this.maxLineBytes) return this.fail('line-too-long', pos)
          this.state = ChunkState.SIZE_LF
          pos++
          break
        }

        case ChunkState.SIZE_LF: {
          if (buf[pos] !== LF) return this.fail('malformed-line', pos)
          if (++this.lineBytes > this.maxLineBytes) return this.fail('line-too-long', pos)
          return this.endSizeLine(pos + 1)
        }

        case ChunkState.DATA_CR: {
          const c = buf[pos]!
          if (c === CR) {
            // The CRLF after the data, whole in the read, nearly always: the next size at once.
            if (pos + 1 < end && buf[pos + 1] === LF) {
              this.beginChunk()
              pos += 2
              break
            }
            this.state = ChunkState.DATA_LF
            pos++
          } else if (c === LF) {
            if (!this.allowBareLf) return this.fail('bare-lf', pos)
            this.beginChunk()
            pos++
          } else {
            return this.fail('data-overrun', pos)
          }
          break
        }

        case ChunkState.DATA_LF: {
          if (buf[pos] !== LF) return this.fail('data-overrun', pos)
          this.beginChunk()
          pos++
          break
        }

        default:
          // DATA is the owner's to take; TRAILERS and ERROR are final.
          return pos
      }
    }
    return pos
  }

  /** The chunk-size line ends in a bare LF at pos: its end when the owner allows that, else refused. */
  private bareLineEnd(pos: number): number {
    if (!this.allowBareLf) return this.fail('bare-lf', pos)
    if (++this.lineBytes > this.maxLineBytes) return this.fail('line-too-long', pos)
    return this.endSizeLine(pos + 1)
  }

  /** The chunk-size line ended just before pos: data follows, or, after the last chunk, trailers. */
  private endSizeLine(pos: number): number {
    this.state = this.remaining === 0 ? ChunkState.TRAILERS : ChunkState.DATA
    return pos
  }

  private beginChunk(): void {
    this.remaining = 0
    this.sizeDigits = 0
    this.lineBytes = 0
    this.state = ChunkState.SIZE
  }

  private fail(error: ChunkError, pos: number): number {
    this.error = error
    this.state = ChunkState.ERROR
    return pos
  }
}
