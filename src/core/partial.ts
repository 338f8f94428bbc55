// A payload that arrives across reads, gathered into a buffer of its own: the frame readers of
// HTTP/2 and WebSocket hand a payload within one read on as a view of it, and gather only the
// ones split across reads, their length known (and checked against a limit) before the buffer is made.

import { Buffer } from 'node:buffer'

export class PartialPayload {
  /** The payload being gathered; null when none is. */
  buffer: Buffer | null = null
  private fill = 0

  start(length: number): void {
    this.buffer = Buffer.allocUnsafe(length)
    this.fill = 0
  }

  /** Copy what `chunk[p, end)` holds of the payload; returns how many bytes it took. */
  take(chunk: Buffer, p: number, end: number): number {
    const buffer = this.buffer!
    const n = Math.min(buffer.length - this.fill, end - p)
    chunk.copy(buffer, this.fill, p, p + n)
    this.fill += n
    return n
  }

  /** The whole payload once every byte is in (the gatherer is then empty again), else null. */
  whole(): Buffer | null {
    const buffer = this.buffer!
    if (this.fill < buffer.length) return null
    this.buffer = null
    return buffer
  }
}
