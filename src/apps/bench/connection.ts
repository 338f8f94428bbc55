// One load-generating connection: connect, send, count the answers, and start over when the
// connection ends. The loop it belongs to owns the counters, the clock and the schedule.
//
// Two models, as in wrk and wrk2:
// - closed (no --rate): write `pipelining` requests in one write, wait for all the answers, write
//   again. Latency runs from the write (from the connect, without keep-alive).
// - open (--rate): each connection owes a request every `intervalMs`; it sends when one is due and
//   fewer than `pipelining` are in flight. Latency runs from when the request was due, not from
//   when it went out, so a server that stalls is charged for the requests that queued behind the
//   stall (the coordinated-omission correction of wrk2).
//
// Every request sent and not answered when its connection ends is one error, of the kind that
// ended the connection — except after a response that announced `Connection: close`: requests
// pipelined behind it were never going to be answered, and wrk does not count them either.
//
// Over https:// the socket is a TLSSocket and everything above stays as it is: the requests go
// out on 'secureConnect' instead of 'connect', and decrypted bytes arrive through the same
// `onread` buffer. Each connection keeps the last TLS session the server gave it and offers it
// on its next connect (unless --tls-resume off), as a browser does, so a run without keep-alive
// measures resumed handshakes; wrk resumes none.

import { Buffer } from 'node:buffer'
import { Socket, type OnReadOpts } from 'node:net'
import tls from 'node:tls'
import { ResponseParser } from '../../protocol/http1/response-parser.ts'
import type { LoadLoop } from './loop.ts'
import { E_CONNECT, E_PARSE, E_READ, E_TIMEOUT, E_WRITE } from './result.ts'

/**
 * A failed connect, or a connection that ended before any answer on it, is retried after this
 * long, so a refused port or a server that accepts and closes is not hammered in a tight loop.
 */
export const CONNECT_RETRY_MS = 10
/** A request due within this many ms goes out now: timers have 1 ms granularity (wrk2 rounds too). */
export const EARLY_SEND_MS = 0.5

export class BenchConnection {
  /** Position in the loop's due queue, or -1 when not waiting there. */
  dueIndex = -1
  /** Open model: when this connection's next request is due (performance.now() ms). */
  nextDue = 0
  /** Requests written and not yet answered. */
  inFlight = 0

  private readonly loop: LoadLoop
  private readonly parser: ResponseParser
  /** Latency start of each request in flight; the oldest is at `head`. */
  private readonly starts: Float64Array
  /** When each request in flight was written: --timeout runs from here, not from the due time. */
  private readonly sentAt: Float64Array
  private head = 0
  private socket: Socket | null = null
  private connected = false
  /** When the current socket began to connect. */
  private connectStart = 0
  /** Open model: when a pipelining slot last became free (an answer came, or the connect completed). */
  private slotFreeAt = 0
  /** The server announced it will close; what is still in flight will not be answered. */
  private closing = false
  /** Some response completed on the current socket (else a reconnect waits CONNECT_RETRY_MS). */
  private answeredHere = false
  /** When `closing` began: a server that announces a close and keeps the connection open is dropped after --timeout. */
  private closingSince = 0
  private retryTimer: NodeJS.Timeout | null = null
  /** https: the TCP connect is done and the handshake is under way. */
  private handshaking = false
  /** https with resumption: the last session (ticket) the server gave this connection, offered on the next connect. */
  private session: Buffer | null = null

  constructor(loop: LoadLoop, firstDue: number) {
    this.loop = loop
    // A load generator counts what servers send: a bare LF line end is accepted (RFC 9112 §2.2
    // lets a recipient), where the proxy refuses it.
    this.parser = new ResponseParser({ headRequests: loop.plan.headRequests, allowBareLf: true })
    this.starts = new Float64Array(loop.plan.pipelining)
    this.sentAt = new Float64Array(loop.plan.pipelining)
    this.nextDue = firstDue
  }

  /**
   * Called by the loop's sweep: replace the connection when its oldest request has been in
   * flight longer than --timeout (counted from when it was written), when a connect takes that
   * long, or when the server announced a close that long ago and has not closed.
   */
  checkTimeout(now: number, limitMs: number): void {
    if (this.closing) {
      // Nothing is lost (see fail()): the connection is only replaced.
      if (now - this.closingSince > limitMs) this.fail(E_TIMEOUT, `the server announced a close and kept the connection open for ${limitMs} ms`)
    } else if (this.inFlight > 0) {
      if (now - this.sentAt[this.head]! > limitMs) this.fail(E_TIMEOUT, `no answer within ${limitMs} ms`)
    } else if (this.socket !== null && !this.connected && now - this.connectStart > limitMs) {
      this.fail(E_CONNECT, `no connection within ${limitMs} ms`)
    }
  }

