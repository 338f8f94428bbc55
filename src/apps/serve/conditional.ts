// Validators and conditional requests for the static file server (RFC 9110 §8.8 and §13).
// Everything here is a pure function of its arguments: static.ts stats the file, builds the
// validators with weakEtag() and the file's mtime, and asks evaluateConditions() and
// ifRangeAllows() what to answer. Keeping the I/O out makes every precedence rule testable
// with a table.
//
// Example (in static.ts):
//   const validators = { etag: weakEtag(st.size, st.mtimeMs), lastModifiedMs: st.mtimeMs }
//   const outcome = evaluateConditions(conditionalHeaders, validators, req.method)
//   if (outcome !== 'proceed') { res.status(outcome).end(); return }

/** The validators of the selected representation, as sent in ETag and Last-Modified. */
export interface Validators {
  /** The full entity tag, quotes and optional W/ prefix included, e.g. `W/"1f4-65a51e40"`. */
  etag: string
  /** Modification time in milliseconds since the epoch; compared at second precision. */
  lastModifiedMs: number
}

/** The precondition header fields of a request, field values as received; absent is undefined. */
export interface ConditionalHeaders {
  ifMatch?: string
  ifNoneMatch?: string
  ifModifiedSince?: string
  ifUnmodifiedSince?: string
}

/** What to do with the request: go on with the method, or answer 304 Not Modified or 412 Precondition Failed. */
export type ConditionOutcome = 'proceed' | 304 | 412

// ---------------------------------------------------------------------------------------------
// Entity tags (RFC 9110 §8.8.3)

/**
 * The entity tag for a file: `W/"<size in hex>-<mtime in whole seconds, hex>"`, for example
 * `W/"1f4-65a51e40"` for 500 bytes modified at 2024-01-15T12:00:00Z.
 *
 * It is built like nginx's ETag, from size and modification time, so it costs nothing beyond the
 * stat the server already does. (nginx puts the time first, `"<mtime hex>-<size hex>"`; the order
 * carries no meaning, only equality does.) It is marked weak because size and a one-second mtime
 * do not prove two versions are byte-for-byte identical: a file rewritten twice within a second
 * with the same length keeps the same tag. RFC 9110 §8.8.1 forbids calling such a validator
 * strong, and a weak tag is still good for 304 revalidation, which uses weak comparison.
 */
export function weakEtag(size: number, mtimeMs: number): string {
  const mtimeSeconds = Math.floor(mtimeMs / 1000)
  return `W/"${size.toString(16)}-${mtimeSeconds.toString(16)}"`
}

/** A well-formed entity tag found in a string: whether it is weak, and where its opaque-tag sits. */
interface EntityTagSpan {
  weak: boolean
  /** Index of the first character inside the quotes. */
  opaqueStart: number
  /** Index of the closing quote. */
  opaqueEnd: number
  /** Index just after the closing quote. */
  end: number
}

const DQUOTE = 0x22
const COMMA = 0x2c

/** etagc = %x21 / %x23-7E / obs-text: visible characters except the double quote. */
function isEtagChar(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || code >= 0x80
}

/** Spaces and horizontal tabs (OWS) are skipped around list members. */
function skipOws(text: string, at: number): number {
  while (at < text.length && (text.charCodeAt(at) === 0x20 || text.charCodeAt(at) === 0x09)) at++
  return at
}

/** Reads one entity-tag starting exactly at `at`, or returns null when none is there. */
function scanEntityTag(text: string, at: number): EntityTagSpan | null {
  let weak = false
  if (text.startsWith('W/', at)) {
    weak = true
    at += 2
  }
  if (text.charCodeAt(at) !== DQUOTE) return null
  const opaqueStart = at + 1
  let i = opaqueStart
  while (i < text.length && isEtagChar(text.charCodeAt(i))) i++
  if (i >= text.length || text.charCodeAt(i) !== DQUOTE) return null
  return { weak, opaqueStart, opaqueEnd: i, end: i + 1 }
}

/** Parses a whole field value that must be exactly one entity tag, surrounding OWS allowed. */
function parseSingleEntityTag(text: string): EntityTagSpan | null {
  const span = scanEntityTag(text, skipOws(text, 0))
  if (span === null || skipOws(text, span.end) !== text.length) return null
  return span
}

/** True when the field value is the "*" form of If-Match or If-None-Match. */
function isStar(fieldValue: string): boolean {
  return fieldValue.trim() === '*'
}

