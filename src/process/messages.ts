// What the master and its workers say to each other over the IPC channel.

import type { AddressInfo } from 'node:net'
import type { ErrorCode } from '../core/errors.ts'
import type { ServeOptions } from '../apps/serve/serve.ts'
import type { RunAs } from './privileges.ts'
import type { ProcessSnapshot } from '../monitor/metrics.ts'

export type ToWorker =
  /** Start serving: listen with reusePort, or (handedOver) take connections the master accepts. */
  | { type: 'start'; options: ServeOptions; reusePort: boolean; handedOver: AddressInfo | null; idleGraceMs: number; runAs: RunAs | null; worker: number }
  /** A connection the master accepted, as the message's handle (fallback mode without reusePort). */
  | { type: 'connection' }
  /** Graceful stop: stop accepting, close idle connections, finish in-flight requests (up to timeouts.shutdownMs), exit. */
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
  | { type: 'listening'; address: AddressInfo }
  /** Start-up failed; `message` is the whole line a user would read, `code` the error's when it had one. */
  | { type: 'failed'; message: string; code?: ErrorCode }
  /** Once a second when the admin listener is on: this worker's figures (monitor/metrics.ts). */
  | { type: 'metrics'; snapshot: ProcessSnapshot }
