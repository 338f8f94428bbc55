// HPACK (RFC 7541): the header compression of HTTP/2. A decoder for the header blocks clients
// send, bounded in everything a hostile peer controls, and an encoder for the responses.
//
// The decoder is given a whole header block (HEADERS and its CONTINUATIONs, joined by the framing
// layer, which bounds their total) and calls back once per field with latin1 strings. Its limits:
// - the dynamic table never exceeds the size this side announced (SETTINGS_HEADER_TABLE_SIZE); a
//   size update above it, or one not at the start of a block, is a COMPRESSION_ERROR (§4.2, §6.3);
// - the decoded header list is bounded (`maxHeaderListBytes`, counted as §4.1 counts entries: name
//   + value + 32), so a few bytes of indexed references cannot expand into megabytes (an "HPACK
//   bomb"): the decoder stops at the limit and says so, and the caller answers 431 or resets;
// - integers are bounded (no more than 2^31 - 1, and at most five continuation bytes);
// - a string's length is checked against the bytes left before anything is read.
//
// The encoder keeps a dynamic table of its own (the peer's SETTINGS_HEADER_TABLE_SIZE, at most
// 4096 here) and indexes the fields responses repeat (content-type, server fields), so that a
// response head after the first is a few bytes.

import { Buffer } from 'node:buffer'
import { HuffmanError, huffmanDecode, huffmanEncode, huffmanLength } from './huffman.ts'

/** The static table (Appendix A): index 1 to 61. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
]
const STATIC_COUNT = STATIC_TABLE.length

/** The size of an entry (§4.1): its name and value in octets, plus 32. */
const ENTRY_OVERHEAD = 32

/** The dynamic table (§2.3.2): a ring of entries, newest first, evicted from the oldest end (§4.4). */
class DynamicTable {
  private names: string[] = []
  private values: string[] = []
  /** Ring positions: the newest entry is at `head - 1`, there are `count` of them. */
  private head = 0
  count = 0
  /** The sum of the entries' sizes. */
  size = 0
  /** The most `size` may be now (changed by size updates, §6.3). */
  capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Entry `i` (0 = newest): [name, value]. */
  name(i: number): string {
    return this.names[this.slot(i)]!
  }

  value(i: number): string {
    return this.values[this.slot(i)]!
  }

  private slot(i: number): number {
    const length = this.names.length
    return (this.head - 1 - i + length * 2) % length
  }

  /** Add an entry, evicting the oldest until it fits; one larger than the capacity empties the table and is not added (§4.4). */
  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD
    this.evictTo(this.capacity - size)
    if (size > this.capacity) return
    if (this.count === this.names.length) this.grow()
    this.names[this.head] = name
    this.values[this.head] = value
    this.head = (this.head + 1) % this.names.length
    this.count++
    this.size += size
  }

  resize(capacity: number): void {
    this.capacity = capacity
    this.evictTo(capacity)
  }

  private evictTo(most: number): void {
    while (this.size > most && this.count > 0) {
      const oldest = this.slot(this.count - 1)
      this.size -= this.names[oldest]!.length + this.values[oldest]!.length + ENTRY_OVERHEAD
      this.names[oldest] = ''
      this.values[oldest] = ''
      this.count--
    }
  }

  private grow(): void {
    // Unrolled in age order into arrays twice as large (at least 16): the newest at count - 1.
    const length = Math.max(16, this.names.length * 2)
    const names = new Array<string>(length).fill('')
    const values = new Array<string>(length).fill('')
    for (let i = 0; i < this.count; i++) {
      names[this.count - 1 - i] = this.name(i)
      values[this.count - 1 - i] = this.value(i)
    }
    this.names = names
    this.values = values
    this.head = this.count
  }
}

/** Why a header block cannot be decoded. COMPRESSION is a connection error (RFC 9113 §4.3); LIST_TOO_LARGE is this side's limit. */
export const HpackError = { NONE: 0, COMPRESSION: 1, LIST_TOO_LARGE: 2 } as const
export type HpackError = (typeof HpackError)[keyof typeof HpackError]

