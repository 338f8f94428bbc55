// What the master and its workers say to each other over the IPC channel.

import type { AddressInfo } from 'node:net'
import type { ServeOptions } from '../apps/serve/serve.ts'
import type { RunAs } from './privileges.ts'

export type ToWorker =
  /** Start serving; with `shared` the listening socket comes as the message's handle. */
  | { type: 'start'; options: ServeOptions; reusePort: boolean; shared: boolean; idleGraceMs: number; runAs: RunAs | null }
  /** Graceful stop: stop accepting, finish in-flight requests (up to timeouts.shutdownMs), exit. */
  | { type: 'quit' }
  /** Fast stop: cut every connection and exit. */
  | { type: 'stop' }
  /** Reopen log files (after logrotate moved them away). */
  | { type: 'reopen' }

export type FromWorker =
  | { type: 'listening'; address: AddressInfo }
  | { type: 'failed'; message: string }
