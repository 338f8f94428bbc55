// HTTP/1.1 response parser for the load generator and the proxy (RFC 9112 §4, §6.3, §7.1).
//
// A client that measures servers must agree with them about where each response ends, or every
// count after the first disagreement is wrong. So the framing rules are the RFC's, in its order
// (§6.3): no body after HEAD, 1xx, 204 and 304; Transfer-Encoding ending in chunked; then
// Content-Length; else the body runs to the end of the connection. Interim 1xx responses are
// skipped; a 101 ends HTTP on the connection. Everything else about a response is counted, not
// kept: the parser reads the status and the three fields that frame a message and skips the rest.
//
// The head and the trailer section are lines, so the parser works on them a line at a time: a
// line that lies whole in the read is parsed where it is; one split across reads is gathered in a
// scratch buffer bounded by the head limit. Chunked framing is the ChunkedDecoder's (chunked.ts),
// the one the request parser uses. Bodies are skipped by counting. Nothing is allocated per response.
//
// Use: `pos = parser.execute(buf, pos, end)` until pos === end; after each call, `complete` says a
// final response ended at `pos` (read `status` and `keepAlive`, then call `next()`), and `errorCode`
// (a code of src/core/errors.ts, with `error` saying what exactly) says the stream cannot be parsed:
// the connection must be dropped. At end of stream, `finish()` completes a response whose body was
// delimited by the close.
//
// Strict or lenient: a proxy refuses a line that ends in a bare LF (the upstream and the client
// could disagree about where the message ends), a load generator may accept it (RFC 9112 §2.2
// allows a recipient to), with `allowBareLf`.

import { Buffer } from 'node:buffer'
import type { ErrorCode } from '../../core/errors.ts'
import { CR, LF, SP, HTAB, COLON, TOKEN, LINE_TEXT, equalsLowerAscii } from './chars.ts'
import { ChunkedDecoder, ChunkState, type ChunkError } from './chunked.ts'
import {
  parseContentLength,
  readTransferCodings,
  readConnectionOptions,
  TE_CHUNKED_LAST,
  TE_CHUNKED_SEEN,
  TE_CHUNKED_TWICE,
  TE_MALFORMED,
  TE_UNKNOWN,
  TE_UNSUPPORTED,
  CONN_CLOSE,
  CONN_KEEP_ALIVE,
} from './fields.ts'

/** Default bound on a response head (status line + fields) and on a trailer section. */
export const DEFAULT_MAX_RESPONSE_HEAD_BYTES = 64 * 1024
/**
 * Default bound on the field lines of one head (or trailer section). Generous, for a load generator
 * that must read whatever a server sends; the proxy passes its own, the request limits' defaults.
 */
export const DEFAULT_MAX_RESPONSE_FIELD_COUNT = 1000
/** Default bound on a chunk-size line (size, extensions and CRLF included); longer is refused. */
export const MAX_CHUNK_LINE_BYTES = 4096

export const ResponseParserState = {
  STATUS_LINE: 0,
  HEADER_LINE: 1,
  BODY_LENGTH: 2,
  /** A chunked body: its framing is the ChunkedDecoder's. */
  CHUNKED: 3,
  TRAILER_LINE: 4,
  BODY_TO_CLOSE: 5,
  COMPLETE: 6,
  ERROR: 7,
} as const
export type ResponseParserState = (typeof ResponseParserState)[keyof typeof ResponseParserState]

const S = ResponseParserState

/** What a chunked body that the decoder refuses is reported as: the code and the specifics. */
const CHUNK_ERRORS: Readonly<Record<ChunkError, readonly [ErrorCode, string]>> = {
  'no-size': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'chunk-size line without a size'],
  'size-too-large': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'chunk size too large'],
  // No body limit is given to the decoder (Number.MAX_SAFE_INTEGER): this is here for completeness.
  'body-too-large': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'chunked body too large'],
  'malformed-line': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'malformed chunk-size line'],
  'line-too-long': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'chunk-size line too long'],
  'bare-lf': ['PETREL_ERR_UPSTREAM_BARE_LF', 'a line ends in a bare LF'],
  'data-overrun': ['PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'chunk data longer than its size'],
}

