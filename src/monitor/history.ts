// The dashboard's charts over the last minutes, kept in the server: one point a second in a ring
// of fixed size, so a page opened now draws the last five minutes at once instead of starting
// empty, and memory stays the same however long the server runs.

import { wholeNumberOption } from '../core/option-error.ts'

/** What the charts draw for one second. Latency is null for a second in which no response ended: a gap, not 0. */
export interface HistoryPoint {
  atMs: number
  requestsPerS: number
  clientErrorsPerS: number
  serverErrorsPerS: number
  latencyP50Ms: number | null
  latencyP90Ms: number | null
  latencyP99Ms: number | null
  connectionsActive: number
  connectionsIdle: number
  /** The server's processes, % of one core (200% = two cores busy). */
  serverCpuPct: number
  /** The whole machine's user + system time, % of one core summed over cores. */
  machineCpuPct: number
  rssBytes: number
  heapUsedBytes: number
}

/** The newest `capacity` items, oldest first; pushing past capacity overwrites the oldest. */
export class HistoryRing<T> {
  readonly capacity: number
  private readonly items: T[] = []
  /** Where the next push goes once the ring is full (the oldest item). */
  private next = 0

  constructor(capacity: number) {
    wholeNumberOption('history capacity', capacity, 1)
    this.capacity = capacity
  }

  get size(): number {
    return this.items.length
  }

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item)
      return
    }
    this.items[this.next] = item
    this.next = (this.next + 1) % this.capacity
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.next), ...this.items.slice(0, this.next)]
  }
}
