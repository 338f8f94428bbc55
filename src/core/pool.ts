// A pool of connections (book ch. 8.7's connection pool): between `min` and `max` resources
// made by `create`, lent one at a time. A borrower that finds none free waits in a bounded FIFO
// queue, with a deadline; a full queue or a deadline passed is a 503 to the client, never an
// unbounded pile-up. A resource idle longer than the health-check age is checked before it is
// lent; one that fails the check, or that its borrower reports broken, is destroyed and
// replaced. `drain()` stops lending, waits for the borrowed ones to come back, then closes all.

import { PetrelError } from './errors.ts'
import { wholeNumberOption } from './option-error.ts'

export interface PoolOptions<T> {
  /** Resources kept even when idle (made at start, and again after one is destroyed). */
  min?: number
  max: number
  create: () => Promise<T>
  destroy: (resource: T) => Promise<void> | void
  /** True when the resource still works; run on borrow for resources idle over `checkAfterMs`. */
  check?: (resource: T) => Promise<boolean>
  checkAfterMs?: number
  /** How long a borrower waits for a free resource. */
  acquireTimeoutMs?: number
  /** Borrowers waiting at once; one more fails at once. */
  maxWaiters?: number
  /** Resources over `min` idle this long are closed. */
  idleTimeoutMs?: number
  /** Errors that are nobody's to throw: a failed create or destroy while nobody waits. */
  onError?: (err: Error) => void
}

export const POOL_DEFAULTS = {
  min: 0,
  acquireTimeoutMs: 2_000,
  maxWaiters: 1_000,
  checkAfterMs: 30_000,
  idleTimeoutMs: 60_000,
} as const

interface Idle<T> {
  resource: T
  since: number
}

interface Waiter<T> {
  resolve: (resource: T) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

export interface PoolStats {
  size: number
  idle: number
  borrowed: number
  waiting: number
  created: number
  destroyed: number
  timeouts: number
}

export class ResourcePool<T> {
  private readonly options: Required<Omit<PoolOptions<T>, 'check' | 'onError'>> & Pick<PoolOptions<T>, 'check' | 'onError'>
  private readonly idle: Idle<T>[] = []
  private readonly borrowed = new Set<T>()
  private readonly waiters: Waiter<T>[] = []
  /** Resources being made right now (they count toward max). */
  private creating = 0
  private closing: Promise<void> | null = null
  private drained: (() => void) | null = null
  private reaper: NodeJS.Timeout | null = null
  readonly stats = { created: 0, destroyed: 0, timeouts: 0 }

  constructor(options: PoolOptions<T>) {
    wholeNumberOption('pool max', options.max, 1)
    this.options = {
      min: Math.min(options.min ?? POOL_DEFAULTS.min, options.max),
      acquireTimeoutMs: POOL_DEFAULTS.acquireTimeoutMs,
      maxWaiters: POOL_DEFAULTS.maxWaiters,
      checkAfterMs: POOL_DEFAULTS.checkAfterMs,
      idleTimeoutMs: POOL_DEFAULTS.idleTimeoutMs,
      ...options,
    }
    // Idle resources are closed between idleTimeoutMs and 1.25 × idleTimeoutMs after their last use.
    this.reaper = setInterval(() => this.reapIdle(), Math.max(100, this.options.idleTimeoutMs / 4))
    this.reaper.unref()
  }

  /** Make the `min` resources now; rejects with the first failure (e.g. the database is down). */
  async start(): Promise<void> {
    const made = await Promise.allSettled(Array.from({ length: this.options.min }, () => this.make()))
    const failed = made.find((m) => m.status === 'rejected')
    for (const m of made) {
      if (m.status !== 'fulfilled') continue
      // One failed: the others are closed, not leaked.
      if (failed !== undefined) await this.discard(m.value)
      else this.idle.push({ resource: m.value, since: Date.now() })
    }
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  }

  get size(): number {
    return this.idle.length + this.borrowed.size + this.creating
  }

  snapshot(): PoolStats {
    return { size: this.size, idle: this.idle.length, borrowed: this.borrowed.size, waiting: this.waiters.length, ...this.stats }
  }

