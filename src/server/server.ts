// Petrel's HTTP/1.1 server on node:net: accepts connections, owns the timer scheduler and the
// router, and runs handlers. The per-connection work lives in connection.ts.

import { Buffer } from 'node:buffer'
import net from 'node:net'
import type tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import { ERRORS, PetrelError, type ErrorCode } from '../core/errors.ts'
import { hostPort, systemFailure } from '../core/system-failure.ts'
import { escapedError, escapeMessage } from '../core/error-log.ts'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, resolveHttp2, resolveKnobs, type Http2Limits, type Limits, type Timeouts } from '../core/limits.ts'
import { Scheduler, type WheelTimer } from '../core/timers/index.ts'
import type { RequestHead } from '../protocol/http1/request-head.ts'
import { Connection } from './connection.ts'
import { Phase } from './phase.ts'
import type { MetricsSink } from './metrics-sink.ts'
import { Request } from './request.ts'
import { Response } from './response.ts'
import { serverFieldLines } from './response-fields.ts'
import { bytesAt, Router } from './router.ts'
import { isMountablePrefix } from '../protocol/http1/target.ts'
import { retainDateClock, releaseDateClock } from './status.ts'
import { answerBody, closingAnswer, reportServerAnswer } from './answer.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import type { TlsHandshake, TlsTerminator, TlsOptions } from './tls.ts'
import { h2Module, tlsModule, wsModule } from './lazy-modules.ts'
import type { ServerAnswer, ListenOptions, ServerOptions, ServerStats } from './server-types.ts'
import type { H2Connection } from './h2-connection.ts'
import type { H2Exchange } from './h2-exchange.ts'
import type { WebSocket, WebSocketHandlers } from './websocket.ts'
import type { Topics, WebSocketOptions } from './ws-upgrade.ts'
import type { BodySource } from './request.ts'

export type Handler = (req: Request, res: Response) => void | Promise<void>
/**
 * Runs before the routes (HttpServer.guard): true lets the request go on to its handler; false
 * means the guard answered it; a promise of either while the guard waits (a password check on a
 * thread pool). A rejection is answered as a handler's error is (a PetrelError's status).
 */
export type Guard = (req: Request, res: Response) => boolean | Promise<boolean>

export type { ServerAnswer, ListenOptions, ServerOptions, ServerStats } from './server-types.ts'

/** What the server's timers belong to: a connection, a TLS handshake before it, an HTTP/2 stream, a WebSocket. */
export type TimerOwner = Connection | TlsHandshake | H2Connection | H2Exchange | WebSocket<unknown>

/** The status of an exchange whose client left before the answer (nginx's 499): nothing is sent. */
const CLIENT_CLOSED = 499

export class HttpServer {
  readonly limits: Limits
  readonly timeouts: Timeouts
  readonly scheduler: Scheduler<TimerOwner>
  readonly router = new Router<Handler>()
  readonly connections = new Set<Connection | H2Connection | WebSocket<unknown>>()
  /** TLS connections whose handshake is under way: they count against limits.maxConnections. */
  readonly handshakes = new Set<TlsHandshake>()
  readonly stats: ServerStats = { accepted: 0, rejected: 0, requests: 0, protocolErrors: {}, timeouts: {}, acceptErrors: 0, tlsHandshakes: 0, tlsResumed: 0 }
  /** Set by close(): connections finish their current response and close. */
  closing = false

