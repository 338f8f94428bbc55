// The static Huffman code of HPACK (RFC 7541 §5.2, Appendix B). The code is canonical: codes of
// one length are consecutive, in symbol order, and each length's first code follows from the
// previous length's last. So the table is kept as it can be checked against the appendix — one
// code length per symbol — and the codes themselves are derived at load (test/hpack.test.ts checks
// a few against the appendix and the Appendix C examples end to end).
//
// A decoder stepping through a generated table of 256 states × 16 inputs would be fastest
// (nghttp2's way) but cannot be checked by reading it; here a 9-bit lookup table answers every
// code of up to 9 bits (the characters of almost every header value) in one step, and longer
// codes are found by the canonical walk from length 10 up.

/**
 * Code length of symbols 0–255 and EOS (256), one letter each: A = 5 bits … Z = 30 bits. Sixteen
 * to a group of the string, so that symbol N is at index N.
 */
const LENGTHS =
  'ISXXXXXXXTZXXZXX' +
  'XXXXXXZXXXXXXXXX' +
  'BFFHIBDGFFDGDBBB' +
  'AAABBBBBBBCDKBHF' +
  'IBCCCCCCCCCCCCCC' +
  'CCCCCCCCDCDIOIJB' +
  'KABABABBBACCBBBA' +
  'BCBAABCCCCCKGJIX' +
  'PRPPRRRSRSSSSSTS' +
  'TTRSTSSSSQRSRSST' +
  'RQPRRSSQSRRTQRSS' +
  'QQRQSRSSPRRRSRRS' +
  'VVPORSRUVVVWWVTU' +
  'OQVWWVWTQQVVXWWW' +
  'PTPQRQQSRRUUTTVS' +
  'VWVVWWWWWXWWWWWV' +
  'Z'

const EOS = 256
const SYMBOLS = 257
const MIN_LENGTH = 5
const MAX_LENGTH = 30

/** Bits of each symbol's code, and the code right-aligned. */
const codeLength = new Uint8Array(SYMBOLS)
const code = new Uint32Array(SYMBOLS)
/** For the canonical walk: per length, the first code, how many codes, and where its symbols start in `bySymbolOrder`. */
const firstCode = new Uint32Array(MAX_LENGTH + 1)
const countOf = new Uint16Array(MAX_LENGTH + 1)
const offsetOf = new Uint16Array(MAX_LENGTH + 1)
/** Symbols sorted by (length, symbol): the canonical order. */
const bySymbolOrder = new Uint16Array(SYMBOLS)

/** Codes of up to FAST_BITS bits decoded in one lookup: (symbol << 4) | length, or 0 for a longer code. */
const FAST_BITS = 9
const fast = new Uint16Array(1 << FAST_BITS)

{
  if (LENGTHS.length !== SYMBOLS) throw new Error('huffman: the length table must have 257 entries')
  for (let s = 0; s < SYMBOLS; s++) codeLength[s] = LENGTHS.charCodeAt(s) - 0x41 + MIN_LENGTH
  for (let s = 0; s < SYMBOLS; s++) countOf[codeLength[s]!]! += 1
  let next = 0
  let offset = 0
  for (let length = MIN_LENGTH; length <= MAX_LENGTH; length++) {
    firstCode[length] = next
    offsetOf[length] = offset
    offset += countOf[length]!
    next = (next + countOf[length]!) * 2
  }
  // A complete prefix code fills every code of the longest length: its last one is all ones.
  if (firstCode[MAX_LENGTH]! + countOf[MAX_LENGTH]! !== 2 ** MAX_LENGTH) throw new Error('huffman: the code lengths do not make a complete code')
  const placed = new Uint16Array(MAX_LENGTH + 1)
  for (let s = 0; s < SYMBOLS; s++) {
    const length = codeLength[s]!
    const rank = placed[length]!++
    code[s] = firstCode[length]! + rank
    bySymbolOrder[offsetOf[length]! + rank] = s
  }
  for (let s = 0; s < EOS; s++) {
    const length = codeLength[s]!
    if (length > FAST_BITS) continue
    const spread = FAST_BITS - length
    const base = code[s]! << spread
    for (let i = 0; i < 1 << spread; i++) fast[base + i] = (s << 4) | length
  }
}

