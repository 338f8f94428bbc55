// What the supervisor and its workers say to each other over the IPC channel: the lifecycle, the
// same for every program. A program's own messages (a serve worker's metrics, a chat room's
// events) travel on the same channel; every message, the program's too, has one `type` field.

import type { AddressInfo } from 'node:net'
import type { ErrorCode } from '../core/errors.ts'
import type { RunAs } from './privileges.ts'
import type { ProcessSnapshot } from '../monitor/metrics.ts'

/** Start serving with `options` (the program's own): listen with reusePort, or (handedOver) take connections the supervisor accepts. */
export interface StartMessage<Options> {
  type: 'start'
  options: Options
  reusePort: boolean
  handedOver: AddressInfo | null
  idleGraceMs: number
  /** The user (and group) to switch to once bound; null keeps the supervisor's. */
  runAs: RunAs | null
  /** The worker's slot: the lowest number no other live worker has. */
  worker: number
}

export type ToWorker<Options> =
  | StartMessage<Options>
  /** A connection the master accepted, as the message's handle (fallback mode without reusePort). */
  | { type: 'connection' }
  /** Graceful stop: stop accepting, close idle connections, finish in-flight work (up to the program's shutdown timeout), exit. */
  | { type: 'quit' }
  /**
   * Replaced by a reload: as quit, but an idle keep-alive connection is given `idleGraceMs` (its
   * next request answered with Connection: close) rather than closed while a request may be on
   * its way; the clients of a server that stays up should not see a connection close unanswered.
   */
  | { type: 'retire' }
  /** Fast stop: cut every connection and exit. */
  | { type: 'stop' }
  /** Reopen log files (after logrotate moved them away). */
  | { type: 'reopen' }

export type FromWorker =
  /** `others`: listeners the program opened besides its main one (chat's web side), in the program's order. */
  | { type: 'listening'; address: AddressInfo; others?: AddressInfo[] }
  /** Start-up failed; `message` is the whole line a user would read, `code` the error's when it had one. */
  | { type: 'failed'; message: string; code?: ErrorCode }

/** Once a second when the admin listener is on: a worker's figures (monitor/metrics.ts), for the master's board. */
export interface MetricsReport {
  type: 'metrics'
  snapshot: ProcessSnapshot
}