  private readonly onErrorOption: ((err: Error, req?: Request) => void) | undefined
  readonly onResponse: ((req: Request, res: Response, startedAtMs: number) => void) | undefined
  readonly onServerAnswer: ((answer: ServerAnswer) => void) | undefined
  readonly metrics: MetricsSink | null
  /** TLS for every accepted connection; null: cleartext. */
  readonly tls: TlsTerminator | null
  /** HTTP/2's limits; null: HTTP/2 is off. */
  readonly http2: Http2Limits | null
  /** ServerOptions.responseHeaders as field lines ('' when none). */
  readonly responseFields: string
  private listener: net.Server | null = null
  private fallbackHandler: Handler = notFound
  /** Asked before any route, mount or fallback (guard()); null: none. */
  private guardCheck: Guard | null = null
  /** Path prefixes that take every method before the routes (a reverse proxy's); null: none. */
  /** Longest prefix first; `bytes` is the prefix as latin1, matched against the path's bytes without making a string. */
  private mounts: Array<{ prefix: string; bytes: Buffer; handler: Handler }> | null = null
  private readonly paramScratch: string[] = []
  private lastAcceptErrorLogMs = 0
  private closed: Promise<void> | null = null
  private dateClockHeld = false
  /** Set when connections are handed over by another process instead of accepted here. */
  private externalAddress: AddressInfo | null = null
  /** Resolves close() once the last connection is gone. */
  private drained: (() => void) | null = null

  constructor(options: ServerOptions = {}) {
    this.limits = resolveKnobs('limits', DEFAULT_LIMITS, options.limits)
    this.timeouts = resolveKnobs('timeouts', DEFAULT_TIMEOUTS, options.timeouts)
    this.onErrorOption = options.onError
    this.onResponse = options.onResponse
    this.onServerAnswer = options.onServerAnswer
    this.metrics = options.metrics ?? null
    this.responseFields = options.responseHeaders === undefined ? '' : serverFieldLines(options.responseHeaders)
    const h2 = options.http2 ?? true
    this.http2 = h2 === false ? null : resolveHttp2(h2 === true ? undefined : h2)
    const alpn = options.tls?.alpnProtocols ?? (this.http2 !== null ? ['h2', 'http/1.1'] : undefined)
    this.tls = options.tls === undefined ? null : new (tlsModule().TlsTerminator)({ ...options.tls, alpnProtocols: alpn })
    this.scheduler = new Scheduler<TimerOwner>({ onExpire: onConnectionTimeout })
  }

  // ---- routes ----

  route(method: string, pattern: string, handler: Handler): this {
    this.router.add(method.toUpperCase(), pattern, handler)
    return this
  }

  get(pattern: string, handler: Handler): this {
    return this.route('GET', pattern, handler)
  }
  post(pattern: string, handler: Handler): this {
    return this.route('POST', pattern, handler)
  }
  put(pattern: string, handler: Handler): this {
    return this.route('PUT', pattern, handler)
  }
  patch(pattern: string, handler: Handler): this {
    return this.route('PATCH', pattern, handler)
  }
  delete(pattern: string, handler: Handler): this {
    return this.route('DELETE', pattern, handler)
  }
  options(pattern: string, handler: Handler): this {
    return this.route('OPTIONS', pattern, handler)
  }

  /**
   * Every request whose normalised path (req.path) starts with `prefix`, any method, goes to
   * `handler`, ahead of the routes (longest prefix first).
   */
  mount(prefix: string, handler: Handler): this {
    // Matched against the path's bytes, one byte per character: a character beyond one byte
    // could never match (and latin1 would keep only its low byte).
    for (let i = 0; i < prefix.length; i++)
      if (prefix.charCodeAt(i) > 0xff)
        throw new InvalidOptionError(`mount prefix must be bytes as they appear in a request target (percent-encode the rest): ${JSON.stringify(prefix)}`)
    // A prefix that normalising would change ("/a/../b/", "//x/", "/%61pi/") could never match a request.
    if (!isMountablePrefix(prefix))
      throw new InvalidOptionError(
        `mount prefix must be a normalised path of letters, digits, "-", ".", "_", "~" and "/" ("/" first, no "." or ".." segments, no "//"): ${JSON.stringify(prefix)}`,
      )
    const mounts = (this.mounts ??= [])
    mounts.push({ prefix, bytes: Buffer.from(prefix, 'latin1'), handler })
    mounts.sort((a, b) => b.prefix.length - a.prefix.length)
    return this
  }

  /**
   * `check` sees every request before the routes, mounts and fallback (and internal redirects
   * again, as nginx runs its access phase for them): access rules such as a password. One guard
   * per server; a later call replaces it.
   */
  guard(check: Guard): this {
    this.guardCheck = check
    return this
  }

