// An HTTP/2 connection of the server: the socket on one side, an H2Session (protocol/http2) on
// the other, and for each request stream an H2Exchange (server/h2-exchange.ts): the Request and
// Response every handler already knows.
//
// Timers, on the server's timing wheel like an HTTP/1.1 connection's:
// - the connection's own, whose meaning follows its state: this side's SETTINGS unacknowledged
//   after timeouts.handshakeMs (§6.5.3: SETTINGS_TIMEOUT); no stream open for
//   timeouts.keepAliveMs (GOAWAY, then close); streams with DATA waiting on a window the client
//   keeps shut for timeouts.sendMs (cut, as a send timeout); after this side ended the
//   connection, timeouts.lingerMs for the client to close its side;
// - the send watch (send-watch.ts) of bytes queued in the socket, as on HTTP/1.1;
// - one per stream (h2-exchange.ts): the request body's and the handler's timeouts.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { PetrelError } from '../core/errors.ts'
import { WheelTimer } from '../core/timers/index.ts'
import { H2Error } from '../protocol/http2/frames.ts'
import { H2Session, StreamState, type H2Stream, type SessionEvents, type SessionOutput } from '../protocol/http2/session.ts'
import type { Done } from '../protocol/http2/stream.ts'
import { requestHead, requestTrailers } from './h2-request.ts'
import { H2Exchange } from './h2-exchange.ts'
import { ownAnswer } from './answer.ts'
import type { Request } from './request.ts'
import { Response } from './response.ts'
import type { HttpServer, TimerOwner } from './server.ts'
import { SendWatch } from './send-watch.ts'
import { Phase } from './phase.ts'

/** How often the open streams are looked at (shut windows, unfinished request bodies), at most. */
const STREAM_CHECK_MS = 1000

const EMPTY = Buffer.alloc(0)

export class H2Connection implements SessionOutput, SessionEvents {
  readonly server: HttpServer
  readonly socket: Socket
  readonly session: H2Session
  readonly secure: boolean
  /** What server.connections holds this as (see WebSocket.kind). */
  readonly kind = 'h2'
  /** The connection's own timer (see the top of the file). */
  readonly timer: WheelTimer<TimerOwner>
  readonly sendWatch: SendWatch<TimerOwner>
  /** Exchanges holding a head or body piece to send at the next flush. */
  private readonly held = new Set<H2Exchange>()
  private inRead = false
  private flushQueued = false
  private isClosed = false
  /** This side ended the connection (socket.end()): the client has lingerMs to close its side. */
  private lingering = false
  /** Waiting for the socket to drain. */
  private socketBehind = false
  /** On the scheduler's clock: when the connection began, and when its last stream ended. */
  private readonly openedAt: number
  private idleSince: number
  /** DATA bytes the session had sent at the last window check, and since when streams have waited on a window without any going out (0: none wait). */
  private lastDataSent = 0
  private stalledSince = 0

  constructor(server: HttpServer, socket: Socket, secure: boolean) {
    this.server = server
    this.socket = socket
    this.secure = secure
    this.session = new H2Session(this, this, { ...server.http2!, maxHeaderListBytes: server.limits.maxHeaderBytes }, () => server.scheduler.now)
    this.timer = new WheelTimer<TimerOwner>(this)
    this.sendWatch = new SendWatch<TimerOwner>(this, socket, server.scheduler, server.timeouts)
    socket.setNoDelay(true)
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
    // Taken over from an HTTP/1.1 connection that read the preface (Connection.detach() paused it).
    socket.resume()
    this.openedAt = this.idleSince = server.scheduler.now
    this.session.start()
    this.armTimer()
  }

  get open(): boolean {
    return !this.isClosed
  }

  /** No stream in progress: the connection may be closed without losing work. */
  get idle(): boolean {
    return this.session.streams.size === 0
  }

