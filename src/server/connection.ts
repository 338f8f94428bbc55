// One client connection: socket bytes in, parser events, one request in flight at a time,
// responses batched into one write per read, and two wheel timers — one whose meaning follows
// the phase the connection is in, one that watches a queued response for progress.
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
import { statusLine, dateHeaderLine } from './status.ts'
import { readDirectly, type SocketReader } from './socket-reader.ts'
import type { HttpServer } from './server.ts'

/** What the connection's phase timer means right now. */
export const Phase = {
  /** Waiting for (the rest of) a request head: timeouts.headersMs from its first byte. */
  HEAD: 0,
  /** Reading a request body: timeouts.bodyMs between reads (suspended while we are the slow side). */
  BODY: 1,
  /** The handler has the request: timeouts.handlerMs until it sends the response head. */
  HANDLER: 2,
  /** Between requests: timeouts.keepAliveMs. */
  IDLE: 3,
  /** Our side is ending: unread input is dropped until the client closes or timeouts.lingerMs passes. */
  LINGER: 4,
  CLOSED: 5,
  /**
   * The client closed its side while its response was unfinished: the handler has been told
   * (res.signal) and may still finish for a client that only half-closed, but a response that
   * goes quiet for timeouts.lingerMs is cut — whatever the handler does, the socket is freed.
   */
  HALF_CLOSED: 6,
} as const

// Reasons to stop reading the socket; reading resumes when none is left.
const PAUSE_PIPELINE = 1
const PAUSE_WRITE = 2
const PAUSE_BODY = 4

/** How often a queued response is checked for progress, at most. */
const SEND_CHECK_MS = 1000

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

export class Connection implements RequestParserHandler, BodySource, ResponseSink {
  readonly socket: Socket
  readonly server: HttpServer
  readonly timer: WheelTimer<Connection>
  readonly sendTimer: WheelTimer<Connection>
  phase: number = Phase.HEAD
  /** Requests begun on this connection. */
  requests = 0

  private readonly parser: RequestParser
  /** Reads straight from the TCP handle when possible (see socket-reader.ts); null: 'data' events. */
  private readonly reader: SocketReader | null
  private readonly highWaterMark: number
  private req: Request | null = null
  private res: Response | null = null
  /** The current request's message has been parsed to its end. */
  private messageComplete = true
  /** True while a read is being parsed: responses are batched, then written once. */
  private inRead = false
  /** Between Response.cork() and uncork(): sends are batched too. */
  private corked = false
  /** Text waiting for the flush, in one string (see batchText for how it is encoded). */
  private batch = ''
  /** Pieces before `batch` when Buffers were sent too: ASCII strings and Buffers, written in order under one cork. */
  private batchList: Array<string | Buffer> | null = null
  private batchBytes = 0
  /** What `batch` holds: ASCII only (written as latin1: a straight copy), or text that must go as UTF-8, or bytes copied in as latin1. */
  private batchText: BatchText = BatchText.ASCII
  /** Unparsed bytes held back while the request before them is answered or the client catches up. */
  private pending: Buffer | null = null
  private pendingStart = 0
  private pauseReasons = 0
  private drainWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> | null = null
  /** No further request will be read: close once the current response is out. */
  private closeAfterResponse = false
  private peerEnded = false
  private continueSent = false
  /** When the current request's head arrived (epoch ms), kept only for an onResponse hook. */
  private startedAtMs = 0
  /** When it arrived on the monotonic clock (ms), kept only when metrics are on. */
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
  private lastFlushed = 0
  private lastProgressAt = 0

  constructor(server: HttpServer, socket: Socket) {
    this.server = server
    this.socket = socket
    this.highWaterMark = server.limits.writeHighWaterMark
    this.parser = new RequestParser(this, server.limits)
    this.timer = new WheelTimer<Connection>(this)
    this.sendTimer = new WheelTimer<Connection>(this)
    this.reader = readDirectly(socket, this.onData)
    if (this.reader === null) socket.on('data', this.onData)
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
    return this.req === null && this.pending === null && this.parser.idle && this.phase !== Phase.LINGER
  }

