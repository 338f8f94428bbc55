// The phases of a connection. Each connection has one phase timer, and what its expiry means
// follows the phase (docs/architecture.md, Timeouts): a 408 while a head or body is awaited, a
// 503 while a handler has not answered, a close between requests or while lingering.

import type { Timeouts } from '../core/limits.ts'

/** What the connection's phase timer means right now. */
export const Phase = {
  /** Waiting for (the rest of) a request head: timeouts.headersMs from its first byte. */
  HEAD: 0,
  /** Reading a request body: timeouts.bodyMs between reads (suspended while we are the slow side). */
  BODY: 1,
  /** The handler has the request: timeouts.handlerMs until it sends the response head. */
  HANDLER: 2,
  /** Between requests: timeouts.keepAliveMs. */
  IDLE: 3,
  /** Our side is ending: unread input is dropped until the client closes or timeouts.lingerMs passes. */
  LINGER: 4,
  CLOSED: 5,
  /**
   * The client closed its side while its response was unfinished: the handler has been told
   * (res.signal) and may still finish for a client that only half-closed, but a response that
   * goes quiet for timeouts.lingerMs is cut — whatever the handler does, the socket is freed.
   */
  HALF_CLOSED: 6,
} as const
export type Phase = (typeof Phase)[keyof typeof Phase]

/** How long the phase timer runs in `phase`, counted from entering it; -1: no timer (CLOSED). */
export function phaseTimeoutMs(phase: Phase, timeouts: Timeouts): number {
  switch (phase) {
    case Phase.HEAD:
      return timeouts.headersMs
    case Phase.BODY:
      return timeouts.bodyMs
    case Phase.HANDLER:
      return timeouts.handlerMs
    case Phase.IDLE:
      return timeouts.keepAliveMs
    case Phase.LINGER:
    case Phase.HALF_CLOSED:
      return timeouts.lingerMs
    default:
      return -1
  }
}