/** Bytes `src[start, end)` Huffman-coded: their length, padding included. */
export function huffmanLength(src: Uint8Array, start: number, end: number): number {
  let bits = 0
  for (let i = start; i < end; i++) bits += codeLength[src[i]!]!
  return (bits + 7) >>> 3
}

/**
 * Write `src[start, end)` Huffman-coded into `out` at `at`, padded to a byte with the most
 * significant bits of EOS (ones); returns the offset after it. `out` must have room for
 * huffmanLength() bytes.
 */
export function huffmanEncode(src: Uint8Array, start: number, end: number, out: Uint8Array, at: number): number {
  // Bits wait in `acc` (at most 7 plus one code of up to 30: kept under 2^53 by flushing whole bytes).
  let acc = 0
  let pending = 0
  let p = at
  for (let i = start; i < end; i++) {
    const s = src[i]!
    const length = codeLength[s]!
    acc = acc * (1 << length) + code[s]!
    pending += length
    while (pending >= 8) {
      pending -= 8
      const byte = Math.floor(acc / 2 ** pending)
      out[p++] = byte
      acc -= byte * 2 ** pending
    }
  }
  if (pending > 0) out[p++] = (acc << (8 - pending)) | (0xff >>> pending)
  return p
}

/** Why a Huffman-coded string cannot be decoded (RFC 7541 §5.2): each is a COMPRESSION_ERROR. */
export const HuffmanError = { NONE: 0, EOS: 1, PADDING: 2, TOO_LONG: 3 } as const
export type HuffmanError = (typeof HuffmanError)[keyof typeof HuffmanError]

/**
 * Decode `src[start, end)` into `out` from `at`, writing at most `limit` bytes (a bound on what a
 * few coded bytes may expand to: the longest output is 8/5 of the input). Returns the end offset
 * in `out`, or minus a HuffmanError: EOS decoded, padding longer than 7 bits or not all ones, or
 * more than `limit` bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array, at: number, limit: number): number {
  const totalBits = (end - start) * 8
  const stop = at + limit
  let p = at
  let pos = 0
  while (pos < totalBits) {
    const left = totalBits - pos
    let symbol = -1
    let length = 0
    if (left >= FAST_BITS) {
      // Nine bits from bit `pos` lie within two bytes, three at most.
      const byte = start + (pos >>> 3)
      const window = (src[byte]! << 16) | ((src[byte + 1] ?? 0) << 8) | (src[byte + 2] ?? 0)
      const entry = fast[(window >>> (24 - FAST_BITS - (pos & 7))) & ((1 << FAST_BITS) - 1)]!
      if (entry !== 0) {
        symbol = entry >>> 4
        length = entry & 0xf
      }
    }
    if (symbol < 0) {
      // The canonical walk: the code of each length is the next `length` bits.
      for (length = MIN_LENGTH; length <= MAX_LENGTH; length++) {
        if (length > left) {
          // Too few bits for a longer code: what is left is padding, valid only as up to 7 ones.
          return left <= 7 && peekBits(src, start, pos, left) === 2 ** left - 1 ? p : -HuffmanError.PADDING
        }
        const index = peekBits(src, start, pos, length) - firstCode[length]!
        if (index >= 0 && index < countOf[length]!) {
          symbol = bySymbolOrder[offsetOf[length]! + index]!
          break
        }
      }
      if (symbol < 0) return -HuffmanError.PADDING
    }
    if (symbol === EOS) return -HuffmanError.EOS
    if (p >= stop) return -HuffmanError.TOO_LONG
    out[p++] = symbol
    pos += length
  }
  return p
}

/** `n` bits (up to 30) from bit `pos` of `src` after `start`, as a number; in arithmetic, as they may span five bytes. */
function peekBits(src: Uint8Array, start: number, pos: number, n: number): number {
  const first = start + (pos >>> 3)
  const skip = pos & 7
  const bytes = (skip + n + 7) >>> 3
  let v = 0
  for (let k = 0; k < bytes; k++) v = v * 256 + src[first + k]!
  return Math.floor(v / 2 ** (bytes * 8 - skip - n)) % 2 ** n
}