export interface ResponseParserOptions {
  /** The requests are HEAD: no response has a body, whatever its fields say. */
  headRequests?: boolean
  /** Bytes of a head (status line and field lines) or of a trailer section; more is an error. */
  maxHeadBytes?: number
  /** Field lines in a head or in a trailer section; more is an error. */
  maxFieldCount?: number
  /** Accept lines that end in a bare LF (default: refuse them, PETREL_ERR_UPSTREAM_BARE_LF). */
  allowBareLf?: boolean
  /** Bytes of one chunk-size line, extensions and CRLF included (default MAX_CHUNK_LINE_BYTES); more is an error. */
  maxChunkLineBytes?: number
  /** Receive the final response's fields and body (a proxy); without it they are only counted. */
  handler?: ResponseHandler
}

/** What a parser with a handler reports of each final response (interim 1xx heads are skipped). */
export interface ResponseHandler {
  /**
   * A field of the final response (or of a 101): its name is buf[nameStart, nameEnd), a token as
   * sent, and its value buf[valueStart, valueEnd), without the whitespace around it. Offsets into
   * the read (or into the parser's scratch for a line split across reads), valid only during the
   * call. The parser checks names; the bytes of values are the handler's to check.
   */
  onField(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void
  /** The head is complete and its framing checked; `bodyLength` is the Content-Length, or -1 (chunked, to close, or none). */
  onHead(status: number, bodyLength: number): void
  /** Body bytes, de-chunked: buf[start, end), valid only during the call unless copied or kept whole. */
  onBody(buf: Buffer, start: number, end: number): void
}

export class ResponseParser {
  /** Status code of the response that just completed (or of the one being parsed). */
  status = 0
  /** Whether the connection may carry another request after the completed response. */
  keepAlive = true
  /** A final response ended at the position execute() returned; call next() before going on. */
  complete = false
  /** Why the stream cannot be parsed, once it cannot (the code's specifics); the connection must then be dropped. */
  error: string | null = null
  /** The error's code in the one table (src/core/errors.ts), set with `error`. */
  errorCode: ErrorCode | null = null

  /** The request being answered is HEAD (settable per exchange when a connection is reused). */
  headRequests: boolean
  private readonly maxHeadBytes: number
  private readonly maxFieldCount: number
  private readonly allowBareLf: boolean
  /** Receives the response (settable per exchange when a connection is reused). */
  handler: ResponseHandler | null
  private state: ResponseParserState = S.STATUS_LINE
  /** Bytes of the current head or trailer section so far, against maxHeadBytes. */
  private sectionBytes = 0
  /** Field lines of the current head or trailer section so far, against maxFieldCount. */
  private sectionFields = 0
  /** Body bytes left of a Content-Length body. */
  private remaining = 0
  /** Framing of a chunked body. */
  private readonly chunks: ChunkedDecoder
  private versionMinor = 1
  private contentLength = -1
  private transferCodings = 0
  private hasTransferEncoding = false
  private connection = 0
  /** A line split across reads, gathered until its LF arrives. */
  private scratch: Buffer = Buffer.allocUnsafe(256)
  private scratchLength = 0

  constructor(options: ResponseParserOptions = {}) {
    this.headRequests = options.headRequests === true
    this.maxHeadBytes = options.maxHeadBytes ?? DEFAULT_MAX_RESPONSE_HEAD_BYTES
    this.maxFieldCount = options.maxFieldCount ?? DEFAULT_MAX_RESPONSE_FIELD_COUNT
    this.allowBareLf = options.allowBareLf === true
    this.handler = options.handler ?? null
    // Extensions may hold any byte but CR and LF, as nginx reads an upstream's; whitespace after a
    // size without an extension is tolerated, as nginx does. Responses have no body limit here.
    this.chunks = new ChunkedDecoder({
      maxLineBytes: options.maxChunkLineBytes ?? MAX_CHUNK_LINE_BYTES,
      maxBodyBytes: Number.MAX_SAFE_INTEGER,
      extensionBytes: LINE_TEXT,
      allowBareLf: this.allowBareLf,
      allowWhitespaceAfterSize: true,
    })
  }

