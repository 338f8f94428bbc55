// One client connection: socket bytes in, parser events, one request in flight at a time,
// responses batched into one write per read, and one wheel timer whose meaning follows the
// phase the connection is in.
//
// Pipelined requests are answered in order by construction: when a message is complete and its
// response is not, the parser stops at the message boundary, the rest of the read is kept, and
// the socket stops reading until the response is done. Memory per connection is therefore
// bounded by one read, the head limit, and the socket's write high-water mark.

import type { Socket } from 'node:net'
import { ERRORS, PetrelError, type ErrorCode } from '../core/errors.ts'
import { WheelTimer } from '../core/timers/index.ts'
import { RequestParser, type RequestParserHandler } from '../protocol/http1/parser.ts'
import type { RequestHead } from '../protocol/http1/request-head.ts'
import { Request, type BodySource } from './request.ts'
import { Response, type ResponseSink } from './response.ts'
import { statusLine, dateHeaderLine } from './status.ts'
import type { HttpServer } from './server.ts'

/** What the connection's single timer means right now. */
export const Phase = {
  /** Waiting for (the rest of) a request head: timeouts.headersMs from its first byte. */
  HEAD: 0,
  /** Reading a request body: timeouts.bodyMs between reads. */
  BODY: 1,
  /** The handler has the request; only the send timeout applies. */
  HANDLER: 2,
  /** Between requests: timeouts.keepAliveMs. */
  IDLE: 3,
  /** Closing: our side has ended; unread input is discarded until the client closes or timeouts.lingerMs passes. */
  LINGER: 4,
  CLOSED: 5,
} as const

// Reasons to stop reading the socket; reading resumes when none is left.
const PAUSE_PIPELINE = 1
const PAUSE_WRITE = 2
const PAUSE_BODY = 4

export class Connection implements RequestParserHandler, BodySource, ResponseSink {
  readonly socket: Socket
  readonly server: HttpServer
  readonly timer: WheelTimer<Connection>
  phase: number = Phase.HEAD
  /** Requests begun on this connection. */
  requests = 0

  private readonly parser: RequestParser
  private req: Request | null = null
  private res: Response | null = null
  /** True while a read is being parsed: responses are batched, then written once. */
  private inRead = false
  private batch = ''
  private batchList: Array<string | Buffer> | null = null
  /** Unparsed bytes held while a pipelined request waits for the response before it. */
  private pending: Buffer | null = null
  private pendingStart = 0
  private pauseReasons = 0
  private drainWaiters: Array<() => void> | null = null
  /** No further request will be read: close once the current response is out. */
  private closeAfterResponse = false
  private peerEnded = false
  private continueSent = false
  private discardedBytes = 0
  private lastFlushed = 0
  private lastProgressAt = 0
  /** socket.end() was called; nothing more may be written. */
  private ended = false

  constructor(server: HttpServer, socket: Socket) {
    this.server = server
    this.socket = socket
    this.parser = new RequestParser(this, server.limits)
    this.timer = new WheelTimer<Connection>(this)
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    server.scheduler.armIn(this.timer, server.timeouts.headersMs)
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort
  }

  get open(): boolean {
    return this.phase !== Phase.CLOSED
  }

  /** True when no request is in progress: the connection may be closed without losing work. */
  get idle(): boolean {
    return this.req === null && this.parser.idle && this.phase !== Phase.LINGER
  }