/** Receives each decoded field; names are as sent (HTTP/2 requires lower case: the caller checks). */
export interface FieldSink {
  field(name: string, value: string): void
}

export interface DecoderLimits {
  /** SETTINGS_HEADER_TABLE_SIZE this side announced: the most the peer may make the table (default 4096). */
  maxTableBytes: number
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the most a decoded header list may be, entries counted as name + value + 32. */
  maxHeaderListBytes: number
}

/** Scratch for Huffman-decoded strings: a string literal is at most the block, which the framing layer bounds. */
let scratch = Buffer.allocUnsafe(16 * 1024)

/** The decoding context of one connection: its dynamic table lives as long as the connection. */
export class HpackDecoder {
  private readonly table: DynamicTable
  private readonly limits: DecoderLimits
  /** Set when decode() fails: what went wrong, for the connection error's debug data. */
  problem = ''

  /** The dynamic table's size now (§4.1), and its entries newest first: for tests and the debug view. */
  get tableBytes(): number {
    return this.table.size
  }

  tableEntries(): Array<[string, string]> {
    const entries: Array<[string, string]> = []
    for (let i = 0; i < this.table.count; i++) entries.push([this.table.name(i), this.table.value(i)])
    return entries
  }

  constructor(limits: DecoderLimits) {
    this.limits = limits
    this.table = new DynamicTable(limits.maxTableBytes)
  }

  /**
   * Decode the header block `block[start, end)`, calling `sink.field` per field. After a
   * COMPRESSION error the connection must end (the table is out of step with the peer's). After
   * LIST_TOO_LARGE the block was still decoded to its end — the table stays in step — but fields
   * past the limit were not passed on.
   */
  decode(block: Uint8Array, start: number, end: number, sink: FieldSink): HpackError {
    const table = this.table
    let listBytes = 0
    let tooLarge = false
    let p = start
    let fieldsSeen = false
    while (p < end) {
      const b = block[p]!
      let name: string
      let value: string
      if (b & 0x80) {
        // Indexed field (§6.1).
        const index = this.integer(block, p, end, 7)
        if (index < 0) return HpackError.COMPRESSION
        p = this.next
        if (index === 0) return this.fail('indexed field with index 0')
        if (!this.lookup(index)) return HpackError.COMPRESSION
        name = this.foundName
        value = this.foundValue
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block.
        if (fieldsSeen) return this.fail('table size update after a field')
        const size = this.integer(block, p, end, 5)
        if (size < 0) return HpackError.COMPRESSION
        p = this.next
        if (size > this.limits.maxTableBytes) return this.fail(`table size update to ${size}, above the ${this.limits.maxTableBytes} announced`)
        table.resize(size)
        continue
      } else {
        // Literal field: with incremental indexing (01), without (0000) or never indexed (0001) (§6.2).
        const indexing = (b & 0xc0) === 0x40
        const prefix = indexing ? 6 : 4
        const nameIndex = this.integer(block, p, end, prefix)
        if (nameIndex < 0) return HpackError.COMPRESSION
        p = this.next
        if (nameIndex === 0) {
          const literal = this.string(block, p, end)
          if (literal === null) return HpackError.COMPRESSION
          name = literal
          p = this.next
        } else {
          if (!this.lookup(nameIndex)) return HpackError.COMPRESSION
          name = this.foundName
        }
        const literal = this.string(block, p, end)
        if (literal === null) return HpackError.COMPRESSION
        value = literal
        p = this.next
        if (indexing) table.add(name, value)
      }
      fieldsSeen = true
      listBytes += name.length + value.length + ENTRY_OVERHEAD
      if (listBytes > this.limits.maxHeaderListBytes) tooLarge = true
      if (!tooLarge) sink.field(name, value)
    }
    return tooLarge ? HpackError.LIST_TOO_LARGE : HpackError.NONE
  }

  // ---- primitives: results in fields, to return two values without an object per call ----

  /** Offset after the last integer or string read. */
  private next = 0
  private foundName = ''
  private foundValue = ''

  private fail(why: string): HpackError {
    this.problem = why
    return HpackError.COMPRESSION
  }

