// A WebSocket connection (RFC 6455) after its handshake (ws-upgrade.ts): frames read by
// protocol/websocket, messages to the route's handlers, messages and control frames written, the
// close handshake, and one timer on the server's wheel whose meaning follows the connection's
// state — the ping interval and the pong it waits for while open, the close timeout once closing.
// The object handlers get (`ws`) is the connection itself: no second object per connection.
//
// Writes made while a read is handled (echoes, pongs) leave in one socket write at its end.
// A client that does not read is closed with 1008 once more than maxBackpressureBytes wait for
// it, and cut after closeTimeoutMs if it does not take the close frame either.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import type { WebSocketLimits } from '../core/limits.ts'
import { WheelTimer } from '../core/timers/index.ts'
import { CloseCode, closePayload, frame, FrameReader, frameHeader, isValidCloseCode, MAX_CONTROL_PAYLOAD, Opcode } from '../protocol/websocket/frames.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import { MessageReader, type MessageEvents } from '../protocol/websocket/messages.ts'
import { deflateMessage, inflateMessage } from './ws-deflate.ts'
import { Phase } from './phase.ts'
import type { HttpServer, TimerOwner } from './server.ts'
import type { Request } from './request.ts'
import type { Refusal } from './ws-refusal.ts'

export { Refusal, refuse } from './ws-refusal.ts'

export interface WebSocketHandlers<T> {
  /**
   * Before the handshake is answered: the data the connection carries (`ws.data`), or
   * refuse(status) to answer with that status instead. May be async (a session lookup).
   */
  upgrade?(req: Request): T | Refusal | Promise<T | Refusal>
  open?(ws: WebSocket<T>): void
  /** A whole message: text as a string, binary as a Buffer. */
  message?(ws: WebSocket<T>, data: string | Buffer, binary: boolean): void
  /** What send() queued past the socket's mark has been written: send more. */
  drain?(ws: WebSocket<T>): void
  /** The connection is over: the client's close code (1005 without one, 1006 without a close frame). */
  close?(ws: WebSocket<T>, code: number, reason: string): void
}

/** A route's settings: its handlers, limits and compression. */
export interface WebSocketRoute<T> {
  readonly handlers: WebSocketHandlers<T>
  readonly limits: WebSocketLimits
  /** Offer permessage-deflate; the zlib level messages are compressed with. */
  readonly compress: boolean
  readonly compressLevel: number
  /** Chooses the subprotocol among the client's offers (WebSocketOptions.protocol). */
  readonly protocol?: (offered: readonly string[], req: Request) => string | undefined
}

const PING = frame(Opcode.PING, '')

const State = { OPEN: 0, CLOSING: 1, CLOSED: 2 } as const
type State = (typeof State)[keyof typeof State]

/** Messages up to this size are copied behind their header into one buffer; larger ones go as two writes. */
const COPY_BELOW = 16 * 1024

export class WebSocket<T = unknown> implements MessageEvents {
  /** What upgrade() returned for this connection. */
  data: T
  readonly socket: Socket
  readonly timer: WheelTimer<TimerOwner>
  /** Topics this connection is subscribed to (server.publish, ws.subscribe); null: none yet. */
  topics: Set<string> | null = null
  private readonly server: HttpServer
  private readonly route: WebSocketRoute<T>
  private readonly reader: FrameReader
  private readonly messages: MessageReader
  /** The subprotocol agreed in the handshake ('' for none). */
  readonly protocol: string
  /** What server.connections holds this as (HTTP/1.1 connections have none, HTTP/2 ones 'h2'). */
  readonly kind = 'websocket'
  /** permessage-deflate's window for this side's messages; 0: not agreed. */
  readonly deflateBits: number
  private state: State = State.OPEN
  private awaitingPong = false
  /** pause() was called (and not resume()). */
  private paused = false
  private wantsDrain = false
  /** The close code and reason the handler will be told. */
  private closeCode: number = CloseCode.ABNORMAL
  private closeReason = ''

