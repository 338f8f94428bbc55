// Every limit and timeout of the HTTP engine has a name, a default and a knob. The defaults follow
// what nginx and node:http ship, leaning strict where a loose value lets one client cost the
// server memory or a worker's time.

import { InvalidOptionError } from './option-error.ts'

export interface Limits {
  /** Bytes of the request line plus all header lines (nginx: large_client_header_buffers). */
  maxHeaderBytes: number
  /** Number of header fields in one request. */
  maxHeaderCount: number
  /** Bytes of the request target (URI). Longer → 414. */
  maxUriBytes: number
  /** Bytes of a request body (nginx: client_max_body_size). Larger → 413, decided from Content-Length before reading. */
  maxBodyBytes: number
  /** Open connections per process. Beyond it a new connection gets 503 and is closed. */
  maxConnections: number
  /** Requests served on one connection before it is closed (nginx: keepalive_requests). */
  maxRequestsPerConnection: number
  /** Bytes queued in a socket's write buffer before the connection stops reading requests. */
  writeHighWaterMark: number
  /** Unread body bytes the server will drain after a response so the connection can be reused; more → close. */
  maxDrainBytes: number
}

export interface Timeouts {
  /** From accepting a TLS connection to the end of its handshake; then the head's timeout starts. → close (no answer can be sent). */
  handshakeMs: number
  /** From the first byte of a request to the end of its head (slowloris). → 408 and close. */
  headersMs: number
  /** Idle time between requests on a keep-alive connection. → close. */
  keepAliveMs: number
  /** Longest stall between two reads of a request body. → 408 and close. */
  bodyMs: number
  /** Longest time a queued response makes no progress because the client does not read. → close. */
  sendMs: number
  /** Longest a handler may take to start its response (send the head). → 503 and close. Streaming after that is sendMs's business. */
  handlerMs: number
  /**
   * After our side closed, how long unread input is drained so the client sees the answer instead
   * of a reset (nginx: lingering_timeout). Also: after the client closed its side mid-response, how
   * long the response may go without a write before the connection is cut.
   */
  lingerMs: number
  /** On graceful stop, how long in-flight requests may take before connections are destroyed. */
  shutdownMs: number
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxUriBytes: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxConnections: 10_000,
  maxRequestsPerConnection: 10_000,
  writeHighWaterMark: 64 * 1024,
  maxDrainBytes: 64 * 1024,
})

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({
  handshakeMs: 10_000,
  headersMs: 10_000,
  keepAliveMs: 5_000,
  bodyMs: 10_000,
  sendMs: 30_000,
  handlerMs: 60_000,
  lingerMs: 5_000,
  shutdownMs: 10_000,
})

/**
 * HTTP/2's own limits (protocol/http2/session.ts): what the server announces in its SETTINGS and
 * what a client may do on one connection. The header list a stream may carry is
 * `Limits.maxHeaderBytes`, as on HTTP/1.1.
 */
export interface Http2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once (nginx: http2_max_concurrent_streams). */
  maxConcurrentStreams: number
  /** SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may send before the handler takes them. */
  initialWindowBytes: number
  /** Request body bytes all streams of a connection may have in flight (the connection window). */
  connectionWindowBytes: number
  /** SETTINGS_MAX_FRAME_SIZE: the largest frame payload a client may send (16,384 to 16,777,215). */
  maxFrameBytes: number
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the client's encoder may use. */
  headerTableBytes: number
  /** Bytes of one header block across HEADERS and CONTINUATION frames (CVE-2024-27316). → ENHANCE_YOUR_CALM. */
  maxHeaderBlockBytes: number
  /** Client RST_STREAMs (rapid reset, CVE-2023-44487), PINGs, SETTINGS and empty frames per controlWindowMs. → ENHANCE_YOUR_CALM. */
  maxControlPerWindow: number
  controlWindowMs: number
}

export const DEFAULT_HTTP2: Readonly<Http2Limits> = Object.freeze({
  maxConcurrentStreams: 100,
  initialWindowBytes: 65_535,
  connectionWindowBytes: 1024 * 1024,
  maxFrameBytes: 16_384,
  headerTableBytes: 4096,
  maxHeaderBlockBytes: 64 * 1024,
  maxControlPerWindow: 200,
  controlWindowMs: 10_000,
})

/** WebSocket's limits and timers (server/websocket.ts): per route, defaults here. */
export interface WebSocketLimits {
  /** Bytes of one message, after inflation. → close 1009. */
  maxMessageBytes: number
  /** Bytes of one frame's payload. → close 1009. */
  maxFrameBytes: number
  /** Bytes queued for a client that does not read before it is closed (1008) and cut. */
  maxBackpressureBytes: number
  /** Quiet time after which the server pings; 0: never. */
  pingIntervalMs: number
  /** Time for the pong to a ping; none: the connection is cut (1006 to the handler). */
  pongTimeoutMs: number
  /** Time for the client's close frame after the server's, and for its TCP close after that. */
  closeTimeoutMs: number
  /** Messages shorter than this are sent uncompressed even when permessage-deflate is agreed. */
  compressMinBytes: number
}

export const DEFAULT_WEBSOCKET: Readonly<WebSocketLimits> = Object.freeze({
  maxMessageBytes: 1024 * 1024,
  maxFrameBytes: 1024 * 1024,
  maxBackpressureBytes: 1024 * 1024,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  compressMinBytes: 1024,
})

/** The largest flow-control window (RFC 9113 §6.9.1) and frame size (§4.2) a peer may be told. */
const MAX_WINDOW = 2 ** 31 - 1
const MAX_FRAME = 2 ** 24 - 1

/** resolveKnobs for Http2Limits, with the ranges RFC 9113 gives SETTINGS values. */
export function resolveHttp2(given: Partial<Http2Limits> | undefined): Http2Limits {
  const out = resolveKnobs('http2', DEFAULT_HTTP2, given)
  const ranges: Array<[keyof Http2Limits, number, number]> = [
    ['maxFrameBytes', 16_384, MAX_FRAME],
    ['initialWindowBytes', 1, MAX_WINDOW],
    ['connectionWindowBytes', 65_535, MAX_WINDOW],
  ]
  for (const [key, min, max] of ranges)
    if (out[key] < min || out[key] > max) throw new InvalidOptionError(`http2.${key} must be from ${min} to ${max}, got ${out[key]}`)
  return out
}

/** Merge user-supplied knobs over the defaults, rejecting unknown names and non-positive values. */
export function resolveKnobs<T extends object>(kind: string, defaults: Readonly<T>, given: Partial<T> | undefined): T {
  const out = { ...defaults } as T
  if (given === undefined) return out
  for (const key of Object.keys(given) as Array<keyof T & string>) {
    if (!(key in defaults)) throw new InvalidOptionError(`unknown ${kind} "${key}"; known: ${Object.keys(defaults).join(', ')}`)
    const value = given[key]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) {
      throw new InvalidOptionError(`${kind}.${key} must be a positive integer, got ${String(value)}`)
    }
    out[key] = value as T[keyof T & string]
  }
  return out
}
