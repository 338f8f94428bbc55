// Incremental HTTP/1.1 request parser (RFC 9112), in the manner of nginx's
// ngx_http_parse_request_line and picohttpparser: one loop over bytes with a switch over named
// states, partial input saved as state, offsets recorded instead of substrings, and a specific
// error code for every way a request can be malformed. It knows nothing of sockets.
//
// A head that arrives across several reads is copied into a side buffer of at most
// limits.maxHeaderBytes + 1 bytes (a fresh one per split head, so a handler may keep its
// request after the next one arrives). A head that arrives in one read — the common case —
// is never copied: the request keeps offsets into the read buffer itself.

import { Buffer } from 'node:buffer'
import type { ErrorCode } from '../../core/errors.ts'
import type { Limits } from '../../core/limits.ts'
import { CR, LF, SP, HTAB, COLON, SEMICOLON, TOKEN, TOKEN_LOWER, TARGET, FIELD_VALUE, equalsLowerAscii } from './chars.ts'
import { ChunkedDecoder, ChunkState, type ChunkError } from './chunked.ts'
import {
  readTransferCodings,
  readConnectionOptions,
  parseTrailerLine,
  methodName,
  isValidHost,
  TE_CHUNKED_LAST,
  TE_UNKNOWN,
  TE_MALFORMED,
  TE_UNSUPPORTED,
  TE_CHUNKED_TWICE,
  CONN_CLOSE,
  CONN_KEEP_ALIVE,
  CONN_UPGRADE,
} from './fields.ts'
import { RequestHead } from './request-head.ts'
import { normalizeOriginPath, readTarget } from './target.ts'

export interface RequestParserHandler {
  /** The head is complete and valid. Body events follow unless the head says there is no body. */
  onHead(head: RequestHead): void
  /** A piece of the decoded body: buf[start, end). */
  onBody(buf: Buffer, start: number, end: number): void
  /** The message is complete. Return true to stop: execute() returns the offset just past it. */
  onMessageComplete(): boolean
}

export const ParserState = {
  REQUEST_START: 0,
  METHOD: 1,
  TARGET: 2,
  VERSION: 3,
  REQUEST_LINE_LF: 4,
  HEADER_START: 5,
  HEADER_NAME: 6,
  HEADER_VALUE_START: 7,
  HEADER_VALUE: 8,
  HEADER_LF: 9,
  HEAD_END_LF: 10,
  BODY_IDENTITY: 11,
  /** A chunked body: its framing is the ChunkedDecoder's (chunked.ts), shared with the response parser. */
  CHUNKED: 12,
  TRAILER_START: 13,
  TRAILER_LINE: 14,
  TRAILER_LF: 15,
  TRAILER_END_LF: 16,
  ERROR: 17,
} as const
export type ParserState = (typeof ParserState)[keyof typeof ParserState]

const S = ParserState
/** The states in which bytes belong to the request head. */
const LAST_HEAD_STATE = S.HEAD_END_LF

/** Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at least one). */
const MAX_LEADING_EMPTY_LINES = 8
/** Longest method accepted; the longest registered methods are under 20 bytes. */
const MAX_METHOD_BYTES = 32
const CONTENT_LENGTH_NAME_LENGTH = 14
const SLASH = 0x2f
const BACKSLASH = 0x5c
const DOT = 0x2e
const PERCENT = 0x25
const QUESTION = 0x3f
/** "HTTP/1.1" */
const VERSION_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f]

/** What a request that the chunked decoder refuses is answered with. */
const CHUNK_ERROR_CODES: Readonly<Record<ChunkError, ErrorCode>> = {
  'no-size': 'PETREL_ERR_INVALID_CHUNK',
  'size-too-large': 'PETREL_ERR_CHUNK_SIZE_OVERFLOW',
  'body-too-large': 'PETREL_ERR_BODY_TOO_LARGE',
  'malformed-line': 'PETREL_ERR_INVALID_CHUNK',
  'line-too-long': 'PETREL_ERR_INVALID_CHUNK',
  'bare-lf': 'PETREL_ERR_INVALID_CHUNK',
  'data-overrun': 'PETREL_ERR_INVALID_CHUNK',
}

export class RequestParser {
  state: ParserState = S.REQUEST_START
  /** Set when execute() returned -1. */
  errorCode: ErrorCode | null = null
  /** Body bytes still expected of a Content-Length body (a chunk's are the decoder's). */
  bodyRemaining = 0
  /** Decoded body bytes received so far for the current message. */
  bodyReceived = 0

