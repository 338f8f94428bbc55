// What a `petrel bench` run does, decided once before the first connection: the target, the
// request bytes (built here, sent unchanged for the whole run), and each thread's share of the
// connections and of the rate.

import { Buffer } from 'node:buffer'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { UsageError } from '../../core/errors.ts'

export interface BenchOptions {
  url: string
  connections: number
  threads: number
  durationMs: number
  warmupMs: number
  /** Requests in flight per connection. */
  pipelining: number
  /** Requests per second for the whole run (open model, as wrk2); 0 = as fast as answers come. */
  rate: number
  timeoutMs: number
  method: string
  /** "Name: value" lines, as given. */
  headers: readonly string[]
  body: Buffer | null
  /** false: a new connection per request (Connection: close), like webbench. */
  keepAlive: boolean
  /** https:// only: skip certificate verification (curl's -k). Default false. */
  insecure?: boolean
  /** https:// only: PEM certificates trusted besides the system's (--ca FILE). */
  ca?: Buffer | null
  /** https:// only: a reconnect resumes its connection's previous TLS session. Default true. */
  tlsResume?: boolean
}

/** How a loop's connections speak TLS (https:// URLs). Plain data, like LoopPlan. */
export interface LoopTls {
  /** The URL's host name, sent as SNI and checked against the certificate; '' for an IP address (RFC 6066 §3 allows no IP in SNI). */
  servername: string
  /** PEM certificates trusted besides the system's. */
  extraCa: string | null
  verify: boolean
  resume: boolean
}

/** The part of a run one event loop carries out. Plain data: it crosses to worker threads. */
export interface LoopPlan {
  /** The address to connect to, resolved once (no DNS lookups during the run). */
  address: string
  port: number
  /** One request, exactly as sent. */
  request: Uint8Array
  headRequests: boolean
  connections: number
  pipelining: number
  /** This loop's requests per second; 0 = closed model. */
  rate: number
  durationMs: number
  warmupMs: number
  timeoutMs: number
  keepAlive: boolean
  /** null for http://. */
  tls: LoopTls | null
}

export interface Target {
  hostname: string
  port: number
  /** The value of the Host header. */
  authority: string
  /** The request-target: path and query. */
  path: string
  /** https:// */
  secure: boolean
}

/** Parse URL for `petrel bench`; the message names what is wrong. */
export function parseTarget(url: string): Target {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `not a URL: ${JSON.stringify(url)}; give one such as http://127.0.0.1:8080/`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `unsupported scheme ${parsed.protocol} in ${url}; petrel bench speaks http:// and https://`)
  }
  const secure = parsed.protocol === 'https:'
  if (parsed.username !== '' || parsed.password !== '') {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `credentials in the URL are not supported; send them with -H 'Authorization: ...'`)
  }
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  return {
    hostname,
    port: parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port),
    authority: parsed.host,
    path: `${parsed.pathname}${parsed.search}`,
    secure,
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/** The request bytes: request line, Host, the user's fields, framing, body. */
export function buildRequest(target: Target, options: Pick<BenchOptions, 'method' | 'headers' | 'body' | 'keepAlive'>): Buffer {
  if (!TOKEN.test(options.method))
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --method: ${JSON.stringify(options.method)}; expected a method token such as GET or POST`)
  let host = target.authority
  const lines = [`${options.method} ${target.path} HTTP/1.1`]
  const fields: string[] = []
  let userLength = false
  for (const header of options.headers) {
    const colon = header.indexOf(':')
    const name = colon > 0 ? header.slice(0, colon).trim() : ''
    const value = colon > 0 ? header.slice(colon + 1).trim() : ''
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --header: ${JSON.stringify(header)}; expected "Name: value"`)
    }
    const lower = name.toLowerCase()
    if (lower === 'host') {
      host = value
      continue
    }
    if (lower === 'transfer-encoding') {
      throw new UsageError(
        'PETREL_ERR_CLI_BAD_VALUE',
        `--header ${JSON.stringify(header)}: petrel bench frames bodies with Content-Length; drop the Transfer-Encoding header`,
      )
    }
    if (lower === 'content-length') userLength = true
    if (lower === 'connection' && !options.keepAlive) continue
    fields.push(`${name}: ${value}`)
  }
  lines.push(`Host: ${host}`, ...fields)
  if (!options.keepAlive) lines.push('Connection: close')
  const body = options.body
  if (body !== null && !userLength) lines.push(`Content-Length: ${body.length}`)
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  return body === null ? head : Buffer.concat([head, body])
}

/** Resolve the target and split the work between `threads` event loops. */
export async function planLoops(options: BenchOptions): Promise<LoopPlan[]> {
  const target = parseTarget(options.url)
  const request = buildRequest(target, options)
  let address = target.hostname
  if (isIP(address) === 0) {
    try {
      address = (await lookup(address)).address
    } catch (err) {
      throw new UsageError('PETREL_ERR_BENCH_RESOLVE', `cannot resolve ${target.hostname}: ${(err as Error).message}`)
    }
  }
  const tls: LoopTls | null = target.secure
    ? {
        servername: isIP(target.hostname) === 0 ? target.hostname : '',
        extraCa: options.ca == null ? null : options.ca.toString('latin1'),
        verify: options.insecure !== true,
        resume: options.tlsResume !== false,
      }
    : null
  const threads = Math.min(options.threads, options.connections)
  const plans: LoopPlan[] = []
  for (let t = 0; t < threads; t++) {
    plans.push({
      address,
      port: target.port,
      request,
      headRequests: options.method === 'HEAD',
      connections: share(options.connections, threads, t),
      pipelining: options.pipelining,
      rate: options.rate === 0 ? 0 : (options.rate * share(options.connections, threads, t)) / options.connections,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      timeoutMs: options.timeoutMs,
      keepAlive: options.keepAlive,
      tls,
    })
  }
  return plans
}

/** Loop `index`'s part of `total` split `parts` ways, the remainder going to the first loops. */
function share(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0)
}
