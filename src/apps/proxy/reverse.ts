// The reverse proxy (`petrel serve --proxy /api/=http://a:3000,http://b:3001`): requests under a
// prefix go to an upstream group, as nginx's proxy_pass with an upstream block does.
//
// - Balancing: round-robin, or least connections (fewest exchanges in flight).
// - Connections: kept alive per upstream, at most `keepAlive` idle ones, each closed after
//   `idleTimeoutMs` idle; a connection is reused only after a response that allows it.
// - Health: passive — an upstream whose connection fails is skipped for `failTimeoutMs`; active,
//   only when a `healthPath` is given — `GET healthPath` every `healthIntervalMs`, and an upstream
//   that does not answer 2xx is down until it does. When every upstream is out, they are all tried
//   anyway (better a 502 than none).
// - Retries: a request none of which was sent (the connection was refused, failed or timed out)
//   goes to the next upstream whatever its method; one that may have reached the upstream (the
//   connection failed after it was written, before any byte of a response) only when it is
//   idempotent and has no body — bodies are streamed, not buffered, so one is never sent twice.
//   Each upstream is tried at most once.
// - Headers: hop-by-hop fields (Connection and the fields it names, Keep-Alive, TE, Trailer,
//   Transfer-Encoding, Upgrade, Proxy-*) are dropped both ways; X-Forwarded-For (appended),
//   X-Forwarded-Proto, X-Forwarded-Host and Forwarded are added. Host is passed through (an
//   absolute-form target's authority, when the client sent one: the request's host either way).
//   Request fields whose names hold `_` are dropped unless `underscoresInHeaders` (nginx's default).
// - Bodies stream both ways with backpressure: a client that reads slowly pauses the upstream
//   socket, an upstream that reads slowly pauses the client's request body. The upstream is read
//   into pooled 64 KiB buffers (nginx's proxy_buffers) that go back to the pool when the client's
//   socket has taken their bytes, so a large response makes no garbage and memory per exchange is
//   bounded by the sockets' buffers, whatever the size of the response.
// - Upgrade: a request with `Connection: upgrade` keeps the protocols of its Upgrade field that are
//   allowed (`upgradeProtocols`, websocket by default; h2c and the rest are dropped, so the request
//   goes up as plain HTTP); when the upstream answers 101 to one of them, both connections leave
//   HTTP and are joined into a tunnel.
// - Errors: an upstream that refuses or resets → 502; no connection or no response head within
//   the timeouts → 504; a failure after the head went out cuts the client's connection, so a
//   truncated body is never passed off as complete.

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { BufferPool } from '../../core/buffer-pool.ts'
import { PetrelError } from '../../core/errors.ts'
import { DEFAULT_LIMITS } from '../../core/limits.ts'
import { Scheduler } from '../../core/timers/scheduler.ts'
import { WheelTimer } from '../../core/timers/wheel.ts'
import { equalsLowerAscii, FIELD_VALUE, TOKEN } from '../../protocol/http1/chars.ts'
import type { RequestHead } from '../../protocol/http1/request-head.ts'
import { isMountablePrefix } from '../../protocol/http1/target.ts'
import { ResponseParser, type ResponseHandler } from '../../protocol/http1/response-parser.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'

export const PROXY_DEFAULTS = {
  balance: 'round-robin' as 'round-robin' | 'least-conn',
  connectTimeoutMs: 5_000,
  /** From the request sent to the response head, and between reads of the response. */
  readTimeoutMs: 60_000,
  /** Idle keep-alive connections kept per upstream (above the concurrency, or connections churn). */
  keepAlive: 128,
  idleTimeoutMs: 30_000,
  failTimeoutMs: 10_000,
  /** What active health checks GET; null: no active checks (an upstream without the path would look down). */
  healthPath: null as string | null,
  /** How often active checks run, when a healthPath is given; 0: none. */
  healthIntervalMs: 5_000,
  /** A check not answered 2xx within this is failed. */
  healthTimeoutMs: 2_000,
  /** Bytes of an upstream's response head (and of its trailer section): the request limit's default. More → 502. */
  maxResponseHeaderBytes: DEFAULT_LIMITS.maxHeaderBytes,
  /** Header fields of an upstream's response head (and trailer fields): the request limit's default. More → 502. */
  maxResponseHeaderCount: DEFAULT_LIMITS.maxHeaderCount,
  /** Protocols a client may switch to through the proxy (the Upgrade field's protocol names). */
  upgradeProtocols: ['websocket'] as readonly string[],
  /**
   * Pass on request fields whose names hold `_` (nginx's underscores_in_headers). Off: they are
   * dropped, since upstreams that map names to variables (CGI, PHP, many frameworks) read
   * `X_Real-IP` and `X-Real-IP` as the same HTTP_X_REAL_IP, and a client could pass one for the other.
   */
  underscoresInHeaders: false as boolean,
} as const

