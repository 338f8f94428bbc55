// Hierarchical timing wheel for connection timeouts (Varghese & Lauck, "Hashed and Hierarchical
// Timing Wheels", scheme 7; the layout follows Linux's tv1..tv5 in kernel/timer.c before 4.8,
// with four levels and an overflow list).
//
// Connection timeouts are armed and pushed back constantly and almost never fire, so arming,
// pushing and cancelling must be O(1) and must not allocate. Firing may be coarse: a keep-alive
// timeout that closes a socket 25 ms late is as good as one that closes it on time.
//
// Layout. Time is cut into ticks of `tickMs`. Level 0 has 256 slots of one tick each; every
// further level has 64 slots, each slot as wide as the whole level below it. With the default
// 25 ms tick the levels span 6.4 s, 6.8 min, 7.3 h and 19.4 days. A timer is filed in the finest
// level whose span still reaches its deadline; a timer further away than the top level reaches
// waits in an overflow list. When level 0 wraps, the next slot of level 1 is "cascaded": its
// timers are re-filed, which drops each of them into level 0 or into a finer higher level; when
// level 1 wraps, level 2 cascades, and so on, and when the top level wraps the overflow list is
// re-filed. On its way down a timer is cascaded at most once per level, so a timer that fires
// costs O(levels) in all, and one that is cancelled first costs less.
//
// Firing is exact, scanning is coarse. A timer fires on the first advance() whose time is at or
// past its deadline, never earlier. Slots are processed a tick at a time, and the slot of the
// current tick is scanned again on every advance until the clock leaves it, so a deadline in the
// middle of a tick is neither fired early nor held back to the end of its tick.
//
// Lazy re-arm. Activity on a connection moves its deadline later, and that must cost a field
// write: the owner writes `timer.deadline = now + ms` and the wheel does nothing. When the slot
// the timer was filed in comes up, the wheel reads the deadline again and re-files the timer
// instead of firing it. A connection that is busy for a whole timeout period is therefore
// re-filed once per period, however many requests it served. nginx gets part of this by not
// re-arming when the new deadline is within NGX_TIMER_LAZY_DELAY (300 ms) of the old one, at the
// price of firing up to 300 ms early; the field write subsumes that trick: it skips the relink
// whatever the distance, and because the wheel reads the current deadline, the timer still fires
// at exactly the deadline the owner last wrote.

import { InvalidOptionError } from '../option-error.ts'

/** Slots in level 0 (8 bits of the tick number). */
const LEVEL0_SLOTS = 256
/** Slots in each level above 0 (6 bits of the tick number each). */
const LEVEL_SLOTS = 64
/** Number of levels, level 0 included. */
const LEVELS = 4
/** First slot id of each level in the flat `heads`/`tails` arrays. */
const LEVEL_BASE = [0, 256, 320, 384] as const
/** Ticks covered by one slot of each level: 1, 2^8, 2^14, 2^20. */
const SLOT_TICKS = [1, 256, 16_384, 1_048_576] as const
/** Ticks covered by each whole level: 2^8, 2^14, 2^20, 2^26. A delta at or beyond the last goes to the overflow list. */
const LEVEL_SPAN_TICKS = [256, 16_384, 1_048_576, 67_108_864] as const
/** Slot id of the overflow list: timers further away than the top level reaches. */
const OVERFLOW = LEVEL_BASE[3] + LEVEL_SLOTS
/** Slot id of the list of timers collected by advance() and not yet fired. */
const EXPIRING = OVERFLOW + 1
const SLOT_COUNT = EXPIRING + 1
/** `WheelTimer.slot` of a timer that is in no list. */
const NOT_LINKED = -1

/** Which counter in `levelCounts` each slot id belongs to: 0..3 the levels, 4 overflow, 5 expiring. */
const SLOT_LEVEL = new Uint8Array(SLOT_COUNT)
for (const [level, base] of LEVEL_BASE.entries()) if (level > 0) SLOT_LEVEL.fill(level, base, base + LEVEL_SLOTS)
SLOT_LEVEL[OVERFLOW] = LEVELS
SLOT_LEVEL[EXPIRING] = LEVELS + 1

/**
 * One timeout, embedded in the object it times (a connection). The wheel links it into its slot
 * lists through the fields below, so arming it never allocates.
 *
 * A timer belongs to one wheel at a time; arming it on a second wheel while it is armed on the
 * first corrupts both.
 */