  private readonly handler: RequestParserHandler
  private readonly maxHeaderBytes: number
  private readonly maxHeaderCount: number
  private readonly maxUriBytes: number
  private readonly maxBodyBytes: number

  private head: RequestHead | null = null
  private headStart = 0
  /** headStart + maxHeaderBytes while a head is read, Infinity otherwise: one comparison per state step. */
  private headLimit = Infinity
  private emptyLines = 0
  /** A CR before a request line, waiting for its LF. */
  private leadingCR = false
  private versionIndex = 0
  private nameStart = 0
  private nameEnd = 0
  private valueStart = 0
  private valueEnd = 0
  /** The value being read is Content-Length's (decided at its first bytes). */
  private readingContentLength = false
  /** A Content-Length value as its digits arrive, how many there were, and whether OWS followed them. */
  private contentLengthValue = 0
  private contentLengthDigits = 0
  private contentLengthDone = false
  private hostCount = 0
  private teFlags = 0
  private hasTransferEncoding = false
  private hasUpgradeHeader = false
  private connectionOptions = 0
  /** Framing of a chunked body. */
  private readonly chunks: ChunkedDecoder
  private trailerLine: number[] | null = null
  private trailerBytes = 0
  /** Side buffer holding a head split across reads, and how much of it is filled. */
  private split: Buffer | null = null
  private splitLength = 0
  /** Where parsing of the side buffer stopped, to continue there when more bytes arrive. */
  private resumeAt = 0
  /** onMessageComplete asked to stop; execute() returns at the message boundary. */
  private stopped = false

  constructor(handler: RequestParserHandler, limits: Pick<Limits, 'maxHeaderBytes' | 'maxHeaderCount' | 'maxUriBytes' | 'maxBodyBytes'>) {
    this.handler = handler
    this.maxHeaderBytes = limits.maxHeaderBytes
    this.maxHeaderCount = limits.maxHeaderCount
    this.maxUriBytes = limits.maxUriBytes
    this.maxBodyBytes = limits.maxBodyBytes
    // A chunk-size line is bounded like a head line; its extensions must be field text, and it
    // ends in CRLF (a bare LF could frame differently in a server behind this one).
    this.chunks = new ChunkedDecoder({
      maxLineBytes: limits.maxHeaderBytes,
      maxBodyBytes: limits.maxBodyBytes,
      extensionBytes: FIELD_VALUE,
      allowBareLf: false,
      allowWhitespaceAfterSize: false,
    })
  }

  /** True while no byte of a next request has arrived (between messages). */
  get idle(): boolean {
    return this.state === S.REQUEST_START
  }

  /** The method of the request being read, or of the one refused; '' before its method is read. */
  get method(): string {
    return this.head === null ? '' : this.head.method
  }

  /** True while the current message's head is being read. */
  get inHead(): boolean {
    return this.state > S.REQUEST_START && this.state <= LAST_HEAD_STATE
  }

  /** True while the current message's body is being read. */
  get inBody(): boolean {
    return this.state > LAST_HEAD_STATE && this.state < S.ERROR
  }

  /**
   * Parse buf[start, end). Returns the offset up to which bytes were consumed — `end`, or less
   * when onMessageComplete asked to stop — or -1 on a malformed request (see errorCode).
   */
  execute(buf: Buffer, start: number, end: number): number {
    if (this.state === S.ERROR) return -1
    let pos = start
    if (this.split !== null) {
      // Continue a split head in the side buffer, then go on in `buf` past the bytes it took.
      const before = this.splitLength
      const taken = this.appendSplit(buf, start, end)
      const r = this.run(this.split!, this.resumeAt, this.splitLength, true)
      if (r < 0) return -1
      if (this.inHead) {
        this.resumeAt = r
        return start + taken
      }
      pos = start + (r - before)
      this.split = null
      this.splitLength = 0
      if (this.stopped) {
        this.stopped = false
        return pos
      }
    }
    const r = this.run(buf, pos, end, false)
    if (r < 0) return -1
    if (this.stopped) {
      this.stopped = false
      return r
    }
    if (this.inHead) this.saveSplit(buf, end)
    return r
  }

  /** Forget everything and start again at a new request, e.g. for a new connection. */
  reset(): void {
    this.state = S.REQUEST_START
    this.errorCode = null
    this.head = null
    this.split = null
    this.splitLength = 0
    this.stopped = false
    this.emptyLines = 0
    this.leadingCR = false
    this.headLimit = Infinity
  }

