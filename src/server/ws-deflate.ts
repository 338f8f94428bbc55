// permessage-deflate (RFC 7692) without context takeover, both ways: each message is compressed
// and inflated on its own, synchronously, so a connection holds no zlib state (ws keeps two
// streams per connection), and a message compressed once may go to every subscriber of a topic.
// The cost is a weaker ratio on small, repetitive messages; below `minBytes` nothing is compressed.

import { Buffer } from 'node:buffer'
import zlib from 'node:zlib'

/** The four bytes a sync-flushed deflate block ends with, left off the wire (§7.2.1) and put back to inflate (§7.2.2). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** Compress one message's payload (§7.2.1). */
export function deflateMessage(data: Buffer, level: number, windowBits: number): Buffer {
  const out = zlib.deflateRawSync(data, { level, windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - TAIL.length)
}

/**
 * Inflate one message's payload (§7.2.2), at most `maxBytes` of output: null past them (a zip
 * bomb stops there, not after inflating it all). Throws on data that is not deflate.
 */
export function inflateMessage(compressed: Buffer, maxBytes: number): Buffer | null {
  try {
    return zlib.inflateRawSync(Buffer.concat([compressed, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(1, maxBytes) })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null
    throw err
  }
}
