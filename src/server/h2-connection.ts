// An HTTP/2 connection of the server: the socket on one side, an H2Session (protocol/http2) on
// the other, and for each stream the Request and Response every handler already knows. A
// stream's Response writes the same bytes as over HTTP/1.1 (it is made as for HTTP/1.0, so it
// never frames a body in chunks); this file reads the head back into fields for HPACK, and
// passes the body on as DATA within the flow-control windows.
//
// A head is held until the body's first bytes or the response's end, and the last piece of body
// until the next piece or the end, so that `res.end(body)` is one HEADERS and one DATA frame with
// END_STREAM, not three frames. What is held is sent at the end of the socket read being handled,
// or in a microtask for a response made outside one.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { PetrelError } from '../core/errors.ts'
import { H2Error, PREFACE } from '../protocol/http2/frames.ts'
import { H2Session, type H2Stream, type SessionEvents, type SessionOutput } from '../protocol/http2/session.ts'
import { requestHead, requestTrailers } from './h2-request.ts'
import type { BodySource } from './request.ts'
import type { Request } from './request.ts'
import { Response, type ResponseSink } from './response.ts'
import type { HttpServer } from './server.ts'
import { Connection } from './connection.ts'
import { answerBody } from './answer.ts'
import { Phase } from './phase.ts'

