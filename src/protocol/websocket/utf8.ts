// UTF-8 checked across the fragments of a text message as they arrive (RFC 6455 §8.1: a bad
// sequence fails the connection at once, not at the message's end), without decoding: the
// complete part of each piece goes to Node's isUtf8 (simdutf), and a sequence cut at the piece's
// end is kept (at most 3 bytes) and checked as far as it goes — a prefix no character can start
// with (0xF4 0x90, 0xED 0xA0) fails now, not when its last byte comes.

import { Buffer, isUtf8 } from 'node:buffer'

/** The length of the sequence a lead byte starts; 0 for a byte no sequence starts with. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1
  if (lead >= 0xc2 && lead <= 0xdf) return 2
  if (lead >= 0xe0 && lead <= 0xef) return 3
  if (lead >= 0xf0 && lead <= 0xf4) return 4
  return 0
}

/** Whether `bytes[0, n)` can begin a valid sequence (Unicode's Table 3-7: the second byte's range depends on the lead). */
function validPrefix(bytes: Buffer, n: number): boolean {
  const lead = bytes[0]!
  if (sequenceLength(lead) === 0) return false
  for (let i = 1; i < n; i++) {
    const b = bytes[i]!
    let low = 0x80
    let high = 0xbf
    if (i === 1) {
      if (lead === 0xe0) low = 0xa0
      else if (lead === 0xed) high = 0x9f
      else if (lead === 0xf0) low = 0x90
      else if (lead === 0xf4) high = 0x8f
    }
    if (b < low || b > high) return false
  }
  return true
}

export class Utf8Check {
  /** A sequence cut at the end of the last piece. */
  private readonly tail = Buffer.alloc(4)
  private tailLength = 0

  /** Start a new message. */
  reset(): void {
    this.tailLength = 0
  }

  /** Whether `buf[start, end)` continues valid UTF-8; `last`: the message ends with it (no sequence may stay open). */
  push(buf: Buffer, start: number, end: number, last: boolean): boolean {
    let p = start
    if (this.tailLength > 0) {
      // Finish the cut sequence first.
      const need = sequenceLength(this.tail[0]!)
      while (this.tailLength < need && p < end) this.tail[this.tailLength++] = buf[p++]!
      if (!validPrefix(this.tail, this.tailLength)) return false
      if (this.tailLength < need) return !last
      this.tailLength = 0
    }
    // A sequence cut at the end: its lead is within the last 3 bytes.
    let cut = end
    for (let i = end - 1; i >= p && i >= end - 3; i--) {
      const b = buf[i]!
      if ((b & 0xc0) === 0x80) continue
      const need = sequenceLength(b)
      if (need > end - i) cut = i
      break
    }
    if (cut > p && !isUtf8(buf.subarray(p, cut))) return false
    if (cut === end) return true
    this.tailLength = end - cut
    buf.copy(this.tail, 0, cut, end)
    return validPrefix(this.tail, this.tailLength) && !last
  }
}
