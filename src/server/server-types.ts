// The plain data types of the server's API: what it reports (answers it wrote, counters) and how
// it listens. Kept apart from server.ts, which re-exports them.

import type { ErrorCode } from '../core/errors.ts'

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