  private appendSplit(buf: Buffer, start: number, end: number): number {
    let split = this.split!
    const cap = this.maxHeaderBytes + 1
    const want = Math.min(cap, this.splitLength + (end - start))
    if (want > split.length) {
      const grown = Buffer.allocUnsafe(Math.min(cap, Math.max(want, split.length * 2)))
      split.copy(grown, 0, 0, this.splitLength)
      this.rebase(grown, 0)
      split = this.split = grown
    }
    const taken = want - this.splitLength
    buf.copy(split, this.splitLength, start, start + taken)
    this.splitLength = want
    return taken
  }

  /** The read ended inside a head: copy its bytes so far into a side buffer of their own. */
  private saveSplit(buf: Buffer, end: number): void {
    const length = end - this.headStart
    const split = Buffer.allocUnsafe(Math.min(this.maxHeaderBytes + 1, Math.max(1024, length * 2)))
    buf.copy(split, 0, this.headStart, end)
    this.resumeAt = length
    this.rebase(split, this.headStart)
    this.split = split
    this.splitLength = length
  }

  /** Move every recorded offset from the old buffer to `buf`, where the head now starts at 0. */
  private rebase(buf: Buffer, delta: number): void {
    const head = this.head!
    head.buf = buf
    if (delta === 0) return
    head.targetStart -= delta
    head.targetEnd -= delta
    if (head.queryStart >= 0) head.queryStart -= delta
    const h = head.headers
    for (let i = 0; i < h.length; i++) h[i]! -= delta
    if (head.hostStart >= 0) {
      head.hostStart -= delta
      head.hostEnd -= delta
    }
    this.headStart -= delta
    this.headLimit -= delta
    this.nameStart -= delta
    this.nameEnd -= delta
    this.valueStart -= delta
    this.valueEnd -= delta
  }

  private fail(code: ErrorCode): number {
    this.headLimit = Infinity
    this.errorCode = code
    this.state = S.ERROR
    return -1
  }

