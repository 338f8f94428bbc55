// The plain data types of the server's API: what it reports (answers it wrote, counters) and how
// it listens. Kept apart from server.ts, which re-exports them.

import type { ErrorCode } from '../core/errors.ts'
import type { Http2Limits, Limits, Timeouts } from '../core/limits.ts'
import type { MetricsSink } from './metrics-sink.ts'
import type { Request } from './request.ts'
import type { Response } from './response.ts'
import type { TlsOptions } from './tls.ts'

/** An answer the server wrote without a handler; request fields are empty when no head was parsed. */
export interface ServerAnswer {
  remoteAddress: string | undefined
  status: number
  bodyBytes: number
  method: string
  url: string
  httpVersion: string
  startedAtMs: number
}

export interface ListenOptions {
  port?: number
  host?: string
  /** Length of the kernel's accept queue (listen(2) backlog). */
  backlog?: number
  /** SO_REUSEPORT: several processes may listen on the same address; the kernel spreads connections. */
  reusePort?: boolean
  /** TCP keep-alive probes on accepted sockets, after this many ms idle; 0 = off. */
  keepAliveProbeMs?: number
}

/** Counters a monitor or a test can read; cheap increments on the paths that change them. */
export interface ServerStats {
  accepted: number
  rejected: number
  requests: number
  protocolErrors: Partial<Record<ErrorCode, number>>
  timeouts: Partial<Record<ErrorCode, number>>
  acceptErrors: number
  /** TLS handshakes completed, and how many of them resumed a session (a ticket). */
  tlsHandshakes: number
  tlsResumed: number
}

/** What createServer() takes. */
export interface ServerOptions {
  limits?: Partial<Limits>
  timeouts?: Partial<Timeouts>
  /** Called for errors that are not a client's fault: a handler that threw, a socket error. Default: console.error. */
  onError?: (err: Error, req?: Request) => void
  /** Called when a handler has finished a response (for access logs); `startedAtMs` is epoch ms at the request head. */
  onResponse?: (req: Request, res: Response, startedAtMs: number) => void
  /** Called for answers the server writes itself: malformed requests, timeouts, 503s (for access logs). */
  onServerAnswer?: (answer: ServerAnswer) => void
  /** Count responses, latency and bytes here (monitor/metrics.ts implements it); off when absent. */
  metrics?: MetricsSink
  /** Serve HTTPS: every accepted connection is TLS, with these certificates and settings (server/tls.ts). */
  tls?: TlsOptions
  /** Fields every response on a connection carries (e.g. Strict-Transport-Security), the server's own 400s and 408s included. */
  responseHeaders?: Record<string, string>
  /**
   * HTTP/2 (server/h2-connection.ts), on by default: ALPN `h2` on TLS, and on cleartext a client
   * that starts with the HTTP/2 preface (prior knowledge). `false` serves HTTP/1.1 only; an object
   * sets HTTP/2's limits (core/limits.ts Http2Limits).
   */
  http2?: boolean | Partial<Http2Limits>
}