/**
 * Compares two entity tags (RFC 9110 §8.8.3.2). Strong comparison needs both to be strong and
 * their opaque-tags to be equal; weak comparison needs only the opaque-tags to be equal.
 */
function tagsMatch(a: string, aTag: EntityTagSpan, b: string, bTag: EntityTagSpan, strong: boolean): boolean {
  if (strong && (aTag.weak || bTag.weak)) return false
  const length = aTag.opaqueEnd - aTag.opaqueStart
  if (length !== bTag.opaqueEnd - bTag.opaqueStart) return false
  return a.startsWith(b.slice(bTag.opaqueStart, bTag.opaqueEnd), aTag.opaqueStart)
}

/**
 * Moves past a member that is not a well-formed entity tag, to just after the next comma.
 * Quotes are not honoured here on purpose: the member is already known to be broken, and
 * stopping at the first comma lets the well-formed members after it still be read.
 */
function skipMalformedMember(list: string, at: number): number {
  const comma = list.indexOf(',', at + 1)
  return comma === -1 ? list.length : comma + 1
}

/**
 * True when any member of a comma-separated entity-tag list matches `current`. Empty members
 * and OWS are allowed (the `#` list rule of RFC 9110 §5.6.1); a member that does not parse, or
 * that is followed by something other than a comma, matches nothing rather than failing the
 * whole field, so a sloppy client still gets its well-formed tags compared.
 */
function listMatches(list: string, current: string, currentTag: EntityTagSpan, strong: boolean): boolean {
  let at = 0
  while (at < list.length) {
    at = skipOws(list, at)
    if (at >= list.length) break
    if (list.charCodeAt(at) === COMMA) {
      at++
      continue
    }
    const member = scanEntityTag(list, at)
    if (member !== null) {
      const after = skipOws(list, member.end)
      if (after === list.length || list.charCodeAt(after) === COMMA) {
        if (tagsMatch(list, member, current, currentTag, strong)) return true
        at = after
        continue
      }
    }
    at = skipMalformedMember(list, at)
  }
  return false
}

/**
 * Evaluates an If-Match or If-None-Match field value against the current entity tag. "*" matches
 * because the callers only evaluate conditions for a representation that exists (a missing file
 * is a 404 before any precondition is looked at). A malformed current tag matches nothing.
 */
function entityTagFieldMatches(fieldValue: string, currentEtag: string, strong: boolean): boolean {
  if (isStar(fieldValue)) return true
  const currentTag = parseSingleEntityTag(currentEtag)
  if (currentTag === null) return false
  return listMatches(fieldValue, currentEtag, currentTag, strong)
}

// ---------------------------------------------------------------------------------------------
// HTTP dates (RFC 9110 §5.6.7)

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const LONG_DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MS_PER_SECOND = 1000
const SECONDS_PER_DAY = 86_400

/**
 * Formats a time as an IMF-fixdate, e.g. `Mon, 15 Jan 2024 12:00:00 GMT`, dropping the
 * milliseconds. `Date.prototype.toUTCString` produces exactly this form (ECMA-262 §21.4.4.43)
 * for years 0 to 9999, which covers every file time a server will see.
 */
export function httpDate(mtimeMs: number): string {
  return new Date(mtimeMs).toUTCString()
}

/** Whole seconds of a millisecond time, rounding down, so that 12:00:00.900 is 12:00:00 as sent in Last-Modified. */
function toSeconds(timeMs: number): number {
  return Math.floor(timeMs / MS_PER_SECOND)
}

/** Reads `count` decimal digits at `at`, or returns -1 when any of them is not a digit. */
function readDigits(text: string, at: number, count: number): number {
  let value = 0
  if (at + count > text.length) return -1
  for (let i = at; i < at + count; i++) {
    const digit = text.charCodeAt(i) - 0x30
    if (digit < 0 || digit > 9) return -1
    value = value * 10 + digit
  }
  return value
}

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1-12), valid for any year. */
function daysFromCivil(year: number, month: number, day: number): number {
  // Howard Hinnant's days_from_civil: years start in March so that the leap day comes last.
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/**
 * Reads `HH:MM:SS` at `at` as seconds since midnight, or -1. Second 60 is accepted because
 * RFC 5322, which IMF-fixdate comes from, allows a leap second; it counts as the next minute's
 * first second, which is the nearest instant a Unix clock can name.
 */
function readTimeOfDaySeconds(text: string, at: number): number {
  const hours = readDigits(text, at, 2)
  const minutes = readDigits(text, at + 3, 2)
  const seconds = readDigits(text, at + 6, 2)
  if (text[at + 2] !== ':' || text[at + 5] !== ':') return -1
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 60) return -1
  return hours * 3600 + minutes * 60 + seconds
}

