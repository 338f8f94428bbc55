// HTTP range requests (RFC 9110 §14) as pure functions: parsing a Range header against a file
// size, formatting Content-Range values, and laying out a multipart/byteranges body. Nothing
// here touches a file or a socket, so the static file server decides what to read and send.
//
// Example, for a 10 000-byte file:
//   parseRange('bytes=0-99,-100', 10_000)
//     → { kind: 'ranges', ranges: [{ start: 0, end: 99 }, { start: 9900, end: 9999 }] }
//   contentRange(0, 99, 10_000) → 'bytes 0-99/10000'

import { Buffer } from 'node:buffer'
import { InvalidOptionError } from '../../core/option-error.ts'

export interface ByteRange {
  /** First byte offset, inclusive. */
  start: number
  /** Last byte offset, inclusive, as in Content-Range. */
  end: number
}

export type RangeResult = { kind: 'none' } | { kind: 'unsatisfiable' } | { kind: 'ranges'; ranges: ByteRange[] }

export interface RangeOptions {
  /** Most ranges served after coalescing; more means the whole file (200). 0 turns ranges off. */
  maxRanges?: number
}

export interface MultipartLayout {
  parts: Array<{ head: string; start: number; end: number }>
  tail: string
  /** Exact byte length of the whole body, for Content-Length. */
  totalLength: number
}

/** nginx's default for `max_ranges` is unlimited; 16 covers real clients (PDF viewers, media players). */
const DEFAULT_MAX_RANGES = 16

/**
 * 15 digits stay below Number.MAX_SAFE_INTEGER (16 digits), so every accepted position is an
 * exact integer and no arithmetic on it can silently round.
 */
const MAX_DIGITS = 15

/**
 * RFC 9110 §14.2 names "many small ranges ... requested out of order" as a sign of abuse: each
 * one costs the server a seek and a part header while delivering almost nothing. A request
 * with at least this many ranges, in strictly descending order, averaging under
 * SMALL_RANGE_BYTES, gets the whole file instead. Two or three backward ranges stay allowed
 * because readers of trailers-then-headers formats (PDF, MP4) legitimately ask for them.
 */
const DESCENDING_MIN_RANGES = 4
const SMALL_RANGE_BYTES = 1024

const NONE: RangeResult = { kind: 'none' }
const UNSATISFIABLE: RangeResult = { kind: 'unsatisfiable' }

const NUMBER = new RegExp(`^[0-9]{1,${MAX_DIGITS}}$`)
const OWS_EDGES = /^[ \t]+|[ \t]+$/g

/** A range-spec as written, before it meets the file size. */
type RangeSpec = { first: number; last: number | undefined } | { suffix: number }

/**
 * Parses a Range header value against a representation of `size` bytes.
 *
 * 'none' means "ignore the header and send 200 with the whole file": the unit is not bytes,
 * the header is malformed, or the ranges look abusive. RFC 9110 §14.2 lets a server ignore
 * Range for any of these reasons, and a full 200 is always a correct answer.
 * 'unsatisfiable' means 416 with `Content-Range: bytes *\/size`.
 * 'ranges' holds one or more ranges, sorted and coalesced, clamped to the file.
 */
export function parseRange(header: string, size: number, options: RangeOptions = {}): RangeResult {
  checkSize(size)
  const maxRanges = options.maxRanges ?? DEFAULT_MAX_RANGES
  if (maxRanges <= 0) return NONE
  const specs = parseHeader(header)
  if (specs === undefined) return NONE
  const requested = resolveSpecs(specs, size)
  if (requested.length === 0) return UNSATISFIABLE
  const ranges = coalesce(requested)
  if (ranges.length > maxRanges) return NONE
  if (ranges.length > 1 && isSmallDescending(requested)) return NONE
  return { kind: 'ranges', ranges }
}

/** `bytes start-end/size`, the Content-Range of a 206 response or of one multipart part. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`
}

/** `bytes *\/size`, the Content-Range of a 416 response, so the client learns the real length. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`
}

/**
 * A random multipart boundary of 16 hex characters. The boundary must not occur inside any
 * part (RFC 2046 §5.1.1); we cannot scan file contents cheaply, so we rely on 64 random bits
 * making an accidental match practically impossible, as nginx and Apache also do.
 */
export function multipartBoundary(): string {
  // node:crypto is loaded the first time a multipart answer needs it (it adds some 3 MB of
  // resident memory to every process, measured): most servers never send one.
  return process.getBuiltinModule('node:crypto').randomBytes(8).toString('hex')
}

/**
 * Lays out a multipart/byteranges body (RFC 9110 §14.6): the caller writes each part's head,
 * then bytes start..end of the file, and finally the tail.
 *
 * The first head starts with `--BOUNDARY` and no leading CRLF, as in RFC 9110's own example:
 * RFC 2046 makes the preamble optional and treats the CRLF before later delimiters as part of
 * the delimiter, so the body may begin with the dash-boundary directly. The tail ends in CRLF,
 * which RFC 2046 allows before an (empty) epilogue and which keeps line-based tools happy.
 * An empty contentType omits the part's Content-Type line, because RFC 9110 asks for it only
 * when the whole representation would have had one.
 */
