// One upstream server (its idle connections, its health marks) and the connections to it: each is
// lent to one exchange at a time and parked between exchanges, its timeouts on the proxy's timing
// wheel, its reads in pooled buffers that go back once the client's socket has sent their bytes.
// An https upstream's connections are TLS sockets, pooled and lent exactly as TCP ones are.

import type { Buffer } from 'node:buffer'
import net from 'node:net'
import tls from 'node:tls'
import { BufferPool } from '../../core/buffer-pool.ts'
import { WheelTimer } from '../../core/timers/wheel.ts'
import { ResponseParser } from '../../protocol/http1/response-parser.ts'
import type { Exchange } from './exchange.ts'
import type { ProxySettings } from './settings.ts'
import { upstreamTlsContext } from './upstream-tls.ts'

/** A parser for responses from an upstream: strict line ends, and the proxy's limits on a head. */
export function upstreamResponseParser(settings: ProxySettings): ResponseParser {
  return new ResponseParser({ maxHeadBytes: settings.maxResponseHeaderBytes, maxFieldCount: settings.maxResponseHeaderCount })
}

/** The connect timeout of a new upstream connection (a Node timer: connecting is rare on a warm pool); none for 0. */
export function connectTimer(ms: number, onTimeout: () => void): NodeJS.Timeout | undefined {
  return ms > 0 ? setTimeout(onTimeout, ms) : undefined
}

/** Offered to https upstreams through ALPN: the proxy speaks HTTP/1.1 to them, whatever else they speak. */
const UPSTREAM_ALPN = ['http/1.1']

/** tls.connect() takes onread as net.connect() does (documented in node:tls); @types/node leaves it out. */
type TlsConnectOptions = tls.ConnectionOptions & { onread?: net.OnReadOpts }

/**
 * A new connection to `upstream`: TCP, or TLS for an https upstream (its certificate verified
 * against the proxy's CAs unless upstreamTlsInsecure, SNI and the name check from its host name),
 * reading through `onread` when given. The socket is ready for the request on its readyEvent().
 */
export function openUpstreamSocket(upstream: Upstream, settings: ProxySettings, onread?: net.OnReadOpts): net.Socket {
  if (!upstream.secure)
    return net.connect(
      onread === undefined ? { host: upstream.host, port: upstream.port, noDelay: true } : { host: upstream.host, port: upstream.port, noDelay: true, onread },
    )
  const options: TlsConnectOptions = {
    host: upstream.host,
    port: upstream.port,
    secureContext: upstreamTlsContext(settings),
    rejectUnauthorized: !settings.upstreamTlsInsecure,
    ALPNProtocols: UPSTREAM_ALPN,
  }
  if (upstream.servername !== undefined) options.servername = upstream.servername
  // The last session this upstream gave (a TLS 1.3 ticket): the next connection resumes it and skips the full handshake.
  if (upstream.tlsSession !== undefined) options.session = upstream.tlsSession
  if (onread !== undefined) options.onread = onread
  const socket = tls.connect(options)
  socket.setNoDelay(true)
  socket.on('session', (session: Buffer) => {
    upstream.tlsSession = session
  })
  return socket
}

/** The event after which a socket from openUpstreamSocket() can carry a request: the TCP connect, or the end of the TLS handshake. */
export function readyEvent(upstream: Upstream): 'connect' | 'secureConnect' {
  return upstream.secure ? 'secureConnect' : 'connect'
}

/** Read buffers for upstream responses, reused once the client's socket has sent their bytes. */
const READ_BYTES = 64 * 1024
const readBuffers = new BufferPool({ minBytes: READ_BYTES, maxBytes: READ_BYTES, maxIdleBytesPerClass: 16 * 1024 * 1024 })

/**
 * One read from an upstream: its pooled buffer goes back once the read is parsed and every
 * client write that points into it has been flushed (or abandoned). A connection reuses its
 * lease for the next read once it is free — the usual case, as a small body is copied at once —
 * so a read costs no object and no closure.
 */
export class ReadLease {
  private buffer: Buffer | null = null
  private pending = 0
  readonly release = (): void => {
    if (--this.pending === 0 && this.buffer !== null) {
      readBuffers.give(this.buffer)
      this.buffer = null
    }
  }

  /** Nothing refers to the last buffer any more: the lease can take the next one. */
  get free(): boolean {
    return this.pending === 0
  }

  /** Hold `buffer` for the read being parsed; release() once that is done. */
  take(buffer: Buffer): this {
    this.buffer = buffer
    this.pending = 1
    return this
  }

  /** One more write refers to the buffer. */
  hold(): void {
    this.pending++
  }
}

/**
 * A connection to an upstream, lent to one exchange at a time and parked in its upstream's idle
 * list between them. Its listeners are installed once and pass each event to the exchange that
 * holds the connection, or close it when it is idle; its read and idle timeouts are one timer on
 * the proxy's wheel, pushed later by a field write on each read. An exchange therefore adds and
 * removes no listener and arms no Node timer.
 */