  /** Handler for requests no route matches (default: 404). */
  /** WebSocket (RFC 6455) at `pattern`: the handshake, then `handlers` for each connection (server/websocket.ts). */
  websocket<T = undefined>(pattern: string, handlers: WebSocketHandlers<T>, options?: WebSocketOptions): this {
    return this.get(pattern, wsModule().upgradeHandler(this, handlers, options))
  }

  /** Send to every WebSocket subscribed to `topic` (ws.subscribe()); returns how many it went to. */
  publish(topic: string, data: string | Buffer, options?: { binary?: boolean }): number {
    return this.topicsRegistry === null ? 0 : this.topicsRegistry.publish(topic, data, options?.binary ?? typeof data !== 'string')
  }

  /** The WebSocket topics of this server (made with the first subscription). */
  topics(): Topics {
    this.topicsRegistry ??= new (wsModule().Topics)()
    return this.topicsRegistry
  }
  private topicsRegistry: Topics | null = null

  fallback(handler: Handler): this {
    this.fallbackHandler = handler
    return this
  }

  // ---- listening ----

  listen(options: ListenOptions = {}): Promise<AddressInfo> {
    if (this.listener !== null) return Promise.reject(new PetrelError('PETREL_ERR_LISTEN', 'server is already listening'))
    const listener = net.createServer({
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: (options.keepAliveProbeMs ?? 0) > 0,
      keepAliveInitialDelay: options.keepAliveProbeMs ?? 0,
      highWaterMark: this.limits.writeHighWaterMark,
    })
    listener.on('connection', (socket: net.Socket) => this.accept(socket))
    this.listener = listener
    return new Promise((resolve, reject) => {
      const onListenError = (err: Error): void => {
        this.listener = null
        // The line a user reads names the address, what is wrong and what to do (core/system-failure.ts).
        reject(
          systemFailure(err, `listen on ${hostPort(options.host ?? '127.0.0.1', options.port ?? 0)}`) ??
            new PetrelError('PETREL_ERR_LISTEN', `${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${err.message}`, { cause: err }),
        )
      }
      listener.once('error', onListenError)
      listener.listen(
        { port: options.port ?? 0, host: options.host ?? '127.0.0.1', backlog: options.backlog ?? 511, reusePort: options.reusePort ?? false },
        () => {
          listener.off('error', onListenError)
          listener.on('error', (err) => this.onAcceptError(err))
          retainDateClock()
          this.dateClockHeld = true
          resolve(listener.address() as AddressInfo)
        },
      )
    })
  }

  /**
   * Serve connections accepted by another process (a master without reusePort hands each one
   * over) instead of listening; `address` is where that process listens. Sockets arrive through
   * handOver().
   */
  serveHandedOver(address: AddressInfo): AddressInfo {
    this.externalAddress = address
    retainDateClock()
    this.dateClockHeld = true
    return address
  }

  /** A connection accepted elsewhere, now this server's. */
  handOver(socket: net.Socket): void {
    socket.setNoDelay(true)
    // A socket made from a handle passed over IPC has half-open off, where our listeners turn it
    // on: without it, a client's FIN after its request would end our side before the answer.
    socket.allowHalfOpen = true
    this.accept(socket)
  }