export function multipartParts(ranges: readonly ByteRange[], size: number, contentType: string, boundary: string): MultipartLayout {
  const typeLine = contentType === '' ? '' : `Content-Type: ${contentType}\r\n`
  let totalLength = 0
  const parts = ranges.map((range, index) => {
    const delimiter = index === 0 ? `--${boundary}` : `\r\n--${boundary}`
    const head = `${delimiter}\r\n${typeLine}Content-Range: ${contentRange(range.start, range.end, size)}\r\n\r\n`
    totalLength += Buffer.byteLength(head) + range.end - range.start + 1
    return { head, start: range.start, end: range.end }
  })
  const tail = `\r\n--${boundary}--\r\n`
  totalLength += Buffer.byteLength(tail)
  return { parts, tail, totalLength }
}

/** A negative, fractional or unsafe size is a caller bug, not a client error, so it throws. */
function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidOptionError(`parseRange: size must be a non-negative safe integer, got ${size}`)
  }
}

/**
 * Splits `bytes=spec, spec` into range-specs, or returns undefined if the header is not a
 * bytes range-set we can read. The unit is case-insensitive (RFC 9110 §14.1). Like nginx we
 * accept OWS right after `=`, which the grammar does not, because nothing else can be meant.
 * Empty list elements (`0-1,,2-3`) are skipped, as the #rule in RFC 9110 §5.6.1 requires.
 */
function parseHeader(header: string): RangeSpec[] | undefined {
  const equals = header.indexOf('=')
  if (equals < 0) return undefined
  if (header.slice(0, equals).replace(OWS_EDGES, '').toLowerCase() !== 'bytes') return undefined
  const specs: RangeSpec[] = []
  for (const element of header.slice(equals + 1).split(',')) {
    const text = element.replace(OWS_EDGES, '')
    if (text === '') continue
    const spec = parseSpec(text)
    if (spec === undefined) return undefined
    specs.push(spec)
  }
  return specs.length === 0 ? undefined : specs
}

/**
 * Reads one `first-last`, `first-` or `-suffix`. A spec with last < first is invalid
 * (RFC 9110 §14.1.1), and one invalid spec makes us ignore the whole header rather than guess
 * which part the client meant.
 */
function parseSpec(text: string): RangeSpec | undefined {
  const dash = text.indexOf('-')
  if (dash < 0) return undefined
  const firstText = text.slice(0, dash)
  const lastText = text.slice(dash + 1)
  if (firstText === '') return NUMBER.test(lastText) ? { suffix: Number(lastText) } : undefined
  if (!NUMBER.test(firstText)) return undefined
  const first = Number(firstText)
  if (lastText === '') return { first, last: undefined }
  if (!NUMBER.test(lastText)) return undefined
  const last = Number(lastText)
  return last < first ? undefined : { first, last }
}

/**
 * Turns specs into concrete ranges within the file, in request order, dropping those that
 * cannot be satisfied: a first-pos at or past the end, a zero-length suffix, and anything at
 * all on an empty file. RFC 9110 calls a non-zero suffix on an empty file satisfiable, but
 * there is no byte range to name in Content-Range, so we answer 416 with `bytes *\/0`.
 */
function resolveSpecs(specs: readonly RangeSpec[], size: number): ByteRange[] {
  const ranges: ByteRange[] = []
  if (size === 0) return ranges
  for (const spec of specs) {
    if ('suffix' in spec) {
      if (spec.suffix > 0) ranges.push({ start: Math.max(0, size - spec.suffix), end: size - 1 })
    } else if (spec.first < size) {
      ranges.push({ start: spec.first, end: Math.min(spec.last ?? size - 1, size - 1) })
    }
  }
  return ranges
}

/**
 * Sorts ranges and merges those that overlap or touch. RFC 9110 §14.2 allows coalescing, and
 * it defeats requests that repeat the same bytes many times over (the Apache "Killer" attack).
 * Sorting changes the order from the request's, which RFC 9110 §14.6 permits: a client must
 * read each part's Content-Range rather than rely on the order it asked for.
 */
function coalesce(requested: readonly ByteRange[]): ByteRange[] {
  const sorted = [...requested].sort((a, b) => a.start - b.start)
  const merged: ByteRange[] = []
  let current: ByteRange | null = null
  for (const next of sorted) {
    if (current !== null && next.start <= current.end + 1) {
      current.end = Math.max(current.end, next.end)
    } else {
      current = { ...next }
      merged.push(current)
    }
  }
  return merged
}

/** True for many small ranges in strictly descending order; see DESCENDING_MIN_RANGES. */
function isSmallDescending(requested: readonly ByteRange[]): boolean {
  if (requested.length < DESCENDING_MIN_RANGES) return false
  let totalBytes = 0
  let previous: ByteRange | null = null
  for (const range of requested) {
    if (previous !== null && range.start >= previous.start) return false
    totalBytes += range.end - range.start + 1
    previous = range
  }
  return totalBytes < requested.length * SMALL_RANGE_BYTES
}
