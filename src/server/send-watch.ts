// A client taking (or not taking) what is queued for it. The send timeout: while a response is
// queued for a client, only progress keeps the connection:
// a client that stops reading is cut after timeouts.sendMs, whatever phase the connection is in,
// so a large response on a closing connection is not cut by the linger timer and a stalled
// reader cannot hold a descriptor and its queued bytes for good. The timer runs only while
// output is queued.

import type { Socket } from 'node:net'
import { PetrelError } from '../core/errors.ts'
import type { Timeouts } from '../core/limits.ts'
import { WheelTimer, type Scheduler } from '../core/timers/index.ts'

/** How often a queued response is checked for progress, at most. */
const SEND_CHECK_MS = 1000

export class SendWatch<Owner> {
  /** Fires at each check; the scheduler's onExpire tells it from the owner's other timers. */
  readonly timer: WheelTimer<Owner>
  private readonly socket: Socket
  private readonly scheduler: Scheduler<Owner>
  private readonly timeouts: Timeouts
  private lastFlushed = 0
  private lastProgressAt = 0

  constructor(owner: Owner, socket: Socket, scheduler: Scheduler<Owner>, timeouts: Timeouts) {
    this.timer = new WheelTimer<Owner>(owner)
    this.socket = socket
    this.scheduler = scheduler
    this.timeouts = timeouts
  }

  /**
   * Start watching when output is queued and nothing watches yet. Under a cork the bytes are only
   * held, not queued: whoever uncorks looks again.
   */
  watchIfQueued(): void {
    const socket = this.socket
    if (socket.writableLength > 0 && socket.writableCorked === 0 && !this.timer.armed) {
      this.lastFlushed = this.flushedBytes()
      this.lastProgressAt = this.scheduler.now
      this.scheduler.armIn(this.timer, Math.min(this.timeouts.sendMs, SEND_CHECK_MS))
    }
  }

  /**
   * The timer fired: look for progress and watch on while output is queued. False when the client
   * took nothing for timeouts.sendMs: the connection is to be closed.
   */
  check(): boolean {
    if (this.socket.writableLength === 0) return true
    const { scheduler, timeouts } = this
    const flushed = this.flushedBytes()
    if (flushed !== this.lastFlushed) {
      this.lastFlushed = flushed
      this.lastProgressAt = scheduler.now
    } else if (scheduler.now - this.lastProgressAt >= timeouts.sendMs) {
      return false
    }
    scheduler.armIn(this.timer, Math.min(timeouts.sendMs, SEND_CHECK_MS))
    return true
  }

  stop(): void {
    this.scheduler.cancel(this.timer)
  }

  /**
   * A number that changes whenever the kernel takes bytes of the queued output. Node's own
   * counters move only when a whole write request completes — and Node joins queued writes into
   * one writev — so a 16 MB response read steadily would look stuck. libuv's write queue size
   * (exposed on the handle) shrinks with every partial write, so it is read as well.
   */
  private flushedBytes(): number {
    const handle = (this.socket as unknown as { _handle?: { writeQueueSize?: number } })._handle
    return this.socket.bytesWritten - this.socket.writableLength - (handle?.writeQueueSize ?? 0)
  }
}

/**
 * Handlers waiting for the client to take what was written (Response.drain()): the promises are
 * made only when someone waits, and settled together at the socket's 'drain' or its close.
 */
export class DrainWaiters {
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> | null = null

  get waiting(): boolean {
    return this.waiters !== null
  }

  /** Resolves when `socket` has caught up (at once if it has); rejects when it is `closed` or closes. */
  wait(socket: Socket, closed: boolean): Promise<void> {
    if (closed) return Promise.reject(new PetrelError('PETREL_ERR_CONNECTION_CLOSED'))
    if (!socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve, reject) => (this.waiters ??= []).push({ resolve, reject }))
  }

  resolve(): void {
    const waiters = this.waiters
    if (waiters === null) return
    this.waiters = null
    for (const w of waiters) w.resolve()
  }

  reject(err: Error): void {
    const waiters = this.waiters
    if (waiters === null) return
    this.waiters = null
    for (const w of waiters) w.reject(err)
  }
}