export interface ProxyRoute {
  /** URL path prefix, e.g. "/api/". */
  prefix: string
  upstreams: string[]
}

/** Defaults in PROXY_DEFAULTS. Counts and times are finite and >= 0; a timeout of 0 is none, as for socket.setTimeout(0). */
export interface ProxyOptions {
  balance?: 'round-robin' | 'least-conn'
  connectTimeoutMs?: number
  readTimeoutMs?: number
  keepAlive?: number
  idleTimeoutMs?: number
  failTimeoutMs?: number
  healthPath?: string | null
  healthIntervalMs?: number
  healthTimeoutMs?: number
  maxResponseHeaderBytes?: number
  maxResponseHeaderCount?: number
  /** Protocol names (case-insensitive, without a version) a request may upgrade to; [] for none. */
  upgradeProtocols?: readonly string[]
  underscoresInHeaders?: boolean
  log?: (line: string) => void
}

export type ProxySettings = Required<Omit<ProxyOptions, 'log' | 'upgradeProtocols' | 'healthPath'>> & {
  healthPath: string | null
  /** upgradeProtocols, lower-case. */
  upgradeProtocols: ReadonlySet<string>
  log: (line: string) => void
  /** The read and idle timeouts of this proxy's upstream connections: one timing wheel, as the server's connections have. */
  timers: Scheduler<UpstreamConnection>
  /** Both sockets of every open tunnel (upgrades, CONNECT): they left the server's HTTP, so the proxy's close() destroys them. */
  tunnels: Set<net.Socket>
}

/** Options with their defaults filled in. */
export function proxySettings(options: ProxyOptions): ProxySettings {
  return {
    balance: options.balance ?? PROXY_DEFAULTS.balance,
    connectTimeoutMs: nonNegative('connectTimeoutMs', options.connectTimeoutMs, PROXY_DEFAULTS.connectTimeoutMs),
    readTimeoutMs: nonNegative('readTimeoutMs', options.readTimeoutMs, PROXY_DEFAULTS.readTimeoutMs),
    keepAlive: nonNegative('keepAlive', options.keepAlive, PROXY_DEFAULTS.keepAlive),
    idleTimeoutMs: nonNegative('idleTimeoutMs', options.idleTimeoutMs, PROXY_DEFAULTS.idleTimeoutMs),
    failTimeoutMs: nonNegative('failTimeoutMs', options.failTimeoutMs, PROXY_DEFAULTS.failTimeoutMs),
    healthPath: healthPath(options.healthPath ?? PROXY_DEFAULTS.healthPath),
    healthIntervalMs: nonNegative('healthIntervalMs', options.healthIntervalMs, PROXY_DEFAULTS.healthIntervalMs),
    healthTimeoutMs: nonNegative('healthTimeoutMs', options.healthTimeoutMs, PROXY_DEFAULTS.healthTimeoutMs),
    maxResponseHeaderBytes: positive('maxResponseHeaderBytes', options.maxResponseHeaderBytes, PROXY_DEFAULTS.maxResponseHeaderBytes),
    maxResponseHeaderCount: positive('maxResponseHeaderCount', options.maxResponseHeaderCount, PROXY_DEFAULTS.maxResponseHeaderCount),
    upgradeProtocols: protocolNames(options.upgradeProtocols ?? PROXY_DEFAULTS.upgradeProtocols),
    underscoresInHeaders: options.underscoresInHeaders ?? PROXY_DEFAULTS.underscoresInHeaders,
    log: options.log ?? (() => {}),
    timers: new Scheduler<UpstreamConnection>({ onExpire: expireConnection }),
    tunnels: new Set(),
  }
}

/** Keep a tunnel's socket in `tunnels` until it closes. */
export function trackTunnel(tunnels: Set<net.Socket>, socket: net.Socket): void {
  tunnels.add(socket)
  socket.once('close', () => tunnels.delete(socket))
}