/** Combines checked date fields into milliseconds since the epoch, or null when the day does not exist. */
function toEpochMs(year: number, monthIndex: number, day: number, timeOfDaySeconds: number): number | null {
  if (year < 0 || monthIndex < 0 || timeOfDaySeconds < 0) return null
  if (day < 1 || day > daysInMonth(year, monthIndex + 1)) return null
  const days = daysFromCivil(year, monthIndex + 1, day)
  return (days * SECONDS_PER_DAY + timeOfDaySeconds) * MS_PER_SECOND
}

/**
 * IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. The day name is checked for spelling but not
 * against the date, as Go's net/http does: the date alone names the instant, and refusing a
 * mismatched weekday would only turn a usable validator into an ignored one.
 */
function parseImfFixdate(text: string): number | null {
  if (text.length !== 29 || !DAY_NAMES.includes(text.slice(0, 3))) return null
  if (text.slice(3, 5) !== ', ' || text[7] !== ' ' || text[11] !== ' ' || text[16] !== ' ') return null
  if (text.slice(25) !== ' GMT') return null
  const day = readDigits(text, 5, 2)
  const monthIndex = MONTH_NAMES.indexOf(text.slice(8, 11))
  const year = readDigits(text, 12, 4)
  return toEpochMs(year, monthIndex, day, readTimeOfDaySeconds(text, 17))
}

/**
 * Resolves a two-digit year as RFC 9110 §5.6.7 requires: a year that would be more than 50 years
 * in the future is taken as the most recent past year with the same last two digits.
 */
function expandTwoDigitYear(twoDigitYear: number, nowMs: number): number {
  const nowYear = new Date(nowMs).getUTCFullYear()
  let year = nowYear - (nowYear % 100) + twoDigitYear
  if (year > nowYear + 50) year -= 100
  else if (year <= nowYear - 50) year += 100
  return year
}

/** Obsolete RFC 850 form: `Sunday, 06-Nov-94 08:49:37 GMT`. */
function parseRfc850Date(text: string, nowMs: number): number | null {
  const comma = text.indexOf(',')
  if (comma === -1 || !LONG_DAY_NAMES.includes(text.slice(0, comma))) return null
  const rest = text.slice(comma)
  if (rest.length !== 24 || rest.slice(0, 2) !== ', ' || rest[4] !== '-' || rest[8] !== '-') return null
  if (rest[11] !== ' ' || rest.slice(20) !== ' GMT') return null
  const day = readDigits(rest, 2, 2)
  const monthIndex = MONTH_NAMES.indexOf(rest.slice(5, 8))
  const twoDigitYear = readDigits(rest, 9, 2)
  if (twoDigitYear < 0) return null
  return toEpochMs(expandTwoDigitYear(twoDigitYear, nowMs), monthIndex, day, readTimeOfDaySeconds(rest, 12))
}

/** Obsolete asctime form: `Sun Nov  6 08:49:37 1994`, the day space-padded or two digits. */
function parseAsctimeDate(text: string): number | null {
  if (text.length !== 24 || !DAY_NAMES.includes(text.slice(0, 3))) return null
  if (text[3] !== ' ' || text[7] !== ' ' || text[10] !== ' ' || text[19] !== ' ') return null
  const monthIndex = MONTH_NAMES.indexOf(text.slice(4, 7))
  const day = text[8] === ' ' ? readDigits(text, 9, 1) : readDigits(text, 8, 2)
  const year = readDigits(text, 20, 4)
  return toEpochMs(year, monthIndex, day, readTimeOfDaySeconds(text, 11))
}

/**
 * Parses an HTTP-date in any of the three forms RFC 9110 §5.6.7 says recipients must accept
 * (IMF-fixdate, RFC 850, asctime) and returns milliseconds since the epoch, a whole number of
 * seconds; returns null for anything else. Names are case-sensitive, as the grammar says.
 * `nowMs` only matters for the two-digit years of the RFC 850 form; tests pass a fixed clock.
 */
