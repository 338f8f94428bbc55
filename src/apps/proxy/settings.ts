// The reverse proxy's settings: its defaults, the options a caller may give, the checks on them,
// and the `--proxy PREFIX=URL,…` route syntax. The CLI imports this module alone to describe and
// check its flags, so it stays small and loads none of the proxy's machinery: a server without
// --proxy never loads the rest (test/memory.test.ts holds an idle worker under 60 MB).

import type { Buffer } from 'node:buffer'
import type { SecureContext } from 'node:tls'
import { InvalidOptionError } from '../../core/option-error.ts'
import { DEFAULT_LIMITS } from '../../core/limits.ts'
import { Scheduler } from '../../core/timers/scheduler.ts'
import { TOKEN } from '../../protocol/http1/chars.ts'
import { isMountablePrefix } from '../../protocol/http1/target.ts'
import type { Tunnel } from './tunnel.ts'
import type { UpstreamConnection } from './upstream.ts'

/** How an upstream group picks the upstream that is tried first. */
export type Balance = 'round-robin' | 'least-conn'

export const PROXY_DEFAULTS = {
  balance: 'round-robin' as Balance,
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
  /**
   * Do not verify the certificates of https upstreams (nor their names): anyone on the path to
   * the upstream can then read and change the traffic. Only as an explicit knob, with a warning.
   */
  upstreamTlsInsecure: false as boolean,
} as const

export interface ProxyRoute {
  /** URL path prefix, e.g. "/api/". */
  prefix: string
  upstreams: string[]
}

/** Defaults in PROXY_DEFAULTS. Counts and times are finite and >= 0; a timeout of 0 is none, as for socket.setTimeout(0). */
export interface ProxyOptions {
  balance?: Balance
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
  /**
   * PEM certificates (one or more, concatenated) trusted for https upstreams besides the system's
   * CAs: the CA of upstreams with private certificates. `--proxy-ca FILE` gives a file's text.
   */
  upstreamCa?: string | Buffer
  upstreamTlsInsecure?: boolean
  log?: (line: string) => void
}

export type ProxySettings = Required<Omit<ProxyOptions, 'log' | 'upgradeProtocols' | 'healthPath' | 'upstreamCa'>> & {
  healthPath: string | null
  /** upstreamCa's certificates, each one PEM block, checked. */
  upstreamCa: readonly string[]
  /**
   * The client side of TLS to https upstreams (trusted CAs), made once on first use and shared by
   * every connection: building it from the ~150 system CAs costs tens of milliseconds.
   */
  upstreamTlsContext: SecureContext | null
  /** upgradeProtocols, lower-case. */
  upgradeProtocols: ReadonlySet<string>
  log: (line: string) => void
  /** The read and idle timeouts of this proxy's upstream connections: one timing wheel, as the server's connections have. */
  timers: Scheduler<UpstreamConnection>
  /** Every open tunnel (upgrades, CONNECT): they left the server's HTTP, so the proxy's close() destroys them. */
  tunnels: Set<Tunnel>
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
    upstreamCa: options.upstreamCa === undefined ? [] : caCertificates(options.upstreamCa, 'proxy option upstreamCa'),
    upstreamTlsInsecure: options.upstreamTlsInsecure ?? PROXY_DEFAULTS.upstreamTlsInsecure,
    upstreamTlsContext: null,
    log: options.log ?? (() => {}),
    timers: new Scheduler<UpstreamConnection>({ onExpire: expireConnection }),
    tunnels: new Set(),
  }
}

/** A count or a time in ms: finite and ≥ 0; for the timeouts 0 means none. */
export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!(Number.isFinite(value) && value >= 0))
    throw new InvalidOptionError(`proxy option ${name} must be a finite number >= 0 (0: no limit for a timeout), got ${value}`)
  return value
}

/** A health check's path: absolute, and nothing that could end the request line early. */
function healthPath(path: string | null): string | null {
  if (path === null) return null
  if (!path.startsWith('/') || /[\x00-\x20\x7f]/.test(path))
    throw new InvalidOptionError(`proxy option healthPath must be a path starting with / without spaces or control characters, got ${JSON.stringify(path)}`)
  return path
}

/** A size limit: a whole number ≥ 1 (a limit of 0 would refuse every response). */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!(Number.isInteger(value) && value >= 1)) throw new InvalidOptionError(`proxy option ${name} must be a whole number >= 1, got ${value}`)
  return value
}

/** Upgrade protocol names, checked (a token without a version: "websocket", "h2c") and lower-cased. */
export function protocolNames(names: readonly string[]): ReadonlySet<string> {
  const set = new Set<string>()
  for (const name of names) {
    let token = name !== ''
    for (let i = 0; i < name.length && token; i++) token = name.charCodeAt(i) < 0x80 && TOKEN[name.charCodeAt(i)] === 1 && name[i] !== '/'
    if (!token)
      throw new InvalidOptionError(
        `proxy option upgradeProtocols: ${JSON.stringify(name)} is not a protocol name; expected a token such as websocket or h2c, without a version`,
      )
    set.add(name.toLowerCase())
  }
  return set
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/**
 * The certificates of a PEM text (a CA bundle may hold several), each checked: throws
 * PETREL_ERR_INVALID_OPTION starting with `source` (the option, or the --proxy-ca file) when
 * there is none or one cannot be read.
 */
export function caCertificates(pem: string | Buffer, source: string): string[] {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1')
  const blocks = text.match(PEM_CERTIFICATE) ?? []
  // node:crypto is loaded here, on demand: every server loads this module, a proxy or not (test/memory.test.ts).
  const { X509Certificate } = process.getBuiltinModule('node:crypto')
  if (blocks.length === 0)
    throw new InvalidOptionError(`${source}: no PEM certificate in it (a "-----BEGIN CERTIFICATE-----" block); give the CA certificate in PEM`)
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block)
    } catch (err) {
      throw new InvalidOptionError(`${source}: certificate ${i + 1} of ${blocks.length} cannot be read (${(err as Error).message}); give PEM certificates`)
    }
  })
  return blocks
}

/** "--proxy /api/=http://a:1,http://b:2" → a route; throws PETREL_ERR_INVALID_OPTION naming what is wrong. */
export function parseProxyRoute(text: string): ProxyRoute {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new InvalidOptionError(`${JSON.stringify(text)}: expected PREFIX=URL[,URL…], e.g. /api/=http://127.0.0.1:3000`)
  const prefix = text.slice(0, eq)
  if (!prefix.startsWith('/')) throw new InvalidOptionError(`${JSON.stringify(prefix)}: a prefix starts with /`)
  // Requests are matched on their normalised path: a prefix in another spelling would match nothing.
  if (!isMountablePrefix(prefix))
    throw new InvalidOptionError(
      `${JSON.stringify(prefix)}: a prefix is a normalised path of letters, digits, "-", ".", "_", "~" and "/" (no "." or ".." segments, no "//"), e.g. /api/`,
    )
  const upstreams = text
    .slice(eq + 1)
    .split(',')
    .map((u) => u.trim())
  for (const u of upstreams) {
    let url: URL
    try {
      url = new URL(u)
    } catch {
      throw new InvalidOptionError(`${JSON.stringify(u)} is not a URL; expected http://HOST:PORT or https://HOST:PORT`)
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '')
      throw new InvalidOptionError(`${JSON.stringify(u)}: an upstream is http://HOST[:PORT] or https://HOST[:PORT], without a path`)
  }
  return { prefix, upstreams }
}

function expireConnection(conn: UpstreamConnection): void {
  conn.expired()
}