  /** Start on the next response after a complete one. */
  next(): void {
    this.complete = false
    this.state = S.STATUS_LINE
    this.beginHead()
  }

  /** True between responses: nothing of a response has arrived since the last one completed. */
  get idle(): boolean {
    return (this.state === S.STATUS_LINE && this.sectionBytes === 0) || this.state === S.COMPLETE
  }

  /** Forget any partial response: the connection it came on is gone. */
  reset(): void {
    this.error = null
    this.errorCode = null
    this.next()
  }

  /**
   * Parse buf[pos, end). Returns where parsing stopped: at `end`, right after a complete response
   * (`complete`), or where an error was found (`error`).
   */
  execute(buf: Buffer, pos: number, end: number): number {
    while (pos < end) {
      switch (this.state) {
        case S.BODY_LENGTH: {
          const n = Math.min(end - pos, this.remaining)
          if (this.handler !== null) this.handler.onBody(buf, pos, pos + n)
          pos += n
          this.remaining -= n
          if (this.remaining === 0) this.finishResponse()
          break
        }
        case S.CHUNKED: {
          const chunks = this.chunks
          if (chunks.state === ChunkState.DATA) {
            const n = chunks.take(end - pos)
            if (this.handler !== null) this.handler.onBody(buf, pos, pos + n)
            pos += n
            break
          }
          pos = chunks.parse(buf, pos, end)
          if (chunks.state === ChunkState.TRAILERS) {
            this.state = S.TRAILER_LINE
            this.sectionBytes = 0
            this.sectionFields = 0
          } else if (chunks.state === ChunkState.ERROR) {
            const [code, reason] = CHUNK_ERRORS[chunks.error!]
            this.fail(code, reason)
          }
          break
        }
        case S.BODY_TO_CLOSE:
          if (this.handler !== null) this.handler.onBody(buf, pos, end)
          return end
        case S.COMPLETE:
        case S.ERROR:
          return pos
        default:
          pos = this.line(buf, pos, end)
      }
      if (this.stopped()) return pos
    }
    return pos
  }

  /** A response completed or the stream failed: execute() returns, whatever the state before. */
  private stopped(): boolean {
    return this.state === S.COMPLETE || this.state === S.ERROR
  }

  /**
   * The connection ended. Returns true when that completes the response being read (a body
   * delimited by the close); false when a response was cut short or none was under way.
   */
  finish(): boolean {
    if (this.state !== S.BODY_TO_CLOSE) return false
    this.keepAlive = false
    this.finishResponse()
    return true
  }

  /** Find the end of the line at pos and hand the whole line to the state's handler. */
  private line(buf: Buffer, pos: number, end: number): number {
    let lf = pos
    while (lf < end && buf[lf] !== LF) lf++
    const taken = lf - pos + (lf < end ? 1 : 0)
    this.sectionBytes += taken
    if (this.sectionBytes > this.maxHeadBytes) {
      this.fail('PETREL_ERR_UPSTREAM_HEADERS_TOO_LARGE', this.state === S.TRAILER_LINE ? 'trailer section too large' : 'response head too large')
      return pos
    }
    if (lf === end) {
      this.gather(buf, pos, end)
      return end
    }
    if (this.scratchLength === 0) {
      const cr = lf > pos && buf[lf - 1] === CR
      if (!cr && !this.allowBareLf) return this.bareLf(pos)
      this.onLine(buf, pos, cr ? lf - 1 : lf)
    } else {
      this.gather(buf, pos, lf)
      const length = this.scratchLength
      this.scratchLength = 0
      const cr = length > 0 && this.scratch[length - 1] === CR
      if (!cr && !this.allowBareLf) return this.bareLf(pos)
      this.onLine(this.scratch, 0, cr ? length - 1 : length)
    }
    return this.state === S.ERROR ? pos : lf + 1
  }