  connect(now: number): void {
    const loop = this.loop
    // Never two sockets for one connection: whatever was there is done.
    this.socket?.destroy()
    const onread = { buffer: loop.readBuffer, callback: (nread: number): boolean => this.onRead(socket, nread) }
    const plan = loop.plan
    const socket: Socket = plan.tls === null ? new Socket({ onread }) : this.connectTls(plan.tls.servername, onread)
    this.socket = socket
    this.connected = false
    this.handshaking = false
    this.closing = false
    this.answeredHere = false
    this.connectStart = now
    socket.setNoDelay(true)
    socket.on('error', (err: NodeJS.ErrnoException) => this.onError(socket, err))
    socket.on('close', () => this.onClose(socket))
    if (plan.tls === null) {
      socket.on('connect', () => this.onConnect(socket))
      socket.connect(plan.port, plan.address)
    } else {
      socket.on('connect', () => (this.handshaking = true))
      socket.on('secureConnect', () => this.onSecureConnect(socket as tls.TLSSocket))
    }
  }

  /** A TLS connection to the target; the handshake starts as soon as TCP connects. */
  private connectTls(servername: string, onread: OnReadOpts): tls.TLSSocket {
    const loop = this.loop
    // tls.connect takes `onread` as net.Socket does (Node's tls docs); @types/node leaves it out.
    const options: tls.ConnectionOptions & { onread: OnReadOpts } = {
      host: loop.plan.address,
      port: loop.plan.port,
      secureContext: loop.secureContext!,
      rejectUnauthorized: loop.plan.tls!.verify,
      ALPNProtocols: ALPN_HTTP1,
      onread,
    }
    if (servername !== '') options.servername = servername
    if (this.session !== null) options.session = this.session
    const socket = tls.connect(options)
    if (loop.plan.tls!.resume) socket.on('session', (session: Buffer) => (this.session = session))
    return socket
  }

  private onSecureConnect(socket: tls.TLSSocket): void {
    if (socket !== this.socket || !this.loop.running) return
    this.handshaking = false
    this.loop.countHandshake(socket.isSessionReused())
    this.onConnect(socket)
  }

  /** Open model: send what is due, up to the pipelining depth; otherwise wait in the due queue. */
  pump(now: number): void {
    const loop = this.loop
    if (this.socket === null) {
      // Without keep-alive a connection is opened when its request is due, and the connect is
      // part of that request's latency.
      if (this.retryTimer === null && this.nextDue <= now + EARLY_SEND_MS) this.connect(now)
      else if (this.retryTimer === null) loop.waitUntilDue(this)
      return
    }
    if (!this.connected || this.closing) return
    // Sending moves nextDue: out of the queue first, or the heap's order breaks (back in below if it must wait).
    loop.leaveDueQueue(this)
    const depth = loop.plan.pipelining
    const keepAlive = loop.plan.keepAlive
    while (this.inFlight < depth) {
      const due = this.nextDue
      if (due > now + EARLY_SEND_MS) {
        loop.waitUntilDue(this)
        return
      }
      // Held back by the server (no slot was free when it came due): count from when it was due.
      // Otherwise count from now: the request went out as soon as the timer let it, and a timer's
      // millisecond granularity is the generator's lateness, not the server's.
      const start = keepAlive ? (this.slotFreeAt > due ? due : now) : due < this.connectStart ? due : this.connectStart
      this.starts[(this.head + this.inFlight) % depth] = start
      this.sentAt[(this.head + this.inFlight) % depth] = now
      this.inFlight++
      this.nextDue = due + loop.intervalMs
      this.socket.write(loop.single)
      if (!keepAlive) return
    }
  }

  /** Closed model: the whole pipeline in one write. */
  private sendBatch(now: number): void {
    const start = this.loop.plan.keepAlive ? now : this.connectStart
    this.starts.fill(start)
    this.sentAt.fill(start)
    this.head = 0
    this.inFlight = this.starts.length
    this.socket!.write(this.loop.batch)
  }

  private onConnect(socket: Socket): void {
    if (socket !== this.socket || !this.loop.running) return
    this.connected = true
    const now = performance.now()
    this.slotFreeAt = now
    if (this.loop.intervalMs === 0) this.sendBatch(now)
    else this.pump(now)
  }

  /** A read into the loop's buffer. Returns true: keep reading (the contract of `onread`). */
  private onRead(socket: Socket, nread: number): boolean {
    this.consume(socket, nread)
    return true
  }

