// Binary min-heap for one-off timers: the things that are not connection timeouts (a graceful
// shutdown deadline, a retry, a periodic report), which are few, are usually allowed to fire, and
// want millisecond precision rather than a wheel's tick.
//
// The heap is ordered by (deadline, sequence number), as libuv's timer heap is, so timers with
// equal deadlines fire in the order they were scheduled. runExpired() also follows libuv: it
// collects every expired timer before running the first callback, so a timer scheduled by a
// callback with a deadline that is already past waits for the next call instead of running in
// the same batch, and a callback that keeps re-scheduling itself cannot trap the caller in a loop.

import { InvalidOptionError } from '../option-error.ts'

/** `HeapTimer.index` of a timer that is neither in the heap nor waiting to run: fired, cancelled. */
const IDLE = -1
/** `HeapTimer.index` of a timer taken out of the heap by runExpired() whose callback has not run yet. */
const COLLECTED = -2

/** A scheduled one-off timer. Returned by `TimerHeap.schedule()`; pass it to `cancel()`. */
export class HeapTimer {
  /** Absolute deadline in ms on the heap's clock. */
  readonly deadline: number
  /** Scheduling order; breaks ties between equal deadlines. */
  readonly seq: number
  /** Position in the heap array, or IDLE / COLLECTED. Owned by the heap. */
  index: number
  /** Dropped when the timer fires or is cancelled so that the heap does not keep its argument alive. */
  callback: ((arg: unknown) => void) | null
  arg: unknown

  constructor(deadline: number, seq: number, callback: (arg: unknown) => void, arg: unknown) {
    this.deadline = deadline
    this.seq = seq
    this.index = IDLE
    this.callback = callback
    this.arg = arg
  }

  /** True from schedule() until the callback runs or the timer is cancelled. */
  get pending(): boolean {
    return this.index !== IDLE
  }
}

function earlier(a: HeapTimer, b: HeapTimer): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq)
}

export class TimerHeap {
  /**
   * The heap, in an array. Its methods check bounds by hand (length, index arithmetic) rather
   * than read past the end and test for undefined, an out-of-bounds read being a slow path in
   * V8; each `!` on an `items[...]` or `batch[...]` read follows such a check.
   */
  private readonly items: HeapTimer[] = []
  private sequence = 0

  /** Number of timers waiting in the heap. */
  get size(): number {
    return this.items.length
  }

  /** Earliest deadline, or Infinity when the heap is empty. */
  peek(): number {
    const items = this.items
    return items.length === 0 ? Infinity : items[0]!.deadline
  }

  /** Schedule `callback(arg)` at the absolute time `deadline`. O(log n). */
  schedule<A>(deadline: number, callback: (arg: A) => void, arg: A): HeapTimer {
    if (!Number.isFinite(deadline)) throw new InvalidOptionError(`timer deadline must be a finite time in ms, got ${deadline}`)
    const timer = new HeapTimer(deadline, this.sequence++, callback as (arg: unknown) => void, arg)
    this.insert(timer)
    return timer
  }

  /** Cancel `timer` in O(log n). A timer that already ran or was cancelled is left alone. */
  cancel(timer: HeapTimer): void {
    const index = timer.index
    if (index === COLLECTED) {
      // runExpired() is running the batch this timer is in; it skips timers no longer COLLECTED.
      this.release(timer)
      return
    }
    // The identity check also turns away a timer that belongs to another heap.
    if (index < 0 || this.items[index] !== timer) return
    this.removeAt(index)
    this.release(timer)
  }

  /**
   * Take out every timer whose deadline is at or before `nowMs`, then run them in
   * (deadline, seq) order. A timer cancelled by an earlier callback of the batch does not run.
   * If a callback throws, the exception propagates and the rest of the batch goes back into the
   * heap with its original order, to run on the next call. Returns the number of callbacks run.
   */
  runExpired(nowMs: number): number {
    const items = this.items
    if (items.length === 0 || items[0]!.deadline > nowMs) return 0
    const batch: HeapTimer[] = []
    while (items.length > 0 && items[0]!.deadline <= nowMs) {
      const timer = items[0]!
      this.removeAt(0)
      timer.index = COLLECTED
      batch.push(timer)
    }
    let ran = 0
    let next = 0
    try {
      while (next < batch.length) {
        const timer = batch[next++]!
        if (timer.index !== COLLECTED) continue
        const callback = timer.callback as (arg: unknown) => void
        const arg = timer.arg
        this.release(timer)
        ran++
        callback(arg)
      }
    } finally {
      while (next < batch.length) {
        const timer = batch[next++]!
        if (timer.index === COLLECTED) this.insert(timer)
      }
    }
    return ran
  }

  private release(timer: HeapTimer): void {
    timer.index = IDLE
    timer.callback = null
    timer.arg = undefined
  }

  private insert(timer: HeapTimer): void {
    this.items.push(timer)
    this.siftUp(timer, this.items.length - 1)
  }

  /** Remove the timer at `index` (callers pass 0 ≤ index < size), moving the last leaf into the hole. */
  private removeAt(index: number): void {
    const items = this.items
    const last = items.pop()
    if (last === undefined || index >= items.length) return // the heap was empty, or the last leaf was the one removed
    // The moved leaf may belong above the hole (it came from another subtree) or below it.
    // A hole at index > 0 has a parent at (index - 1) >> 1, which is inside the heap.
    if (index > 0 && earlier(last, items[(index - 1) >> 1]!)) this.siftUp(last, index)
    else this.siftDown(last, index)
  }

  /** Place `timer` at the hole `index` or above it; parents move down into the hole instead of swapping. */
  private siftUp(timer: HeapTimer, index: number): void {
    const items = this.items
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      // 0 ≤ parentIndex < index ≤ length - 1 (the hole): every slot above the hole is filled.
      const parent = items[parentIndex]!
      if (!earlier(timer, parent)) break
      items[index] = parent
      parent.index = index
      index = parentIndex
    }
    items[index] = timer
    timer.index = index
  }

  /** Place `timer` at the hole `index` or below it, pulling the earlier child up each step. */
  private siftDown(timer: HeapTimer, index: number): void {
    const items = this.items
    const length = items.length
    const firstLeaf = length >> 1
    while (index < firstLeaf) {
      let childIndex = 2 * index + 1
      // index < length >> 1, so the left child 2 * index + 1 < length exists; the right one may not.
      let child = items[childIndex]!
      const rightIndex = childIndex + 1
      if (rightIndex < length && earlier(items[rightIndex]!, child)) {
        childIndex = rightIndex
        child = items[rightIndex]!
      }
      if (!earlier(child, timer)) break
      items[index] = child
      child.index = index
      index = childIndex
    }
    items[index] = timer
    timer.index = index
  }
}