  private run(buf: Buffer, pos: number, end: number, stopAfterHead: boolean): number {
    while (pos < end) {
      if (pos >= this.headLimit) {
        const uriTooLong = this.state === S.TARGET && pos - this.head!.targetStart >= this.maxUriBytes && TARGET[buf[pos]!] === 1
        return this.fail(uriTooLong ? 'PETREL_ERR_URI_TOO_LONG' : 'PETREL_ERR_HEADERS_TOO_LARGE')
      }
      switch (this.state) {
        case S.REQUEST_START: {
          // Empty lines before a request line are skipped (RFC 9112 §2.2), as whole CRLF pairs.
          const c = buf[pos]!
          if (this.leadingCR) {
            if (c !== LF) return this.fail('PETREL_ERR_BARE_CR')
            this.leadingCR = false
            if (++this.emptyLines > MAX_LEADING_EMPTY_LINES) return this.fail('PETREL_ERR_INVALID_REQUEST_LINE')
            pos++
            break
          }
          if (c === CR) {
            this.leadingCR = true
            pos++
            break
          }
          if (c === LF) return this.fail('PETREL_ERR_BARE_LF')
          this.beginMessage(buf, pos)
          break
        }

        case S.METHOD: {
          // The method is bounded by its own cap and by the head limit, whichever is nearer; at
          // the head limit the check at the top of the loop answers 431.
          const headLimit = this.headLimit
          const limit = Math.min(end, this.headStart + MAX_METHOD_BYTES + 1, headLimit)
          let p = pos
          while (p < limit && TOKEN[buf[p]!] === 1) p++
          if (p === end || p === headLimit) {
            pos = p
            break
          }
          if (buf[p] !== SP || p === this.headStart) return this.fail('PETREL_ERR_INVALID_METHOD')
          this.head!.method = methodName(buf, this.headStart, p)
          pos = p + 1
          this.head!.targetStart = pos
          this.state = S.TARGET
          break
        }

        case S.TARGET: {
          const head = this.head!
          const uriLimit = head.targetStart + this.maxUriBytes
          const headLimit = this.headLimit
          const limit = Math.min(end, uriLimit, headLimit)
          let p = pos
          while (p < limit && TARGET[buf[p]!] === 1) p++
          if (p === end) {
            pos = p
            break
          }
          if (p === uriLimit && TARGET[buf[p]!] === 1) return this.fail('PETREL_ERR_URI_TOO_LONG')
          if (p === headLimit) {
            pos = p
            break
          }
          if (buf[p] !== SP || p === head.targetStart) return this.fail('PETREL_ERR_INVALID_TARGET')
          head.targetEnd = p
          // The target is whole: its form, host, path and query are settled now, and a bad one
          // refused before the rest of the head arrives (target.ts).
          const targetStart = head.targetStart
          const method = head.method
          if (buf[targetStart] === SLASH && (method.length !== 7 || method !== 'CONNECT')) {
            // origin-form, nearly every request: find the query, and notice a path that
            // normalising could change — one with "%", "\", ";", "/." or "//" — in one loop of
            // comparisons (all of those bytes but "\" are below "@", so a letter costs one).
            // The byte after the target is its space, so q + 1 can be read.
            let irregular = false
            let q = targetStart
            for (; q < p; q++) {
              const c = buf[q]!
              if (c > QUESTION && c !== BACKSLASH) continue
              if (c === QUESTION) {
                head.queryStart = q
                break
              }
              if (c === PERCENT || c === BACKSLASH || c === SEMICOLON || (c === SLASH && (buf[q + 1] === DOT || buf[q + 1] === SLASH))) irregular = true
            }
            if (irregular) {
              const pathError = normalizeOriginPath(head, buf, targetStart, q)
              if (pathError !== null) return this.fail(pathError)
            }
          } else {
            const targetError = readTarget(head, buf, targetStart, p)
            if (targetError !== null) return this.fail(targetError)
          }
          pos = p + 1
          // Fast path: "HTTP/1.1\r\n" or "HTTP/1.0\r\n" whole in this read, checked at once.
          // Anything else — a split, another version, an error — goes byte by byte below.
          if (
            pos + 10 <= end &&
            pos + 10 <= this.headLimit &&
            buf[pos] === 0x48 &&
            buf[pos + 1] === 0x54 &&
            buf[pos + 2] === 0x54 &&
            buf[pos + 3] === 0x50 &&
            buf[pos + 4] === 0x2f &&
            buf[pos + 5] === 0x31 &&
            buf[pos + 6] === 0x2e &&
            (buf[pos + 7] === 0x31 || buf[pos + 7] === 0x30) &&
            buf[pos + 8] === CR &&
            buf[pos + 9] === LF
          ) {
            head.versionMinor = buf[pos + 7]! - 0x30
            pos += 10
            this.state = S.HEADER_START
            break
          }
          this.versionIndex = 0
          this.state = S.VERSION
          break
        }

        case S.VERSION: {
          const c = buf[pos]!
          const i = this.versionIndex
          if (i < 5) {
            if (c !== VERSION_PREFIX[i]) return this.fail('PETREL_ERR_INVALID_VERSION')
          } else if (i === 5 || i === 7) {
            if (c < 0x30 || c > 0x39) return this.fail('PETREL_ERR_INVALID_VERSION')
            // A version other than 1.0 or 1.1 is refused at its digit, whatever follows it.
            if (i === 5 ? c !== 0x31 : c > 0x31) return this.fail('PETREL_ERR_UNSUPPORTED_VERSION')
            if (i === 7) this.head!.versionMinor = c - 0x30
          } else if (i === 6) {
            if (c !== 0x2e) return this.fail('PETREL_ERR_INVALID_VERSION')
          } else {
            if (c === LF) return this.fail('PETREL_ERR_BARE_LF')
            if (c !== CR) return this.fail('PETREL_ERR_INVALID_VERSION')
            this.state = S.REQUEST_LINE_LF
          }
          this.versionIndex = i + 1
          pos++
          break
        }

        case S.REQUEST_LINE_LF:
        case S.HEADER_LF: {
          if (buf[pos] !== LF) return this.fail('PETREL_ERR_BARE_CR')
          pos++
          if (this.state === S.HEADER_LF) {
            const r = this.endHeaderLine(buf)
            if (r !== null) return this.fail(r)
          }
          this.state = S.HEADER_START
          break
        }

        case S.HEADER_START: {
          const c = buf[pos]!
          if (c === CR) {
            this.state = S.HEAD_END_LF
            pos++
          } else if (c === LF) {
            return this.fail('PETREL_ERR_BARE_LF')
          } else if (c === SP || c === HTAB) {
            return this.fail('PETREL_ERR_OBS_FOLD')
          } else {
            if (this.head!.headers.length >= this.maxHeaderCount * 4) return this.fail('PETREL_ERR_TOO_MANY_HEADERS')
            this.nameStart = pos
            this.state = S.HEADER_NAME
          }
          break
        }

        case S.HEADER_NAME: {
          const limit = this.headLimit < end ? this.headLimit : end
          let p = pos
          for (; p < limit; p++) {
            const c = buf[p]!
            const lower = TOKEN_LOWER[c]!
            if (lower === 0) break
            if (lower !== c) buf[p] = lower
          }
          pos = p
          if (p === limit) break
          const c = buf[p]!
          if (c !== COLON)
            return this.fail(c === SP || c === HTAB ? 'PETREL_ERR_WHITESPACE_BEFORE_COLON' : c === LF ? 'PETREL_ERR_BARE_LF' : 'PETREL_ERR_INVALID_HEADER_NAME')
          if (p === this.nameStart) return this.fail('PETREL_ERR_INVALID_HEADER_NAME')
          this.nameEnd = p
          pos = p + 1
          this.state = S.HEADER_VALUE_START
          break
        }

        case S.HEADER_VALUE_START: {
          const c = buf[pos]!
          if (c === SP || c === HTAB) {
            pos++
            break
          }
          this.valueStart = this.valueEnd = pos
          this.state = S.HEADER_VALUE
          break
        }

        case S.HEADER_VALUE: {
          const limit = this.headLimit < end ? this.headLimit : end
          let p = pos
          while (p < limit && FIELD_VALUE[buf[p]!] === 1) p++
          if (this.nameEnd - this.nameStart === CONTENT_LENGTH_NAME_LENGTH) {
            // Content-Length is read as its bytes arrive, so a bad or oversized length is refused
            // at once. One comparison per field line keeps the others out of it.
            const r = this.readContentLength(buf, pos, p)
            if (r !== null) return this.fail(r)
          }
          pos = p
          if (p === limit) break
          const c = buf[p]!
          if (c === CR) {
            // Trailing OWS is trimmed once the value is whole (it is rare, so not tracked per byte).
            let valueEnd = p
            while (valueEnd > this.valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--
            this.valueEnd = valueEnd
            if (p + 1 < limit && buf[p + 1] === LF) {
              // The whole line is here: finish it in this step.
              pos = p + 2
              const r = this.endHeaderLine(buf)
              if (r !== null) return this.fail(r)
              this.state = S.HEADER_START
              break
            }
            this.state = S.HEADER_LF
            pos = p + 1
            break
          }
          return this.fail(c === LF ? 'PETREL_ERR_BARE_LF' : 'PETREL_ERR_INVALID_HEADER_VALUE')
        }

        case S.HEAD_END_LF: {
          if (buf[pos] !== LF) return this.fail('PETREL_ERR_BARE_CR')
          pos++
          this.headLimit = Infinity
          const r = this.finishHead()
          if (r !== null) return this.fail(r)
          if (this.stopped || stopAfterHead) return pos
          break
        }

        case S.BODY_IDENTITY: {
          const n = Math.min(end - pos, this.bodyRemaining)
          this.bodyRemaining -= n
          this.bodyReceived += n
          this.handler.onBody(buf, pos, pos + n)
          pos += n
          if (this.bodyRemaining === 0) {
            this.completeMessage()
            if (this.stopped) return pos
          }
          break
        }

        case S.CHUNKED: {
          const chunks = this.chunks
          if (chunks.state === ChunkState.DATA) {
            const n = chunks.take(end - pos)
            this.bodyReceived += n
            this.handler.onBody(buf, pos, pos + n)
            pos += n
            break
          }
          pos = chunks.parse(buf, pos, end)
          if (chunks.state === ChunkState.TRAILERS) {
            this.state = S.TRAILER_START
            this.trailerBytes = 0
          } else if (chunks.state === ChunkState.ERROR) {
            return this.fail(CHUNK_ERROR_CODES[chunks.error!])
          }
          break
        }

        case S.TRAILER_START:
        case S.TRAILER_LINE:
        case S.TRAILER_LF:
        case S.TRAILER_END_LF: {
          // Trailers are rare: their states live in a method of their own, which keeps this
          // loop — run for every request — smaller.
          pos = this.readTrailers(buf, pos, end)
          if (pos < 0 || this.stopped) return pos
          break
        }

        default:
          return -1
      }
    }
    return pos
  }

  /**
   * The trailer section of a chunked body, from buf[pos, end): returns where the message ended
   * (the state is then REQUEST_START), `end` when more bytes are needed, or -1 on a bad trailer.
   */
  private readTrailers(buf: Buffer, pos: number, end: number): number {
    while (pos < end) {
      switch (this.state) {
        case S.TRAILER_START: {
          const c = buf[pos]!
          if (c === CR) {
            this.state = S.TRAILER_END_LF
            pos++
            break
          }
          if (c === SP || c === HTAB) return this.fail('PETREL_ERR_OBS_FOLD')
          const head = this.head!
          if ((head.trailers === null ? 0 : head.trailers.length >> 1) + (head.headers.length >> 2) >= this.maxHeaderCount) {
            return this.fail('PETREL_ERR_TOO_MANY_HEADERS')
          }
          this.trailerLine = []
          this.state = S.TRAILER_LINE
          break
        }

        case S.TRAILER_LINE: {
          // Trailers are rare and arrive in body reads, possibly split: they are collected as
          // bytes and validated as a header line when the line ends.
          const c = buf[pos]!
          if (++this.trailerBytes > this.maxHeaderBytes) return this.fail('PETREL_ERR_HEADERS_TOO_LARGE')
          pos++
          if (c === CR) {
            this.state = S.TRAILER_LF
            break
          }
          if (c === LF) return this.fail('PETREL_ERR_BARE_LF')
          this.trailerLine!.push(c)
          break
        }

        case S.TRAILER_LF: {
          if (buf[pos] !== LF) return this.fail('PETREL_ERR_BARE_CR')
          pos++
          const trailer = parseTrailerLine(Buffer.from(this.trailerLine!))
          this.trailerLine = null
          if (typeof trailer === 'string') return this.fail(trailer)
          ;(this.head!.trailers ??= []).push(trailer[0], trailer[1])
          this.state = S.TRAILER_START
          break
        }

        case S.TRAILER_END_LF: {
          if (buf[pos] !== LF) return this.fail('PETREL_ERR_BARE_CR')
          pos++
          this.completeMessage()
          return pos
        }

        default:
          return -1
      }
    }
    return pos
  }

  private beginMessage(buf: Buffer, pos: number): void {
    this.head = new RequestHead(buf)
    this.headStart = pos
    this.headLimit = pos + this.maxHeaderBytes
    this.hostCount = 0
    this.teFlags = 0
    this.hasTransferEncoding = false
    this.hasUpgradeHeader = false
    this.connectionOptions = 0
    this.bodyReceived = 0
    this.bodyRemaining = 0
    this.state = S.METHOD
  }

  private completeMessage(): void {
    this.state = S.REQUEST_START
    this.emptyLines = 0
    this.leadingCR = false
    this.head = null
    if (this.handler.onMessageComplete()) this.stopped = true
  }

  /**
   * More bytes buf[from, to) of the value of a field whose name has Content-Length's length
   * (leading OWS already skipped). Content-Length's is digits, then only OWS: a length past
   * 2^53 - 1 cannot be a real body and is refused as malformed, as nginx refuses one that
   * overflows; one past limits.maxBodyBytes is 413 as soon as its digits say so. Beside
   * Transfer-Encoding it is ambiguous framing, refused at its first bytes.
   */
  private readContentLength(buf: Buffer, from: number, to: number): ErrorCode | null {
    if (from === this.valueStart) {
      this.readingContentLength = equalsLowerAscii(buf, this.nameStart, this.nameEnd, 'content-length')
      if (!this.readingContentLength) return null
      if (this.hasTransferEncoding) return 'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING'
      this.contentLengthValue = 0
      this.contentLengthDigits = 0
      this.contentLengthDone = false
    } else if (!this.readingContentLength) {
      return null
    }
    let value = this.contentLengthValue
    for (let p = from; p < to; p++) {
      const c = buf[p]!
      if (c >= 0x30 && c <= 0x39) {
        if (this.contentLengthDone) return 'PETREL_ERR_INVALID_CONTENT_LENGTH'
        value = value * 10 + (c - 0x30)
        if (value > Number.MAX_SAFE_INTEGER) return 'PETREL_ERR_INVALID_CONTENT_LENGTH'
        if (value > this.maxBodyBytes) return 'PETREL_ERR_BODY_TOO_LARGE'
        this.contentLengthDigits++
      } else if ((c === SP || c === HTAB) && this.contentLengthDigits > 0) {
        this.contentLengthDone = true
      } else {
        return 'PETREL_ERR_INVALID_CONTENT_LENGTH'
      }
    }
    this.contentLengthValue = value
    return null
  }

  /** A header line is complete: record it and decode the fields that frame the message. */
  private endHeaderLine(buf: Buffer): ErrorCode | null {
    const head = this.head!
    const nameStart = this.nameStart
    const nameEnd = this.nameEnd
    const valueStart = this.valueStart
    const valueEnd = this.valueEnd
    // The first field makes the array at its size (one allocation, no growth); later ones push.
    if (head.headers.length === 0) head.headers = [nameStart, nameEnd, valueStart, valueEnd]
    else head.headers.push(nameStart, nameEnd, valueStart, valueEnd)
    switch (nameEnd - nameStart) {
      case 4:
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'host')) {
          if (++this.hostCount > 1) return 'PETREL_ERR_DUPLICATE_HOST'
          if (!isValidHost(buf, valueStart, valueEnd)) return 'PETREL_ERR_INVALID_HOST'
          // An absolute-form target's authority was taken as the host already, and stays (§3.2.2).
          if (head.hostStart < 0) {
            head.hostStart = valueStart
            head.hostEnd = valueEnd
          }
        }
        break
      case 6:
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'expect') && equalsLowerAscii(buf, valueStart, valueEnd, '100-continue')) {
          head.expectContinue = true
        }
        break
      case 7:
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'upgrade')) this.hasUpgradeHeader = true
        break
      case 10:
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'connection')) this.connectionOptions |= readConnectionOptions(buf, valueStart, valueEnd)
        break
      case CONTENT_LENGTH_NAME_LENGTH:
        if (this.readingContentLength) {
          if (this.contentLengthDigits === 0) return 'PETREL_ERR_INVALID_CONTENT_LENGTH'
          const length = this.contentLengthValue
          if (head.contentLength >= 0 && head.contentLength !== length) return 'PETREL_ERR_CONFLICTING_CONTENT_LENGTH'
          head.contentLength = length
        }
        break
      case 17:
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'transfer-encoding')) {
          // Beside Content-Length it is ambiguous framing; in HTTP/1.0, faulty framing (RFC 9112 §6.1).
          if (head.contentLength >= 0) return 'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING'
          if (head.versionMinor === 0) return 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED'
          this.hasTransferEncoding = true
          this.teFlags = readTransferCodings(buf, valueStart, valueEnd, this.teFlags)
        }
        break
    }
    return null
  }

  /** The empty line ended the head: check what only the whole head can tell, then frame the body. */
  private finishHead(): ErrorCode | null {
    const head = this.head!
    const http11 = head.versionMinor === 1
    if (http11 && this.hostCount === 0) return 'PETREL_ERR_MISSING_HOST'
    // Content-Length beside Transfer-Encoding, Transfer-Encoding in HTTP/1.0 and a length over the
    // limit were refused at their field (readContentLength, endHeaderLine).
    if (this.hasTransferEncoding) {
      // Order matters: malformed → 400, unregistered coding → 501, not ending in chunked → 400,
      // a registered coding Petrel does not decode (gzip, chunked) → 501.
      const te = this.teFlags
      if (te & TE_MALFORMED) return 'PETREL_ERR_INVALID_TRANSFER_ENCODING'
      if (te & TE_UNKNOWN) return 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING'
      if (!(te & TE_CHUNKED_LAST) || te & TE_CHUNKED_TWICE) return 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED'
      if (te & TE_UNSUPPORTED) return 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING'
      head.chunked = true
    }
    // An HTTP/1.0 client cannot be waiting for a 100 (RFC 9110 §10.1.1).
    if (!http11) head.expectContinue = false
    const options = this.connectionOptions
    head.keepAlive = (options & CONN_CLOSE) === 0 && (http11 || (options & CONN_KEEP_ALIVE) !== 0)
    head.upgrade = (options & CONN_UPGRADE) !== 0 && this.hasUpgradeHeader
    this.handler.onHead(head)
    if (head.chunked) {
      this.chunks.begin()
      this.state = S.CHUNKED
    } else if (head.contentLength > 0) {
      this.bodyRemaining = head.contentLength
      this.state = S.BODY_IDENTITY
    } else {
      this.completeMessage()
    }
    return null
  }
}
