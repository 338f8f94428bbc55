// One client connection: socket bytes in, parser events, one request in flight at a time,
// responses batched into one write per read (output-batch.ts), and two wheel timers — one whose
// meaning follows the phase the connection is in (phase.ts), one that watches a queued response
// for progress (send-watch.ts).
//
// Pipelined requests are answered in order by construction: when a message is complete and its
// response is not, the parser stops at the message boundary, the rest of the read is kept, and
// the socket stops reading until the response is done. Memory per connection is therefore
// bounded by one read, the head limit, and the write high-water mark.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { ERRORS, PetrelError, type ErrorCode } from '../core/errors.ts'
import { WheelTimer } from '../core/timers/index.ts'
import { RequestParser, type RequestParserHandler } from '../protocol/http1/parser.ts'
import type { RequestHead } from '../protocol/http1/request-head.ts'
import { Request, type BodySource } from './request.ts'
import { Response, type ResponseSink } from './response.ts'
import { answerBody, closingAnswer, ownAnswer } from './answer.ts'
import { OutputBatch, copiedIntoBatch } from './output-batch.ts'
import { DrainWaiters, SendWatch } from './send-watch.ts'
import { ReadGate, Pause } from './socket-reader.ts'
import { Phase, phaseTimeoutMs } from './phase.ts'
import { PrefaceCheck } from './preface.ts'
import type { HttpServer, TimerOwner } from './server.ts'

export class Connection implements RequestParserHandler, BodySource, ResponseSink {
  readonly socket: Socket
  readonly server: HttpServer
  readonly timer: WheelTimer<TimerOwner>
  /** The send timeout: watches queued output for progress. */
  readonly sendWatch: SendWatch<TimerOwner>
  phase: Phase = Phase.HEAD
  /** A TLS connection: its handshake was done before the connection was made (server/tls.ts). */
  readonly secure: boolean
  /** Requests begun on this connection. */
  requests = 0

  private readonly parser: RequestParser
  /** Reads the socket (straight from the TCP handle when possible), and stops while any Pause reason holds. */
  private readonly reading: ReadGate
  private readonly highWaterMark: number
  private req: Request | null = null
  private res: Response | null = null
  /** The current request's message has been parsed to its end. */
  private messageComplete = true
  /** True while a read is being parsed: responses are batched, then written once. */
  private inRead = false
  /** Inside Response.corked(): sends are batched too. */
  private corked = false
  /** What is sent while a read is parsed (or under a cork), written out at once by flush(). */
  private readonly out = new OutputBatch()
  /** Unparsed bytes held back while the request before them is answered or the client catches up. */
  private pending: Buffer | null = null
  private pendingStart = 0
  /** Handlers waiting for the client to catch up (Response.drain()). */
  private readonly drainWaiters = new DrainWaiters()
  /** No further request will be read: close once the current response is out. */
  private closeAfterResponse = false
  private peerEnded = false
  private continueSent = false
  /** When the current request's head arrived: epoch ms (kept for an onResponse hook), monotonic ms (when metrics are on). */
  private startedAtMs = 0
  private startedAt = 0
  /** Metrics on: when the bytes being parsed arrived (the held-back ones: `pendingAt`). */
  private readAt = 0
  private pendingAt = 0
  /** Metrics on: responses finished inside the current read, timed together when it is done. */
  private answeredInRead = 0
  /** Body bytes of an answered request read and dropped so far. */
  private discardedBytes = 0
  /** socket.end() was called; nothing more may be written. */
  private ended = false
  /** Cleartext with HTTP/2 on: the first bytes are still to be checked for HTTP/2's preface. */
  private preface: PrefaceCheck | null