  // ---- socket events (bound once per connection, not per request) ----

  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === Phase.LINGER || this.phase === Phase.CLOSED) return
    if (this.pending !== null) {
      // A read that was already under way when the socket was paused: keep it in order.
      this.pending = Buffer.concat([this.pending.subarray(this.pendingStart), chunk])
      this.pendingStart = 0
      return
    }
    this.consume(chunk, 0)
  }

  private readonly onDrain = (): void => {
    this.lastProgressAt = this.server.scheduler.now
    if (this.pauseReasons & PAUSE_WRITE) this.unpause(PAUSE_WRITE)
    const waiters = this.drainWaiters
    if (waiters !== null) {
      this.drainWaiters = null
      for (const w of waiters) w()
    }
  }

  private readonly onEnd = (): void => {
    this.peerEnded = true
    if (this.phase === Phase.LINGER) {
      this.destroy()
    } else if (this.req === null) {
      // The client is done sending; a partial head can never complete.
      this.endConnection()
    } else {
      this.closeAfterResponse = true
      if (!this.parser.idle && this.req.bodyRequested) this.req.abortBody(new Error('client closed the connection before the body was complete'))
    }
  }

  private readonly onError = (err: Error): void => {
    // ECONNRESET and EPIPE are how clients leave; 'close' follows and cleans up.
    if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' && (err as NodeJS.ErrnoException).code !== 'EPIPE') this.server.reportError(err)
  }

  private readonly onClose = (): void => {
    this.phase = Phase.CLOSED
    this.server.scheduler.cancel(this.timer)
    this.pending = null
    if (this.req !== null) this.req.abortBody(new Error('connection closed'))
    this.onDrain()
    this.server.connectionClosed(this)
  }

  // ---- reading ----

  private consume(chunk: Buffer, start: number): void {
    if (this.phase === Phase.IDLE) {
      this.phase = Phase.HEAD
      this.server.scheduler.armIn(this.timer, this.server.timeouts.headersMs)
    }
    this.inRead = true
    const consumed = this.parser.execute(chunk, start, chunk.length)
    this.inRead = false
    if (consumed < 0) {
      this.protocolError(this.parser.errorCode!)
    } else if (consumed < chunk.length && this.phase !== Phase.LINGER && this.phase !== Phase.CLOSED) {
      this.pending = chunk
      this.pendingStart = consumed
      this.pause(PAUSE_PIPELINE)
    }
    this.flush()
  }

  onHead(head: RequestHead): void {
    this.requests++
    this.continueSent = false
    this.discardedBytes = 0
    const server = this.server
    const keepAlive = head.keepAlive && !this.closeAfterResponse && !server.closing && this.requests < server.limits.maxRequestsPerConnection
    const res = new Response(this, { head: head.method === 'HEAD', http11: head.versionMinor === 1, keepAlive })
    const req = server.makeRequest(head, this, res)
    if (req === null) return
    this.req = req
    this.res = res
    this.phase = head.hasBody ? Phase.BODY : Phase.HANDLER
    if (head.hasBody) server.scheduler.armIn(this.timer, server.timeouts.bodyMs)
    server.dispatch(req, res)
  }

  onBody(buf: Buffer, start: number, end: number): void {
    const req = this.req!
    if (this.res!.finished) {
      // Reading the rest of a body nobody wants, so the connection can be reused — within reason.
      this.discardedBytes += end - start
      if (this.discardedBytes > this.server.limits.maxDrainBytes) this.closeAfterResponse = true
      return
    }
    this.server.scheduler.armIn(this.timer, this.server.timeouts.bodyMs)
    req.pushBody(buf, start, end)
  }

  onMessageComplete(): boolean {
    const req = this.req
    if (req === null) return false
    req.endBody()
    if (this.res!.finished) {
      this.exchangeDone()
      return this.phase === Phase.LINGER || this.phase === Phase.CLOSED
    }
    this.phase = Phase.HANDLER
    return true
  }

  // ---- BodySource ----

  bodyWanted(req: Request): void {
    const head = req.head
    if (head.expectContinue && !this.continueSent && this.res !== null && !this.res.headersSent) {
      this.continueSent = true
      this.send('HTTP/1.1 100 Continue\r\n\r\n')
      if (!this.inRead) this.flush()
    }
  }

  pauseBody(): void {
    this.pause(PAUSE_BODY)
  }

  resumeBody(): void {
    if (this.pauseReasons & PAUSE_BODY) this.unpause(PAUSE_BODY)
  }

  // ---- ResponseSink ----

  send(data: string | Buffer): boolean {
    if (this.ended || this.phase === Phase.CLOSED) return false
    if (typeof data === 'string') {
      this.batch += data
    } else {
      const list = (this.batchList ??= [])
      if (this.batch !== '') {
        list.push(this.batch)
        this.batch = ''
      }
      list.push(data)
    }
    if (this.inRead) return true
    return this.flush()
  }

  responseDone(res: Response): void {
    if (res !== this.res) return
    if (!res.keepAlive) this.closeAfterResponse = true
    const req = this.req!
    if (!this.parser.idle) {
      // The body is still arriving. Drain it if it is small; with an unanswered 100-continue the
      // client may never send it, so close instead.
      req.discardBody()
      const head = req.head
      if ((head.expectContinue && !this.continueSent) || this.parser.bodyRemaining > this.server.limits.maxDrainBytes) {
        this.closeAfterResponse = true
      }
      if (this.closeAfterResponse) this.endConnection()
      else if (!this.inRead) this.flush()
      return
    }
    this.exchangeDone()
    if (!this.inRead) {
      this.flush()
      this.continueReading()
    }
  }

  waitDrain(): Promise<void> {
    if (this.phase === Phase.CLOSED || this.socket.writableLength === 0) return Promise.resolve()
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve))
  }

  abort(err: Error): void {
    this.server.reportError(err)
    this.destroy()
  }

  // ---- lifecycle ----

  /** The request and its response are both complete. */
  private exchangeDone(): void {
    this.req = null
    this.res = null
    if (this.closeAfterResponse || this.peerEnded) {
      this.endConnection()
      return
    }
    this.phase = Phase.IDLE
    this.server.scheduler.armIn(this.timer, this.server.timeouts.keepAliveMs)
  }

  /** After an asynchronous response: parse what was held back, then read the socket again. */
  private continueReading(): void {
    if (this.phase === Phase.LINGER || this.phase === Phase.CLOSED) return
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      this.consume(pending, this.pendingStart)
    }
    if (this.pending === null && this.pauseReasons & PAUSE_PIPELINE) this.unpause(PAUSE_PIPELINE)
  }

  /** Write out the batch. Returns false when the socket's buffer is over the mark. */
  private flush(): boolean {
    const socket = this.socket
    let ok = true
    const list = this.batchList
    if (list !== null) {
      this.batchList = null
      if (this.batch !== '') list.push(this.batch)
      this.batch = ''
      socket.cork()
      for (const chunk of list) ok = socket.write(chunk)
      socket.uncork()
    } else if (this.batch !== '') {
      const data = this.batch
      this.batch = ''
      ok = socket.write(data)
    }
    if (!ok) this.pause(PAUSE_WRITE)
    if (this.phase === Phase.LINGER && !this.ended) {
      this.ended = true
      socket.end()
    }
    return ok
  }

  private pause(reason: number): void {
    if (this.pauseReasons === 0) this.socket.pause()
    this.pauseReasons |= reason
  }

  private unpause(reason: number): void {
    this.pauseReasons &= ~reason
    if (this.pauseReasons === 0 && this.phase !== Phase.CLOSED) this.socket.resume()
  }

  /** Answer a malformed request with its status and close: the framing can no longer be trusted. */
  private protocolError(code: ErrorCode): void {
    this.server.countProtocolError(code)
    if (this.res === null || !this.res.headersSent) this.sendError(ERRORS[code].status, ERRORS[code].message)
    if (this.req !== null) this.req.abortBody(new PetrelError(code))
    this.req = null
    this.res = null
    this.endConnection()
  }

  /** A complete response for errors the connection answers itself. */
  sendError(status: number, message: string, extra = ''): void {
    const body = `${status} ${statusLine(status).slice(13, -2)}: ${message}\n`
    this.send(`${statusLine(status)}${dateHeaderLine()}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`)
  }

  /** Half-close after what is queued, then linger: reading and dropping input so the client sees our answer, not a reset. */
  endConnection(): void {
    if (this.phase === Phase.LINGER || this.phase === Phase.CLOSED) return
    this.phase = Phase.LINGER
    this.pending = null
    this.req = null
    this.res = null
    if (this.pauseReasons !== 0) {
      this.pauseReasons = 0
      this.socket.resume()
    }
    if (!this.inRead) {
      this.flush()
    }
    if (this.peerEnded && this.socket.writableLength === 0) {
      this.destroy()
      return
    }
    this.server.scheduler.armIn(this.timer, this.server.timeouts.lingerMs)
  }

  destroy(): void {
    if (this.phase === Phase.CLOSED) return
    this.socket.destroy()
  }

  /** Graceful stop: close now if idle, else after the response in progress. */
  shutdown(): void {
    if (this.idle) this.endConnection()
    else this.closeAfterResponse = true
  }

  /** The wheel timer fired: what that means depends on the phase. */
  onTimeout(): void {
    const server = this.server
    const now = server.scheduler.now
    if (this.socket.writableLength > 0 && this.phase !== Phase.LINGER) {
      // Output is waiting for the client to read: only progress keeps the connection.
      const flushed = this.socket.bytesWritten - this.socket.writableLength
      if (flushed !== this.lastFlushed) {
        this.lastFlushed = flushed
        this.lastProgressAt = now
      }
      if (now - this.lastProgressAt >= server.timeouts.sendMs) {
        server.countTimeout('PETREL_ERR_SEND_TIMEOUT')
        this.destroy()
      } else {
        server.scheduler.armIn(this.timer, Math.min(server.timeouts.sendMs, 1000))
      }
      return
    }
    switch (this.phase) {
      case Phase.HEAD:
        if (this.parser.idle && this.requests === 0 && this.req === null) {
          // Nothing was ever sent: close quietly, as nginx does for pre-connected sockets.
          this.destroy()
          return
        }
        server.countTimeout('PETREL_ERR_HEADERS_TIMEOUT')
        this.sendError(408, ERRORS.PETREL_ERR_HEADERS_TIMEOUT.message)
        this.endConnection()
        return
      case Phase.BODY:
        server.countTimeout('PETREL_ERR_BODY_TIMEOUT')
        if (this.res !== null && !this.res.headersSent) this.sendError(408, ERRORS.PETREL_ERR_BODY_TIMEOUT.message)
        if (this.req !== null) this.req.abortBody(new PetrelError('PETREL_ERR_BODY_TIMEOUT'))
        this.endConnection()
        return
      case Phase.HANDLER:
        // The application is working; its time is its own business. Look again later.
        server.scheduler.armIn(this.timer, server.timeouts.sendMs)
        return
      case Phase.IDLE:
        this.destroy()
        return
      case Phase.LINGER:
        this.destroy()
        return
    }
  }
}