  /** Field `index` of the static or dynamic table into foundName/foundValue; false (a problem set) when there is none. */
  private lookup(index: number): boolean {
    if (index <= STATIC_COUNT) {
      const entry = STATIC_TABLE[index - 1]!
      this.foundName = entry[0]
      this.foundValue = entry[1]
      return true
    }
    const i = index - STATIC_COUNT - 1
    if (i >= this.table.count) {
      this.problem = `index ${index} beyond the tables (${STATIC_COUNT} static, ${this.table.count} dynamic)`
      return false
    }
    this.foundName = this.table.name(i)
    this.foundValue = this.table.value(i)
    return true
  }

  /**
   * An integer with an N-bit prefix (§5.1) at block[p]; -1 (a problem set) when the block ends
   * inside it or it exceeds 2^31 - 1. Sets `next`.
   */
  private integer(block: Uint8Array, p: number, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1
    let value = block[p]! & max
    p++
    if (value < max) {
      this.next = p
      return value
    }
    let shift = 0
    for (;;) {
      if (p >= end) {
        this.problem = 'the block ends inside an integer'
        return -1
      }
      const b = block[p++]!
      value += (b & 0x7f) * 2 ** shift
      shift += 7
      // Five continuation bytes reach 2^35; more (zeros padding the value out) are refused before 2 ** shift overflows.
      if (value > 0x7fffffff || shift > 35) {
        this.problem = 'an integer above 2^31 - 1'
        return -1
      }
      if ((b & 0x80) === 0) break
    }
    this.next = p
    return value
  }

  /** A string literal (§5.2) at block[p], as latin1; null (a problem set) when it does not fit or its Huffman code is bad. Sets `next`. */
  private string(block: Uint8Array, p: number, end: number): string | null {
    if (p >= end) {
      this.problem = 'the block ends before a string'
      return null
    }
    const huffman = (block[p]! & 0x80) !== 0
    const length = this.integer(block, p, end, 7)
    if (length < 0) return null
    p = this.next
    if (length > end - p) {
      this.problem = `a string of ${length} bytes with ${end - p} left in the block`
      return null
    }
    this.next = p + length
    if (!huffman) return latin1(block, p, p + length)
    // The longest expansion is 8/5 (5-bit codes), and the string is bounded by the block (which the
    // framing layer bounds): decoded whole even past the list limit, so that the table stays in step.
    const most = Math.ceil((length * 8) / 5)
    if (scratch.length < most) scratch = Buffer.allocUnsafe(Math.max(most, scratch.length * 2))
    const out = huffmanDecode(block, p, p + length, scratch, 0, most)
    if (out < 0) {
      this.problem =
        out === -HuffmanError.EOS ? 'EOS in a Huffman-coded string' : out === -HuffmanError.PADDING ? 'bad Huffman padding' : 'a Huffman-coded string too long'
      return null
    }
    return scratch.toString('latin1', 0, out)
  }
}

function latin1(block: Uint8Array, start: number, end: number): string {
  if (Buffer.isBuffer(block)) return block.toString('latin1', start, end)
  return Buffer.from(block.buffer, block.byteOffset + start, end - start).toString('latin1')
}

/**
 * The encoding context of one connection. encode() appends a header block to the output it is
 * given: static-table references where a field is there whole, else a literal, indexed in the
 * dynamic table when it is a name worth remembering (the response fields that repeat) and never
 * indexed for values a peer must not see reused (set-cookie, authorization: §7.1.3).
 */
export class HpackEncoder {
  private readonly table: DynamicTable
  /** A pending size update (§4.2): sent at the start of the next block. */
  private pendingSize = -1
  private out: Buffer = Buffer.allocUnsafe(4096)
  private p = 0

