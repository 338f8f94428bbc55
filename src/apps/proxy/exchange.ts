// One request's way to an upstream. A Relay walks the upstreams a request may go to (retries:
// the next upstream, or once more on a new connection after a kept-alive one the upstream had just
// closed); an Exchange is one attempt over one connection: it sends the request head (field rules
// in fields.ts) and streams the body with backpressure, parses the response (the upstream's head
// limits: 502 beyond), streams it back through pooled read buffers, and on a 101 to an allowed
// Upgrade hands both sockets to a Tunnel. The client leaving (res.onClientGone) ends it at once.
//
// - Retries: a request none of which was sent (the connection was refused, failed or timed out)
//   goes to the next upstream whatever its method; one that may have reached the upstream (the
//   connection failed after it was written, before any byte of a response) only when it is
//   idempotent and has no body — bodies are streamed, not buffered, so one is never sent twice.
//   Each upstream is tried at most once.
// - Errors: an upstream that refuses or resets → 502; no connection or no response head within
//   the timeouts → 504; a failure after the head went out cuts the client's connection, so a
//   truncated body is never passed off as complete.

import { Buffer } from 'node:buffer'
import type net from 'node:net'
import { PetrelError } from '../../core/errors.ts'
import { equalsLowerAscii } from '../../protocol/http1/chars.ts'
import type { ResponseHandler, ResponseParser } from '../../protocol/http1/response-parser.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { allowedUpgrades, fieldLine, HOP_BY_HOP, namedByConnection, passedValueHasObsText, switchOffered, upstreamRequestHead } from './fields.ts'
import type { ProxySettings } from './settings.ts'
import { Tunnel } from './tunnel.ts'
import { connectTimer, readyEvent, UpstreamConnection, type ReadLease, type Upstream } from './upstream.ts'
import { describeUpstreamFailure } from './upstream-tls.ts'

