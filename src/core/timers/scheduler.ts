// The driver: one real Node timer that moves the timing wheel and the timer heap forward.
//
// Petrel never gives a connection its own Node timer. undici found per-request setTimeout to be a
// measurable cost and replaced it with one coarse ticking timer and a cached clock; Petrel does
// the same, with a timing wheel behind the tick so that a sweep touches only the timers that are
// due. The consequences, all deliberate:
//
// - `now` is a cached clock, refreshed on every tick. Stamping activity is then a field write
//   (`timer.deadline = sched.now + ms`), but a deadline stamped from the cache can be up to one
//   tick earlier than one stamped from a fresh clock read (more if a callback blocked the event
//   loop since the last tick, as it delays every timer anyway). Together with firing up to one
//   tick after the deadline, connection timeouts are accurate to plus or minus one tick. nginx
//   makes the same trade with ngx_current_msec, cached once per event loop iteration.
// - While any wheel timer is armed, the driver wakes every `tickMs`, whether or not a timer is
//   due: the wake is what keeps `now` fresh enough to stamp deadlines with. With nothing armed it
//   stops, and the next arm reads the clock afresh.
// - Heap timers are precise: the driver also wakes at the earliest heap deadline.
// - The Node timer is unref()ed: timers never keep a process alive on their own, the sockets
//   they time out do.

import { TimerHeap } from './heap.ts'
import type { HeapTimer } from './heap.ts'
import { TimingWheel } from './wheel.ts'
import type { WheelTimer } from './wheel.ts'
import { InvalidOptionError } from '../option-error.ts'

export interface SchedulerOptions<T> {
  /** Wheel tick and driver period in ms while wheel timers are armed. Default 25; at least 1, the resolution of Node's timers. */
  tickMs?: number
  /** Called for each expired wheel timer (see TimingWheel.advance for the rules). */
  onExpire: (owner: T, timer: WheelTimer<T>) => void
  /** Monotonic clock in ms. Default `performance.now()`; tests inject a fake one. */
  clock?: () => number
}

const DEFAULT_TICK_MS = 25

function monotonicNow(): number {
  return performance.now()
}

export class Scheduler<T> {
  readonly wheel: TimingWheel<T>
  readonly heap: TimerHeap
  readonly tickMs: number
  /** Cached monotonic clock in ms, refreshed on every tick and by refresh(). Cheap to read on hot paths. */
  now: number
  private readonly clock: () => number
  private driver: NodeJS.Timeout | null = null
  /** Delay the driver was created with; a wake with the same delay reuses it through refresh(). */
  private driverDelayMs = 0
  /** Clock time the driver is due to fire, Infinity when it is not running. */
  private wakeAtMs = Infinity
  /** Set by close(): ticks do not restart the driver until something is armed again. */
  private stopped = false
  private readonly onDriver = (): void => {
    this.tick()
  }

  constructor(options: SchedulerOptions<T>) {
    const tickMs = options.tickMs ?? DEFAULT_TICK_MS
    if (!(tickMs >= 1 && Number.isFinite(tickMs))) throw new InvalidOptionError(`tickMs must be a finite number of ms >= 1, got ${tickMs}`)
    this.tickMs = tickMs
    this.clock = options.clock ?? monotonicNow
    this.now = this.clock()
    this.wheel = new TimingWheel<T>({ tickMs, now: this.now, onExpire: options.onExpire })
    this.heap = new TimerHeap()
  }

  /** Timers armed now, on the wheel and in the heap. */
  get size(): number {
    return this.wheel.size + this.heap.size
  }

  /** Clock time at which the driver timer is due to fire; Infinity when it is not running. */
  get wakeAt(): number {
    return this.wakeAtMs
  }

  /** Whether the driver timer would keep the process alive. It never does; exposed so tests can say so. */
  hasRef(): boolean {
    return this.driver !== null && this.driver.hasRef()
  }

  /** Read the clock into `now` and return it. */
  refresh(): number {
    this.now = this.clock()
    return this.now
  }