  /** Streams open now (for the server's counts). */
  get streams(): number {
    return this.session.streams.size
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

  // ---- timers ----

  /** Arm the connection's timer for the first of what it waits on now. */
  private armTimer(): void {
    const { scheduler, timeouts } = this.server
    const now = scheduler.now
    let ms = this.session.streams.size === 0 ? this.idleSince + timeouts.keepAliveMs - now : Math.min(STREAM_CHECK_MS, timeouts.sendMs, timeouts.bodyMs)
    if (!this.session.settingsAcknowledged) ms = Math.min(ms, this.openedAt + timeouts.handshakeMs - now)
    scheduler.armIn(this.timer, Math.max(0, ms))
  }

  /** A timer of the connection fired. */
  expired(timer: WheelTimer<TimerOwner>): void {
    const { scheduler, timeouts } = this.server
    if (this.isClosed) return
    if (timer === this.sendWatch.timer) {
      if (!this.sendWatch.check()) this.sendTimedOut()
      return
    }
    if (this.lingering) return this.destroy()
    const now = scheduler.now
    if (!this.session.settingsAcknowledged && now - this.openedAt >= timeouts.handshakeMs) {
      this.session.connectionError(H2Error.SETTINGS_TIMEOUT, `no SETTINGS ACK within ${timeouts.handshakeMs} ms`)
      return
    }
    if (this.session.streams.size === 0) {
      if (now - this.idleSince >= timeouts.keepAliveMs) return this.session.goaway()
    } else if (this.windowStalled(now)) return this.sendTimedOut()
    this.armTimer()
  }

  /**
   * Look at the open streams. A stream answered while its request body is still coming (a 413, a
   * response that did not read the body) is asked to stop (RST_STREAM NO_ERROR, §8.1) once the
   * client has sent none of it for timeouts.bodyMs: a client cannot hold its streams open by
   * going quiet. Returns
   * whether streams have had DATA waiting on flow-control windows, and none of it went out, for
   * timeouts.sendMs: a client that keeps its windows shut (a zero-window stall) while holding
   * the streams and the bytes queued for them.
   */
  private windowStalled(now: number): boolean {
    let waiting = false
    const bodyMs = this.server.timeouts.bodyMs
    for (const stream of this.session.streams.values()) {
      if (stream.pendingBytes > 0) waiting = true
      else if (stream.state === StreamState.HALF_CLOSED_LOCAL && now - Math.max(stream.localEndedAt, stream.lastDataAt) >= bodyMs) {
        this.server.countTimeout('PETREL_ERR_BODY_TIMEOUT')
        this.session.resetStream(stream.id, H2Error.NO_ERROR)
      }
    }
    const sent = this.session.dataSent
    if (!waiting || sent !== this.lastDataSent) {
      this.lastDataSent = sent
      this.stalledSince = waiting ? now : 0
      return false
    }
    if (this.stalledSince === 0) this.stalledSince = now
    return now - this.stalledSince >= this.server.timeouts.sendMs
  }

  private sendTimedOut(): void {
    this.server.countTimeout('PETREL_ERR_SEND_TIMEOUT')
    this.destroy()
  }

  // ---- socket ----

  /** Bytes read before this connection was made (the first read of a cleartext connection, which held the preface). */
  receive(chunk: Buffer): void {
    this.onData(chunk)
  }

  private readonly onData = (chunk: Buffer): void => {
    const metrics = this.server.metrics
    if (metrics !== null) metrics.bytesIn += chunk.length
    // Everything one read makes the session send (ACKs, WINDOW_UPDATEs, answers) leaves in one write.
    this.socket.cork()
    this.inRead = true
    this.session.push(chunk)
    this.inRead = false
    this.flush()
    this.socket.uncork()
    this.sendWatch.watchIfQueued()
  }

  private readonly onDrain = (): void => {
    this.socketBehind = false
    for (const stream of this.session.streams.values()) (stream.owner as H2Exchange | null)?.wake()
  }

  private readonly onError = (err: Error): void => this.server.socketFailed(err)

  /** The client ended its side: HTTP/2 has no half-closed connection to serve (nginx closes too). */
  private readonly onEnd = (): void => {
    this.socket.destroy()
  }

  private readonly onClose = (): void => {
    this.isClosed = true
    this.server.scheduler.cancel(this.timer)
    this.sendWatch.stop()
    this.held.clear()
    const gone = new PetrelError('PETREL_ERR_CONNECTION_CLOSED')
    for (const stream of this.session.streams.values()) (stream.owner as H2Exchange | null)?.gone(gone)
    this.session.streams.clear()
    this.server.connectionClosed(this)
  }

  // ---- SessionOutput ----

  write(bytes: Buffer, done?: Done): boolean {
    if (this.isClosed) {
      done?.()
      return false
    }
    const ok = this.socket.write(bytes, done)
    if (!ok) this.socketBehind = true
    // Outside a read or a flush (a handler's late write, a body taken later): watched now.
    if (this.socket.writableCorked === 0) this.sendWatch.watchIfQueued()
    return ok
  }

  end(): void {
    if (this.isClosed || this.lingering) return
    this.lingering = true
    this.socket.end()
    this.server.scheduler.armIn(this.timer, this.server.timeouts.lingerMs)
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
    const exchange = new H2Exchange(this, stream, endStream)
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
    ;(stream.owner as H2Exchange | null)?.wake()
  }

  headersTooLarge(stream: H2Stream): void {
    this.answerAlone(stream, 431, `a header list over ${this.server.limits.maxHeaderBytes} bytes`)
  }

  streamsDone(): void {
    this.idleSince = this.server.scheduler.now
    this.armTimer()
  }

  closed(): void {
    // The socket's 'close' follows (end() was called, and the linger timer armed).
  }

  /**
   * The server's own answer on a stream, as HTTP/1.1 gives it: one no handler sees (431, 414,
   * 413), or a timed-out one (`req` made; `startedAt`, `startedAtMs` when it arrived).
   */
  answerAlone(stream: H2Stream, status: number, why: string, req: Request | null = null, startedAt = 0, startedAtMs = 0): void {
    const head = req !== null && req.method === 'HEAD'
    const text = ownAnswer(this.server, this.socket.remoteAddress, status, why, req, head, startedAt, startedAtMs)
    const body = head ? EMPTY : Buffer.from(text)
    this.session.sendHeaders(
      stream,
      [
        [':status', String(status)],
        ['content-type', 'text/plain; charset=utf-8'],
        ['content-length', String(Buffer.byteLength(text))],
      ],
      head,
    )
    if (!head) this.session.sendData(stream, body, true)
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
    this.sendWatch.watchIfQueued()
  }
}