  constructor(capacity = 4096) {
    this.table = new DynamicTable(capacity)
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: our table follows it (at most 4096), announced in the next block. */
  setCapacity(peerMax: number): void {
    const capacity = Math.min(peerMax, 4096)
    if (capacity === this.table.capacity && this.pendingSize < 0) return
    this.table.resize(capacity)
    this.pendingSize = capacity
  }

  /** Encode [name, value] pairs (names lower case) into a new Buffer (a view of this encoder's scratch: copy or send it before the next call). */
  encode(fields: ReadonlyArray<readonly [string, string]>): Buffer {
    this.p = 0
    if (this.pendingSize >= 0) {
      this.integer(0x20, 5, this.pendingSize)
      this.pendingSize = -1
    }
    for (const [name, value] of fields) this.field(name, value)
    return this.out.subarray(0, this.p)
  }

  private field(name: string, value: string): void {
    const staticMatch = staticIndex(name, value)
    if (staticMatch > 0) return this.integer(0x80, 7, staticMatch)
    const dynamic = this.findDynamic(name, value)
    if (dynamic > 0) return this.integer(0x80, 7, dynamic)
    const nameIndex = staticNameIndex(name)
    if (NEVER_INDEXED.has(name)) {
      this.integer(0x10, 4, nameIndex)
    } else if (UNINDEXED.has(name)) {
      this.integer(0x00, 4, nameIndex)
    } else {
      this.integer(0x40, 6, nameIndex)
      this.table.add(name, value)
    }
    if (nameIndex === 0) this.string(name)
    this.string(value)
  }

  /** The dynamic table's index of [name, value] (62 and up), or 0. */
  private findDynamic(name: string, value: string): number {
    const table = this.table
    for (let i = 0; i < table.count; i++) if (table.name(i) === name && table.value(i) === value) return STATIC_COUNT + 1 + i
    return 0
  }

  private room(bytes: number): void {
    if (this.p + bytes <= this.out.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.p + bytes))
    this.out.copy(grown, 0, 0, this.p)
    this.out = grown
  }

  private integer(flags: number, prefixBits: number, value: number): void {
    this.room(6)
    const max = (1 << prefixBits) - 1
    if (value < max) {
      this.out[this.p++] = flags | value
      return
    }
    this.out[this.p++] = flags | max
    value -= max
    while (value >= 0x80) {
      this.out[this.p++] = (value & 0x7f) | 0x80
      value = Math.floor(value / 0x80)
    }
    this.out[this.p++] = value
  }

  /** A string literal, Huffman-coded when that is shorter. */
  private string(text: string): void {
    const raw = Buffer.from(text, 'latin1')
    const coded = huffmanLength(raw, 0, raw.length)
    if (coded < raw.length) {
      this.integer(0x80, 7, coded)
      this.room(coded)
      this.p = huffmanEncode(raw, 0, raw.length, this.out, this.p)
    } else {
      this.integer(0x00, 7, raw.length)
      this.room(raw.length)
      this.out.write(text, this.p, 'latin1')
      this.p += raw.length
    }
  }
}

/**
 * Values that change per response: indexing them would only churn the table. `date` and
 * `content-length` are indexed all the same: a date stays one second, and answers of one size
 * repeat (one byte each instead of a Huffman-coded literal, as nghttp2 does).
 */
const UNINDEXED = new Set(['etag', 'last-modified', 'content-range', 'age', 'expires', 'location'])
/** Values an intermediary must never index (§7.1.3): credentials and cookies. */
const NEVER_INDEXED = new Set(['set-cookie', 'authorization', 'proxy-authorization', 'cookie'])

const staticWhole = new Map<string, number>()
const staticNames = new Map<string, number>()
STATIC_TABLE.forEach(([name, value], i) => {
  if (value !== '') staticWhole.set(`${name}\0${value}`, i + 1)
  if (!staticNames.has(name)) staticNames.set(name, i + 1)
})

/** :status values of the static table (8–14), looked up without building a key per response. */
const staticStatus = new Map<string, number>()
STATIC_TABLE.forEach(([name, value], i) => {
  if (name === ':status') staticStatus.set(value, i + 1)
})

function staticIndex(name: string, value: string): number {
  if (name === ':status') return staticStatus.get(value) ?? 0
  // Only :method, :path, :scheme, :status and accept-encoding have values in the static table.
  if (name.charCodeAt(0) !== 0x3a && name !== 'accept-encoding') return 0
  return staticWhole.get(`${name}\0${value}`) ?? 0
}

function staticNameIndex(name: string): number {
  return staticNames.get(name) ?? 0
}
