// An HTTP/2 stream as the session keeps it (its state and both flow-control windows), and what a
// session is made with: its limits, its owner's events and its output. session.ts re-exports them.

import { Buffer } from 'node:buffer'
import { DEFAULT_HTTP2, DEFAULT_LIMITS, type Http2Limits } from '../../core/limits.ts'
import type { H2Error } from './frames.ts'

/** What a session is made with: HTTP/2's limits (core/limits.ts), and the header list a stream may carry. */
export interface SessionLimits extends Http2Limits {
  /** SETTINGS_MAX_HEADER_LIST_SIZE this side announces (default 16 KiB, the server's limits.maxHeaderBytes). */
  maxHeaderListBytes: number
}

export const SESSION_DEFAULTS: Readonly<SessionLimits> = Object.freeze({ ...DEFAULT_HTTP2, maxHeaderListBytes: DEFAULT_LIMITS.maxHeaderBytes })

export interface SessionEvents {
  /** A request head (`fields` flat [name, value, …], as decoded: valid until the call returns); `endStream` when it has no body. */
  request(stream: H2Stream, fields: string[], endStream: boolean): void
  /** Body bytes (a view valid until the call returns); `end` on the last. The owner calls consume() as it takes them. */
  data(stream: H2Stream, chunk: Buffer, start: number, end: number, endStream: boolean): void
  /** Trailer fields ended the request. */
  trailers(stream: H2Stream, fields: string[]): void
  /** The stream ended without completing: reset by the client (its code), or by this side. */
  reset(stream: H2Stream, code: H2Error): void
  /** Room again to send on this stream after sendData() said to wait. */
  writable(stream: H2Stream): void
  /** A header list over maxHeaderListBytes: the owner answers 431 on the stream. */
  headersTooLarge(stream: H2Stream): void
  /** No stream is open any more (the connection's idle time starts). */
  streamsDone(): void
  /** The connection is over (GOAWAY sent or received and the last stream done, or an error). */
  closed(code: H2Error, why: string): void
}

/** Told that bytes given to the output are written (or will never be): their buffer is the caller's again. */
export type Done = (err?: Error | null) => void

export interface SessionOutput {
  /** Queue bytes for the socket; false when it is behind. `done`: called once the socket no longer needs them. */
  write(bytes: Buffer, done?: Done): boolean
  /** Close the socket once what is queued is written. */
  end(): void
}

/** Stream states a server sees (§5.1); idle and reserved streams have no object. */
export const StreamState = { OPEN: 0, HALF_CLOSED_REMOTE: 1, HALF_CLOSED_LOCAL: 2, CLOSED: 3 } as const
export type StreamState = (typeof StreamState)[keyof typeof StreamState]

export class H2Stream {
  readonly id: number
  state: StreamState = StreamState.OPEN
  /** What this side may still send on the stream (the peer's window for it). */
  sendWindow: number
  /** What the peer may still send (this side's window for it). */
  recvWindow: number
  /** Body bytes received and not yet returned to the window by consume(). */
  unconsumed = 0
  /** DATA waiting for window: [buffer, start, end, end stream, called once the output no longer needs the buffer]. */
  pending: Array<[Buffer, number, number, boolean, Done | undefined]> = []
  pendingBytes = 0
  /** When this side ended its half (the response's END_STREAM), and when DATA last came, on the session's clock. */
  localEndedAt = 0
  lastDataAt = 0
  /** Trailer fields to send once the pending DATA is out (HEADERS with END_STREAM). */
  trailers: ReadonlyArray<readonly [string, string]> | null = null
  /** The owner's object for the stream (the Request/Response pair). */
  owner: unknown = null
  /** Content-Length the request declared, or -1; checked against DATA (§8.1.1). */
  declaredLength = -1
  receivedLength = 0

  constructor(id: number, sendWindow: number, recvWindow: number) {
    this.id = id
    this.sendWindow = sendWindow
    this.recvWindow = recvWindow
  }

  /** DATA that will never be sent: its buffers go back to their callers. */
  dropPending(): void {
    const pending = this.pending
    this.pending = []
    this.pendingBytes = 0
    for (const item of pending) item[4]?.()
  }
}

/**
 * Ranges of stream ids a client skipped (opened 5 after 1: 3 was never opened), the newest few:
 * HEADERS on such an id is a PROTOCOL_ERROR (§5.1.1), on a closed one STREAM_CLOSED. A client
 * rarely skips at all; past the ranges kept, an old id counts as closed.
 */
export class SkippedIds {
  private static readonly KEPT = 8
  /** [first, last] pairs, oldest first. */
  private readonly ranges: number[] = []

  add(first: number, last: number): void {
    if (this.ranges.length === SkippedIds.KEPT * 2) this.ranges.splice(0, 2)
    this.ranges.push(first, last)
  }

  has(id: number): boolean {
    const r = this.ranges
    for (let i = 0; i < r.length; i += 2) if (id >= r[i]! && id <= r[i + 1]!) return true
    return false
  }
}

/** So many control frames (resets, pings, settings, empty frames) per window of time; past them, take() is false. */
export class ControlBudget {
  private readonly max: number
  private readonly windowMs: number
  private count = 0
  private windowStart = 0

  constructor(max: number, windowMs: number) {
    this.max = max
    this.windowMs = windowMs
  }

  take(now: number): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now
      this.count = 0
    }
    return ++this.count <= this.max
  }
}