  constructor(server: HttpServer, route: WebSocketRoute<T>, socket: Socket, data: T, deflateBits: number, protocol = '') {
    this.server = server
    this.protocol = protocol
    this.route = route
    this.socket = socket
    this.data = data
    this.deflateBits = deflateBits
    const limits = route.limits
    this.messages = new MessageReader(this, limits.maxMessageBytes, deflateBits > 0 ? inflateMessage : null)
    this.reader = new FrameReader(this.messages, limits.maxFrameBytes)
    this.reader.rsv1Allowed = deflateBits > 0
    this.timer = new WheelTimer<TimerOwner>(this)
    socket.setNoDelay(true)
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
  }

  /** The handshake is answered: the handler's open(), then the bytes the client sent after its request. */
  start(head: Buffer): void {
    if (this.route.limits.pingIntervalMs > 0) this.server.scheduler.armIn(this.timer, this.route.limits.pingIntervalMs)
    this.call('open')
    // A handler that paused in open() (waiting for something before it reads) keeps it so.
    if (!this.paused) this.socket.resume()
    if (head.length > 0 && this.state !== State.CLOSED) this.onData(head)
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }

  /** Bytes queued for the client and not yet written. */
  get bufferedAmount(): number {
    return this.socket.writableLength
  }

  /** False once a close frame was sent or the connection ended. */
  get open(): boolean {
    return this.state === State.OPEN
  }

  // ---- sending ----

  /**
   * Send a message: text for a string, binary for a Buffer (or `binary: true`). Returns false
   * when it was queued past the socket's high-water mark: wait for the `drain` handler before
   * sending more. Compressed when permessage-deflate was agreed and the message is at least
   * compressMinBytes (`compress: false` to skip).
   */
  send(data: string | Buffer, options?: { binary?: boolean; compress?: boolean }): boolean {
    if (this.state !== State.OPEN) return false
    // What was published to this subscriber in this turn goes first (ws-topics.ts).
    if (this.topics !== null) this.server.topics().flush()
    const binary = options?.binary ?? typeof data !== 'string'
    const opcode = binary ? Opcode.BINARY : Opcode.TEXT
    if (this.deflateBits > 0 && options?.compress !== false) {
      const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length
      if (length >= this.route.limits.compressMinBytes) {
        const compressed = deflateMessage(typeof data === 'string' ? Buffer.from(data) : data, this.route.compressLevel, this.deflateBits)
        return this.writeFrame(frame(opcode, compressed, true))
      }
    }
    if (typeof data === 'string' || data.length < COPY_BELOW) return this.writeFrame(frame(opcode, data))
    // A large Buffer goes as it is, behind its header, in one writev.
    const socket = this.socket
    const header = frameHeader(true, false, opcode, data.length)
    socket.cork()
    socket.write(header)
    const ok = socket.write(data)
    socket.uncork()
    return this.queued(ok, header.length + data.length)
  }

  /** A whole frame built already (a topic's message, built once for all its subscribers). */
  writeFrame(bytes: Buffer): boolean {
    if (this.state !== State.OPEN) return false
    return this.queued(this.socket.write(bytes), bytes.length)
  }

  /**
   * After a write of `bytes`: a client that let more than maxBackpressureBytes wait before this
   * message is closed (a message of the largest size is always sent whole to one that reads);
   * `ok` is the socket's own verdict.
   */
  private queued(ok: boolean, bytes: number): boolean {
    if (this.socket.writableLength - bytes > this.route.limits.maxBackpressureBytes) {
      this.server.countTimeout('PETREL_ERR_WS_BACKPRESSURE')
      this.close(CloseCode.POLICY_VIOLATION, 'too many messages wait for this client')
      return false
    }
    if (!ok) this.wantsDrain = true
    return ok
  }