  /**
   * Arm `timer` to fire `ms` from the cached `now`, and make sure the driver is running. To push
   * an armed timer later, write `timer.deadline = sched.now + ms` instead: that is the point.
   */
  armIn(timer: WheelTimer<T>, ms: number): void {
    if (this.wheel.size > 0 && !this.stopped) {
      // The driver is ticking for the wheel, so `now` is at most a tick old.
      this.wheel.arm(timer, this.now + ms)
      return
    }
    // The driver is asleep or waiting for a heap timer, so `now` may be arbitrarily stale.
    this.refresh()
    // An empty wheel can jump to the present for free (no timer can fire), which keeps the new
    // deadline in level 0 or 1 instead of being filed relative to the last time anything ran.
    if (this.wheel.size === 0) this.wheel.advance(this.now)
    this.wheel.arm(timer, this.now + ms)
    this.stopped = false
    this.wakeBy(this.now + this.tickMs)
  }

  /** Disarm a wheel timer. The driver notices an empty scheduler on its next wake and stops. */
  cancel(timer: WheelTimer<T>): void {
    this.wheel.cancel(timer)
  }

  /** Run `callback(arg)` once, `ms` from now (a fresh clock read: heap timers are precise). */
  setTimeout<A>(ms: number, callback: (arg: A) => void, arg: A): HeapTimer {
    if (!(ms >= 0 && Number.isFinite(ms))) throw new InvalidOptionError(`timeout must be a finite number of ms >= 0, got ${ms}`)
    const timer = this.heap.schedule(this.refresh() + ms, callback, arg)
    this.stopped = false
    this.wakeBy(timer.deadline)
    return timer
  }

  clearTimeout(timer: HeapTimer): void {
    this.heap.cancel(timer)
  }

  /**
   * Read the clock, fire every due wheel and heap timer, and schedule the next wake. The driver
   * calls this; a test with a fake clock calls it directly. Returns the number of timers fired.
   */
  tick(): number {
    const now = this.refresh()
    let fired = 0
    try {
      fired = this.wheel.advance(now)
      fired += this.heap.runExpired(now)
    } finally {
      // Also after a throwing callback: the timers it left behind must still fire.
      this.reschedule()
    }
    return fired
  }

  /** Stop the driver. Armed timers stay armed and fire once something is armed again. */
  close(): void {
    this.stopped = true
    this.stopDriver()
  }

  /** Wake at the next tick while the wheel has timers, or at the earliest heap deadline if sooner. */
  private reschedule(): void {
    if (this.stopped) return
    // Callbacks may have run for a while; measure the delay from the time they finished.
    const now = this.refresh()
    let delayMs = this.heap.peek() - now
    if (this.wheel.size > 0 && this.tickMs < delayMs) delayMs = this.tickMs
    if (delayMs === Infinity) this.stopDriver()
    else this.startDriver(delayMs)
  }

  /** Make sure the driver fires no later than clock time `atMs` (`now` must be fresh). */
  private wakeBy(atMs: number): void {
    if (atMs < this.wakeAtMs) this.startDriver(atMs - this.now)
  }

  private startDriver(delayMs: number): void {
    // Node's timers count whole milliseconds from a loop time that may be slightly stale, so the
    // driver can wake a fraction of a millisecond before a deadline on this clock. Rounding up
    // and waiting at least 1 ms makes such a wake find nothing due and sleep again: late by at
    // most a millisecond, never early, never spinning.
    delayMs = delayMs < 1 ? 1 : Math.ceil(delayMs)
    this.wakeAtMs = this.now + delayMs
    const driver = this.driver
    if (driver !== null && this.driverDelayMs === delayMs) {
      // The steady state (ticking at tickMs) re-arms the same Node timer without allocating.
      driver.refresh()
      return
    }
    if (driver !== null) clearTimeout(driver)
    this.driver = setTimeout(this.onDriver, delayMs)
    this.driver.unref()
    this.driverDelayMs = delayMs
  }

  private stopDriver(): void {
    if (this.driver !== null) clearTimeout(this.driver)
    this.driver = null
    this.wakeAtMs = Infinity
  }
}