export function parseHttpDate(text: string, nowMs: number = Date.now()): number | null {
  const trimmed = text.trim()
  if (trimmed[3] === ',') return parseImfFixdate(trimmed)
  if (trimmed[3] === ' ') return parseAsctimeDate(trimmed)
  return parseRfc850Date(trimmed, nowMs)
}

// ---------------------------------------------------------------------------------------------
// Preconditions (RFC 9110 §13.1 and the order of §13.2.2)

function isGetOrHead(method: string): boolean {
  return method === 'GET' || method === 'HEAD'
}

/**
 * If-Unmodified-Since (§13.1.4) is true when the representation was last modified at or before
 * the given date. An invalid date makes the field ignored, which callers see as true.
 */
function unmodifiedSince(fieldValue: string, lastModifiedMs: number): boolean {
  const sinceMs = parseHttpDate(fieldValue)
  if (sinceMs === null) return true
  return toSeconds(lastModifiedMs) <= toSeconds(sinceMs)
}

/**
 * If-Modified-Since (§13.1.3) is true when the representation was modified after the given date.
 * An invalid date makes the field ignored, which callers see as true (send the full response).
 */
function modifiedSince(fieldValue: string, lastModifiedMs: number): boolean {
  const sinceMs = parseHttpDate(fieldValue)
  if (sinceMs === null) return true
  return toSeconds(lastModifiedMs) > toSeconds(sinceMs)
}

/**
 * Decides a request's preconditions in the order RFC 9110 §13.2.2 prescribes:
 *
 * 1. If-Match, by strong comparison ("*" matches): false → 412.
 * 2. Only without If-Match, If-Unmodified-Since: modified after the date → 412.
 * 3. If-None-Match, by weak comparison ("*" matches): a match → 304 for GET and HEAD, else 412.
 * 4. Only without If-None-Match and for GET or HEAD, If-Modified-Since: not modified since → 304.
 *
 * Step 5 of §13.2.2, If-Range, is ifRangeAllows() and is the range code's concern. Invalid dates
 * are ignored as §13.1.3 and §13.1.4 require. The order matters: a client revalidating with both
 * If-None-Match and If-Modified-Since is judged by the entity tag alone, the more precise validator.
 *
 * Note that the tags made by weakEtag() never pass If-Match, whose comparison is strong; a client
 * that wants a lost-update check on a static file gets 412 unless it sends "*".
 */
export function evaluateConditions(headers: ConditionalHeaders, validators: Validators, method: string): ConditionOutcome {
  if (headers.ifMatch !== undefined) {
    if (!entityTagFieldMatches(headers.ifMatch, validators.etag, true)) return 412
  } else if (headers.ifUnmodifiedSince !== undefined) {
    if (!unmodifiedSince(headers.ifUnmodifiedSince, validators.lastModifiedMs)) return 412
  }
  if (headers.ifNoneMatch !== undefined) {
    if (entityTagFieldMatches(headers.ifNoneMatch, validators.etag, false)) return isGetOrHead(method) ? 304 : 412
  } else if (headers.ifModifiedSince !== undefined && isGetOrHead(method)) {
    if (!modifiedSince(headers.ifModifiedSince, validators.lastModifiedMs)) return 304
  }
  return 'proceed'
}

/** True when the field value starts like an entity tag rather than a date. */
function looksLikeEntityTag(fieldValue: string): boolean {
  return fieldValue.startsWith('"') || fieldValue.startsWith('W/')
}

/**
 * Evaluates If-Range (RFC 9110 §13.1.5): true means the Range header may be honoured, false
 * means the whole representation must be sent with 200. Absent, it allows the range. An entity
 * tag must match by strong comparison, so a weak tag (such as every weakEtag()) never allows a
 * range: a range of a possibly different version would splice two files together. A date must
 * equal Last-Modified exactly, at the second precision it was sent with. Anything else, including
 * a malformed tag or date, is false, which costs a full response but can never corrupt one.
 */
export function ifRangeAllows(ifRange: string | undefined, validators: Validators): boolean {
  if (ifRange === undefined) return true
  const fieldValue = ifRange.trim()
  if (looksLikeEntityTag(fieldValue)) {
    const requested = parseSingleEntityTag(fieldValue)
    const current = parseSingleEntityTag(validators.etag)
    if (requested === null || current === null) return false
    return tagsMatch(fieldValue, requested, validators.etag, current, true)
  }
  const dateMs = parseHttpDate(fieldValue)
  return dateMs !== null && toSeconds(dateMs) === toSeconds(validators.lastModifiedMs)
}
