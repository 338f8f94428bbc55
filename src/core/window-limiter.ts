// Fixed-window rate limiting per key (a client address), in bounded memory.
//
// Each key has a window that opens at its first event and lasts `windowMs`; up to `limit` events
// are allowed in it. The table of windows holds at most `maxKeys` entries: a key that is new when
// the table is full pushes out the window opened longest ago. A client that owns many addresses
// (or forges them) therefore costs a fixed amount of memory and only makes the limiter forget
// older addresses sooner; it can never grow the table. The windows sit in a Map in the order
// they opened (a renewed window is moved to the end), so the oldest is the Map's first entry and
// every operation is O(1).

import { wholeNumberOption } from './option-error.ts'

interface Window {
  startMs: number
  count: number
}

export interface WindowLimiterOptions {
  /** Events allowed per key in one window. */
  limit: number
  windowMs: number
  /** Keys remembered at once; beyond it the oldest window is forgotten. */
  maxKeys: number
}

export class WindowLimiter {
  /** Events allowed per key per window; may be changed while running (a configuration reload). */
  limit: number
  readonly windowMs: number
  readonly maxKeys: number
  private readonly windows = new Map<string, Window>()

  constructor(options: WindowLimiterOptions) {
    for (const [name, value] of Object.entries(options)) {
      wholeNumberOption(name, value, 1)
    }
    this.limit = options.limit
    this.windowMs = options.windowMs
    this.maxKeys = options.maxKeys
  }

  /** Keys remembered now (at most maxKeys). */
  get size(): number {
    return this.windows.size
  }

  /**
   * Count one event of `key` at `nowMs` (any monotonic clock in ms). Returns 0 when it is within
   * the limit, else the ms until the key's window ends (the event is then not counted).
   */
  take(key: string, nowMs: number): number {
    let window = this.windows.get(key)
    if (window === undefined || nowMs - window.startMs >= this.windowMs) {
      this.windows.delete(key)
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!)
      window = { startMs: nowMs, count: 0 }
      this.windows.set(key, window)
    }
    if (window.count >= this.limit) return window.startMs + this.windowMs - nowMs
    window.count++
    return 0
  }
}
