// One HTTP/2 stream as a handler sees it: the Response's sink and the Request's body source
// (server/h2-connection.ts makes one per request stream). A stream's Response writes the same
// bytes as over HTTP/1.1 (it is made as for HTTP/1.0, so it never frames a body in chunks); this
// file reads the head back into fields for HPACK and passes the body on as DATA within the
// flow-control windows.
//
// A head is held until the body's first bytes or the response's end, and the last piece of body
// until the next piece or the end, so that `res.end(body)` is one HEADERS and one DATA frame with
// END_STREAM, not three frames. What is held is sent at the end of the socket read being handled,
// or in a microtask for a response made outside one.
//
// Each stream has one timer on the server's wheel, whose meaning follows the stream as the
// HTTP/1.1 connection's phase timer does: while the handler reads a body the client is sending,
// timeouts.bodyMs between DATA frames (408 before the response head, RST_STREAM CANCEL after it);
// until the response head is sent, timeouts.handlerMs from the request's arrival, or from the
// body's end when it came with one (503). While the handler holds the body back (paused), this
// side is the slow one and no timer runs, as on HTTP/1.1. A client that reads the response too
// slowly is the connection's business (timeouts.sendMs).

import { Buffer } from 'node:buffer'
import { ERRORS, PetrelError, type ErrorCode } from '../core/errors.ts'
import { WheelTimer } from '../core/timers/index.ts'
import { H2Error } from '../protocol/http2/frames.ts'
import { StreamState, type H2Stream } from '../protocol/http2/session.ts'
import type { Done } from '../protocol/http2/stream.ts'
import type { BodySource, Request } from './request.ts'
import type { Response, ResponseSink } from './response.ts'
import { h2FieldLines } from './response-fields.ts'
import type { TimerOwner } from './server.ts'
import type { H2Connection } from './h2-connection.ts'

const EMPTY = Buffer.alloc(0)

export class H2Exchange implements ResponseSink, BodySource {
  private readonly conn: H2Connection
  private readonly stream: H2Stream
  req: Request | null = null
  res: Response | null = null
  /** The body timer or the handler timer (see the top of the file). */
  readonly timer: WheelTimer<TimerOwner>
  /** The head as fields, parsed from what the Response wrote, not sent yet. */
  private head: Array<[string, string]> | null = null
  private headSent = false
  /** A body piece not sent yet (the last one may carry END_STREAM), and its owner's callback when it wants the buffer back. */
  private piece: Buffer | string | null = null
  private pieceDone: Done | undefined = undefined
  /** Trailer fields to send after the body (Response.addTrailers()). */
  private trailerFields: Array<[string, string]> | null = null
  private ended = false
  /** The request body arrived whole (END_STREAM), or will not be read any more. */
  private bodyDone = false
  private bodyPaused = false
  private wanted = false
  /** Request body bytes taken by the Request while it was paused: returned to the window on resume. */
  private heldBodyBytes = 0
  /** Request body bytes received so far, against limits.maxBodyBytes. */
  private bodyBytes = 0
  /** Body bytes received after the response ended (drained, within limits.maxDrainBytes). */
  private drained = 0
  private drainWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []
  private goneReason: Error | null = null
  /** When the request's head arrived: epoch ms for the access log, monotonic ms for the metrics. */
  private readonly startedAtMs: number
  private readonly startedAt: number
  /** When the handler must have started its response, on the scheduler's clock (moved to the body's end when there is one). */
  private handlerDeadline: number