  private consume(socket: Socket, nread: number): void {
    const loop = this.loop
    if (socket !== this.socket || !loop.running) return
    loop.bytes += nread
    const buf = loop.readBuffer
    const parser = this.parser
    let now = 0
    let pos = 0
    while (pos < nread) {
      pos = parser.execute(buf, pos, nread)
      if (parser.complete) {
        if (now === 0) now = performance.now()
        if (!this.answered(now)) return
        const keepAlive = parser.keepAlive
        parser.next()
        if (!keepAlive || !loop.plan.keepAlive) return this.finishedWith(socket, keepAlive)
      } else if (parser.error !== null) {
        return this.fail(E_PARSE, parser.error)
      }
    }
    if (now === 0) return
    if (loop.intervalMs === 0) {
      if (this.inFlight === 0) this.sendBatch(now)
    } else {
      this.pump(now)
    }
  }

  /** Count the response that just completed. False when there was no request for it. */
  private answered(now: number): boolean {
    if (this.inFlight === 0) {
      this.fail(E_PARSE, 'a response arrived for no request')
      return false
    }
    const start = this.starts[this.head]!
    this.head = this.head + 1 === this.starts.length ? 0 : this.head + 1
    if (this.inFlight-- === this.starts.length) this.slotFreeAt = now
    this.answeredHere = true
    this.loop.record(now, start, this.parser.status)
    return true
  }

  /**
   * The last response on this connection was read: the server said it will close, or we run
   * without keep-alive. Let the server close first when it said it would, so TIME_WAIT stays on
   * its side and not on our ephemeral ports; close ourselves when it kept the connection open.
   */
  private finishedWith(socket: Socket, serverKeepsOpen: boolean): void {
    this.closing = true
    this.closingSince = performance.now()
    if (serverKeepsOpen) {
      this.socket = null
      socket.destroy()
      this.reconnect()
    }
  }

  private onError(socket: Socket, err: NodeJS.ErrnoException): void {
    if (socket !== this.socket || !this.loop.running) return
    const kind = !this.connected ? E_CONNECT : err.syscall === 'write' ? E_WRITE : E_READ
    this.fail(kind, this.handshaking && err.syscall === undefined ? tlsFailure(err) : (err.code ?? err.message))
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket || !this.loop.running) return
    this.socket = null
    if (this.parser.finish()) {
      // A body delimited by the close: the connection was not persistent, as if it said so.
      if (!this.answered(performance.now())) return
      this.closing = true
    }
    if (this.inFlight > 0 && !this.closing) this.loop.countError(E_READ, this.inFlight, 'connection closed before the response was complete')
    this.reconnect()
  }

  /** The connection cannot go on: count what it loses, drop it and start over. */
  fail(kind: number, reason: string): void {
    // Requests pipelined behind an announced close were never going to be answered (see above).
    const lost = kind === E_CONNECT ? 1 : this.closing ? 0 : this.inFlight
    if (lost > 0) this.loop.countError(kind, lost, reason)
    const socket = this.socket
    this.socket = null
    socket?.destroy()
    this.reconnect()
  }

  private reconnect(): void {
    const afterNothing = !this.answeredHere
    this.parser.reset()
    this.inFlight = 0
    this.head = 0
    this.connected = false
    this.handshaking = false
    const loop = this.loop
    if (!loop.running) return
    if (afterNothing) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null
        if (loop.running) this.resume()
      }, CONNECT_RETRY_MS)
      return
    }
    this.resume()
  }

  private resume(): void {
    const now = performance.now()
    if (this.loop.intervalMs !== 0 && !this.loop.plan.keepAlive) this.pump(now)
    else this.connect(now)
  }

  /** End of the run: drop the socket; whatever is in flight is not counted. */
  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const socket = this.socket
    this.socket = null
    socket?.destroy()
  }
}

/** The ALPN list every https connection offers, in its wire form (RFC 7301 §3.1), built once. */
const ALPN_HTTP1 = Buffer.from('\x08http/1.1', 'latin1')

/**
 * Why a TLS handshake failed, for the report's first-error line: the certificate check (OpenSSL's
 * verify codes such as UNABLE_TO_VERIFY_LEAF_SIGNATURE, and Node's name check) with what to do
 * about it, or what the handshake itself ran into (an alert from the server, no common version).
 */
function tlsFailure(err: NodeJS.ErrnoException): string {
  const code = err.code ?? 'no code'
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS certificate rejected: ${err.message} (${code}); ask for a name the certificate has`
  if (!code.startsWith('ERR_')) {
    // Node appends advice to try --use-system-ca; the system store is already trusted here.
    const reason = err.message.split('; if the root CA')[0]
    return `TLS certificate rejected: ${reason} (${code}); trust its CA with --ca FILE, or skip the check with --insecure`
  }
  // OpenSSL's reason ("tlsv1 alert no application protocol") without its error-stack prefix and source line.
  const reason = (err as NodeJS.ErrnoException & { reason?: string }).reason ?? err.message.split('\n')[0]
  return `TLS handshake failed: ${reason} (${code})`
}