export class UpstreamConnection {
  readonly socket: net.Socket
  owner: Exchange | null = null
  /** One parser per connection: responses come in order on it; each exchange sets itself as the handler. */
  readonly parser: ResponseParser
  readonly timer: WheelTimer<UpstreamConnection> = new WheelTimer(this)
  private readonly upstream: Upstream
  private readonly settings: ProxySettings
  private parked = false
  /** The lease of the last read, reused while free. */
  private lease = new ReadLease()

  constructor(upstream: Upstream, settings: ProxySettings) {
    this.upstream = upstream
    this.settings = settings
    this.parser = upstreamResponseParser(settings)
    this.socket = openUpstreamSocket(upstream, settings, {
      // Node asks for the next buffer after each read: every read gets its own pooled one.
      buffer: () => readBuffers.take(READ_BYTES),
      callback: (nread: number, buf: Uint8Array): boolean => {
        if (!this.lease.free) this.lease = new ReadLease()
        const lease = this.lease.take(buf as Buffer)
        const owner = this.owner
        let more = true
        // Bytes from an idle connection are a protocol error: it cannot be reused.
        if (owner === null) this.close()
        else {
          this.touch()
          more = owner.onRead(buf as Buffer, nread, lease)
        }
        lease.release()
        // false pauses reading (a tunnel whose client is behind); socket.resume() starts it again.
        return more
      },
    })
    this.socket.on('error', this.onError)
    this.socket.on('close', this.onClose)
    this.socket.on('drain', this.onDrain)
  }

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (this.owner !== null) this.owner.onError(err)
    else this.close()
  }

  private readonly onClose = (): void => {
    if (this.owner !== null) this.owner.onClose()
    else this.close()
  }

  private readonly onDrain = (): void => {
    this.owner?.onUpstreamDrain()
  }

  /** Lend the connection to `exchange`, out of the idle list; its read timeout starts. */
  lend(exchange: Exchange): void {
    this.unpark()
    this.owner = exchange
    this.arm(this.settings.readTimeoutMs)
  }

  /** Activity (the read timeout counts from now): a field write, no relinking. */
  touch(): void {
    if (this.timer.armed) this.timer.deadline = this.settings.timers.now + this.settings.readTimeoutMs
  }

  /** The exchange is done with it: keep it idle for the next one, closed after idleTimeoutMs. */
  park(): void {
    this.owner = null
    this.parser.handler = null
    this.parked = true
    this.upstream.idle.push(this)
    this.arm(this.settings.idleTimeoutMs)
  }

  /** Time the connection out after `ms` without activity; 0: never (as socket.setTimeout(0)). */
  private arm(ms: number): void {
    if (ms > 0) this.settings.timers.armIn(this.timer, ms)
    else this.settings.timers.cancel(this.timer)
  }

  /** A tunnel takes the connection over and times it out itself: the wheel lets it go. */
  disarm(): void {
    this.settings.timers.cancel(this.timer)
  }

  /** Closed for good; its 'close' event, once the owner is gone, finds nothing left to do. */
  close(): void {
    this.owner = null
    this.parser.handler = null
    this.unpark()
    this.disarm()
    this.socket.destroy()
  }

  /** The wheel's timer fired: the exchange's read timeout, or the end of the idle period. */
  expired(): void {
    if (this.owner !== null) this.owner.onTimeout()
    else this.close()
  }

  private unpark(): void {
    if (!this.parked) return
    this.parked = false
    const idle = this.upstream.idle
    // The most recently parked connection is lent first, so it is usually the last one.
    if (idle[idle.length - 1] === this) {
      idle.pop()
      return
    }
    const i = idle.lastIndexOf(this)
    if (i >= 0) idle.splice(i, 1)
  }
}

/** One upstream server: its idle connections, what is in flight, and whether it is healthy. */
export class Upstream {
  readonly host: string
  readonly port: number
  /** An https upstream: its connections are TLS. */
  readonly secure: boolean
  /** The name sent in SNI: the host name, none for an IP address (RFC 6066 §3). */
  readonly servername: string | undefined
  /** The last TLS session (ticket) the upstream gave, resumed by the next new connection. */
  tlsSession: Buffer | undefined = undefined
  readonly origin: string
  /** Host field for a request whose client sent none: the upstream's host[:port]. */
  readonly hostField: string
  /** Exchanges in flight (least-conn). */
  active = 0
  /** Passive health: skipped until then after a connection failed. */
  failedUntil = 0
  /** Active health: the last check failed. */
  down = false
  readonly idle: UpstreamConnection[] = []

  constructor(origin: string) {
    const url = new URL(origin)
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    this.secure = url.protocol === 'https:'
    this.servername = this.secure && net.isIP(this.host) === 0 ? this.host : undefined
    this.port = url.port === '' ? (this.secure ? 443 : 80) : Number(url.port)
    this.origin = `${url.protocol}//${url.host}`
    this.hostField = url.host
  }

  healthy(now: number): boolean {
    return !this.down && now >= this.failedUntil
  }

  /** Close every idle connection. */
  closeIdle(): void {
    for (const conn of this.idle.splice(0)) conn.close()
  }
}