/** One upstream read through its parser, run under the client response's cork (Response.corked()). */
function parseUpstreamRead(parser: ResponseParser, buf: Buffer, length: number): number {
  return parser.execute(buf, 0, length)
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'])

/** How an attempt on one upstream ended. */
export const Outcome = { DONE: 0, RETRY: 1, FAILED: 2 } as const
export type Outcome = (typeof Outcome)[keyof typeof Outcome]

/**
 * One request's way through its upstreams: `pool[(first + k) % pool.length]` for k = 0, 1, …, each
 * tried at most once, until one answers or the request may not be sent again; a kept-alive
 * connection the upstream had just closed is retried once on a new connection to the same
 * upstream first. When none could answer, the response fails with the last error (502 or 504).
 * Callbacks, not promises: an exchange costs no promise, await or microtask.
 */
export class Relay {
  private readonly settings: ProxySettings
  private readonly req: Request
  private readonly res: Response
  private readonly pool: readonly Upstream[]
  private readonly first: number
  /** The request-target sent upstream: origin-form (the normalised path and the query). */
  private readonly target: string
  /** The Host sent upstream instead of the client's (a forward proxy sends the URL's); null: the client's. */
  private readonly host: string | null
  /** Starts the log lines about failed attempts. */
  private readonly label: string
  private tried = 0

  constructor(
    settings: ProxySettings,
    req: Request,
    res: Response,
    pool: readonly Upstream[],
    first: number,
    options: { target?: string; host?: string; label: string },
  ) {
    this.settings = settings
    this.req = req
    this.res = res
    this.pool = pool
    this.first = first
    // The path the server routed on, not the one as sent: an upstream that resolves "..", "%2e"
    // or "//" itself then cannot take the request outside the prefix it was matched under.
    this.target = options.target ?? req.pathAndQuery
    this.host = options.host ?? null
    this.label = options.label
  }

  start(): void {
    this.attempt(false)
  }

  private attempt(fresh: boolean): void {
    const upstream = this.pool[(this.first + this.tried) % this.pool.length]!
    new Exchange(upstream, this.req, this.res, this.settings, this, this.target, this.host, fresh).start()
  }

  /**
   * Called once by each exchange when it ends. A failed attempt logs one line: here when another
   * attempt follows; else the server's report of `res.fail(error)` is that line (a known
   * condition from the error table, so one line without a stack), with the 502 or 504.
   */
  exchangeDone(exchange: Exchange, outcome: Outcome): void {
    if (outcome === Outcome.DONE) return
    const error = exchange.error ?? new PetrelError('PETREL_ERR_UPSTREAM_FAILED', 'no upstream')
    if (outcome === Outcome.RETRY && exchange.reused) {
      // A kept-alive connection the upstream had just closed: the upstream is fine; once more on a new one.
      this.settings.log(`${this.label}: ${this.req.method} ${this.target}: ${error.message}; retrying on a new connection`)
      return this.attempt(true)
    }
    if (outcome === Outcome.RETRY && ++this.tried < this.pool.length) {
      this.settings.log(`${this.label}: ${this.req.method} ${this.target}: ${error.message}; trying the next upstream`)
      return this.attempt(false)
    }
    this.res.fail(error)
  }
}

/** One request relayed to one upstream over one connection; the parser's handler for its response. */
export class Exchange implements ResponseHandler {
  readonly upstream: Upstream
  readonly req: Request
  /** The request-target sent upstream: origin-form (path and query). */
  readonly target: string
  readonly res: Response
  readonly settings: ProxySettings
  private readonly owner: Relay
  socket: net.Socket | null = null
  private conn: UpstreamConnection | null = null
  private parser: ResponseParser | null = null
  /** The upstream's 101 head, once it switched protocols: every field, hop-by-hop ones included. */
  private switchHead: string | null = null
  /** The 101's Upgrade value: the protocol the upstream switched to. */
  private switchedTo: string | null = null
  /** The Upgrade value sent upstream (allowed protocols only), or null: the request asked for no switch the proxy allows. */
  private upgradeSent: string | null = null
  /** The upstream's fields to pass on, as field lines; hop-by-hop ones, Date and Content-Length are left out. */
  private passFields = ''
  /** Some value in passFields (or the 101's fields) has obs-text: the head goes out as latin1. */
  private obsText = false
  /** The upstream's Connection values, comma-joined: the names they list are hop-by-hop too. */
  private connectionValues = ''
  /** The upstream's Content-Length as sent, passed on for HEAD. */
  private declaredLength: string | null = null
  /** The tunnel the exchange became (the upstream switched protocols): upstream reads go to it. */
  private tunnel: Tunnel | null = null
  /** A new connection to the upstream until it connects (or fails). */
  private connecting: UpstreamConnection | null = null
  /** The read being parsed: body bytes written to the client hold its buffer. */
  private lease: ReadLease | null = null
  reused = false
  /**
   * The request head was handed to the connection: from here the upstream may have received it,
   * so only an idempotent request without a body may be sent again. Before it, nothing was sent
   * and any request may go to another upstream.
   */
  private requestSent = false
  /** Something of the response arrived: no retry from here on. */
  private responded = false
  private headSent = false
  private settled = false
  private failure: PetrelError | null = null

  /** A new connection even when idle ones wait (the retry after a stale kept-alive one). */
  private readonly fresh: boolean
  /** The Host sent upstream instead of the client's (a forward proxy sends the URL's). */
  private readonly host: string | null

  constructor(upstream: Upstream, req: Request, res: Response, settings: ProxySettings, owner: Relay, target: string, host: string | null, fresh: boolean) {
    this.upstream = upstream
    this.req = req
    this.target = target
    this.fresh = fresh
    this.host = host
    this.res = res
    this.settings = settings
    this.owner = owner
  }

  get error(): PetrelError | null {
    return this.failure
  }

  /**
   * Send the request; the owner hears once how it ended: DONE (answered or cut), RETRY (nothing
   * happened that forbids another upstream) or FAILED (see `error`).
   */
  start(): void {
    this.upstream.active++
    // The client leaving (a reset, or its FIN: nginx's 499) ends the exchange and frees the upstream.
    this.res.onClientGone = this
    this.connect()
  }

  /** The client left before its response was finished: nobody takes the upstream's answer. */
  clientGone(): void {
    if (this.settled) return
    this.finish(Outcome.DONE)
    // A connection still being made is not waited for (it could take the whole connect timeout).
    this.connecting?.close()
    this.connecting = null
    this.res.abort()
  }

  private connect(): void {
    const u = this.upstream
    const idle = this.fresh ? undefined : u.idle.at(-1)
    if (idle !== undefined) {
      this.reused = true
      return this.attach(idle)
    }
    const conn = new UpstreamConnection(u, this.settings)
    const socket = conn.socket
    // No connection, nothing sent: another upstream may take the request, whatever its method.
    // For an https upstream the connection is made when its TLS handshake is: the timeout covers both.
    const timer = connectTimer(this.settings.connectTimeoutMs, () => {
      this.connecting = null
      socket.destroy()
      const what = u.secure ? 'TLS connection' : 'connection'
      this.fail(Outcome.RETRY, new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', `no ${what} to ${u.origin} within ${this.settings.connectTimeoutMs} ms`), true)
    })
    // A certificate refused is a failed connection too: the next upstream is tried.
    const onConnectError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      this.connecting = null
      this.fail(Outcome.RETRY, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `upstream ${u.origin}: ${describeUpstreamFailure(err, u.host)}`), true)
    }
    socket.once(readyEvent(u), () => {
      clearTimeout(timer)
      socket.off('error', onConnectError)
      this.connecting = null
      this.attach(conn)
    })
    socket.once('error', onConnectError)
    // Closed while connecting (the client left: clientGone): no timer outlives the socket.
    socket.once('close', () => clearTimeout(timer))
    this.connecting = conn
  }

  private attach(conn: UpstreamConnection): void {
    const socket = conn.socket
    if (this.settled) return void conn.close()
    this.conn = conn
    conn.lend(this)
    const parser = conn.parser
    parser.next()
    parser.headRequests = this.req.method === 'HEAD'
    parser.handler = this
    this.parser = parser
    this.socket = socket
    socket.resume()
    this.sendRequest()
  }

  private sendRequest(): void {
    const req = this.req
    const head = req.head
    let out = upstreamRequestHead(req, this.target, this.host, this.upstream.hostField, this.settings.underscoresInHeaders)
    // A protocol switch to an allowed protocol (WebSocket) is the one hop-by-hop request the proxy
    // passes on, and tunnels; other protocols are left out, and without any the request is plain HTTP.
    if (head.upgrade) {
      this.upgradeSent = allowedUpgrades(head, this.settings.upgradeProtocols)
      if (this.upgradeSent !== null) out += `connection: upgrade\r\nupgrade: ${this.upgradeSent}\r\n`
    }
    const socket = this.socket!
    // Field values were read as latin1, one character per byte; written back the same way, obs-text
    // bytes reach the upstream unchanged (the default, UTF-8, would turn each into two).
    this.requestSent = true
    socket.write(`${out}\r\n`, 'latin1')
    if (!head.hasBody) return
    // The body streams: paused when the upstream cannot take more, resumed on its drain.
    const body = req.stream()
    this.body = body
    const conn = this.conn!
    body.on('data', (chunk: Buffer) => {
      // The upstream is silent while it takes a long upload: each piece sent restarts the read timeout.
      conn.touch()
      let ok: boolean
      if (head.chunked) {
        // All three parts, whatever the first ones return: stopping after a false would drop the
        // chunk's CRLF and break the framing for the upstream.
        socket.cork()
        socket.write(`${chunk.length.toString(16)}\r\n`)
        socket.write(chunk)
        ok = socket.write('\r\n')
        socket.uncork()
      } else {
        ok = socket.write(chunk)
      }
      if (!ok) body.pause()
    })
    body.on('end', () => {
      if (head.chunked && !socket.destroyed) socket.write('0\r\n\r\n')
    })
    body.on('error', () => this.finish(Outcome.DONE))
  }

  private body: ReturnType<Request['stream']> | null = null

  /** The upstream took what was written: more of the request body may follow. */
  onUpstreamDrain(): void {
    // A tunnel has its own drain handling.
    if (this.tunnel === null) this.body?.resume()
  }

  /** A read from the upstream (UpstreamConnection's onread): `lease` keeps its buffer while writes need it. False: pause reading. */
  onRead(buf: Buffer, length: number, lease: ReadLease): boolean {
    const tunnel = this.tunnel
    if (tunnel !== null) {
      lease.hold()
      return tunnel.fromUpstream(buf.subarray(0, length), lease.release)
    }
    if (this.settled) return true
    if (this.res.finished && !this.headSent) {
      // The server answered already (its handler timeout): the upstream's answer has no taker.
      this.finish(Outcome.DONE)
      return true
    }
    this.responded = true
    const parser = this.parser!
    this.lease = lease
    let pos: number
    try {
      // The head and the body bytes of this read leave in one write to the client.
      pos = this.res.corked(parseUpstreamRead, parser, buf, length)
    } catch (err) {
      // A field the client must not get (a control character in a value), or the like.
      this.lease = null
      this.fail(
        Outcome.FAILED,
        new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin} sent a response that cannot be passed on: ${(err as Error).message}`),
        false,
      )
      return true
    }
    this.lease = null
    if (parser.errorCode !== null) {
      // The rest of what the connection carries cannot be framed: the exchange fails and the connection is closed.
      this.fail(Outcome.FAILED, new PetrelError(parser.errorCode, `${this.upstream.origin}: ${parser.error}`), false)
      return true
    }
    if (parser.complete) {
      if (this.switchHead !== null) this.startTunnel(buf.subarray(pos, length))
      else this.complete(pos === length && parser.keepAlive)
    }
    return true
  }

  /** The upstream switched protocols (101): the client's connection leaves HTTP and the two sockets become a Tunnel. */
  private startTunnel(rest: Buffer): void {
    if (this.upgradeSent === null) {
      return this.fail(Outcome.FAILED, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin} switched protocols unasked`), false)
    }
    if (this.switchedTo === null || !switchOffered(this.switchedTo, this.upgradeSent)) {
      return this.fail(
        Outcome.FAILED,
        new PetrelError(
          'PETREL_ERR_UPSTREAM_FAILED',
          `${this.upstream.origin} switched to ${JSON.stringify(this.switchedTo ?? '')}, not to a protocol the request offered (${this.upgradeSent})`,
        ),
        false,
      )
    }
    const upstream = this.socket!
    if (this.res.closed) {
      // The client left while the upstream was switching: nobody to tunnel for.
      return this.finish(Outcome.DONE)
    }
    const { socket: client, head } = this.res.detach()
    client.write(this.switchHead!, 'latin1')
    this.settled = true
    this.upstream.active--
    // The tunnel keeps the connection (its reads still come through onRead) but times it out itself.
    this.conn!.disarm()
    // `rest` is in a pooled read buffer that goes back after this read: the tunnel gets a copy.
    this.tunnel = new Tunnel(client, upstream, head, Buffer.from(rest), {
      idleTimeoutMs: this.settings.readTimeoutMs,
      tunnels: this.settings.tunnels,
      upstreamReadsItself: true,
    })
    this.owner.exchangeDone(this, Outcome.DONE)
  }

  /** Nothing from the upstream for readTimeoutMs (UpstreamConnection's timer). */
  onTimeout(): void {
    if (this.tunnel !== null) return
    this.fail(
      Outcome.FAILED,
      new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', `${this.upstream.origin} sent nothing for ${this.settings.readTimeoutMs} ms`),
      false,
    )
  }

  onError(err: NodeJS.ErrnoException): void {
    this.connectionLost(err.code ?? err.message)
  }

  onClose(): void {
    if (this.settled) return
    if (this.parser!.finish()) return this.complete(false)
    this.connectionLost('closed the connection')
  }

  private connectionLost(why: string): void {
    if (this.settled) return
    // No byte of an answer yet: a reused connection the upstream had just closed, or one that died
    // after the request was written. fail() decides whether the request may go again.
    this.fail(this.responded ? Outcome.FAILED : Outcome.RETRY, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin}: ${why}`), !this.reused)
  }

  // ---- ResponseHandler ----

  onField(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    // Decided on the bytes: no string is made of a field that is not passed on.
    if (this.parser!.status === 101) {
      // Passed on whole when the tunnel starts: Upgrade and Connection are the point of this one.
      if (passedValueHasObsText(buf, nameStart, nameEnd, valueStart, valueEnd)) this.obsText = true
      if (nameEnd - nameStart === 7 && equalsLowerAscii(buf, nameStart, nameEnd, 'upgrade')) this.switchedTo = buf.toString('latin1', valueStart, valueEnd)
      this.switchHead = `${this.switchHead ?? ''}${fieldLine(buf, nameStart, nameEnd, valueStart, valueEnd)}\r\n`
      return
    }
    const length = nameEnd - nameStart
    if (length === 10 && equalsLowerAscii(buf, nameStart, nameEnd, 'connection')) {
      this.connectionValues += `${buf.toString('latin1', valueStart, valueEnd)},`
      return
    }
    if (length === 14 && equalsLowerAscii(buf, nameStart, nameEnd, 'content-length')) {
      // The framing is the server's to write; for HEAD the upstream's declaration is passed on.
      if (this.req.method === 'HEAD') this.declaredLength ??= buf.toString('latin1', valueStart, valueEnd)
      return
    }
    // The server writes its own Date.
    if (HOP_BY_HOP.has(buf, nameStart, nameEnd) || (length === 4 && equalsLowerAscii(buf, nameStart, nameEnd, 'date'))) return
    if (passedValueHasObsText(buf, nameStart, nameEnd, valueStart, valueEnd)) this.obsText = true
    this.passFields += `${fieldLine(buf, nameStart, nameEnd, valueStart, valueEnd)}\r\n`
  }

  onHead(status: number, bodyLength: number): void {
    const res = this.res
    if (status === 101) {
      this.switchHead = `HTTP/1.1 101 Switching Protocols\r\n${this.switchHead ?? ''}\r\n`
      return
    }
    if (this.connectionValues !== '') this.dropListedFields()
    res.status(status)
    res.addRawFields(this.passFields, this.obsText)
    if (bodyLength >= 0 && this.req.method !== 'HEAD') res.setHeader('Content-Length', bodyLength)
    else if (this.req.method === 'HEAD' && this.declaredLength !== null) res.setHeader('Content-Length', this.declaredLength)
    this.headSent = true
    if (status === 204 || status === 304 || this.req.method === 'HEAD' || bodyLength === 0) return
    // The head goes out now, with the first body bytes or alone.
    res.write('')
  }

  onBody(buf: Buffer, start: number, end: number): void {
    if (end <= start) return
    const lease = this.lease!
    lease.hold()
    if (!this.res.write(buf.subarray(start, end), lease.release)) {
      // The client reads slower than the upstream sends: stop reading the upstream until it catches up.
      const socket = this.socket!
      const conn = this.conn!
      socket.pause()
      // Only while this exchange still owns the connection: it may be parked or lent on by then.
      this.res.drain().then(
        () => {
          if (conn.owner === this) socket.resume()
        },
        () => {
          if (conn.owner === this) socket.destroy()
        },
      )
    }
  }

  /** The upstream's Connection field named more fields (rare: "keep-alive" and "close" are usual): they are hop-by-hop too. */
  private dropListedFields(): void {
    const listed = namedByConnection(this.connectionValues)
    if (listed === null) return
    // Options and names that are dropped anyway ("Connection: keep-alive", as nginx sends) change nothing.
    for (const name of listed) if (name === '' || name === 'close' || HOP_BY_HOP.hasString(name)) listed.delete(name)
    if (listed.size === 0) return
    let kept = ''
    // Values hold no CR or LF (checkValue), so the lines split cleanly.
    for (const line of this.passFields.split('\r\n')) {
      if (line !== '' && !listed.has(line.slice(0, line.indexOf(':')).toLowerCase())) kept += `${line}\r\n`
    }
    this.passFields = kept
  }

  // ----

  private complete(reusable: boolean): void {
    if (this.settled) return
    if (!this.res.finished) this.res.end()
    // Reused only when the response allows it and the request body went out whole.
    this.finish(Outcome.DONE, reusable && (this.body === null || this.body.readableEnded))
  }

  private fail(outcome: Outcome, error: PetrelError, passive: boolean): void {
    if (this.settled) return
    if (passive) this.upstream.failedUntil = Date.now() + this.settings.failTimeoutMs
    this.failure = error
    if (this.headSent) {
      // Part of the response went out: the client must see it cut, not complete.
      this.settings.log(`proxy: ${this.req.method} ${this.target}: ${error.message}; the response was cut`)
      this.res.abort()
      return this.finish(Outcome.DONE)
    }
    // Nothing sent: any request may go elsewhere. Sent (and maybe received, even on a kept-alive
    // connection that failed at once: the upstream may have closed it after reading the request):
    // only an idempotent one, and only without a body, which is streamed, not kept to send again.
    const retry = outcome === Outcome.RETRY && (!this.requestSent || (IDEMPOTENT.has(this.req.method) && !this.req.head.hasBody))
    this.finish(retry ? Outcome.RETRY : Outcome.FAILED)
  }

  private finish(outcome: Outcome, reusable = false): void {
    if (this.settled) return
    this.settled = true
    this.upstream.active--
    const conn = this.conn
    if (conn !== null) {
      const socket = conn.socket
      // A paused socket (its client was behind) is not parked: a later drain must not wake it.
      if (reusable && !socket.destroyed && !socket.isPaused() && this.upstream.idle.length < this.settings.keepAlive) conn.park()
      else conn.close()
    }
    this.owner.exchangeDone(this, outcome)
  }
}