  constructor(conn: H2Connection, stream: H2Stream, endStream: boolean) {
    this.conn = conn
    this.stream = stream
    const server = conn.server
    this.startedAtMs = server.onResponse === undefined ? 0 : Date.now()
    this.startedAt = server.metrics === null ? 0 : performance.now()
    this.handlerDeadline = server.scheduler.now + server.timeouts.handlerMs
    this.bodyDone = endStream
    this.timer = new WheelTimer<TimerOwner>(this)
    this.armTimer()
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

  // ---- timers ----

  /** Arm the stream's timer for what it waits on now, or disarm it when it waits on nothing of its own. */
  private armTimer(): void {
    const scheduler = this.conn.server.scheduler
    const timeouts = this.conn.server.timeouts
    if (this.ended || this.goneReason !== null) scheduler.cancel(this.timer)
    else if (this.readingBody) scheduler.armIn(this.timer, timeouts.bodyMs)
    else if (this.headSent || this.bodyPaused) scheduler.cancel(this.timer)
    else scheduler.armIn(this.timer, Math.max(0, this.handlerDeadline - scheduler.now))
  }

  /** The handler takes a body the client is still sending: a stall is the client's. */
  private get readingBody(): boolean {
    return !this.bodyDone && this.wanted && !this.bodyPaused
  }

  /** The stream's timer fired: the client stalled its body (408), or the handler did not start the response (503). */
  expired(): void {
    if (this.ended || this.goneReason !== null) return
    const server = this.conn.server
    const code: ErrorCode = this.readingBody ? 'PETREL_ERR_BODY_TIMEOUT' : 'PETREL_ERR_HANDLER_TIMEOUT'
    if (this.headSent) {
      // A body stalled under a response already started: no answer can be given now, the stream is cut.
      if (code !== 'PETREL_ERR_BODY_TIMEOUT') return
      server.countTimeout(code)
      this.conn.session.resetStream(this.stream.id, H2Error.CANCEL)
      this.gone(new PetrelError(code))
      return
    }
    server.countTimeout(code)
    const req = this.req!
    const res = this.res!
    if (code === 'PETREL_ERR_HANDLER_TIMEOUT') server.reportError(new PetrelError(code, `${req.method} ${req.url}`))
    // The handler's work stops (a CGI script, a pool task, a body read): its answer has no taker.
    const err = new PetrelError(code)
    res.finished = true
    this.ended = true
    res.connectionClosed(err)
    this.gone(err)
    this.conn.answerAlone(this.stream, ERRORS[code].status, ERRORS[code].message, req, this.startedAt, this.startedAtMs)
    // A body still on its way is not wanted: the client is asked to stop sending it (§8.1).
    if (this.stream.state === StreamState.HALF_CLOSED_LOCAL) this.conn.session.resetStream(this.stream.id, H2Error.NO_ERROR)
  }

  // ---- BodySource ----

  /** The handler asked for the body: what arrived before is given back to the client's window now. */
  bodyWanted(): void {
    this.wanted = true
    if (!this.bodyPaused) this.returnHeldBody()
    this.armTimer()
  }

  private returnHeldBody(): void {
    const bytes = this.heldBodyBytes
    this.heldBodyBytes = 0
    if (bytes > 0) this.conn.session.consume(this.stream, bytes)
  }

  pauseBody(): void {
    this.bodyPaused = true
    // This side is the slow one now: the handler's deadline applies, not the body's.
    this.armTimer()
  }

  resumeBody(): void {
    if (!this.bodyPaused) return
    this.bodyPaused = false
    if (this.wanted) this.returnHeldBody()
    this.armTimer()
  }

  body(chunk: Buffer, start: number, end: number, endStream: boolean): void {
    if (this.ended) {
      this.drained += end - start
      this.conn.drain(this.stream, end - start, endStream, this.drained)
      return
    }
    const req = this.req!
    const scheduler = this.conn.server.scheduler
    if (endStream) {
      // The handler's time starts when the request is whole, as on HTTP/1.1.
      this.bodyDone = true
      this.handlerDeadline = scheduler.now + this.conn.server.timeouts.handlerMs
      this.armTimer()
    } else if (this.readingBody) {
      // A DATA frame is progress: the body timer moves later (a field write while it is armed).
      this.timer.deadline = scheduler.now + this.conn.server.timeouts.bodyMs
    }
    this.bodyBytes += end - start
    const max = this.conn.server.limits.maxBodyBytes
    if (this.bodyBytes > max) {
      // An undeclared body over the limit: the reader gets a 413 error, the rest is dropped.
      this.conn.session.consume(this.stream, end - start)
      if (this.bodyBytes - (end - start) <= max) req.abortBody(new PetrelError('PETREL_ERR_BODY_TOO_LARGE'))
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
    // The stream was reset or the connection closed: nothing more goes out, and a writer that
    // loops while write() says true must stop (drain() rejects), as on a closed HTTP/1.1 connection.
    if (!this.open) return false
    // A string holds an ASCII head and a UTF-8 body (a head with obs-text comes as latin1 bytes).
    let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    if (this.head === null && !this.headSent) {
      const headEnd = bytes.indexOf('\r\n\r\n')
      this.head = parseHead(bytes.toString('latin1', 0, headEnd))
      this.headSent = true
      this.armTimer()
      bytes = bytes.subarray(headEnd + 4)
    }
    if (bytes.length > 0) {
      if (this.piece !== null) this.release(false)
      // A caller reusing its buffer (a file read into a pooled buffer) gets it back once the
      // socket has written it: held and sent without a copy.
      this.piece = bytes
      this.pieceDone = onFlushed
    } else onFlushed?.()
    this.conn.hold(this)
    return !this.conn.behind && this.stream.pendingBytes === 0
  }

  /** The head as fields (Response writes them so for HTTP/2), and a whole body with it when `body` is not empty. */
  sendFields(fields: Array<[string, string]>, body: string, _more: boolean): boolean {
    if (!this.open) return false
    this.head = fields
    this.headSent = true
    this.armTimer()
    if (body !== '') {
      if (this.piece !== null) this.release(false)
      // Kept a string: a whole response is written into its frame's buffer without a Buffer of its own.
      this.piece = body
      this.pieceDone = undefined
    }
    this.conn.hold(this)
    return !this.conn.behind && this.stream.pendingBytes === 0
  }

  sendAscii(text: string, more?: boolean): boolean {
    return this.send(text, more)
  }

  trailers(lines: string): void {
    this.trailerFields = h2FieldLines(lines, 0, [])
  }

  mayKeepAlive(): boolean {
    return true
  }

  responseDone(res: Response): void {
    if (res !== this.res || this.ended) return
    this.ended = true
    this.conn.server.scheduler.cancel(this.timer)
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
    const trailers = end ? this.trailerFields : null
    const last = end && trailers === null
    if (this.head !== null && last && this.piece !== null && this.pieceDone === undefined && session.respond(this.stream, this.head, this.piece)) {
      // The whole answer in one write (the usual small response).
      this.head = null
      this.piece = null
      return
    }
    if (this.head !== null) {
      const head = this.head
      this.head = null
      session.sendHeaders(this.stream, head, last && this.piece === null)
      if (last && this.piece === null) return
    }
    if (this.piece !== null) {
      const piece = this.piece
      const done = this.pieceDone
      this.piece = null
      this.pieceDone = undefined
      session.sendData(this.stream, typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece, last, done)
    } else if (last) session.sendData(this.stream, EMPTY, true)
    if (trailers !== null) session.sendTrailers(this.stream, trailers)
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
    this.conn.server.scheduler.cancel(this.timer)
    // A piece held and never to be sent: its buffer goes back to its owner.
    const done = this.pieceDone
    this.piece = null
    this.pieceDone = undefined
    done?.()
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

/** "HTTP/1.x NNN reason\r\nname: value\r\n…" (a prepared head) → [':status', NNN] and the fields HTTP/2 allows. */
function parseHead(text: string): Array<[string, string]> {
  const firstLine = text.indexOf('\r\n')
  return h2FieldLines(text, firstLine < 0 ? text.length : firstLine + 2, [[':status', text.slice(9, 12)]])
}