/** Destroy every open tunnel (the proxy is closing). */
export function closeTunnels(tunnels: Set<net.Socket>): void {
  for (const socket of tunnels) socket.destroy()
  tunnels.clear()
}

/** A count or a time in ms: finite and ≥ 0; for the timeouts 0 means none. */
function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`proxy option ${name} must be a finite number >= 0 (0: no limit for a timeout), got ${value}`)
  return value
}

/** A health check's path: absolute, and nothing that could end the request line early. */
function healthPath(path: string | null): string | null {
  if (path === null) return null
  if (!path.startsWith('/') || /[\x00-\x20\x7f]/.test(path)) throw new RangeError(`proxy option healthPath must be a path starting with / without spaces or control characters, got ${JSON.stringify(path)}`)
  return path
}

/** A size limit: a whole number ≥ 1 (a limit of 0 would refuse every response). */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`proxy option ${name} must be a whole number >= 1, got ${value}`)
  return value
}

/** Upgrade protocol names, checked (a token without a version: "websocket", "h2c") and lower-cased. */
export function protocolNames(names: readonly string[]): ReadonlySet<string> {
  const set = new Set<string>()
  for (const name of names) {
    let token = name !== ''
    for (let i = 0; i < name.length && token; i++) token = name.charCodeAt(i) < 0x80 && TOKEN[name.charCodeAt(i)] === 1 && name[i] !== '/'
    if (!token) throw new RangeError(`proxy option upgradeProtocols: ${JSON.stringify(name)} is not a protocol name; expected a token such as websocket or h2c, without a version`)
    set.add(name.toLowerCase())
  }
  return set
}

/** The name of an Upgrade protocol ("websocket", "WebSocket/13" → "websocket"), lower-case. */
function protocolName(protocol: string): string {
  const slash = protocol.indexOf('/')
  return (slash < 0 ? protocol : protocol.slice(0, slash)).toLowerCase()
}

/**
 * The protocols of the request's Upgrade fields that the proxy passes on, as one value, or null when
 * none is allowed: the request then goes up as plain HTTP, and the upstream answers it as such —
 * declining the upgrade, which RFC 9110 §7.8 lets a server do. Only upgrade requests pay for this.
 */
function allowedUpgrades(head: RequestHead, allowed: ReadonlySet<string>): string | null {
  let kept = ''
  for (let i = head.indexOf('upgrade', 0); i >= 0; i = head.indexOf('upgrade', i + 4)) {
    for (const offered of head.buf.toString('latin1', head.headers[i + 2]!, head.headers[i + 3]!).split(',')) {
      const protocol = offered.trim()
      if (protocol !== '' && allowed.has(protocolName(protocol))) kept += kept === '' ? protocol : `, ${protocol}`
    }
  }
  return kept === '' ? null : kept
}

/** True when a 101's Upgrade value names protocols, each one the request offered (`offered`, the value sent). */
function switchOffered(value: string, offered: string): boolean {
  const names = new Set<string>()
  for (const protocol of offered.split(',')) names.add(protocolName(protocol.trim()))
  let any = false
  for (const protocol of value.split(',')) {
    const name = protocolName(protocol.trim())
    if (name === '') continue
    if (!names.has(name)) return false
    any = true
  }
  return any
}

/** One upstream read through its parser, run under the client response's cork (Response.corked()). */
function parseUpstreamRead(parser: ResponseParser, buf: Buffer, length: number): number {
  return parser.execute(buf, 0, length)
}

/** A parser for responses from an upstream: strict line ends, and the proxy's limits on a head. */
function upstreamResponseParser(settings: ProxySettings): ResponseParser {
  return new ResponseParser({ maxHeadBytes: settings.maxResponseHeaderBytes, maxFieldCount: settings.maxResponseHeaderCount })
}

/** The connect timeout of a new upstream connection (a Node timer: connecting is rare on a warm pool); none for 0. */
export function connectTimer(ms: number, onTimeout: () => void): NodeJS.Timeout | undefined {
  return ms > 0 ? setTimeout(onTimeout, ms) : undefined
}