  /** A line ended in LF without CR before it: refused, since a peer that reads it otherwise could frame the message differently. */
  private bareLf(pos: number): number {
    this.fail('PETREL_ERR_UPSTREAM_BARE_LF', 'a line ends in a bare LF')
    return pos
  }

  private gather(buf: Buffer, start: number, end: number): void {
    const needed = this.scratchLength + (end - start)
    if (needed > this.scratch.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.scratch.length * 2))
      this.scratch.copy(grown, 0, 0, this.scratchLength)
      this.scratch = grown
    }
    buf.copy(this.scratch, this.scratchLength, start, end)
    this.scratchLength = needed
  }

  /** One line, without its CRLF (or bare LF, which RFC 9112 §2.2 lets a recipient accept: `allowBareLf`). */
  private onLine(b: Buffer, s: number, e: number): void {
    switch (this.state) {
      case S.STATUS_LINE:
        return this.statusLine(b, s, e)
      case S.HEADER_LINE:
        return e === s ? this.endOfHead() : this.fieldLine(b, s, e)
      case S.TRAILER_LINE:
        if (e === s) this.finishResponse()
        else if (++this.sectionFields > this.maxFieldCount) this.fail('PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS', 'too many trailer fields')
        return
    }
  }

  /** HTTP-version SP 3DIGIT SP [reason-phrase]; a missing reason phrase is tolerated, as browsers do. */
  private statusLine(b: Buffer, s: number, e: number): void {
    // Blank lines before a status line are skipped, as RFC 9112 §2.2 allows before a request line.
    if (e === s) return
    if (
      e - s < 12 ||
      b[s] !== 0x48 ||
      b[s + 1] !== 0x54 ||
      b[s + 2] !== 0x54 ||
      b[s + 3] !== 0x50 || // HTTP
      b[s + 4] !== 0x2f ||
      b[s + 5] !== 0x31 ||
      b[s + 6] !== 0x2e || // /1.
      b[s + 7]! < 0x30 ||
      b[s + 7]! > 0x39 ||
      b[s + 8] !== SP
    ) {
      return this.fail('PETREL_ERR_UPSTREAM_INVALID_STATUS_LINE', 'malformed status line')
    }
    const d0 = b[s + 9]! - 0x30
    const d1 = b[s + 10]! - 0x30
    const d2 = b[s + 11]! - 0x30
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (e - s > 12 && b[s + 12] !== SP)) {
      return this.fail('PETREL_ERR_UPSTREAM_INVALID_STATUS_LINE', 'malformed status code')
    }
    this.versionMinor = b[s + 7]! - 0x30
    this.status = d0 * 100 + d1 * 10 + d2
    this.state = S.HEADER_LINE
  }

  private fieldLine(b: Buffer, s: number, e: number): void {
    if (++this.sectionFields > this.maxFieldCount) return this.fail('PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS', 'too many header fields')
    if (b[s] === SP || b[s] === HTAB) return this.fail('PETREL_ERR_UPSTREAM_INVALID_HEADER', 'obsolete line folding in a response head')
    let colon = s
    while (colon < e && b[colon] !== COLON) {
      // A name is a token: "Content-Length : 5" must not slip past as some other field (RFC 9112 §5.1).
      if (TOKEN[b[colon]!] === 0) return this.fail('PETREL_ERR_UPSTREAM_INVALID_HEADER', 'field name with a character that is not a token character')
      colon++
    }
    if (colon === e) return this.fail('PETREL_ERR_UPSTREAM_INVALID_HEADER', 'field line without a colon')
    if (colon === s) return this.fail('PETREL_ERR_UPSTREAM_INVALID_HEADER', 'field line without a name')
    const nameLength = colon - s
    const handler = this.status >= 200 || this.status === 101 ? this.handler : null
    // Only the framing fields matter here; the length test turns nearly every other name away at once.
    const framing = nameLength === 14 || nameLength === 17 || nameLength === 10
    if (handler === null && !framing) return
    let vs = colon + 1
    let ve = e
    while (vs < ve && (b[vs] === SP || b[vs] === HTAB)) vs++
    while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--
    if (handler !== null) handler.onField(b, s, colon, vs, ve)
    if (!framing) return
    if (nameLength === 14 && equalsLowerAscii(b, s, colon, 'content-length')) {
      const length = parseContentLength(b, vs, ve)
      if (length < 0) return this.fail('PETREL_ERR_UPSTREAM_INVALID_FRAMING', 'Content-Length is not a number')
      if (this.contentLength >= 0 && this.contentLength !== length) return this.fail('PETREL_ERR_UPSTREAM_INVALID_FRAMING', 'conflicting Content-Length values')
      this.contentLength = length
    } else if (nameLength === 17 && equalsLowerAscii(b, s, colon, 'transfer-encoding')) {
      this.hasTransferEncoding = true
      this.transferCodings = readTransferCodings(b, vs, ve, this.transferCodings)
    } else if (nameLength === 10 && equalsLowerAscii(b, s, colon, 'connection')) {
      this.connection |= readConnectionOptions(b, vs, ve)
    }
  }

  private endOfHead(): void {
    const status = this.status
    if (status < 200 && status !== 101) {
      // An interim response (100 Continue, 103 Early Hints): the final one follows.
      this.state = S.STATUS_LINE
      this.beginHead()
      return
    }
    this.keepAlive = status !== 101 && (this.connection & CONN_CLOSE) === 0 && (this.versionMinor >= 1 || (this.connection & CONN_KEEP_ALIVE) !== 0)
    // §6.3 rule 1 first: these responses have no body, whatever framing fields they carry.
    if (this.headRequests || status === 101 || status === 204 || status === 304) {
      this.handler?.onHead(status, -1)
      return this.finishResponse()
    }
    if (this.hasTransferEncoding && this.contentLength >= 0) {
      // RFC 9112 §6.3: a sign of response splitting or smuggling; the framing cannot be trusted.
      return this.fail('PETREL_ERR_UPSTREAM_INVALID_FRAMING', 'both Transfer-Encoding and Content-Length')
    }
    if (this.hasTransferEncoding) {
      // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; an empty value or chunked twice is malformed.
      if (this.versionMinor === 0) return this.fail('PETREL_ERR_UPSTREAM_INVALID_FRAMING', 'Transfer-Encoding in an HTTP/1.0 response')
      if (this.transferCodings & (TE_MALFORMED | TE_CHUNKED_TWICE) || (this.transferCodings & (TE_CHUNKED_SEEN | TE_UNKNOWN | TE_UNSUPPORTED)) === 0) {
        return this.fail('PETREL_ERR_UPSTREAM_INVALID_FRAMING', 'malformed Transfer-Encoding')
      }
      this.handler?.onHead(status, -1)
      if (this.transferCodings & TE_CHUNKED_LAST) {
        this.chunks.begin()
        this.state = S.CHUNKED
      } else {
        // A coding other than chunked last: the body ends with the connection (RFC 9112 §6.3).
        this.keepAlive = false
        this.state = S.BODY_TO_CLOSE
      }
    } else if (this.contentLength > 0) {
      this.handler?.onHead(status, this.contentLength)
      this.remaining = this.contentLength
      this.state = S.BODY_LENGTH
    } else if (this.contentLength === 0) {
      this.handler?.onHead(status, 0)
      this.finishResponse()
    } else {
      this.handler?.onHead(status, -1)
      this.keepAlive = false
      this.state = S.BODY_TO_CLOSE
    }
  }

  private beginHead(): void {
    this.sectionBytes = 0
    this.sectionFields = 0
    this.contentLength = -1
    this.transferCodings = 0
    this.hasTransferEncoding = false
    this.connection = 0
    this.scratchLength = 0
  }

  private finishResponse(): void {
    this.state = S.COMPLETE
    this.complete = true
  }

  /** Stop for good: the rest of the stream cannot be framed. */
  private fail(code: ErrorCode, reason: string): void {
    this.state = S.ERROR
    this.errorCode = code
    this.error = reason
  }
}