  constructor(server: HttpServer, socket: Socket) {
    this.server = server
    this.socket = socket
    this.highWaterMark = server.limits.writeHighWaterMark
    this.secure = server.tls !== null
    this.preface = server.http2 !== null && !this.secure ? new PrefaceCheck() : null
    this.parser = new RequestParser(this, server.limits)
    this.timer = new WheelTimer<TimerOwner>(this)
    this.sendWatch = new SendWatch<TimerOwner>(this, socket, server.scheduler, server.timeouts)
    this.reading = new ReadGate(socket, this.onData)
    socket.on('drain', this.onDrain).on('end', this.onEnd).on('error', this.onError).on('close', this.onClose)
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
    return this.req === null && this.pending === null && this.parser.idle && this.phase !== Phase.LINGER
  }

  private get closing(): boolean {
    return this.phase === Phase.LINGER || this.phase === Phase.CLOSED
  }

  // ---- socket events (bound once per connection, not per request) ----

  readonly onData = (chunk: Buffer): void => {
    const metrics = this.server.metrics
    if (metrics !== null) {
      metrics.bytesIn += chunk.length
      this.readAt = performance.now()
    }
    if (this.closing) return
    if (this.preface !== null) {
      const http1 = this.preface.http1Bytes(chunk, this)
      if (http1 === null) return
      this.preface = null
      chunk = http1
    }
    if (this.pending !== null) {
      // A read that was already under way when the socket was paused: keep it in order.
      this.pending = Buffer.concat([this.pending.subarray(this.pendingStart), chunk])
      this.pendingStart = 0
      return
    }
    if (this.req !== null && this.messageComplete) {
      // A pipelined request behind one still being answered: hold it, and only now stop reading.
      this.pending = chunk
      this.pendingStart = 0
      this.pendingAt = this.readAt
      this.reading.pause(Pause.PIPELINE)
      return
    }
    this.consume(chunk, 0)
  }

  private readonly onDrain = (): void => {
    this.reading.unpause(Pause.WRITE, this.phase !== Phase.CLOSED)
    this.drainWaiters.resolve()
    if (this.req === null) this.continueReading()
  }