  ping(payload: Buffer | string = ''): void {
    if (Buffer.byteLength(payload) > MAX_CONTROL_PAYLOAD) throw new InvalidOptionError(`a ping's payload is at most ${MAX_CONTROL_PAYLOAD} bytes`)
    if (this.state === State.OPEN) this.writeControl(frame(Opcode.PING, payload))
  }

  /** A control frame of the server's (ping, pong): under the same backlog limit as messages. */
  private writeControl(bytes: Buffer): void {
    this.queued(this.socket.write(bytes), bytes.length)
  }

  /** Start the close handshake (§7.1.2): the close frame goes, the client's is awaited for closeTimeoutMs. */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    // 1005, 1006 and 1015 say what happened without a close frame: never sent (§7.4.1).
    if (!isValidCloseCode(code) || code === 1015) throw new InvalidOptionError(`a close code is 1000–1003, 1007–1014 or 3000–4999, got ${code}`)
    if (this.state !== State.OPEN) return
    this.state = State.CLOSING
    this.socket.write(frame(Opcode.CLOSE, closePayload(code, reason)))
    this.server.scheduler.armIn(this.timer, this.route.limits.closeTimeoutMs)
  }

  /** Stop reading the client's messages (input backpressure) until resume(); what was already read is still delivered. */
  pause(): void {
    this.paused = true
    this.socket.pause()
  }

  resume(): void {
    this.paused = false
    if (this.state !== State.CLOSED) this.socket.resume()
  }

  /** Cut the connection at once, without a close handshake. */
  end(): void {
    // Nothing more is delivered or sent, the rest of the current read included; close() follows (1006).
    if (this.state === State.OPEN) this.state = State.CLOSING
    this.reader.stop()
    this.socket.destroy()
  }

  // ---- topics ----

  subscribe(topic: string): void {
    // After the close (an open() that awaited something first): nothing to subscribe.
    if (this.state === State.CLOSED) return
    this.topics ??= new Set()
    if (this.topics.has(topic)) return
    this.topics.add(topic)
    this.server.topics().subscribe(this, topic)
  }

  unsubscribe(topic: string): void {
    if (this.topics === null || !this.topics.delete(topic)) return
    this.server.topics().unsubscribe(this, topic)
  }

  isSubscribed(topic: string): boolean {
    return this.topics !== null && this.topics.has(topic)
  }

  /** Send to every subscriber of `topic` but this connection; returns how many it went to. */
  publish(topic: string, data: string | Buffer, options?: { binary?: boolean }): number {
    return this.server.topics().publish(topic, data, options?.binary ?? typeof data !== 'string', this)
  }

  /** Whether a message of `length` bytes goes compressed to this connection. */
  compresses(length: number): boolean {
    return this.deflateBits > 0 && length >= this.route.limits.compressMinBytes
  }

  // ---- the server's view (server.connections) ----

  /** Counted as busy, not as an idle keep-alive connection waiting between requests. */
  get phase(): Phase {
    return Phase.HANDLER
  }

  get idle(): boolean {
    return true
  }

  /** Graceful stop (server.close()): close 1001, then the handshake or its timeout. */
  shutdown(_idleGraceMs: number): void {
    this.close(CloseCode.GOING_AWAY, 'the server is stopping')
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** The connection's timer fired (see the top of the file). */
  expired(): void {
    if (this.state === State.CLOSED) return
    if (this.state === State.CLOSING) return this.destroy()
    if (this.awaitingPong) {
      // No pong within pongTimeoutMs: the client is gone or stuck.
      this.server.countTimeout('PETREL_ERR_WS_PONG_TIMEOUT')
      return this.destroy()
    }
    this.awaitingPong = true
    this.writeControl(PING)
    this.server.scheduler.armIn(this.timer, this.route.limits.pongTimeoutMs)
  }

  // ---- reading ----

  private readonly onData = (chunk: Buffer): void => {
    const metrics = this.server.metrics
    if (metrics !== null) metrics.bytesIn += chunk.length
    if (this.state === State.OPEN && this.route.limits.pingIntervalMs > 0) {
      // The client is there: the next ping waits (a field write while the timer is armed).
      this.awaitingPong = false
      this.timer.deadline = this.server.scheduler.now + this.route.limits.pingIntervalMs
    }
    // What a read makes the server send (echoes, pongs, the close) leaves in one write.
    this.socket.cork()
    this.reader.push(chunk)
    this.socket.uncork()
  }

  // ---- what the message reader found (MessageEvents) ----

  receivedMessage(data: string | Buffer, binary: boolean): void {
    if (this.state !== State.OPEN) return
    const handler = this.route.handlers.message
    if (handler === undefined) return
    try {
      handler(this, data, binary)
    } catch (err) {
      this.failed(err)
    }
  }

  receivedPing(payload: Buffer): void {
    // A client that pings and never reads fills its backlog with pongs: closed as for messages.
    if (this.state === State.OPEN) this.writeControl(frame(Opcode.PONG, payload))
  }

  receivedPong(_payload: Buffer): void {
    this.awaitingPong = false
  }

  /** The client's close frame (§5.5.1): echoed unless the server closed first; then the server ends the TCP connection (§7.1.1). */
  receivedClose(code: number, reason: string): void {
    if (this.state === State.OPEN) {
      this.closeCode = code
      this.closeReason = reason
      // The code echoed (1005 is never sent: an empty close answers an empty one).
      this.socket.write(frame(Opcode.CLOSE, code === CloseCode.NO_STATUS ? Buffer.alloc(0) : closePayload(code)))
      this.state = State.CLOSING
      this.server.scheduler.armIn(this.timer, this.route.limits.closeTimeoutMs)
    } else if (this.closeCode === CloseCode.ABNORMAL) {
      // The answer to the server's own close: the handshake is complete.
      this.closeCode = code
      this.closeReason = reason
    }
    this.socket.end()
  }

  protocolError(code: number, why: string): void {
    // _Fail the WebSocket Connection_ (§7.1.7): the close frame with the code, then the end.
    this.server.countProtocolError('PETREL_ERR_WS_PROTOCOL')
    if (this.state === State.OPEN) {
      this.closeCode = CloseCode.ABNORMAL
      this.closeReason = why
      this.state = State.CLOSING
      this.socket.write(frame(Opcode.CLOSE, closePayload(code)))
      this.server.scheduler.armIn(this.timer, this.route.limits.closeTimeoutMs)
    }
    this.socket.end()
  }

  private readonly onDrain = (): void => {
    if (!this.wantsDrain || this.state !== State.OPEN) return
    this.wantsDrain = false
    this.call('drain')
  }

  private readonly onError = (err: Error): void => this.server.socketFailed(err)

  /** The client ended its side without a close handshake, or after it. */
  private readonly onEnd = (): void => {
    if (this.socket.writableLength === 0) return void this.socket.destroy()
    // What is queued is written first; nothing more is sent, and the close timeout bounds the wait.
    this.socket.end()
    if (this.state === State.OPEN) {
      this.state = State.CLOSING
      this.server.scheduler.armIn(this.timer, this.route.limits.closeTimeoutMs)
    }
  }

  private readonly onClose = (): void => {
    const wasOpen = this.state !== State.CLOSED
    this.state = State.CLOSED
    this.reader.stop()
    this.server.scheduler.cancel(this.timer)
    if (this.topics !== null) this.server.topics().drop(this)
    this.server.connectionClosed(this)
    if (wasOpen) this.call('close')
  }

  private call(name: 'open' | 'drain' | 'close'): void {
    const handlers = this.route.handlers
    try {
      if (name === 'close') handlers.close?.(this, this.closeCode, this.closeReason)
      else handlers[name]?.(this)
    } catch (err) {
      this.failed(err)
    }
  }

  /** A handler threw: reported, and the connection closed with 1011. */
  private failed(err: unknown): void {
    this.server.reportError(err instanceof Error ? err : new Error(String(err)))
    this.close(CloseCode.INTERNAL_ERROR, '')
  }
}