  address(): AddressInfo | null {
    return this.externalAddress ?? (this.listener?.address() as AddressInfo | null) ?? null
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish (their responses close the
   * connection), close idle connections, and destroy what is left after timeouts.shutdownMs.
   *
   * `idleGraceMs` > 0 closes idle keep-alive connections politely: each answers its next request
   * with Connection: close, and one that stays idle that long is closed then. A client sending
   * on an idle connection at the very moment it is closed would otherwise see it close without
   * an answer — what a rolling reload must not cause. `destroy` is the fast stop: every
   * connection is cut at once.
   */
  close(options: { idleGraceMs?: number; destroy?: boolean } = {}): Promise<void> {
    if (this.closed !== null) {
      // A fast stop asked for during a graceful one cuts what the graceful one is waiting for.
      if (options.destroy === true) for (const conn of this.connections) conn.destroy()
      return this.closed
    }
    this.closing = true
    const listener = this.listener
    this.closed = new Promise<void>((resolve) => {
      const finish = (): void => {
        this.scheduler.close()
        this.tls?.close()
        if (this.dateClockHeld) {
          this.dateClockHeld = false
          releaseDateClock()
        }
        resolve()
      }
      let remaining = 2
      const done = (): void => {
        if (--remaining === 0) finish()
      }
      if (listener !== null) listener.close(() => done())
      else done()
      // A handshake under way has no request to finish: it is closed like an idle connection.
      for (const handshake of this.handshakes) handshake.destroy()
      this.handshakes.clear()
      for (const conn of this.connections) {
        if (options.destroy === true) conn.destroy()
        else conn.shutdown(options.idleGraceMs ?? 0)
      }
      if (this.connections.size === 0) {
        done()
        return
      }
      this.drained = done
      const force = setTimeout(() => {
        for (const conn of this.connections) conn.destroy()
      }, this.timeouts.shutdownMs)
      force.unref()
    })
    return this.closed
  }

  // ---- connections ----

  private accept(socket: net.Socket): void {
    if (this.connections.size + this.handshakes.size >= this.limits.maxConnections || this.closing) {
      this.stats.rejected++
      if (this.tls !== null) {
        // No answer can be read without a handshake, and refusing must not cost one: close.
        socket.on('error', ignoreError)
        socket.destroy()
        return
      }
      // Answer rather than reset, so the client learns why; the write is tiny and pre-built.
      socket.on('error', ignoreError)
      // Read (and drop) what the client sends so its FIN is seen and the socket freed at once.
      socket.on('end', destroySocket)
      socket.resume()
      const body = answerBody(503, ERRORS.PETREL_ERR_TOO_MANY_CONNECTIONS.message)
      reportServerAnswer(this, socket.remoteAddress, 503, body.length, null, 0)
      socket.end(closingAnswer(503, body, true, 'Retry-After: 1\r\n'))
      socket.setTimeout(this.timeouts.lingerMs, () => socket.destroy())
      return
    }
    this.stats.accepted++
    if (this.tls === null) this.connections.add(new Connection(this, socket))
    else this.handshakes.add(new (tlsModule().TlsHandshake)(this, this.tls.wrap(socket), socket, this.timeouts.handshakeMs))
  }

  /** A TLS handshake is done: HTTP/2 starts on the socket when ALPN chose it, else HTTP/1.1. */
  handshakeDone(handshake: TlsHandshake, socket: tls.TLSSocket): void {
    this.handshakes.delete(handshake)
    this.stats.tlsHandshakes++
    if (socket.isSessionReused()) this.stats.tlsResumed++
    if (this.closing) socket.destroy()
    else if (socket.alpnProtocol === 'h2') this.connections.add(new (h2Module().H2Connection)(this, socket, true))
    else this.connections.add(new Connection(this, socket))
  }

  /**
   * A cleartext connection began with the HTTP/2 preface (prior knowledge, RFC 9113 §3.3: h2load,
   * curl --http2-prior-knowledge, a balancer that terminates TLS): HTTP/2 takes the socket and
   * the bytes read so far.
   */
  takeHttp2(conn: Connection, first: Buffer): void {
    const { socket } = conn.detach()
    if (this.closing) return void socket.destroy()
    const h2 = new (h2Module().H2Connection)(this, socket, false)
    this.connections.add(h2)
    h2.receive(first)
  }

  /** A 400 in plain HTTP, as nginx's "The plain HTTP request was sent to HTTPS port". */
  plainHttpOnTlsPort(raw: net.Socket): void {
    this.countProtocolError('PETREL_ERR_PLAIN_HTTP_TO_HTTPS')
    const body = answerBody(400, ERRORS.PETREL_ERR_PLAIN_HTTP_TO_HTTPS.message)
    reportServerAnswer(this, raw.remoteAddress, 400, body.length, null, 0)
    if (raw.destroyed) return
    // The TLS socket's close takes the handle with it; a write that fails then has no one to tell.
    raw.on('error', ignoreError)
    raw.end(closingAnswer(400, body, true))
  }

  handshakeGone(handshake: TlsHandshake): void {
    this.handshakes.delete(handshake)
  }

  /**
   * A connection's socket failed ('close' follows and cleans up). ECONNRESET and EPIPE are how
   * clients leave, and a bad TLS record is a client's doing (counted); anything else is logged.
   */
  socketFailed(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ECONNRESET' || code === 'EPIPE') return
    if (this.tls !== null && tlsModule().isTlsClientFault(code)) this.countProtocolError('PETREL_ERR_TLS_PROTOCOL')
    else this.reportError(err)
  }

  /** Accept failures (EMFILE, ENFILE, ENOBUFS) must not end the server. libuv already backs off. */
  private onAcceptError(err: NodeJS.ErrnoException): void {
    this.stats.acceptErrors++
    const now = Date.now()
    if (now - this.lastAcceptErrorLogMs >= 1000) {
      this.lastAcceptErrorLogMs = now
      const hint = err.code === 'EMFILE' || err.code === 'ENFILE' ? ' (out of file descriptors: raise `ulimit -n` or lower limits.maxConnections)' : ''
      this.reportError(new Error(`accept failed: ${err.code ?? err.message}${hint}`, { cause: err }))
    }
  }

  /** For metrics snapshots: connections open now, those waiting between requests, on HTTP/2 (and their streams) and WebSocket, and bytes they wrote. */
  connectionCounts(): { active: number; idle: number; http2: number; streams: number; websockets: number; bytesOut: number } {
    let idle = 0
    let http2 = 0
    let streams = 0
    let websockets = 0
    let bytesOut = 0
    for (const conn of this.connections) {
      if (conn.phase === Phase.IDLE) idle++
      if (conn instanceof Connection) {
        // HTTP/1.1: counted in `active` and `idle` alone.
      } else if (conn.kind === 'h2') {
        http2++
        streams += conn.streams
      } else websockets++
      bytesOut += conn.socket.bytesWritten
    }
    return { active: this.connections.size, idle, http2, streams, websockets, bytesOut }
  }

  timersArmed(): number {
    return this.scheduler.size
  }

  connectionClosed(conn: Connection | H2Connection | WebSocket<unknown>): void {
    if (this.metrics !== null) this.metrics.bytesOutClosed += conn.socket.bytesWritten
    this.connections.delete(conn)
    if (this.drained !== null && this.connections.size === 0) {
      const drained = this.drained
      this.drained = null
      drained()
    }
  }

  // ---- requests ----

  /** The Request for a parsed head; the parser has refused every target Petrel cannot route. */
  makeRequest(head: RequestHead, source: BodySource): Request {
    this.stats.requests++
    return new Request(head, source)
  }

  dispatch(req: Request, res: Response): void {
    const check = this.guardCheck
    if (check === null) return this.routeRequest(req, res)
    let verdict: boolean | Promise<boolean>
    try {
      verdict = check(req, res)
    } catch (err) {
      return this.handlerFailed(err, req, res)
    }
    if (verdict === true) return this.routeRequest(req, res)
    if (verdict === false) return
    // Only a request that waits for its guard pays for these closures.
    verdict.then(
      (pass) => {
        if (pass && !res.ended && !res.closed) this.routeRequest(req, res)
      },
      (err: unknown) => this.handlerFailed(err, req, res),
    )
  }

  /** Hands the request to its mount, route or the fallback (after the guard). */
  private routeRequest(req: Request, res: Response): void {
    const values = this.paramScratch
    const router = this.router
    let handler: Handler | undefined
    // Routes and mounts match the normalised path, so no spelling of a path ("/api/../x",
    // "/%61pi/x", "//api/x") is taken to lie under a prefix that it does not.
    const head = req.head
    const pathBuf = head.pathBuffer()
    const pathStart = head.pathStart()
    const pathEnd = head.pathEnd()
    if (this.mounts !== null) {
      const length = pathEnd - pathStart
      for (const mount of this.mounts) {
        if (mount.bytes.length <= length && bytesAt(pathBuf, pathStart, mount.bytes)) {
          handler = mount.handler
          break
        }
      }
      if (handler !== undefined) return this.run(handler, req, res)
    }
    let node = router.findStatic(pathBuf, pathStart, pathEnd)
    if (node === null && router.hasPatterns) node = router.find(req.path, values)
    if (node === null) {
      handler = this.fallbackHandler
    } else {
      handler = node.handlerFor(req.method)
      if (handler === undefined) {
        values.length = 0
        res.setHeader('Allow', node.allow)
        res.status(405).end(answerBody(405, `${req.method} is not one of ${node.allow}`))
        return
      }
      if (values.length > 0) {
        const names = node.paramNames
        const params: Record<string, string> = Object.create(null)
        try {
          for (let i = 0; i < values.length; i++) params[names[i]!] = decodeURIComponent(values[i]!)
        } catch {
          values.length = 0
          res.status(400).end(answerBody(400, 'malformed percent-encoding in the path'))
          return
        }
        values.length = 0
        req.params = params
      }
    }
    this.run(handler, req, res)
  }

  private run(handler: Handler, req: Request, res: Response): void {
    try {
      const result = handler(req, res)
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        ;(result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(err, req, res))
      }
    } catch (err) {
      this.handlerFailed(err, req, res)
    }
  }