  private readonly onEnd = (): void => {
    this.peerEnded = true
    if (this.closing) {
      if (this.ended && this.socket.writableLength === 0) this.destroy()
      return
    }
    const req = this.req
    if (req !== null && !this.messageComplete) {
      // The body can never complete now.
      req.abortBody(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'client ended the connection before the request body was complete'))
      this.closeAfterResponse = true
    }
    // Work done for the response (res.signal) stops: a client that closes its side while waiting
    // has almost always gone away, and nginx treats it so for proxied and FastCGI requests. The
    // response may still be written, for a client that only half-closed.
    const res = this.res
    if (res !== null && !res.finished) {
      // The listeners run now, and may end the response (and the exchange) before this returns.
      res.connectionClosed(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'client closed its side of the connection before the response was complete'))
      // A handler that stops on the signal never ends its response: from now on only writes keep
      // the connection, so it cannot wait half-closed (CLOSE-WAIT) forever.
      if (this.res === res && !res.finished && this.phase !== Phase.CLOSED) this.enterPhase(Phase.HALF_CLOSED)
    }
    this.finishIfPeerEnded()
  }

  /** 'close' follows and cleans up; the server tells a client's doing (counted) from a fault (logged). */
  private readonly onError = (err: Error): void => this.server.socketFailed(err)

  private readonly onClose = (): void => {
    this.phase = Phase.CLOSED
    const scheduler = this.server.scheduler
    scheduler.cancel(this.timer)
    this.sendWatch.stop()
    this.pending = null
    // An Error captures a stack trace (microseconds): made only when someone is told with it,
    // not for every connection that closes between requests.
    const unfinished = this.res !== null && !this.res.finished
    if (this.req !== null || unfinished || this.drainWaiters.waiting) {
      const gone = new PetrelError('PETREL_ERR_CONNECTION_CLOSED')
      if (this.req !== null) this.req.abortBody(gone)
      if (unfinished) this.res!.connectionClosed(gone)
      this.drainWaiters.reject(gone)
    }
    this.req = null
    this.res = null
    this.server.connectionClosed(this)
  }

  // ---- reading ----

  private consume(chunk: Buffer, start: number): void {
    if (this.phase === Phase.IDLE) this.enterPhase(Phase.HEAD)
    this.inRead = true
    const consumed = this.parser.execute(chunk, start, chunk.length)
    this.inRead = false
    if (this.answeredInRead > 0) {
      // Answered inside this read: their bytes leave together at the flush below, so one clock
      // read times them all (two per read, not two per request, when pipelined).
      this.server.metrics!.time(performance.now() - this.readAt, this.answeredInRead)
      this.answeredInRead = 0
    }
    if (consumed < 0) {
      this.server.countProtocolError(this.parser.errorCode!)
      this.closeWithError(this.parser.errorCode!)
    } else if (consumed < chunk.length && !this.closing) {
      this.pending = chunk
      this.pendingStart = consumed
      this.pendingAt = this.readAt
      this.reading.pause(Pause.PIPELINE)
    } else if (consumed < chunk.length && this.phase === Phase.CLOSED && !this.socket.destroyed) {
      // Detached in this read (a WebSocket, a tunnel): the bytes after the request are the new owner's.
      this.socket.unshift(chunk.subarray(consumed))
    }
    this.flush()
    this.finishIfPeerEnded()
  }

  onHead(head: RequestHead): void {
    // After a decision to close, nothing more is read as a request (RFC 9112 §9.6).
    if (this.closing) return
    this.requests++
    this.messageComplete = false
    this.continueSent = false
    this.discardedBytes = 0
    const server = this.server
    if (server.onResponse !== undefined || server.onServerAnswer !== undefined) this.startedAtMs = Date.now()
    if (server.metrics !== null) this.startedAt = this.readAt
    const keepAlive = head.keepAlive && this.requests < server.limits.maxRequestsPerConnection
    const res = new Response(this, { head: head.method === 'HEAD', http11: head.versionMinor === 1, keepAlive, serverFields: server.responseFields })
    const req = server.makeRequest(head, this)
    this.req = req
    this.res = res
    this.enterPhase(head.hasBody ? Phase.BODY : Phase.HANDLER)
    server.dispatch(req, res)
  }

  onBody(buf: Buffer, start: number, end: number): void {
    const req = this.req
    if (req === null) return
    if (this.phase === Phase.BODY && !this.reading.pausedFor(Pause.BODY)) this.server.scheduler.armIn(this.timer, this.server.timeouts.bodyMs)
    if (!this.res!.finished) {
      req.pushBody(buf, start, end)
      return
    }
    // Answered already: the rest is read only to reach the next request, within a budget.
    this.discardedBytes += end - start
    if (this.discardedBytes > this.server.limits.maxDrainBytes) {
      this.closeAfterResponse = true
      this.endConnection()
    }
  }

  onMessageComplete(): boolean {
    this.messageComplete = true
    const req = this.req
    if (req === null) return true
    req.endBody()
    if (this.res!.finished) {
      this.exchangeDone()
      // Stop here when closing, or when the client is behind on reading what we sent.
      return this.closing || this.reading.pausedFor(Pause.WRITE)
    }
    this.enterPhase(Phase.HANDLER)
    return true
  }

  // ---- BodySource ----

  bodyWanted(req: Request): void {
    if (req.head.expectContinue && !this.continueSent && this.res !== null && !this.res.headersSent) {
      this.continueSent = true
      this.sendAscii('HTTP/1.1 100 Continue\r\n\r\n')
    }
  }

  pauseBody(): void {
    // We are the slow side: the body timer must not blame the client for it.
    if (this.phase === Phase.BODY) this.server.scheduler.cancel(this.timer)
    this.reading.pause(Pause.BODY)
  }

  resumeBody(): void {
    if (!this.reading.pausedFor(Pause.BODY)) return
    if (this.phase === Phase.BODY) this.server.scheduler.armIn(this.timer, this.server.timeouts.bodyMs)
    this.reading.unpause(Pause.BODY, this.phase !== Phase.CLOSED)
  }

  // ---- ResponseSink ----

  send(data: string | Buffer, more = false, onFlushed?: (err?: Error | null) => void): boolean {
    if (this.ended || this.phase === Phase.CLOSED) return false
    if (this.phase === Phase.HALF_CLOSED) this.stillWriting()
    if (onFlushed !== undefined && !copiedIntoBatch(data)) return this.writeNow(data, onFlushed)
    this.out.add(data)
    // A Buffer copied into the batch: its owner has it back at once.
    onFlushed?.()
    return this.queued(more)
  }

  /** send() for text the caller knows is ASCII: see OutputBatch.addAscii(). */
  sendAscii(text: string, more = false): boolean {
    if (this.ended || this.phase === Phase.CLOSED) return false
    if (this.phase === Phase.HALF_CLOSED) this.stillWriting()
    this.out.addAscii(text)
    return this.queued(more)
  }

  /**
   * A buffer its owner wants back: written now, in order after the batch, with the socket's own
   * completion callback (Node calls it on success and when the write is abandoned). A batch
   * waiting (a head sent with `more`) leaves with it in one writev, not as a segment of its own.
   */
  private writeNow(data: string | Buffer, onFlushed: (err?: Error | null) => void): boolean {
    const socket = this.socket
    const joined = !this.out.empty
    if (joined) socket.cork()
    this.flush()
    // The flush may have ended the socket (a lingering close): nothing more may be written then.
    const ok = !this.ended && socket.write(data, onFlushed)
    if (joined) socket.uncork()
    if (!ok && !this.ended) this.reading.pause(Pause.WRITE)
    this.watchSendIfQueued()
    return ok
  }

  /** A write to a half-closed client: the handler is still at work, so its deadline moves later (a field write). */
  private stillWriting(): void {
    this.server.scheduler.armIn(this.timer, this.server.timeouts.lingerMs)
  }

  /** Something was added to the batch: flush it, unless more follows or the read is still being answered. */
  private queued(more: boolean): boolean {
    if (more) return true
    // Inside a read (or a cork), responses wait for the batch — unless it has grown past the mark.
    if ((this.inRead || this.corked) && this.out.size + this.socket.writableLength < this.highWaterMark) return true
    return this.flush()
  }

  mayKeepAlive(): boolean {
    if (this.closeAfterResponse || this.server.closing) return false
    // A client that half-closed still gets answers to the complete requests it sent before;
    // inside a read more of them may follow this one, and the close comes after the last.
    if (this.peerEnded && this.pending === null && !this.inRead) return false
    const req = this.req
    if (req === null || this.messageComplete || req.bodyRequested) return true
    // The response goes out before its request body was read. Keep the connection only if what
    // is left can be drained cheaply; after an unanswered 100-continue the client may never send it.
    const head = req.head
    if (head.expectContinue && !this.continueSent) return false
    // A chunked body's size is unknown: it is drained within the same budget, or the connection closes then.
    if (head.chunked) return true
    return head.contentLength - this.parser.bodyReceived <= this.server.limits.maxDrainBytes
  }

  responseDone(res: Response): void {
    if (res !== this.res || this.phase === Phase.CLOSED) return
    if (this.server.onResponse !== undefined) this.server.onResponse(this.req!, res, this.startedAtMs)
    const metrics = this.server.metrics
    if (metrics !== null) {
      metrics.count(res.statusCode)
      if (this.inRead) this.answeredInRead++
      else metrics.time(performance.now() - this.startedAt, 1)
    }
    if (!res.keepAlive) this.closeAfterResponse = true
    if (!this.messageComplete) {
      // The request is still arriving; the exchange ends with its message.
      this.req!.discardBody()
      if (this.closeAfterResponse) this.endConnection()
      else if (!this.inRead) this.flush()
      return
    }
    this.exchangeDone()
    if (!this.inRead) {
      this.flush()
      this.continueReading()
      // A client that half-closed while this response was under way is owed nothing more.
      this.finishIfPeerEnded()
    }
  }

  waitDrain(): Promise<void> {
    return this.drainWaiters.wait(this.socket, this.phase === Phase.CLOSED)
  }

  abort(): void {
    // Closing already on the connection's own terms (a 400, 413 or 408 just sent, then a
    // lingering close): cutting it now would reset the answer the client is about to read.
    if (this.phase === Phase.LINGER) return
    this.destroy()
  }

  reportError(err: Error): void {
    this.server.reportError(err)
  }

  fail(err: Error, res: Response): void {
    if (res === this.res && this.req !== null) return this.server.handlerFailed(err, this.req, res)
    // The exchange is over on this connection: it answered on its own (a 408, a 503) and is
    // closing or lingering. Nothing more can be sent, and cutting the connection would lose what
    // it did send; the error is still reported, as a thrown one would be.
    this.server.reportHandlerError(err)
  }

  // ---- lifecycle ----

  private enterPhase(phase: Phase): void {
    this.phase = phase
    const ms = phaseTimeoutMs(phase, this.server.timeouts)
    // HANDLER's deadline is usually later than the head's or body's: a field write, not a relink.
    if (ms >= 0) this.server.scheduler.armIn(this.timer, ms)
  }

  /** The request and its response are both complete. */
  private exchangeDone(): void {
    this.req = null
    this.res = null
    // A cork belongs to its response: a response ended inside Response.corked() ends the cork,
    // so a next response begun in the same scope (a pipelined request parsed now) is not held.
    this.corked = false
    if (this.closeAfterResponse) this.endConnection()
    else this.enterPhase(Phase.IDLE)
  }

  /** Parse what was held back, then read the socket again — unless the client is still behind. */
  private continueReading(): void {
    if (this.closing || this.reading.pausedFor(Pause.WRITE)) return
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      // Requests held back count from when they arrived, not from when their turn came.
      this.readAt = this.pendingAt
      this.consume(pending, this.pendingStart)
    }
    if (this.pending === null) this.reading.unpause(Pause.PIPELINE, this.phase !== Phase.CLOSED)
  }

  /** After the client half-closed: close once every complete request it sent is answered. */
  private finishIfPeerEnded(): void {
    if (this.peerEnded && this.req === null && this.pending === null && !this.closing) this.endConnection()
  }

  /** Write out the batch. Returns false when the socket's buffer is over the mark. */
  private flush(): boolean {
    const ok = this.out.writeTo(this.socket)
    if (!ok) this.reading.pause(Pause.WRITE)
    this.watchSendIfQueued()
    if (this.phase === Phase.LINGER && !this.ended) {
      this.ended = true
      this.socket.end()
    }
    return ok
  }

  /** Output is queued: from now on, only progress keeps the connection (timeouts.sendMs). */
  private watchSendIfQueued(): void {
    if (this.phase !== Phase.CLOSED) this.sendWatch.watchIfQueued()
  }

  /** The send watch's timer fired. */
  onSendCheck(): void {
    if (this.phase === Phase.CLOSED || this.sendWatch.check()) return
    this.server.countTimeout('PETREL_ERR_SEND_TIMEOUT')
    this.destroy()
  }

  /**
   * End the exchange on the connection's own terms (a malformed request, a timeout): `code`'s
   * answer unless a head went out already, the body stopped with `code`, and a lingering close.
   */
  private closeWithError(code: ErrorCode): void {
    if (this.res === null || !this.res.headersSent) this.sendError(ERRORS[code].status, ERRORS[code].message)
    if (this.req !== null) this.req.abortBody(new PetrelError(code))
    this.endConnection()
  }

  /** A complete response for errors the connection answers itself; the connection closes after it. */
  private sendError(status: number, message: string): void {
    // A HEAD request gets no body (RFC 9110 §9.3.2), also when the parser refused it before a
    // Request was made: its method is read before anything else can be wrong.
    const head = (this.req !== null ? this.req.method : this.parser.method) === 'HEAD'
    const body = ownAnswer(this.server, this.socket.remoteAddress, status, message, this.req, head, this.startedAt, this.startedAtMs)
    this.send(closingAnswer(status, body, !head, this.server.responseFields))
  }

  /** Response.corked(): sends wait in the batch until uncork() (or a flush), as while a read is parsed. */
  cork(): boolean {
    if (this.corked || this.phase === Phase.CLOSED) return false
    this.corked = true
    return true
  }

  uncork(): void {
    if (!this.corked) return
    this.corked = false
    if (!this.inRead && this.phase !== Phase.CLOSED) this.flush()
  }

  /** Leave HTTP: the socket and the bytes read past the current request go to the caller (Response.detach). */
  detach(): { socket: Socket; head: Buffer } {
    this.flush()
    this.server.scheduler.cancel(this.timer)
    this.sendWatch.stop()
    const socket = this.socket
    this.reading.release()
    socket.off('drain', this.onDrain).off('end', this.onEnd).off('error', this.onError).off('close', this.onClose)
    socket.pause()
    const head = this.pending === null ? Buffer.alloc(0) : this.pending.subarray(this.pendingStart)
    this.pending = null
    this.req = null
    this.res = null
    this.phase = Phase.CLOSED
    this.server.connectionClosed(this)
    return { socket, head }
  }

  /** Half-close after what is queued, then linger: input is dropped so the client reads our answer, not a reset. */
  endConnection(): void {
    if (this.closing) return
    this.enterPhase(Phase.LINGER)
    this.pending = null
    this.req = null
    if (this.res !== null && !this.res.finished) this.res.connectionClosed(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'closing before the response ended'))
    this.res = null
    // Whatever held reading back, input is now only read to be dropped.
    this.reading.resumeAll()
    if (!this.inRead) this.flush()
  }

  destroy(): void {
    if (this.phase !== Phase.CLOSED) this.socket.destroy()
  }

  /**
   * Graceful stop: no request after the current (or next) one. An idle connection is closed at
   * once, or — with `idleGraceMs` — after staying idle that long, its next request answered with
   * Connection: close in the meantime.
   */
  shutdown(idleGraceMs = 0): void {
    this.closeAfterResponse = true
    if (!this.idle) return
    if (idleGraceMs > 0) this.server.scheduler.armIn(this.timer, idleGraceMs)
    // Nothing owed and nothing in flight: no answer to protect by lingering, so a client that
    // keeps its side open cannot hold the stop up (nginx closes idle keep-alive connections so).
    else if (this.socket.writableLength === 0) this.destroy()
    else this.endConnection()
  }

  /** The phase timer fired. */
  onTimeout(): void {
    const server = this.server
    switch (this.phase) {
      case Phase.HEAD:
        if (this.requests === 0 && this.parser.idle) {
          // Nothing was ever sent: close quietly, as nginx does for pre-connected sockets.
          this.destroy()
          return
        }
        server.countTimeout('PETREL_ERR_HEADERS_TIMEOUT')
        this.closeWithError('PETREL_ERR_HEADERS_TIMEOUT')
        return
      case Phase.BODY:
        server.countTimeout('PETREL_ERR_BODY_TIMEOUT')
        this.closeWithError('PETREL_ERR_BODY_TIMEOUT')
        return
      case Phase.HANDLER: {
        const res = this.res
        // Once the head is out the response is streaming: only the send timeout applies.
        if (res === null || res.headersSent) return
        server.countTimeout('PETREL_ERR_HANDLER_TIMEOUT')
        server.reportError(new PetrelError('PETREL_ERR_HANDLER_TIMEOUT', `${this.req!.method} ${this.req!.url}`))
        res.finished = true
        // The work behind the response stops (a CGI script, a pool task): its answer has no taker.
        res.connectionClosed(new PetrelError('PETREL_ERR_HANDLER_TIMEOUT'))
        this.closeWithError('PETREL_ERR_HANDLER_TIMEOUT')
        return
      }
      case Phase.IDLE:
      case Phase.LINGER:
      case Phase.HALF_CLOSED:
        // A response still being delivered is the send watch's business, not this timer's.
        if (this.socket.writableLength > 0) this.enterPhase(this.phase)
        else this.destroy()
        return
    }
  }
}