  /** A resource to use and give back with release(); waits up to acquireTimeoutMs. */
  async acquire(): Promise<T> {
    if (this.closing !== null) throw new PetrelError('PETREL_ERR_DB_POOL_CLOSED')
    for (;;) {
      const idle = this.idle.pop()
      if (idle === undefined) break
      if (this.options.check !== undefined && Date.now() - idle.since >= this.options.checkAfterMs) {
        let ok = false
        // Counted while checked, so that nobody else makes one over max meanwhile.
        this.creating++
        try {
          ok = await this.options.check(idle.resource)
        } catch {}
        this.creating--
        if (!ok) {
          await this.discard(idle.resource)
          continue
        }
      }
      this.borrowed.add(idle.resource)
      return idle.resource
    }
    if (this.size < this.options.max) {
      this.creating++
      let resource: T
      try {
        resource = await this.options.create()
        this.stats.created++
      } catch (err) {
        this.creating--
        // The room this borrower had is free again: a waiter may try it.
        this.refill()
        throw err
      }
      this.creating--
      this.borrowed.add(resource)
      return resource
    }
    if (this.waiters.length >= this.options.maxWaiters) throw new PetrelError('PETREL_ERR_DB_POOL_FULL', `${this.waiters.length} requests are waiting already`)
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter)
          if (i >= 0) this.waiters.splice(i, 1)
          this.stats.timeouts++
          reject(new PetrelError('PETREL_ERR_DB_POOL_TIMEOUT', `no connection free within ${this.options.acquireTimeoutMs} ms (pool of ${this.options.max})`))
        }, this.options.acquireTimeoutMs),
      }
      this.waiters.push(waiter)
    })
  }

  /** Give a resource back; `broken` (its connection failed) destroys it and makes a new one if anyone waits. */
  release(resource: T, broken = false): void {
    if (!this.borrowed.delete(resource)) return
    if (broken || this.closing !== null) {
      void this.discard(resource).then(() => this.refill())
      return
    }
    const waiter = this.waiters.shift()
    if (waiter !== undefined) {
      clearTimeout(waiter.timer)
      this.borrowed.add(resource)
      waiter.resolve(resource)
      return
    }
    this.idle.push({ resource, since: Date.now() })
  }

  /** Borrow, run `work`, give back — broken when `work` throws an error `isBroken` says is the connection's. */
  async use<R>(work: (resource: T) => Promise<R>, isBroken: (err: unknown) => boolean = () => false): Promise<R> {
    const resource = await this.acquire()
    let broken = false
    try {
      return await work(resource)
    } catch (err) {
      broken = isBroken(err)
      throw err
    } finally {
      this.release(resource, broken)
    }
  }

  /** Stop lending; wait up to `timeoutMs` for borrowed resources to return; close everything. */
  drain(timeoutMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      if (this.reaper !== null) clearInterval(this.reaper)
      for (const waiter of this.waiters.splice(0)) {
        clearTimeout(waiter.timer)
        waiter.reject(new PetrelError('PETREL_ERR_DB_POOL_CLOSED'))
      }
      if (this.borrowed.size > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve
          setTimeout(resolve, timeoutMs).unref()
        })
      }
      const all = [...this.idle.splice(0).map((i) => i.resource), ...this.borrowed]
      this.borrowed.clear()
      await Promise.all(all.map((r) => this.discard(r)))
    })()
    return this.closing
  }

  private async make(): Promise<T> {
    this.creating++
    try {
      const resource = await this.options.create()
      this.stats.created++
      return resource
    } finally {
      this.creating--
    }
  }

  private async discard(resource: T): Promise<void> {
    this.stats.destroyed++
    try {
      await this.options.destroy(resource)
    } catch (err) {
      this.options.onError?.(err as Error)
    }
    if (this.closing !== null && this.borrowed.size === 0) this.drained?.()
  }

  /** After a resource was destroyed: a new one for a waiter, or to get back to `min`. */
  private refill(): void {
    if (this.closing !== null) return
    if (this.waiters.length === 0 && this.size >= this.options.min) return
    if (this.size >= this.options.max) return
    this.make().then(
      (resource) => {
        this.borrowed.add(resource)
        this.release(resource)
      },
      (err: Error) => {
        const waiter = this.waiters.shift()
        if (waiter === undefined) return this.options.onError?.(err)
        clearTimeout(waiter.timer)
        waiter.reject(err)
      },
    )
  }

  /** Close resources over `min` that nobody borrowed for idleTimeoutMs. */
  private reapIdle(): void {
    const cutoff = Date.now() - this.options.idleTimeoutMs
    while (this.idle.length > 0 && this.size > this.options.min && this.idle[0]!.since < cutoff) {
      void this.discard(this.idle.shift()!.resource)
    }
  }
}