function expireConnection(conn: UpstreamConnection): void {
  conn.expired()
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
class ReadLease {
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
    this.socket = net.connect({
      host: upstream.host,
      port: upstream.port,
      noDelay: true,
      onread: {
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

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'])
/** Lower-case field names, tested against bytes in a buffer (in any case) without making a string of them. */
class NameSet {
  private readonly names: Set<string>
  /** The names by length: most names are turned away by their length alone. */
  private readonly byLength: Array<string[] | undefined> = []

  constructor(names: readonly string[]) {
    this.names = new Set(names)
    for (const name of names) (this.byLength[name.length] ??= []).push(name)
  }

  has(buf: Buffer, start: number, end: number): boolean {
    const names = this.byLength[end - start]
    if (names === undefined) return false
    for (let i = 0; i < names.length; i++) if (equalsLowerAscii(buf, start, end, names[i]!)) return true
    return false
  }

  hasString(lowerName: string): boolean {
    return this.names.has(lowerName)
  }
}

/** Hop-by-hop fields (RFC 9110 §7.6.1) and the proxy's own, dropped both ways. */
const HOP_BY_HOP = new NameSet(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate'])

/**
 * A field value's bytes, checked before they go to the client: VALUE_INVALID for CR, LF, NUL or
 * another control but HTAB (which could split the head), else VALUE_OBS_TEXT when it has bytes
 * 0x80–0xff, else VALUE_ASCII.
 */
function checkValue(buf: Buffer, start: number, end: number): number {
  let kind = VALUE_ASCII
  for (let i = start; i < end; i++) {
    const c = buf[i]!
    if (FIELD_VALUE[c] === 0) return VALUE_INVALID
    if (c > 0x7f) kind = VALUE_OBS_TEXT
  }
  return kind
}
const VALUE_INVALID = 0
const VALUE_ASCII = 1
const VALUE_OBS_TEXT = 2

/** True when the name buf[start, end) holds an underscore. A loop, not indexOf: names are short, and a native call costs more. */
function hasUnderscore(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] === 0x5f) return true
  return false
}

/** The field line `name: value` of buf's bytes: one slice when it is written that way already. */
function fieldLine(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): string {
  if (valueStart === nameEnd + 2 && buf[nameEnd + 1] === 0x20) return buf.toString('latin1', nameStart, valueEnd)
  return `${buf.toString('latin1', nameStart, nameEnd)}: ${buf.toString('latin1', valueStart, valueEnd)}`
}
/** The field names a Connection value lists (lower-case): hop-by-hop for that message; null for none. */
function namedByConnection(value: string): Set<string> | null {
  if (value === '') return null
  const names = new Set<string>()
  for (const token of value.toLowerCase().split(',')) names.add(token.trim())
  return names
}

/** Request fields the proxy writes itself (framing, forwarding): the client's copies are not passed on. */
const OWN_FIELD_NAMES = new NameSet(['content-length', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'])

/**
 * The forwarding fields after X-Forwarded-For's earlier hops: this hop's address, then
 * X-Forwarded-Proto, X-Forwarded-Host and Forwarded. They depend only on the client's address and
 * Host, which stay the same for every request on a connection (and often for every request a
 * reverse proxy sees), so the last result is kept: a hit costs two string compares.
 */
function forwardingLines(client: string, host: string): string {
  if (client === forwarding.client && host === forwarding.host) return forwarding.lines
  let lines = `${client}\r\nx-forwarded-proto: http\r\n`
  if (host !== '') lines += `x-forwarded-host: ${host}\r\n`
  // A quoted-string may not hold a bare quote or backslash; a Host with either is malformed anyway.
  const quotedHost = host.includes('"') || host.includes('\\') ? host.replace(/[\\"]/g, '') : host
  lines += `forwarded: for=${client.includes(':') ? `"[${client}]"` : client};proto=http${quotedHost === '' ? '' : `;host="${quotedHost}"`}\r\n`
  forwarding.client = client
  forwarding.host = host
  forwarding.lines = lines
  return lines
}
const forwarding = { client: '', host: '', lines: '' }

/** "--proxy /api/=http://a:1,http://b:2" → a route; throws a RangeError naming what is wrong. */
export function parseProxyRoute(text: string): ProxyRoute {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new RangeError(`${JSON.stringify(text)}: expected PREFIX=URL[,URL…], e.g. /api/=http://127.0.0.1:3000`)
  const prefix = text.slice(0, eq)
  if (!prefix.startsWith('/')) throw new RangeError(`${JSON.stringify(prefix)}: a prefix starts with /`)
  // Requests are matched on their normalised path: a prefix in another spelling would match nothing.
  if (!isMountablePrefix(prefix)) throw new RangeError(`${JSON.stringify(prefix)}: a prefix is a normalised path of letters, digits, "-", ".", "_", "~" and "/" (no "." or ".." segments, no "//"), e.g. /api/`)
  const upstreams = text.slice(eq + 1).split(',').map((u) => u.trim())
  for (const u of upstreams) {
    let url: URL
    try {
      url = new URL(u)
    } catch {
      throw new RangeError(`${JSON.stringify(u)} is not a URL; expected http://HOST:PORT`)
    }
    if (url.protocol !== 'http:' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') throw new RangeError(`${JSON.stringify(u)}: an upstream is http://HOST[:PORT], without a path`)
  }
  return { prefix, upstreams }
}

/** One upstream server: its idle connections, what is in flight, and whether it is healthy. */
export class Upstream {
  readonly host: string
  readonly port: number
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
    this.port = url.port === '' ? 80 : Number(url.port)
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

export class UpstreamGroup {
  readonly prefix: string
  /** Starts log lines about this group. */
  readonly label: string
  readonly upstreams: Upstream[]
  private readonly settings: ProxySettings
  private next = 0
  private healthTimer: NodeJS.Timeout | null = null
  /** A round of checks is under way: the next tick does not start another beside it. */
  private checking = false

  constructor(route: ProxyRoute, settings: ProxySettings) {
    this.prefix = route.prefix
    this.label = `proxy ${route.prefix}`
    this.upstreams = route.upstreams.map((u) => new Upstream(u))
    this.settings = settings
    if (settings.healthPath !== null && settings.healthIntervalMs > 0) {
      this.healthTimer = setInterval(() => void this.checkHealth(), settings.healthIntervalMs)
      this.healthTimer.unref()
    }
  }

  /**
   * The upstreams to try: all of them, or the healthy ones when some are out and some are not.
   * Nothing is allocated while all are healthy.
   */
  pool(): readonly Upstream[] {
    const now = Date.now()
    const all = this.upstreams
    for (let i = 0; i < all.length; i++) {
      if (!all[i]!.healthy(now)) {
        const healthy = all.filter((u) => u.healthy(now))
        return healthy.length > 0 ? healthy : all
      }
    }
    return all
  }

  /** The balancer's pick in `pool`: tried first, then the ones after it, in order. */
  pick(pool: readonly Upstream[]): number {
    if (this.settings.balance !== 'least-conn') return this.next++ % pool.length
    let least = Infinity
    let tied = 0
    for (const u of pool) {
      if (u.active < least) {
        least = u.active
        tied = 1
      } else if (u.active === least) tied++
    }
    // Ties go round-robin, so equal upstreams share the load.
    let skip = this.next++ % tied
    for (let i = 0; i < pool.length; i++) {
      if (pool[i]!.active === least && skip-- === 0) return i
    }
    return 0
  }

  /** One round of active checks (none without a healthPath, or while the last round still runs). */
  async checkHealth(): Promise<void> {
    const path = this.settings.healthPath
    if (path === null || this.checking) return
    this.checking = true
    await Promise.all(this.upstreams.map(async (u) => {
      const ok = await probe(u, path, this.settings)
      const wasOut = !u.healthy(Date.now())
      u.down = !ok
      // A passing check also lifts a passive mark: the upstream answers again.
      if (ok) u.failedUntil = 0
      if (ok === !wasOut) return
      this.settings.log(`proxy ${this.prefix}: upstream ${u.origin} is ${ok ? 'up again' : `down (GET ${path} failed)`}`)
    }))
    this.checking = false
  }

  close(): void {
    if (this.healthTimer !== null) clearInterval(this.healthTimer)
    for (const u of this.upstreams) u.closeIdle()
  }
}

/**
 * One GET to the health path on a fresh connection: true for a 2xx, read as strictly as an
 * exchange's response, within healthTimeoutMs from the start (a timer, not socket.setTimeout,
 * so an upstream that trickles bytes cannot hold a check open).
 */
function probe(u: Upstream, path: string, settings: ProxySettings): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(u.port, u.host)
    const parser = upstreamResponseParser(settings)
    const timer = connectTimer(settings.healthTimeoutMs, () => done(false))
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    socket.on('error', () => done(false))
    socket.on('close', () => done(parser.finish() && parser.status >= 200 && parser.status < 300))
    socket.on('data', (chunk: Buffer) => {
      parser.execute(chunk, 0, chunk.length)
      if (parser.errorCode !== null) done(false)
      else if (parser.complete) done(parser.status >= 200 && parser.status < 300)
    })
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.hostField}\r\nConnection: close\r\nUser-Agent: petrel-health-check\r\n\r\n`))
  })
}

/** How an attempt on one upstream ended. */
export const Outcome = { DONE: 0, RETRY: 1, FAILED: 2 } as const

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

  constructor(settings: ProxySettings, req: Request, res: Response, pool: readonly Upstream[], first: number, options: { target?: string; host?: string; label: string }) {
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
  exchangeDone(exchange: Exchange, outcome: number): void {
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
  /** The client's socket once the exchange became a tunnel: upstream reads go straight to it. */
  private tunnelClient: net.Socket | null = null
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
    const timer = connectTimer(this.settings.connectTimeoutMs, () => {
      this.connecting = null
      socket.destroy()
      this.fail(Outcome.RETRY, new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', `no connection to ${u.origin} within ${this.settings.connectTimeoutMs} ms`), true)
    })
    const onConnectError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      this.connecting = null
      this.fail(Outcome.RETRY, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${u.origin}: ${err.code ?? err.message}`), true)
    }
    socket.once('connect', () => {
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
    const { buf, headers } = head
    // Names the client's Connection field lists are hop-by-hop too — except the fields the
    // message's framing and routing stand on: dropping Content-Length on a client's say-so would
    // turn its body into a second request upstream.
    let connectionValues = ''
    for (let i = head.indexOf('connection', 0); i >= 0; i = head.indexOf('connection', i + 4)) connectionValues += `${buf.toString('latin1', headers[i + 2]!, headers[i + 3]!)},`
    const connection = namedByConnection(connectionValues)
    const clientHost = head.hostStart >= 0 ? buf.toString('latin1', head.hostStart, head.hostEnd) : ''
    // Host first (RFC 9112 §3.2): the forward proxy's from the URL; else the client's; else, for an
    // HTTP/1.0 client that sent none, the upstream's own name, as nginx's $proxy_host.
    let out = `${req.method} ${this.target} HTTP/1.1\r\nhost: ${this.host ?? (clientHost !== '' ? clientHost : this.upstream.hostField)}\r\n`
    let forwardedFor = ''
    const underscores = this.settings.underscoresInHeaders
    // Names are lower-case in the buffer already (the parser folds them); decided on the bytes.
    for (let i = 0; i < headers.length; i += 4) {
      const nameStart = headers[i]!
      const nameEnd = headers[i + 1]!
      if (HOP_BY_HOP.has(buf, nameStart, nameEnd)) continue
      if (OWN_FIELD_NAMES.has(buf, nameStart, nameEnd)) {
        if (equalsLowerAscii(buf, nameStart, nameEnd, 'x-forwarded-for')) forwardedFor += `${buf.toString('latin1', headers[i + 2]!, headers[i + 3]!)}, `
        continue
      }
      // Host went first; the parser let only one through.
      if (nameEnd - nameStart === 4 && equalsLowerAscii(buf, nameStart, nameEnd, 'host')) continue
      if (!underscores && hasUnderscore(buf, nameStart, nameEnd)) continue
      if (connection !== null && connection.has(buf.toString('latin1', nameStart, nameEnd))) continue
      out += `${fieldLine(buf, nameStart, nameEnd, headers[i + 2]!, headers[i + 3]!)}\r\n`
    }
    const client = req.remoteAddress ?? 'unknown'
    const host = this.host ?? clientHost
    // The client's own X-Forwarded-Proto/Host and Forwarded are dropped (OWN_FIELD_NAMES): the
    // proxy says what it saw; only X-Forwarded-For keeps the chain, with this hop appended.
    out += `x-forwarded-for: ${forwardedFor}${forwardingLines(client, host)}`
    // The framing is written from the parsed message, never copied.
    if (head.chunked) out += 'transfer-encoding: chunked\r\n'
    else if (head.contentLength >= 0) out += `content-length: ${head.contentLength}\r\n`
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
    if (this.tunnelClient === null) this.body?.resume()
  }

  /** A read from the upstream (UpstreamConnection's onread): `lease` keeps its buffer while writes need it. False: pause reading. */
  onRead(buf: Buffer, length: number, lease: ReadLease): boolean {
    const client = this.tunnelClient
    if (client !== null) {
      lease.hold()
      return client.write(buf.subarray(0, length), lease.release)
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
      this.fail(Outcome.FAILED, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin} sent a response that cannot be passed on: ${(err as Error).message}`), false)
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

  /**
   * The upstream switched protocols (101): the client's connection leaves HTTP and the two
   * sockets are joined, bytes as they come, with backpressure both ways, until either closes.
   */
  private startTunnel(rest: Buffer): void {
    if (this.upgradeSent === null) {
      return this.fail(Outcome.FAILED, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin} switched protocols unasked`), false)
    }
    if (this.switchedTo === null || !switchOffered(this.switchedTo, this.upgradeSent)) {
      return this.fail(Outcome.FAILED, new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${this.upstream.origin} switched to ${JSON.stringify(this.switchedTo ?? '')}, not to a protocol the request offered (${this.upgradeSent})`), false)
    }
    const upstream = this.socket!
    if (this.res.closed) {
      // The client left while the upstream was switching: nobody to tunnel for.
      return this.finish(Outcome.DONE)
    }
    const { socket: client, head } = this.res.detach()
    client.write(this.switchHead!, 'latin1')
    if (rest.length > 0) client.write(Buffer.from(rest))
    if (head.length > 0) upstream.write(head)
    this.tunnelClient = client
    this.settled = true
    this.upstream.active--
    // The tunnel keeps the connection (its reads still come through onRead) but times it out itself.
    this.conn!.disarm()
    const destroyBoth = (): void => {
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      trackTunnel(this.settings.tunnels, socket)
      socket.setTimeout(this.settings.readTimeoutMs, destroyBoth)
      socket.on('error', destroyBoth)
    }
    // A half-close passes through, as TCP's own: the client's end of input ends what goes up (the
    // client's socket allows half-open, so it stays open for the answer), and the upstream's end
    // ends what goes down once the bytes before it are written. Without this a client that ends
    // its side waits for the idle timeout to hear the end of the upstream's.
    client.on('end', () => upstream.end())
    upstream.on('end', () => client.end())
    // The upstream gone: the client gets what is queued, then its end. The client gone: nobody is
    // left to read the upstream.
    upstream.on('close', () => client.end())
    client.on('close', () => upstream.destroy())
    client.on('drain', () => upstream.resume())
    upstream.on('drain', () => client.resume())
    client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause()
    })
    client.resume()
    this.owner.exchangeDone(this, Outcome.DONE)
  }

  /** Nothing from the upstream for readTimeoutMs (UpstreamConnection's timer). */
  onTimeout(): void {
    if (this.tunnelClient !== null) return
    this.fail(Outcome.FAILED, new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', `${this.upstream.origin} sent nothing for ${this.settings.readTimeoutMs} ms`), false)
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
      this.checkPassedValue(buf, nameStart, nameEnd, valueStart, valueEnd)
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
    this.checkPassedValue(buf, nameStart, nameEnd, valueStart, valueEnd)
    this.passFields += `${fieldLine(buf, nameStart, nameEnd, valueStart, valueEnd)}\r\n`
  }

  /** A value about to be passed on: throws on a control character (the exchange fails, 502), notes obs-text. */
  private checkPassedValue(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    const kind = checkValue(buf, valueStart, valueEnd)
    if (kind === VALUE_INVALID) throw new Error(`a control character in the value of ${buf.toString('latin1', nameStart, nameEnd)}`)
    if (kind === VALUE_OBS_TEXT) this.obsText = true
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

  private fail(outcome: number, error: PetrelError, passive: boolean): void {
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

  private finish(outcome: number, reusable = false): void {
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

export class ReverseProxy {
  readonly groups: UpstreamGroup[]
  private readonly settings: ProxySettings

  constructor(routes: readonly ProxyRoute[], options: ProxyOptions = {}) {
    this.settings = proxySettings(options)
    this.groups = routes.map((r) => new UpstreamGroup(r, this.settings))
  }

  /** Relay the request to the group; when no upstream could answer, the response fails with 502 or 504. */
  handle(group: UpstreamGroup, req: Request, res: Response): void {
    const pool = group.pool()
    new Relay(this.settings, req, res, pool, group.pick(pool), { label: group.label }).start()
  }

  /** Stop the health checks, close idle upstream connections and every open tunnel. */
  close(): void {
    for (const g of this.groups) g.close()
    closeTunnels(this.settings.tunnels)
    this.settings.timers.close()
  }
}
