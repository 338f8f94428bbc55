// The response a handler writes. The head is serialized once, as one string, from a pre-built
// status line, the cached Date line and the handler's headers; the bytes go to the connection,
// which batches every response produced while it handles one read into a single socket write.

import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import { PetrelError } from '../core/errors.ts'
import { statusLine, dateHeaderLine, dateValue, statusHasNoBody } from './status.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import { contentLengthLine, h2HeadFields, isDigits, lowerCaseName, valueKind, ValueKind } from './response-fields.ts'
import { checkOffer, compressStream, compressWhole, type CompressionOffer, type ContentCoding } from './compression.ts'
import { BodyEncoder, compressionApplies, type EncodedBodyOut } from './body-encoder.ts'
import type { ResponseSink } from './response-sink.ts'

export type { ResponseSink } from './response-sink.ts'

export interface ResponseOptions {
  /** HEAD request: send the head a GET would get, but no body. */
  head: boolean
  /** HTTP/1.1 (chunked available) or HTTP/1.0. */
  http11: boolean
  /** Whether the connection may stay open after this response, as far as the request goes. */
  keepAlive: boolean
  /** Field lines every response of the server carries, right after the status line (ServerOptions.responseHeaders). */
  serverFields: string
}

export class Response {
  statusCode = 200
  headersSent = false
  finished = false
  /** Whether the connection stays open after this response; settled when the head is sent. */
  keepAlive: boolean
  /** Body bytes sent. For HEAD: the length of a body given to end(), or 0 when one was only declared or prepared. */
  bodyBytes = 0

  private readonly sink: ResponseSink
  private readonly isHead: boolean
  private readonly http11: boolean
  /** Flat [lowerName, name, value, …]. */
  private fields: string[] = []
  /** Field lines added whole by addRawFields(). */
  private rawFields = ''
  /** addTrailers()' fields as lines "name: value\r\n" ('' when none). */
  private trailerLines = ''
  /** Field lines of the server's own (ServerOptions.responseHeaders): a prepared head must hold them too (endPrepared). */
  readonly serverFields: string
  private chunked = false
  private declaredLength = -1
  /** A field value has bytes above 0x7f (obs-text): the head is then encoded as latin1, byte for byte. */
  private latin1Head = false
  /** Made on first use of `signal`: most responses never need one. */
  private controller: AbortController | null = null
  /**
   * Told once when the client leaves before this response is finished — its connection closed, or
   * it ended its side — as `signal` would be, without an AbortController and a listener closure per
   * request: for a handler that relays from elsewhere (the proxy) and must let go of it at once.
   */
  onClientGone: { clientGone(reason: Error): void } | null = null
  /** Compression offered by compress(), decided when the head is sent. */
  private offer: CompressionOffer | null = null
  /** The streaming encoder of a compressed body written in pieces. */
  private encoder: BodyEncoder | null = null
  /** end() was called and the body is still being compressed: no more may be written. */
  private ending = false

  constructor(sink: ResponseSink, options: ResponseOptions) {
    this.sink = sink
    this.isHead = options.head
    this.http11 = options.http11
    this.keepAlive = options.keepAlive
    this.serverFields = options.serverFields
  }

  status(code: number): this {
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new InvalidOptionError(`status code must be an integer from 100 to 999, got ${code}`)
    this.statusCode = code
    return this
  }