export class WheelTimer<T> {
  readonly owner: T
  /**
   * Absolute deadline in ms on the wheel's clock; 0 when not armed. While the timer is armed the
   * owner may move it LATER with a plain write (`timer.deadline = now + ms`): the wheel re-files
   * the timer when its old slot comes up. Moving it earlier needs `wheel.arm()`, and disarming
   * needs `wheel.cancel()`; a plain write of an earlier value only takes effect when the old slot
   * comes up, which may be late.
   */
  deadline = 0
  /** Intrusive list links, owned by the wheel. */
  prev: WheelTimer<T> | null = null
  next: WheelTimer<T> | null = null
  /** Slot id this timer is linked in, or -1. Owned by the wheel. */
  slot = NOT_LINKED
  /** Tick the timer was filed for; the wheel examines the timer again no later than this tick. Owned by the wheel. */
  filedTick = 0

  constructor(owner: T) {
    this.owner = owner
  }

  /** True from arm() until the timer fires or is cancelled. */
  get armed(): boolean {
    return this.slot !== NOT_LINKED
  }
}

export interface TimingWheelOptions<T> {
  /** Width of one tick in ms: the granularity at which slots are scanned. */
  tickMs: number
  /** The clock's current time in ms; the wheel starts there. */
  now: number
  /** Called once for each timer that expires, after every expired timer has been collected. */
  onExpire: (owner: T, timer: WheelTimer<T>) => void
}

export class TimingWheel<T> {
  readonly tickMs: number
  private readonly onExpire: (owner: T, timer: WheelTimer<T>) => void
  /** First and last timer of each slot's list (FIFO, so timers due in the same tick fire in the order they were filed). */
  private readonly heads: Array<WheelTimer<T> | null>
  private readonly tails: Array<WheelTimer<T> | null>
  /** Timers linked per level, plus overflow and expiring; lets advance() jump over empty stretches. */
  private readonly levelCounts = new Int32Array(LEVELS + 2)
  /** Tick of the last advance; slots of earlier ticks are done, the slot of this tick may still hold timers not yet due. */
  private tick: number
  private nowMs: number
  private armedCount = 0

  constructor(options: TimingWheelOptions<T>) {
    const { tickMs, now, onExpire } = options
    if (!(tickMs > 0 && Number.isFinite(tickMs))) throw new InvalidOptionError(`tickMs must be a positive finite number of ms, got ${tickMs}`)
    if (!(now >= 0 && Number.isFinite(now))) throw new InvalidOptionError(`now must be a finite time in ms >= 0, got ${now}`)
    this.tickMs = tickMs
    this.onExpire = onExpire
    this.heads = new Array<WheelTimer<T> | null>(SLOT_COUNT).fill(null)
    this.tails = new Array<WheelTimer<T> | null>(SLOT_COUNT).fill(null)
    this.nowMs = now
    this.tick = this.tickOf(now)
  }

  /**
   * The first and last timer of a slot's list. Both arrays hold SLOT_COUNT entries from the
   * constructor on, and every slot id is below SLOT_COUNT, so `?? null` never changes a value:
   * it only tells the compiler that an empty slot reads as null.
   */
  private headOf(slot: number): WheelTimer<T> | null {
    return this.heads[slot] ?? null
  }

  private tailOf(slot: number): WheelTimer<T> | null {
    return this.tails[slot] ?? null
  }

  /** Current wheel time: the `now` of the last advance (or of construction). */
  get now(): number {
    return this.nowMs
  }

  /** Number of armed timers, including expired ones whose callback has not run yet. */
  get size(): number {
    return this.armedCount
  }

  /**
   * Arm or re-arm `timer` to fire at the absolute time `deadline`. O(1).
   *
   * Re-arming an armed timer to a deadline in the same tick as, or later than, the one it is filed
   * for is a field write; an earlier one relinks it. A deadline at or before `now` fires on the
   * next advance().
   */
  arm(timer: WheelTimer<T>, deadline: number): void {
    if (!Number.isFinite(deadline)) throw new InvalidOptionError(`timer deadline must be a finite time in ms, got ${deadline}`)
    // 0 marks a disarmed timer. A fake clock that starts at zero can ask for a deadline of 0 or
    // less, which is already due; store the smallest positive number so the mark stays truthful.
    if (deadline <= 0) deadline = Number.MIN_VALUE
    const tick = this.tickOf(deadline)
    const slot = timer.slot
    if (slot === NOT_LINKED) {
      this.armedCount++
    } else if (slot !== EXPIRING && tick >= timer.filedTick) {
      // The wheel will look at this timer no later than its filed tick and re-file it by
      // whatever deadline it finds then, so a later deadline needs no relink.
      timer.deadline = deadline
      return
    } else {
      this.unlink(timer)
    }
    timer.deadline = deadline
    this.file(timer, tick)
  }