  private get closing(): boolean {
    return this.phase === Phase.LINGER || this.phase === Phase.CLOSED
  }

  // ---- socket events (bound once per connection, not per request) ----

  private readonly onData = (chunk: Buffer): void => {
    const metrics = this.server.metrics
    if (metrics !== null) {
      metrics.bytesIn += chunk.length
      this.readAt = performance.now()
    }
    if (this.closing) return
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
      this.pause(PAUSE_PIPELINE)
      return
    }
    this.consume(chunk, 0)
  }

  private readonly onDrain = (): void => {
    this.unpause(PAUSE_WRITE)
    const waiters = this.drainWaiters
    if (waiters !== null) {
      this.drainWaiters = null
      for (const w of waiters) w.resolve()
    }
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

  private readonly onError = (err: Error): void => {
    // ECONNRESET and EPIPE are how clients leave; 'close' follows and cleans up.
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ECONNRESET' && code !== 'EPIPE') this.server.reportError(err)
  }

  private readonly onClose = (): void => {
    this.phase = Phase.CLOSED
    const scheduler = this.server.scheduler
    scheduler.cancel(this.timer)
    scheduler.cancel(this.sendTimer)
    this.pending = null
    // An Error captures a stack trace (microseconds): made only when someone is told with it,
    // not for every connection that closes between requests.
    const waiters = this.drainWaiters
    const unfinished = this.res !== null && !this.res.finished
    if (this.req !== null || unfinished || waiters !== null) {
      const gone = new PetrelError('PETREL_ERR_CONNECTION_CLOSED')
      if (this.req !== null) this.req.abortBody(gone)
      if (unfinished) this.res!.connectionClosed(gone)
      if (waiters !== null) {
        this.drainWaiters = null
        for (const w of waiters) w.reject(gone)
      }
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
      this.protocolError(this.parser.errorCode!)
    } else if (consumed < chunk.length && !this.closing) {
      this.pending = chunk
      this.pendingStart = consumed
      this.pendingAt = this.readAt
      this.pause(PAUSE_PIPELINE)
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
    const res = new Response(this, { head: head.method === 'HEAD', http11: head.versionMinor === 1, keepAlive })
    const req = server.makeRequest(head, this)
    this.req = req
    this.res = res
    this.enterPhase(head.hasBody ? Phase.BODY : Phase.HANDLER)
    server.dispatch(req, res)
  }

  onBody(buf: Buffer, start: number, end: number): void {
    const req = this.req
    if (req === null) return
    if (this.phase === Phase.BODY && !(this.pauseReasons & PAUSE_BODY)) this.server.scheduler.armIn(this.timer, this.server.timeouts.bodyMs)
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
      return this.closing || (this.pauseReasons & PAUSE_WRITE) !== 0
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
    this.pause(PAUSE_BODY)
  }

  resumeBody(): void {
    if (!(this.pauseReasons & PAUSE_BODY)) return
    if (this.phase === Phase.BODY) this.server.scheduler.armIn(this.timer, this.server.timeouts.bodyMs)
    this.unpause(PAUSE_BODY)
  }

  // ---- ResponseSink ----

  send(data: string | Buffer, more = false, onFlushed?: (err?: Error | null) => void): boolean {
    if (this.ended || this.phase === Phase.CLOSED) return false
    if (this.phase === Phase.HALF_CLOSED) this.stillWriting()
    if (typeof data !== 'string' && data.length <= COPY_INTO_BATCH_BYTES) {
      // A small Buffer is copied into the batch's string: the batch stays one write (not a corked
      // writev), and the caller has its buffer back at once.
      this.appendText(data.toString('latin1'), BatchText.BYTES)
      onFlushed?.()
      return this.queued(data.length, more)
    }
    if (onFlushed !== undefined) {
      // A buffer its owner wants back: write it now, in order after the batch, with the socket's
      // own completion callback (Node calls it on success and when the write is abandoned). A
      // batch waiting (a head sent with `more`) leaves with it in one writev, not as a segment of its own.
      const socket = this.socket
      const joined = this.batch !== '' || this.batchList !== null
      if (joined) socket.cork()
      this.flush()
      if (this.ended) {
        if (joined) socket.uncork()
        this.watchSendIfQueued()
        return false
      }
      const ok = socket.write(data, onFlushed)
      if (joined) socket.uncork()
      if (!ok) this.pause(PAUSE_WRITE)
      this.watchSendIfQueued()
      return ok
    }
    if (typeof data === 'string') {
      // Not known to be ASCII: the batch goes out as UTF-8.
      this.appendText(data, BatchText.UTF8)
    } else {
      const list = (this.batchList ??= [])
      this.sealBatch(list)
      list.push(data)
    }
    return this.queued(data.length, more)
  }

  /**
   * send() for text the caller knows is ASCII (a head, a body whose UTF-8 length equals its
   * length). A batch of nothing else goes to the socket as latin1 — for ASCII the same bytes as
   * UTF-8, but copied straight out of the string, where UTF-8 first flattens the batch's
   * concatenation into a new string, then measures and converts it.
   */
  sendAscii(text: string, more = false): boolean {
    if (this.ended || this.phase === Phase.CLOSED) return false
    if (this.phase === Phase.HALF_CLOSED) this.stillWriting()
    this.batch += text
    return this.queued(text.length, more)
  }

  /** A write to a half-closed client: the handler is still at work, so its deadline moves later (a field write). */
  private stillWriting(): void {
    this.server.scheduler.armIn(this.timer, this.server.timeouts.lingerMs)
  }

  /** Add `text` to the batch's string; text that needs the other encoding than what is there first moves that to the list. */
  private appendText(text: string, kind: BatchText): void {
    if (this.batchText !== kind) {
      if (this.batchText !== BatchText.ASCII) this.sealBatch((this.batchList ??= []))
      this.batchText = kind
    }
    this.batch += text
  }

  /** Move the batch's string to the end of `list`: as is when it is ASCII, else as the bytes it stands for. */
  private sealBatch(list: Array<string | Buffer>): void {
    if (this.batch !== '') list.push(this.batchText === BatchText.ASCII ? this.batch : Buffer.from(this.batch, this.batchText === BatchText.UTF8 ? 'utf8' : 'latin1'))
    this.batch = ''
    this.batchText = BatchText.ASCII
  }

  /** `length` more units are in the batch: flush it, unless more follows or the read is still being answered. */
  private queued(length: number, more: boolean): boolean {
    this.batchBytes += length
    if (more) return true
    // Inside a read (or a cork), responses wait for the batch — unless it has grown past the mark.
    if ((this.inRead || this.corked) && this.batchBytes + this.socket.writableLength < this.highWaterMark) return true
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
    if (this.phase === Phase.CLOSED) return Promise.reject(new PetrelError('PETREL_ERR_CONNECTION_CLOSED'))
    if (!this.socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve, reject) => (this.drainWaiters ??= []).push({ resolve, reject }))
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

  private enterPhase(phase: number): void {
    this.phase = phase
    const { scheduler, timeouts } = this.server
    switch (phase) {
      case Phase.HEAD:
        scheduler.armIn(this.timer, timeouts.headersMs)
        return
      case Phase.BODY:
        scheduler.armIn(this.timer, timeouts.bodyMs)
        return
      case Phase.HANDLER:
        // Usually a later deadline than the head's or body's: a field write, not a relink.
        scheduler.armIn(this.timer, timeouts.handlerMs)
        return
      case Phase.IDLE:
        scheduler.armIn(this.timer, timeouts.keepAliveMs)
        return
      case Phase.LINGER:
      case Phase.HALF_CLOSED:
        scheduler.armIn(this.timer, timeouts.lingerMs)
        return
    }
  }

  /** The request and its response are both complete. */
  private exchangeDone(): void {
    this.req = null
    this.res = null
    // A cork belongs to its response: one left on (no uncork()) must not hold the next one's.
    this.corked = false
    if (this.closeAfterResponse) this.endConnection()
    else this.enterPhase(Phase.IDLE)
  }

  /** Parse what was held back, then read the socket again — unless the client is still behind. */
  private continueReading(): void {
    if (this.closing || this.pauseReasons & PAUSE_WRITE) return
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      // Requests held back count from when they arrived, not from when their turn came.
      this.readAt = this.pendingAt
      this.consume(pending, this.pendingStart)
    }
    if (this.pending === null) this.unpause(PAUSE_PIPELINE)
  }

  /** After the client half-closed: close once every complete request it sent is answered. */
  private finishIfPeerEnded(): void {
    if (this.peerEnded && this.req === null && this.pending === null && !this.closing) this.endConnection()
  }

  /** Write out the batch. Returns false when the socket's buffer is over the mark. */
  private flush(): boolean {
    const socket = this.socket
    let ok = true
    const list = this.batchList
    if (list !== null) {
      this.batchList = null
      this.sealBatch(list)
      socket.cork()
      // Strings in the list are ASCII: latin1 is the cheaper way to the same bytes.
      for (const chunk of list) ok = typeof chunk === 'string' ? socket.write(chunk, 'latin1') : socket.write(chunk)
      socket.uncork()
    } else if (this.batch !== '') {
      const data = this.batch
      this.batch = ''
      ok = socket.write(data, this.batchText === BatchText.UTF8 ? 'utf8' : 'latin1')
    }
    this.batchText = BatchText.ASCII
    this.batchBytes = 0
    if (!ok) this.pause(PAUSE_WRITE)
    this.watchSendIfQueued()
    if (this.phase === Phase.LINGER && !this.ended) {
      this.ended = true
      socket.end()
    }
    return ok
  }

  /**
   * Start watching for send progress when output is queued and nothing watches yet. Under a cork
   * the bytes are only held, not queued: whoever uncorks looks again.
   */
  private watchSendIfQueued(): void {
    const socket = this.socket
    if (socket.writableLength > 0 && socket.writableCorked === 0 && !this.sendTimer.armed && this.phase !== Phase.CLOSED) this.watchSend()
  }

  /** Output is queued: from now on, only progress keeps the connection (timeouts.sendMs). */
  private watchSend(): void {
    this.lastFlushed = this.flushedBytes()
    this.lastProgressAt = this.server.scheduler.now
    this.server.scheduler.armIn(this.sendTimer, Math.min(this.server.timeouts.sendMs, SEND_CHECK_MS))
  }

  /**
   * A number that changes whenever the kernel takes bytes of the queued output. Node's own
   * counters move only when a whole write request completes — and Node joins queued writes into
   * one writev — so a 16 MB response read steadily would look stuck. libuv's write queue size
   * (exposed on the handle) shrinks with every partial write, so it is read as well.
   */
  private flushedBytes(): number {
    const handle = (this.socket as unknown as { _handle?: { writeQueueSize?: number } })._handle
    return this.socket.bytesWritten - this.socket.writableLength - (handle?.writeQueueSize ?? 0)
  }

  onSendCheck(): void {
    if (this.phase === Phase.CLOSED || this.socket.writableLength === 0) return
    const { scheduler, timeouts } = this.server
    const flushed = this.flushedBytes()
    if (flushed !== this.lastFlushed) {
      this.lastFlushed = flushed
      this.lastProgressAt = scheduler.now
    } else if (scheduler.now - this.lastProgressAt >= timeouts.sendMs) {
      this.server.countTimeout('PETREL_ERR_SEND_TIMEOUT')
      this.destroy()
      return
    }
    scheduler.armIn(this.sendTimer, Math.min(timeouts.sendMs, SEND_CHECK_MS))
  }

  private pause(reason: number): void {
    if (this.pauseReasons === 0) this.stopReading()
    this.pauseReasons |= reason
  }

  private unpause(reason: number): void {
    if (!(this.pauseReasons & reason)) return
    this.pauseReasons &= ~reason
    if (this.pauseReasons === 0 && this.phase !== Phase.CLOSED) this.startReading()
  }

  private stopReading(): void {
    if (this.reader !== null) this.reader.pause()
    else this.socket.pause()
  }

  private startReading(): void {
    if (this.reader !== null) this.reader.resume()
    else this.socket.resume()
  }

  /** Answer a malformed request with its status and close: the framing can no longer be trusted. */
  private protocolError(code: ErrorCode): void {
    this.server.countProtocolError(code)
    if (this.res === null || !this.res.headersSent) this.sendError(ERRORS[code].status, ERRORS[code].message)
    if (this.req !== null) this.req.abortBody(new PetrelError(code))
    this.endConnection()
  }

  /** A complete response for errors the connection answers itself; the connection closes after it. */
  sendError(status: number, message: string): void {
    const body = `${status} ${statusLine(status).slice(13, -2)}: ${message}\n`
    const length = Buffer.byteLength(body)
    // A HEAD request gets no body (RFC 9110 §9.3.2), also when the parser refused it before a
    // Request was made: its method is read before anything else can be wrong.
    const headRequest = (this.req !== null ? this.req.method : this.parser.method) === 'HEAD'
    const metrics = this.server.metrics
    if (metrics !== null) metrics.observe(status, this.req !== null ? performance.now() - this.startedAt : 0)
    const hook = this.server.onServerAnswer
    if (hook !== undefined) {
      const req = this.req
      hook({
        remoteAddress: this.socket.remoteAddress,
        status,
        bodyBytes: headRequest ? 0 : length,
        method: req?.method ?? '',
        url: req?.url ?? '',
        httpVersion: req?.httpVersion ?? '',
        startedAtMs: this.startedAtMs > 0 ? this.startedAtMs : Date.now(),
      })
    }
    this.send(`${statusLine(status)}${dateHeaderLine()}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${headRequest ? '' : body}`)
  }

  /**
   * Response.cork(): sends wait in the batch, as they do while a read is parsed, so a head and the
   * body bytes after it leave in one write at uncork() (or when the response ends, or a large
   * Buffer is written: those flush the batch ahead of them in one writev).
   */
  cork(): void {
    if (this.phase !== Phase.CLOSED) this.corked = true
  }

  uncork(): void {
    if (!this.corked) return
    this.corked = false
    if (!this.inRead && this.phase !== Phase.CLOSED) this.flush()
  }

  /** Leave HTTP: the socket and the bytes read past the current request go to the caller (Response.detach). */
  detach(): { socket: Socket; head: Buffer } {
    this.flush()
    const { scheduler } = this.server
    scheduler.cancel(this.timer)
    scheduler.cancel(this.sendTimer)
    const socket = this.socket
    if (this.reader !== null) this.reader.release()
    else socket.off('data', this.onData)
    socket.off('drain', this.onDrain)
    socket.off('end', this.onEnd)
    socket.off('error', this.onError)
    socket.off('close', this.onClose)
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
    if (this.res !== null && !this.res.finished) this.res.connectionClosed(new PetrelError('PETREL_ERR_CONNECTION_CLOSED', 'the connection is closing before the response was complete'))
    this.res = null
    this.pauseReasons = 0
    this.startReading()
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
        this.sendError(408, ERRORS.PETREL_ERR_HEADERS_TIMEOUT.message)
        this.endConnection()
        return
      case Phase.BODY:
        server.countTimeout('PETREL_ERR_BODY_TIMEOUT')
        if (this.res !== null && !this.res.headersSent) this.sendError(408, ERRORS.PETREL_ERR_BODY_TIMEOUT.message)
        if (this.req !== null) this.req.abortBody(new PetrelError('PETREL_ERR_BODY_TIMEOUT'))
        this.endConnection()
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
        this.sendError(503, ERRORS.PETREL_ERR_HANDLER_TIMEOUT.message)
        if (this.req !== null) this.req.abortBody(new PetrelError('PETREL_ERR_HANDLER_TIMEOUT'))
        this.endConnection()
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