  /** Set a header, replacing any of the same name. Arrays give one field line per value. */
  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.fields.length > 0) this.removeHeader(name)
    if (Array.isArray(value)) for (const v of value) this.appendHeader(name, v)
    else this.appendHeader(name, value as string | number)
    return this
  }

  /** Add a field line without replacing others of the same name (e.g. Set-Cookie). */
  appendHeader(name: string, value: string | number): this {
    if (this.headersSent || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_HEADERS_SENT', name)
    const text = typeof value === 'number' ? String(value) : value
    const lower = lowerCaseName(name)
    const kind = valueKind(text)
    if (lower === null || kind === ValueKind.INVALID) throw new PetrelError('PETREL_ERR_INVALID_HEADER_FOR_RESPONSE', JSON.stringify(name))
    if (kind === ValueKind.LATIN1) this.latin1Head = true
    // The first field makes the array at its size (one allocation, no growth); later ones push.
    if (this.fields.length === 0) this.fields = [lower, name, text]
    else this.fields.push(lower, name, text)
    return this
  }

  /**
   * Add field lines as they are: `text` is zero or more lines, each `name: value\r\n`, which the
   * caller has checked — names are tokens, values hold no CR, LF, NUL or other control but HTAB —
   * and `obsText` says whether a value has bytes 0x80–0xff (one character per byte). For a proxy
   * passing an upstream's fields on: one string instead of a setHeader() for each. They go out
   * after the status line; they are not seen by getHeader() or hasHeader(), so they must not be
   * Content-Length, Transfer-Encoding or Connection (framing stays the response's own).
   */
  addRawFields(text: string, obsText: boolean): this {
    if (this.headersSent || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_HEADERS_SENT', 'raw fields')
    this.rawFields += text
    if (obsText) this.latin1Head = true
    return this
  }

  /**
   * Fields sent after the body (trailers, RFC 9110 §6.5): in the last chunk of a chunked
   * HTTP/1.1 body, and on HTTP/2 as a HEADERS frame after the DATA. A body sent with its length
   * on HTTP/1.1 has nowhere to carry them: they are dropped, as node:http drops them. Names and
   * values are checked as setHeader() checks them; framing fields are refused.
   */
  addTrailers(fields: Record<string, string>): this {
    if (this.finished || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_FINISHED')
    for (const name of Object.keys(fields)) {
      const value = fields[name]!
      const lower = lowerCaseName(name)
      if (lower === null || valueKind(value) !== ValueKind.ASCII || lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection')
        throw new PetrelError('PETREL_ERR_INVALID_HEADER_FOR_RESPONSE', `trailer ${JSON.stringify(name)}`)
      this.trailerLines += `${name}: ${value}\r\n`
    }
    return this
  }

  /** The body is over: the last chunk (with the trailers) when chunked, else the trailers where the protocol carries them (HTTP/2). */
  private sendBodyEnd(): void {
    if (this.chunked) this.sink.sendAscii(this.trailerLines === '' ? '0\r\n\r\n' : `0\r\n${this.trailerLines}\r\n`)
    else if (this.trailerLines !== '' && this.sink.trailers !== undefined) this.sink.trailers(this.trailerLines)
  }

  getHeader(name: string): string | undefined {
    const lower = name.toLowerCase()
    const f = this.fields
    for (let i = 0; i < f.length; i += 3) if (f[i] === lower) return f[i + 2]
    return undefined
  }

  hasHeader(name: string): boolean {
    return this.getHeader(name) !== undefined
  }

  removeHeader(name: string): this {
    if (this.headersSent || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_HEADERS_SENT', name)
    const lower = name.toLowerCase()
    const f = this.fields
    for (let i = f.length - 3; i >= 0; i -= 3) if (f[i] === lower) f.splice(i, 3)
    return this
  }

  /**
   * Send part of the body. Returns false when the client is not keeping up: await drain() before
   * writing more. `onFlushed`, for a Buffer the caller wants to reuse, is called once the socket
   * (or the compressor) no longer needs it — and not at all once the connection is gone: a pooled
   * buffer is then left to the garbage collector.
   */
  write(chunk: string | Buffer, onFlushed?: (err?: Error | null) => void): boolean {
    if (this.finished || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_FINISHED')
    const length = typeof chunk === 'string' ? utf8Length(chunk) : chunk.length
    if (!this.headersSent) {
      const offer = this.offer
      if (offer !== null && this.takeOffer(-1)) this.startEncoder(offer)
      // The head waits for the first piece of body when one follows, so both leave in one write.
      else this.sendHead(-1, '', length > 0 && !this.isHead && !statusHasNoBody(this.statusCode), true)
    }
    if (length === 0) {
      onFlushed?.()
      return true
    }
    if (this.encoder !== null) return this.encoder.write(chunk, onFlushed)
    if (this.isHead || statusHasNoBody(this.statusCode)) {
      this.bodyBytes += length
      onFlushed?.()
      return true
    }
    return this.sendBody(chunk, length, onFlushed)
  }

  /** Body bytes to the connection, framed as the head said (chunked, or as they are). */
  private sendBody(chunk: string | Buffer, length: number, onFlushed?: (err?: Error | null) => void): boolean {
    this.bodyBytes += length
    if (this.chunked) {
      if (typeof chunk === 'string') {
        const framed = `${length.toString(16)}\r\n${chunk}\r\n`
        return length === chunk.length ? this.sink.sendAscii(framed) : this.sink.send(framed)
      }
      this.sink.sendAscii(`${length.toString(16)}\r\n`, true)
      this.sink.send(chunk, true, onFlushed)
      return this.sink.sendAscii('\r\n')
    }
    if (typeof chunk === 'string' && length === chunk.length && onFlushed === undefined) return this.sink.sendAscii(chunk)
    return this.sink.send(chunk, false, onFlushed)
  }

  /**
   * Compress the body in `offer.coding` if the response qualifies when its head is sent: a
   * status with a body worth it (200–203, 4xx, 5xx), a compressible Content-Type, no
   * Content-Encoding or Content-Range, no `Cache-Control: no-transform`, not HEAD, and a known
   * length of at least `offer.minBytes` (an unknown one is compressed). Then Content-Length and
   * Accept-Ranges go, Content-Encoding is set, Vary gets Accept-Encoding and a strong ETag is made
   * weak. A body given whole to end() is compressed in one piece and sent with its length; one
   * written in pieces streams through the compressor, each write flushed, with backpressure:
   * write() returns false while the compressor or the client is behind (await drain()).
   * Choose the coding from the request with chooseCoding() (server/compression.ts).
   */
  compress(offer: CompressionOffer): this {
    if (this.headersSent || this.ending) throw new PetrelError('PETREL_ERR_RESPONSE_HEADERS_SENT', 'compress()')
    checkOffer(offer)
    this.offer = offer
    return this
  }

  /** Whether the offered compression applies, now that the head is due; if so the fields are made to say so. */
  private takeOffer(length: number): boolean {
    const offer = this.offer!
    this.offer = null
    if (this.isHead || length === 0) return false
    const fields = compressionApplies(this.statusCode, this.fields, this.rawFields, length >= 0 ? length : this.declaredContentLength(), offer)
    if (fields === null) return false
    this.fields = fields.fields
    this.rawFields = fields.rawFields
    return true
  }

  /** The Content-Length a handler set, or -1. */
  private declaredContentLength(): number {
    const declared = this.getHeader('content-length')
    return declared !== undefined && isDigits(declared) ? Number(declared) : -1
  }

  /** A body in pieces: the head goes now (chunked), the compressed bytes follow as the compressor makes them. */
  private startEncoder(offer: CompressionOffer): void {
    this.sendHead(-1, '', false, true)
    const out: EncodedBodyOut = {
      sendBody: (chunk) => this.sendBody(chunk, chunk.length),
      waitDrain: () => this.sink.waitDrain(),
      encoded: () => this.encodedEnd(),
      encodeFailed: (err) => {
        this.sink.reportError(err)
        this.abort()
      },
    }
    this.encoder = new BodyEncoder(compressStream(offer.coding, offer.level), out)
  }

  /** The compressor has sent its last bytes. */
  private encodedEnd(): void {
    if (this.finished) return
    this.sendBodyEnd()
    this.finished = true
    this.sink.responseDone(this)
  }

  /** A whole body, compressed in one piece on the thread pool, then sent with its length. */
  private endCompressed(body: string | Buffer, coding: ContentCoding, level: number): void {
    this.ending = true
    compressWhole(typeof body === 'string' ? Buffer.from(body) : body, coding, level, (err, out) => {
      // The client left, or the response was aborted, while it was being compressed.
      if (this.finished || !this.sink.open) return
      if (err !== null) {
        this.sink.reportError(err)
        this.abort()
        return
      }
      this.sendHead(out.length, '', true, true)
      this.bodyBytes = out.length
      this.sink.send(out)
      this.sendBodyEnd()
      this.finished = true
      this.sink.responseDone(this)
    })
  }

  /** Resolves when the client has taken what was written, so more may be written. */
  drain(): Promise<void> {
    return this.encoder === null ? this.sink.waitDrain() : this.encoder.drained()
  }

  /** Finish the response, optionally with (the rest of) its body: a string, a Buffer or a stream. */
  end(body?: string | Buffer | Readable): void {
    if (this.finished || this.ending) return
    if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      this.pipeFrom(body)
      return
    }
    if (this.offer !== null && !this.headersSent) {
      const offer = this.offer
      const length = body === undefined ? 0 : typeof body === 'string' ? utf8Length(body) : body.length
      if (this.takeOffer(length)) {
        this.endCompressed(body!, offer.coding, offer.level)
        return
      }
    }
    if (this.encoder !== null) {
      this.ending = true
      this.encoder.end(body)
      return
    }
    // A HEAD answer may declare the length a GET would have without sending a body.
    const headWithDeclaredLength = !this.headersSent && body === undefined && this.isHead && this.hasHeader('content-length')
    if (!this.headersSent && !headWithDeclaredLength) {
      // The whole body is known: one head with its length, and (for strings) one send.
      const isString = typeof body === 'string'
      const length = body === undefined ? 0 : isString ? utf8Length(body) : body.length
      this.bodyBytes = length
      const sendBody = length > 0 && !this.isHead && !statusHasNoBody(this.statusCode)
      if (isString) {
        // A string whose UTF-8 length is its length is ASCII.
        this.sendHead(length, sendBody ? body : '', false, length === body.length)
      } else {
        this.sendHead(length, '', sendBody, true)
        if (sendBody) this.sink.send(body!)
      }
      if (!this.isHead && !statusHasNoBody(this.statusCode)) this.sendBodyEnd()
    } else {
      if (!this.headersSent) this.sendHead(-1, '', false, true)
      if (body !== undefined) this.write(body)
      if (!this.isHead && !this.chunked && this.declaredLength >= 0 && this.bodyBytes !== this.declaredLength) {
        this.sink.reportError(new Error(`response body was ${this.bodyBytes} bytes but Content-Length said ${this.declaredLength}; the connection was closed`))
        this.abort()
        return
      }
      if (!this.isHead) this.sendBodyEnd()
    }
    this.finished = true
    this.sink.responseDone(this)
  }

  /**
   * Finish with a head built ahead of time — status line to blank line, `Date` and
   * `Content-Length` included — and its body. For a server that answers the same bytes many
   * times: the static server's in-memory files build their head once per file per second (the
   * Date line) instead of once per request. Only a 200 on a keep-alive HTTP/1.1 exchange with no
   * header set yet can be answered this way; otherwise nothing is sent, false is returned, and the
   * caller answers the usual way (so too when compression was offered: see compress()). The head's fields are not kept as fields: getHeader() (in an
   * onResponse hook, say) does not see them. The head must carry `serverFields` after its status line.
   */
  endPrepared(head: string, body: Buffer): boolean {
    if (
      this.headersSent ||
      this.finished ||
      this.offer !== null ||
      this.fields.length > 0 ||
      this.rawFields !== '' ||
      this.statusCode !== 200 ||
      !this.http11 ||
      !this.keepAlive ||
      !this.sink.mayKeepAlive()
    )
      return false
    this.headersSent = true
    // As the static server's general path counts a HEAD: nothing sent (nginx's $body_bytes_sent).
    this.bodyBytes = this.isHead ? 0 : body.length
    if (this.isHead || body.length === 0) {
      this.sink.send(head)
    } else {
      this.sink.send(head, true)
      this.sink.send(body)
    }
    this.finished = true
    this.sink.responseDone(this)
    return true
  }

  /**
   * Run `fn(a, b, c)` with the connection corked: the writes it makes leave together (one system
   * call) when it returns or throws — for a handler that produces a head and body pieces from
   * outside the connection's own read, such as a proxy passing on an upstream's read. Ending the
   * response inside `fn` sends at once and ends the cork. A cork is scoped so that it cannot be
   * left on; `fn` and its arguments are passed apart so that a caller on a hot path passes a
   * module-level function, not a closure made per call. Returns what `fn` returns.
   */
  corked<R>(fn: () => R): R
  corked<A, R>(fn: (a: A) => R, a: A): R
  corked<A, B, R>(fn: (a: A, b: B) => R, a: A, b: B): R
  corked<A, B, C, R>(fn: (a: A, b: B, c: C) => R, a: A, b: B, c: C): R
  corked<A, B, C, R>(fn: (a?: A, b?: B, c?: C) => R, a?: A, b?: B, c?: C): R {
    const sink = this.sink
    // Already corked (a nested call) or closed: the outer scope, or nobody, flushes.
    if (!sink.cork()) return fn(a, b, c)
    try {
      return fn(a, b, c)
    } finally {
      sink.uncork()
    }
  }

  /**
   * Take the connection out of HTTP (a CONNECT tunnel, a protocol switch): nothing more is
   * parsed or written by the server on it, its timers stop, and the caller owns the socket —
   * paused, with `head` the bytes the client already sent past this request. Write your own
   * response (e.g. "HTTP/1.1 200 Connection Established") before anything else.
   */
  detach(): { socket: Socket; head: Buffer } {
    if (this.headersSent || this.finished || this.sink.detach === undefined)
      throw new PetrelError('PETREL_ERR_RESPONSE_HEADERS_SENT', 'detach() needs a fresh response on a client connection')
    this.finished = true
    return this.sink.detach()
  }

  /**
   * End the exchange with an error found after the handler returned (a handler that answers
   * from a callback rather than a promise): the answer is the one the server gives when a handler
   * throws `err` — a PetrelError's status (else 500), the error reported unless it is a 503 —
   * or, once the head went out, a cut connection.
   */
  fail(err: Error): void {
    // Even a finished response's error is reported (the connection may have answered for it).
    this.sink.fail(err, this)
  }

  /** Give up: the connection is closed without a clean end, so the client sees a truncated response. */
  abort(): void {
    if (this.finished) return
    this.finished = true
    this.encoder?.destroy(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'the response was aborted'))
    this.sink.abort()
  }

  /**
   * True once end() was called (or the response was aborted): the handler is done with it, though
   * a compressed body may still be on its way (`finished` is set when the last byte is queued).
   */
  get ended(): boolean {
    return this.finished || this.ending
  }

  /** True once the client's connection is gone: nothing written will arrive. */
  get closed(): boolean {
    return !this.sink.open
  }

  /**
   * Aborted when the client's connection closes before this response is finished: hand it to
   * work done for the response (a CGI script, a task on a thread pool) so that the work stops
   * when nobody is waiting for it. The reason is a PETREL_ERR_CONNECTION_CLOSED error.
   */
  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController()
      if (!this.sink.open && !this.finished) this.controller.abort(new PetrelError('PETREL_ERR_CONNECTION_CLOSED'))
    }
    return this.controller.signal
  }

  /** Called by the connection when it closes, or the client ends its side, while this response is its current one. */
  connectionClosed(reason: Error): void {
    const listener = this.onClientGone
    if (listener !== null) {
      this.onClientGone = null
      listener.clientGone(reason)
    }
    if (this.controller !== null && !this.controller.signal.aborted) this.controller.abort(reason)
    // A client that only half-closed still gets the rest of the body: the compressor goes on.
    if (this.encoder !== null && !this.sink.open) {
      this.encoder.destroy(reason)
      this.finished = true
    }
  }

  /** Send `value` as JSON. */
  json(value: unknown): void {
    if (!this.hasHeader('content-type')) this.fields.push('content-type', 'Content-Type', 'application/json')
    this.end(JSON.stringify(value))
  }

  /**
   * Serialize the head. `length` is the body length, or -1 when unknown (chunked on HTTP/1.1,
   * close-delimited on HTTP/1.0). `tail` is appended to the same string, so a small body goes
   * out in the same write as its head; `more` says body bytes are sent right after, so the head
   * waits for them instead of leaving as a segment of its own.
   */
  private sendHead(length: number, tail: string, more: boolean, tailAscii: boolean): void {
    const code = this.statusCode
    if (this.sink.sendFields !== undefined) {
      // HTTP/2: fields, not text (no framing, no Connection to decide).
      const lines = this.serverFields === '' ? this.rawFields : this.serverFields + this.rawFields
      const [fields, declared] = h2HeadFields(code, this.fields, length, statusHasNoBody(code), lines, dateValue())
      if (length < 0) this.declaredLength = declared
      this.headersSent = true
      this.sink.sendFields(fields, tail, more)
      return
    }
    let head = statusLine(code) + this.serverFields + this.rawFields
    let hasDate = false
    const f = this.fields
    for (let i = 0; i < f.length; i += 3) {
      const lower = f[i]!
      if (lower === 'content-length') {
        // Framing is written below, once: from the known body, else from this declaration.
        if (length < 0) {
          const declared = f[i + 2]!
          this.declaredLength = isDigits(declared) ? Number(declared) : -1
          if (this.declaredLength < 0) throw new PetrelError('PETREL_ERR_INVALID_HEADER_FOR_RESPONSE', `Content-Length: ${declared}`)
        }
        continue
      } else if (lower === 'transfer-encoding') {
        continue
      } else if (lower === 'connection') {
        if (f[i + 2]!.toLowerCase().includes('close')) this.keepAlive = false
        continue
      } else if (lower === 'date') {
        hasDate = true
      }
      head += `${f[i + 1]}: ${f[i + 2]}\r\n`
    }
    if (!hasDate) head += dateHeaderLine()
    if (!statusHasNoBody(code)) {
      if (length >= 0) head += contentLengthLine(length)
      else if (this.declaredLength >= 0) head += contentLengthLine(this.declaredLength)
      else if (this.http11) {
        this.chunked = true
        head += 'Transfer-Encoding: chunked\r\n'
      } else {
        // HTTP/1.0 without a length: the body ends when the connection does.
        this.keepAlive = false
      }
    }
    if (this.keepAlive && !this.sink.mayKeepAlive()) this.keepAlive = false
    if (!this.keepAlive) head += 'Connection: close\r\n'
    else if (!this.http11) head += 'Connection: keep-alive\r\n'
    this.headersSent = true
    if (this.latin1Head) {
      // Rare: a value with obs-text bytes (a proxied or CGI field, say). The connection writes
      // strings as UTF-8, which would turn each such byte into two, so the head goes as latin1
      // bytes, as node:http writes heads, and a string body after it as UTF-8.
      this.sink.send(Buffer.from(head + '\r\n', 'latin1'), more || tail !== '')
      if (tail !== '') this.sink.send(tail, more)
      return
    }
    // The head is ASCII here: names are tokens, values were checked by valueKind().
    const text = tail === '' ? head + '\r\n' : head + '\r\n' + tail
    if (tailAscii) this.sink.sendAscii(text, more)
    else this.sink.send(text, more)
  }

  private async pipeFrom(stream: Readable): Promise<void> {
    try {
      for await (const chunk of stream) {
        if (!this.sink.open) {
          stream.destroy()
          return
        }
        if (!this.write(chunk as Buffer | string)) await this.drain()
      }
      if (this.sink.open) this.end()
    } catch (err) {
      // A client that left is not an error of the stream's; anything else is reported once.
      if ((err as PetrelError).code !== 'PETREL_ERR_CONNECTION_CLOSED') this.sink.reportError(err as Error)
      this.abort()
    }
  }
}

/**
 * The UTF-8 length of `text`. A handler often answers with the same string as last time (a
 * constant body): that is one comparison — a pointer compare for the same string — instead of a
 * call into Node that measures it again. Only short strings are kept, so a large body is not
 * held after its response.
 */
function utf8Length(text: string): number {
  if (text.length > MAX_KEPT_TEXT) return Buffer.byteLength(text)
  if (text !== lastText) {
    lastText = text
    lastLength = Buffer.byteLength(text)
  }
  return lastLength
}
let lastText = ''
let lastLength = 0
const MAX_KEPT_TEXT = 4096