  /** Disarm `timer` in O(1); its deadline becomes 0. A timer that is not armed is left alone. */
  cancel(timer: WheelTimer<T>): void {
    if (timer.slot === NOT_LINKED) return
    this.unlink(timer)
    timer.deadline = 0
    this.armedCount--
  }

  /**
   * Move the wheel's clock to `nowMs` and fire every timer whose deadline is at or before it.
   *
   * All expired timers are collected before the first callback runs, so a callback may arm or
   * cancel any timer, itself included. A collected timer that an earlier callback cancelled or
   * re-armed does not fire, the same rule libuv applies to its ready queue. Timers whose deadline
   * was pushed later are re-filed, not fired. If a callback throws, the exception propagates and
   * the collected timers that have not fired yet stay armed and fire on the next advance.
   *
   * A clock that moves backwards is treated as standing still. Returns the number fired.
   */
  advance(nowMs: number): number {
    // Infinity would be a way to say "fire everything", but it would also leave the wheel's tick
    // at infinity, after which nothing could be filed again; callers that mean it cancel instead.
    if (!Number.isFinite(nowMs)) throw new InvalidOptionError(`advance() needs a finite time in ms, got ${nowMs}`)
    if (nowMs < this.nowMs) nowMs = this.nowMs
    this.nowMs = nowMs
    const target = this.tickOf(nowMs)

    // The current tick's slot may hold timers that were not due at the last advance, and timers
    // armed since then with deadlines already past.
    this.drainSlot(this.tick & (LEVEL0_SLOTS - 1), nowMs)
    while (this.tick < target) {
      this.tick = this.nextTickToEnter(target)
      if ((this.tick & (LEVEL0_SLOTS - 1)) === 0) this.cascade()
      this.drainSlot(this.tick & (LEVEL0_SLOTS - 1), nowMs)
    }
    return this.fireExpired()
  }

  private tickOf(ms: number): number {
    return Math.floor(ms / this.tickMs)
  }

  /**
   * Link `timer` into the slot that will come up no later than `tick`, relative to the wheel's
   * current tick. Level 0 holds ticks [tick, tick + 255]; level L holds deltas below
   * LEVEL_SPAN_TICKS[L], in the slot indexed by the tick's bits for that level. A level's slot is
   * cascaded at the first multiple of its width that reaches it, which is never after `tick`.
   *
   * Tick numbers are integral doubles that may exceed 2^32 (1 ms ticks on an epoch clock); `&`
   * still yields their exact low bits because ToInt32 reduces modulo 2^32, and the divisions are
   * by powers of two and therefore exact.
   */
  private file(timer: WheelTimer<T>, tick: number): void {
    const delta = tick - this.tick
    let slot: number
    if (delta < LEVEL_SPAN_TICKS[0]) {
      // A deadline in the past goes to the current slot, which the next advance scans first.
      slot = (delta < 0 ? this.tick : tick) & (LEVEL0_SLOTS - 1)
    } else if (delta < LEVEL_SPAN_TICKS[1]) {
      slot = LEVEL_BASE[1] + (Math.floor(tick / SLOT_TICKS[1]) & (LEVEL_SLOTS - 1))
    } else if (delta < LEVEL_SPAN_TICKS[2]) {
      slot = LEVEL_BASE[2] + (Math.floor(tick / SLOT_TICKS[2]) & (LEVEL_SLOTS - 1))
    } else if (delta < LEVEL_SPAN_TICKS[3]) {
      slot = LEVEL_BASE[3] + (Math.floor(tick / SLOT_TICKS[3]) & (LEVEL_SLOTS - 1))
    } else {
      slot = OVERFLOW
    }
    timer.filedTick = tick
    this.link(timer, slot)
  }

  private link(timer: WheelTimer<T>, slot: number): void {
    const tail = this.tailOf(slot)
    timer.slot = slot
    timer.prev = tail
    timer.next = null
    if (tail === null) this.heads[slot] = timer
    else tail.next = timer
    this.tails[slot] = timer
    // SLOT_LEVEL has an entry for every slot id, and levelCounts one for each of its values.
    this.levelCounts[SLOT_LEVEL[slot]!]!++
  }

  private unlink(timer: WheelTimer<T>): void {
    const { prev, next, slot } = timer
    if (prev === null) this.heads[slot] = next
    else prev.next = next
    if (next === null) this.tails[slot] = prev
    else next.prev = prev
    timer.prev = null
    timer.next = null
    timer.slot = NOT_LINKED
    // SLOT_LEVEL has an entry for every slot id, and levelCounts one for each of its values.
    this.levelCounts[SLOT_LEVEL[slot]!]!--
  }