  /** A handler threw, rejected, or called res.fail(): answer with the error's status, report it, or cut a response under way. */
  handlerFailed(err: unknown, req: Request, res: Response): void {
    const error = err instanceof Error ? err : new Error(String(err))
    const status = this.reportHandlerError(error, req)
    // A handler that failed because its client left has no one to answer: the exchange is ended,
    // so a half-closed connection does not wait for nothing.
    if (status === CLIENT_CLOSED) {
      if (!res.finished) res.abort()
      return
    }
    // Ended already (its compressed body may still be on its way): the error is reported, the answer stands.
    if (res.ended || res.closed) return
    if (res.headersSent) {
      // Part of the response is out: the only honest end is to cut the connection.
      res.abort()
      return
    }
    res.status(status)
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    if (status === 503) res.setHeader('Retry-After', '1')
    const reason = status === 500 ? ERRORS.PETREL_ERR_HANDLER_FAILED.message : ERRORS[(error as PetrelError).code].message
    res.end(answerBody(status, reason))
  }

  /**
   * Report a handler's error unless it is an answer rather than a fault, and return the status
   * it stands for. An error from the table with an HTTP status (a full thread-pool queue: 503)
   * goes to the client as is, and to the log only when it is a 5xx other than 503; a client that
   * left is not reported at all.
   */
  reportHandlerError(error: Error, req?: Request): number {
    if ((error as PetrelError).code === 'PETREL_ERR_CONNECTION_CLOSED') return CLIENT_CLOSED
    const status = error instanceof PetrelError && error.status >= 400 ? error.status : 500
    if (status >= 500 && status !== 503) this.reportError(error, req)
    return status
  }

  reportError(err: Error, req?: Request): void {
    if (this.onErrorOption !== undefined) this.onErrorOption(err, req)
    else console.error(`petrel: ${req === undefined ? '' : `${escapeMessage(`${req.method} ${req.url}`)}: `}${escapedError(err)}`)
  }

  countProtocolError(code: ErrorCode): void {
    this.stats.protocolErrors[code] = (this.stats.protocolErrors[code] ?? 0) + 1
  }

  countTimeout(code: ErrorCode): void {
    this.stats.timeouts[code] = (this.stats.timeouts[code] ?? 0) + 1
  }
}

function onConnectionTimeout(conn: TimerOwner, timer: WheelTimer<TimerOwner>): void {
  if (!(conn instanceof Connection)) conn.expired(timer)
  else if (timer === conn.sendWatch.timer) conn.onSendCheck()
  else conn.onTimeout()
}

function ignoreError(): void {}

function destroySocket(this: net.Socket): void {
  this.destroy()
}

function notFound(req: Request, res: Response): void {
  res.status(404)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.end(answerBody(404, req.path))
}

export function createServer(options?: ServerOptions): HttpServer {
  return new HttpServer(options)
}