/** Fields of an HTTP/1.1 head that HTTP/2 forbids (§8.2.2): dropped from what the Response wrote. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

export class H2Connection implements SessionOutput, SessionEvents {
  readonly server: HttpServer
  readonly socket: Socket
  readonly session: H2Session
  readonly secure: boolean
  /** Exchanges holding a head or body piece to send at the next flush. */
  private readonly held = new Set<H2Exchange>()
  private inRead = false
  private flushQueued = false
  private isClosed = false
  /** Waiting for the socket to drain. */
  private socketBehind = false

  constructor(server: HttpServer, socket: Socket, secure: boolean) {
    this.server = server
    this.socket = socket
    this.secure = secure
    this.session = new H2Session(this, this, {
      maxConcurrentStreams: server.http2.maxConcurrentStreams,
      maxHeaderListBytes: server.limits.maxHeaderBytes,
    })
    socket.setNoDelay(true)
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
    socket.setTimeout(server.timeouts.keepAliveMs, this.onIdle)
    this.session.start()
    // A client must acknowledge this side's SETTINGS (§6.5.3): one that does not within the
    // handshake timeout (timeouts.handshakeMs, 10 s: the SETTINGS exchange ends HTTP/2's handshake) is cut.
    this.settingsTimer = setTimeout(this.onSettingsTimeout, server.timeouts.handshakeMs)
    this.settingsTimer.unref()
  }

  private readonly settingsTimer: NodeJS.Timeout

  private readonly onSettingsTimeout = (): void => {
    if (!this.session.settingsAcknowledged)
      this.session.connectionError(H2Error.SETTINGS_TIMEOUT, `no SETTINGS ACK within ${this.server.timeouts.handshakeMs} ms`)
  }

  get open(): boolean {
    return !this.isClosed
  }

  /** No stream in progress: the connection may be closed without losing work. */
  get idle(): boolean {
    return this.session.streams.size === 0
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** Graceful close (server.close()): GOAWAY; the open streams finish, then the socket closes. */
  shutdown(_idleGraceMs: number): void {
    this.session.goaway()
  }

  /** For the server's connection counts: idle between streams, else handling. */
  get phase(): Phase {
    return this.session.streams.size === 0 ? Phase.IDLE : Phase.HANDLER
  }

  // ---- socket ----

  /** Bytes read before this connection was made (the first read of a cleartext connection, sniffed). */
  receive(chunk: Buffer): void {
    this.onData(chunk)
  }

  private readonly onData = (chunk: Buffer): void => {
    // Everything one read makes the session send (ACKs, WINDOW_UPDATEs, answers) leaves in one write.
    this.socket.cork()
    this.inRead = true
    this.session.push(chunk)
    this.inRead = false
    this.flush()
    this.socket.uncork()
  }

  private readonly onDrain = (): void => {
    // Progress is the client taking bytes (the socket drained, a window opened), not its sending
    // more: PINGs every few seconds must not keep a zero-window stall alive.
    this.stalledSince = 0
    this.socketBehind = false
    for (const stream of this.session.streams.values()) (stream.owner as H2Exchange | null)?.wake()
  }

  private readonly onError = (err: Error): void => this.server.socketFailed(err)

  /** The client ended its side: HTTP/2 has no half-closed connection to serve (nginx closes too). */
  private readonly onEnd = (): void => {
    this.socket.destroy()
  }

  /** When bytes were last waiting on a client that took none (a zero window, or a full socket); 0 when none wait. */
  private stalledSince = 0

  private readonly onIdle = (): void => {
    // Quiet for keepAliveMs in both directions.
    if (this.session.streams.size === 0) {
      this.session.goaway()
      return
    }
    // Streams under way with bytes waiting and nothing read from the client: a zero-window stall
    // (or a client that stopped reading) is cut after timeouts.sendMs, as on HTTP/1.1.
    let waiting = this.socketBehind
    for (const stream of this.session.streams.values()) if (stream.pendingBytes > 0) waiting = true
    if (!waiting) {
      this.stalledSince = 0
      return
    }
    const now = performance.now()
    if (this.stalledSince === 0) this.stalledSince = now - this.server.timeouts.keepAliveMs
    if (now - this.stalledSince >= this.server.timeouts.sendMs) {
      this.server.countTimeout('PETREL_ERR_SEND_TIMEOUT')
      this.socket.destroy()
    }
  }

  private readonly onClose = (): void => {
    this.isClosed = true
    clearTimeout(this.settingsTimer)
    const gone = new PetrelError('PETREL_ERR_CONNECTION_CLOSED')
    for (const stream of this.session.streams.values()) (stream.owner as H2Exchange | null)?.gone(gone)
    this.session.streams.clear()
    this.server.connectionClosed(this)
  }

  // ---- SessionOutput ----

  write(bytes: Buffer): boolean {
    if (this.isClosed) return false
    const ok = this.socket.write(bytes)
    if (!ok) this.socketBehind = true
    return ok
  }

  end(): void {
    if (!this.isClosed) this.socket.end()
  }

  get behind(): boolean {
    return this.socketBehind
  }

  // ---- SessionEvents ----

  request(stream: H2Stream, fields: string[], endStream: boolean): void {
    const server = this.server
    const mapped = requestHead(fields, server.limits, endStream)
    if ('malformed' in mapped) {
      server.countProtocolError('PETREL_ERR_H2_MALFORMED')
      this.session.resetStream(stream.id, H2Error.PROTOCOL_ERROR)
      return
    }
    if ('status' in mapped) {
      this.answerAlone(stream, mapped.status, mapped.why)
      return
    }
    const head = mapped.head
    // A declared body over the limit is refused before a byte of it is read, as on HTTP/1.1.
    if (head.contentLength > server.limits.maxBodyBytes) {
      server.countProtocolError('PETREL_ERR_BODY_TOO_LARGE')
      this.answerAlone(stream, 413, 'request body is larger than limits.maxBodyBytes')
      return
    }
    stream.declaredLength = head.contentLength
    const exchange = new H2Exchange(this, stream)
    stream.owner = exchange
    const req = server.makeRequest(head, exchange)
    const res = new Response(exchange, { head: head.method === 'HEAD', http11: false, keepAlive: true, serverFields: server.responseFields })
    exchange.req = req
    exchange.res = res
    if (endStream) req.endBody()
    server.dispatch(req, res)
  }

  data(stream: H2Stream, chunk: Buffer, start: number, end: number, endStream: boolean): void {
    const exchange = stream.owner as H2Exchange | null
    if (exchange === null) {
      // A stream the server answered alone (413, 431): its body is drained, within a budget.
      this.drain(stream, end - start, endStream, stream.receivedLength)
      return
    }
    exchange.body(chunk, start, end, endStream)
  }

  /**
   * Body bytes of a stream already answered: given back to the window (the client may finish
   * sending, as HTTP/1.1 reads on to the next request) up to limits.maxDrainBytes; past them the
   * client is asked to stop, without error (§8.1). Many clients (curl 7) treat that RST_STREAM as a
   * failure of the whole exchange, so it is kept for bodies too large to be worth reading.
   */
  drain(stream: H2Stream, bytes: number, endStream: boolean, drained: number): void {
    this.session.consume(stream, bytes)
    if (!endStream && drained > this.server.limits.maxDrainBytes && this.session.streams.has(stream.id)) this.session.resetStream(stream.id, H2Error.NO_ERROR)
  }

  trailers(stream: H2Stream, fields: string[]): void {
    const exchange = stream.owner as H2Exchange | null
    const trailers = requestTrailers(fields)
    if (!Array.isArray(trailers)) {
      this.server.countProtocolError('PETREL_ERR_H2_MALFORMED')
      stream.owner = null
      this.session.resetStream(stream.id, H2Error.PROTOCOL_ERROR)
      exchange?.gone(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', `the stream was reset: ${trailers.malformed}`))
      return
    }
    if (exchange?.req != null) exchange.req.head.trailers = trailers
    exchange?.body(EMPTY, 0, 0, true)
  }

  reset(stream: H2Stream, code: H2Error): void {
    const exchange = stream.owner as H2Exchange | null
    stream.owner = null
    this.held.delete(exchange!)
    exchange?.gone(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', `the client reset the stream (HTTP/2 error ${code})`))
  }

  writable(stream: H2Stream): void {
    this.stalledSince = 0
    ;(stream.owner as H2Exchange | null)?.wake()
  }

  headersTooLarge(stream: H2Stream): void {
    this.answerAlone(stream, 431, `a header list over ${this.server.limits.maxHeaderBytes} bytes`)
  }

  closed(): void {
    // The socket's 'close' follows (end() was called); nothing else to do here.
  }

  /** The server's own answer on a stream no handler sees (431, 414), as HTTP/1.1 gives it. */
  private answerAlone(stream: H2Stream, status: number, why: string): void {
    const body = Buffer.from(answerBody(status, why))
    this.session.sendHeaders(
      stream,
      [
        [':status', String(status)],
        ['content-type', 'text/plain; charset=utf-8'],
        ['content-length', String(body.length)],
      ],
      false,
    )
    this.session.sendData(stream, body, true)
  }

  // ---- holding ----

  hold(exchange: H2Exchange): void {
    this.held.add(exchange)
    if (this.inRead || this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(this.flushLater)
  }

  private readonly flushLater = (): void => {
    this.flushQueued = false
    this.flush()
  }

  private flush(): void {
    if (this.held.size === 0) return
    this.socket.cork()
    for (const exchange of this.held) exchange.release(false)
    this.held.clear()
    this.socket.uncork()
  }
}

/**
 * Cleartext with HTTP/2 on: the first read says which protocol the client speaks — the HTTP/2
 * preface (prior knowledge, as h2load and balancers that terminate TLS send it) or HTTP/1.1. A
 * client that says nothing for timeouts.headersMs is closed, as an HTTP/1.1 one would be.
 */
export function sniffProtocol(server: HttpServer, socket: Socket): void {
  server.sniffing.add(socket)
  // Until a connection takes the socket, a reset from the client must not be an unhandled 'error'.
  socket.on('error', ignoreError)
  socket.setTimeout(server.timeouts.headersMs, () => socket.destroy())
  socket.once('close', () => server.sniffing.delete(socket))
  socket.once('data', (first: Buffer) => {
    server.sniffing.delete(socket)
    socket.off('error', ignoreError)
    socket.setTimeout(0)
    if (server.closing) return void socket.destroy()
    if (startsHttp2(first)) {
      const conn = new H2Connection(server, socket, false)
      server.connections.add(conn)
      conn.receive(first)
    } else {
      const conn = new Connection(server, socket)
      server.connections.add(conn)
      conn.onData(first)
    }
  })
}

/** Whether a connection's first bytes are (the start of) the HTTP/2 client preface, "PRI * HTTP/2.0". */
function ignoreError(): void {}

function startsHttp2(first: Buffer): boolean {
  const n = Math.min(first.length, PREFACE.length)
  return n >= 3 && first.compare(PREFACE, 0, n, 0, n) === 0
}

const EMPTY = Buffer.alloc(0)

/** One stream: the Response's sink and the Request's body source. */
class H2Exchange implements ResponseSink, BodySource {
  private readonly conn: H2Connection
  private readonly stream: H2Stream
  req: Request | null = null
  res: Response | null = null
  /** The head as fields, parsed from what the Response wrote, not sent yet. */
  private head: Array<[string, string]> | null = null
  private headSent = false
  /** A body piece not sent yet (the last one may carry END_STREAM). */
  private piece: Buffer | null = null
  private ended = false
  private bodyPaused = false
  /** Request body bytes taken by the Request while it was paused: returned to the window on resume. */
  private heldBodyBytes = 0
  private drainWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []
  private goneReason: Error | null = null
  /** When the request's head arrived: epoch ms for the access log, monotonic ms for the metrics. */
  private readonly startedAtMs: number
  private readonly startedAt: number

  constructor(conn: H2Connection, stream: H2Stream) {
    this.conn = conn
    this.stream = stream
    this.startedAtMs = conn.server.onResponse === undefined ? 0 : Date.now()
    this.startedAt = conn.server.metrics === null ? 0 : performance.now()
  }

  get remoteAddress(): string | undefined {
    return this.conn.socket.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.conn.socket.remotePort
  }

  get secure(): boolean {
    return this.conn.secure
  }

  get open(): boolean {
    return this.goneReason === null && this.conn.open
  }

  // ---- BodySource ----

  /** The handler asked for the body: what arrived before is given back to the client's window now. */
  bodyWanted(): void {
    this.wanted = true
    if (!this.bodyPaused) this.returnHeldBody()
  }

  private wanted = false

  private returnHeldBody(): void {
    const bytes = this.heldBodyBytes
    this.heldBodyBytes = 0
    if (bytes > 0) this.conn.session.consume(this.stream, bytes)
  }

  pauseBody(): void {
    this.bodyPaused = true
  }

  resumeBody(): void {
    if (!this.bodyPaused) return
    this.bodyPaused = false
    if (this.wanted) this.returnHeldBody()
  }

  /** Request body bytes received so far, against limits.maxBodyBytes. */
  private bodyBytes = 0

  /** Body bytes received after the response ended (drained, within limits.maxDrainBytes). */
  private drained = 0

  body(chunk: Buffer, start: number, end: number, endStream: boolean): void {
    const req = this.req!
    if (this.ended) {
      this.drained += end - start
      this.conn.drain(this.stream, end - start, endStream, this.drained)
      return
    }
    this.bodyBytes += end - start
    if (this.bodyBytes > this.conn.server.limits.maxBodyBytes) {
      // An undeclared body over the limit: the reader gets a 413 error, the rest is dropped.
      this.conn.session.consume(this.stream, end - start)
      if (this.bodyBytes - (end - start) <= this.conn.server.limits.maxBodyBytes) req.abortBody(new PetrelError('PETREL_ERR_BODY_TOO_LARGE'))
      return
    }
    if (end > start) {
      req.pushBody(chunk, start, end)
      // Flow control follows the reader: bytes the handler has not asked for, or is not taking,
      // keep the window closed (at most one window of them is held per stream).
      if (this.bodyPaused || !this.wanted) this.heldBodyBytes += end - start
      else this.conn.session.consume(this.stream, end - start)
    }
    if (endStream) req.endBody()
  }

  // ---- ResponseSink ----

  send(data: string | Buffer, _more?: boolean, onFlushed?: (err?: Error | null) => void): boolean {
    // A string holds an ASCII head and a UTF-8 body (a head with obs-text comes as latin1 bytes).
    let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    if (this.head === null && !this.headSent) {
      const headEnd = bytes.indexOf('\r\n\r\n')
      this.head = parseHead(bytes.toString('latin1', 0, headEnd))
      bytes = bytes.subarray(headEnd + 4)
    }
    if (bytes.length > 0) {
      // A caller reusing its buffer (onFlushed) gets it back now: what is held is a copy.
      if (onFlushed !== undefined) bytes = Buffer.from(bytes)
      if (this.piece !== null) this.release(false)
      this.piece = bytes
    }
    onFlushed?.()
    this.conn.hold(this)
    return !this.conn.behind && this.stream.pendingBytes === 0
  }

  sendAscii(text: string, more?: boolean): boolean {
    return this.send(text, more)
  }

  mayKeepAlive(): boolean {
    return true
  }

  responseDone(res: Response): void {
    if (res !== this.res || this.ended) return
    this.ended = true
    this.release(true)
    const server = this.conn.server
    if (server.onResponse !== undefined && this.req !== null) server.onResponse(this.req, res, this.startedAtMs)
    const metrics = server.metrics
    if (metrics !== null) {
      metrics.count(res.statusCode)
      metrics.time(performance.now() - this.startedAt, 1)
    }
    this.req?.discardBody()
  }

  /** Send what is held; `end`: the response is complete (END_STREAM on the last frame). */
  release(end: boolean): void {
    const session = this.conn.session
    if (!this.open) return
    if (this.head !== null) {
      const head = this.head
      this.head = null
      this.headSent = true
      session.sendHeaders(this.stream, head, end && this.piece === null)
      if (end && this.piece === null) return
    }
    if (this.piece !== null) {
      const piece = this.piece
      this.piece = null
      session.sendData(this.stream, piece, end)
    } else if (end && this.headSent) {
      session.sendData(this.stream, EMPTY, true)
    }
  }

  waitDrain(): Promise<void> {
    if (this.goneReason !== null) return Promise.reject(this.goneReason)
    if (!this.conn.behind && this.stream.pendingBytes === 0) return Promise.resolve()
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }))
  }

  /** Room again (the stream's window, or the socket drained). */
  wake(): void {
    if (this.conn.behind || this.stream.pendingBytes > 0) return
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w.resolve()
  }

  /** The stream or the connection is gone. */
  gone(reason: Error): void {
    if (this.goneReason !== null) return
    this.goneReason = reason
    this.req?.abortBody(reason)
    if (this.res !== null && !this.res.finished) this.res.connectionClosed(reason)
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w.reject(reason)
  }

  abort(): void {
    if (this.goneReason === null) this.conn.session.resetStream(this.stream.id, H2Error.INTERNAL_ERROR)
    this.gone(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'the response was aborted'))
  }

  reportError(err: Error): void {
    this.conn.server.reportError(err)
  }

  fail(err: Error, res: Response): void {
    if (this.req !== null && res === this.res) this.conn.server.handlerFailed(err, this.req, res)
    else this.conn.server.reportHandlerError(err)
  }

  cork(): boolean {
    return false
  }

  uncork(): void {}
}

/** "HTTP/1.x NNN reason\r\nname: value\r\n…" → [':status', NNN] and the fields HTTP/2 allows, names lower-cased. */
function parseHead(text: string): Array<[string, string]> {
  const lines = text.split('\r\n')
  const fields: Array<[string, string]> = [[':status', lines[0]!.slice(9, 12)]]
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).toLowerCase()
    if (HOP_BY_HOP.has(name)) continue
    fields.push([name, line.slice(colon + 1).trim()])
  }
  return fields
}