  /**
   * Scan a level-0 slot at the current tick: move due timers to the expiring list, re-file timers
   * pushed past this tick, leave the rest (deadline later in this same tick) where they are.
   *
   * The scan walks the list in place and visits each timer once: a re-filed timer has a tick
   * after the current one and less than 256 ticks ahead, or else lands in a higher level, so it
   * never lands back in this slot. In a slot the clock has already left every timer is either due
   * or pushed: its tick is below the tick of `nowMs`, and floor(x / tickMs) is monotonic, so its
   * deadline is below `nowMs`.
   */
  private drainSlot(slot: number, nowMs: number): void {
    let timer = this.headOf(slot)
    while (timer !== null) {
      const next = timer.next
      if (timer.deadline <= nowMs) {
        this.unlink(timer)
        this.link(timer, EXPIRING)
      } else {
        const tick = this.tickOf(timer.deadline)
        if (tick > this.tick) {
          this.unlink(timer)
          this.file(timer, tick)
        }
      }
      timer = next
    }
  }

  /**
   * Called on entering a tick that is a multiple of 256: cascade the level-1 slot that now comes
   * up, then, while the index just cascaded is 0 (the level below has wrapped), the next level's
   * slot, and finally the overflow list when the top level wraps. Lower levels go first, as in
   * Linux; a timer re-filed from level L+1 never lands in the level-L slot just emptied, because
   * re-filing relative to a tick aligned to level L's slot width puts it at least one slot ahead.
   */
  private cascade(): void {
    if (this.cascadeLevel(1) !== 0) return
    if (this.cascadeLevel(2) !== 0) return
    if (this.cascadeLevel(3) !== 0) return
    this.refileSlot(OVERFLOW)
  }

  /** Re-file the slot of `level` that the current tick brings up; returns its index in the level. */
  private cascadeLevel(level: 1 | 2 | 3): number {
    const index = Math.floor(this.tick / SLOT_TICKS[level]) & (LEVEL_SLOTS - 1)
    this.refileSlot(LEVEL_BASE[level] + index)
    return index
  }

  /**
   * Empty a higher-level slot (or the overflow list) and file every timer in it again from the
   * current tick. The list is detached before the first re-file so that the work is bounded by
   * the slot's length whatever the re-filing does.
   */
  private refileSlot(slot: number): void {
    let timer = this.headOf(slot)
    if (timer === null) return
    this.heads[slot] = null
    this.tails[slot] = null
    // SLOT_LEVEL has an entry for every slot id, and levelCounts one for each of its values.
    const level = SLOT_LEVEL[slot]!
    while (timer !== null) {
      const next: WheelTimer<T> | null = timer.next
      timer.slot = NOT_LINKED
      this.levelCounts[level]!--
      this.file(timer, this.tickOf(timer.deadline))
      timer = next
    }
  }

  /**
   * The next tick advance() must enter on its way to `target`. Normally the next one; but when
   * level 0 is empty, nothing can happen before the next cascade of a non-empty level, and the
   * cascade points of coarser levels are multiples of those of finer ones, so the wheel can jump
   * straight to the first multiple of the width of the finest non-empty level. This is what keeps
   * an advance by hours or days at a cost proportional to the timers, not to the elapsed ticks.
   */
  private nextTickToEnter(target: number): number {
    if (this.levelCounts[0] !== 0) return this.tick + 1
    let level = 1
    while (level < LEVELS && this.levelCounts[level] === 0) level++
    if (level === LEVELS && this.levelCounts[LEVELS] === 0) return target
    // Level L is cascaded on ticks that are multiples of LEVEL_SPAN_TICKS[L - 1]; the overflow
    // list (level === LEVELS) on multiples of the top level's span.
    // 1 ≤ level ≤ LEVELS here, and LEVEL_SPAN_TICKS has LEVELS entries.
    const width = LEVEL_SPAN_TICKS[level - 1]!
    const next = (Math.floor(this.tick / width) + 1) * width
    return next < target ? next : target
  }

  private fireExpired(): number {
    let fired = 0
    for (let timer = this.headOf(EXPIRING); timer !== null; timer = this.headOf(EXPIRING)) {
      this.unlink(timer)
      if (timer.deadline > this.nowMs) {
        // An earlier callback in this batch pushed the deadline with a field write.
        this.file(timer, this.tickOf(timer.deadline))
        continue
      }
      timer.deadline = 0
      this.armedCount--
      fired++
      this.onExpire(timer.owner, timer)
    }
    return fired
  }
}
