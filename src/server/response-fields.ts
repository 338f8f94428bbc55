// Field names and values of response heads: checked once (a name must be a token, a value may
// never split the head), names lower-cased through a bounded cache, and the lines the server
// writes on every response built once.

import { TOKEN } from '../protocol/http1/chars.ts'
import { InvalidOptionError } from '../core/option-error.ts'

/**
 * Handlers set the same few header names on every response; each is validated and lower-cased
 * once. The cache is bounded, so names made up per request cannot grow it without end.
 */
const lowerNames = new Map<string, string>()
const MAX_CACHED_NAMES = 512

/**
 * `headers` as field lines, for ServerOptions.responseHeaders; throws InvalidOptionError for a
 * name that is not a token, a value with CR, LF or another control, or a framing field.
 */
export function serverFieldLines(headers: Record<string, string>): string {
  let lines = ''
  for (const [name, value] of Object.entries(headers)) {
    const lower = lowerCaseName(name)
    if (lower === null || typeof value !== 'string' || valueKind(value) !== ValueKind.ASCII)
      throw new InvalidOptionError(`responseHeaders: ${JSON.stringify(name)}: a name must be a token and its value printable ASCII`)
    if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection' || lower === 'date')
      throw new InvalidOptionError(`responseHeaders: ${name} is the server's own to set per response`)
    lines += `${name}: ${value}\r\n`
  }
  return lines
}

/** The lower-case form of a valid field name, or null when `name` is not a token. */
export function lowerCaseName(name: string): string | null {
  // The name set last time, again (the usual case: a handler sets the same headers each time).
  if (name === lastName) return lastLower
  const lower = lowerCaseNameOf(name)
  if (lower !== null) {
    lastName = name
    lastLower = lower
  }
  return lower
}
let lastName: string | null = null
let lastLower = ''

function lowerCaseNameOf(name: string): string | null {
  const cached = lowerNames.get(name)
  if (cached !== undefined) return cached
  if (name.length === 0) return null
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c > 0x7f || TOKEN[c] === 0) return null
  }
  const lower = name.toLowerCase()
  if (lowerNames.size < MAX_CACHED_NAMES) lowerNames.set(name, lower)
  return lower
}

/** "Content-Length: N\r\n", kept for the small lengths most responses have. */
export function contentLengthLine(length: number): string {
  if (length >= CONTENT_LENGTH_LINES.length) return `Content-Length: ${length}\r\n`
  return (CONTENT_LENGTH_LINES[length] ??= `Content-Length: ${length}\r\n`)
}
const CONTENT_LENGTH_LINES: Array<string | undefined> = new Array(1024).fill(undefined)

/** One or more ASCII digits and nothing else. */
export function isDigits(text: string): boolean {
  if (text.length === 0) return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** What a header value holds, which decides whether and how it may go into a head. */
export const ValueKind = { INVALID: 0, ASCII: 1, LATIN1: 2 } as const
export type ValueKind = (typeof ValueKind)[keyof typeof ValueKind]

/**
 * INVALID for a CR, LF, NUL or other control but HTAB (a value can never split the head: response
 * splitting) or a character beyond one byte; LATIN1 when it has obs-text (0x80–0xff); else ASCII.
 */
export function valueKind(value: string): ValueKind {
  let kind: ValueKind = ValueKind.ASCII
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return ValueKind.INVALID
    if (c > 0x7f) kind = ValueKind.LATIN1
  }
  return kind
}

/**
 * A head as HTTP/2 fields (RFC 9113 §8.3.2, §8.2.2), for a sink that frames bodies itself
 * (server/h2-exchange.ts), so the head is never written as HTTP/1.1 text to be read back:
 * `:status`, the handler's fields (`stored` as [lower, name, value] triples, lower-case names)
 * without the connection-specific and framing ones, `Date` unless set, `content-length` (the
 * body's `length`, else the one declared; none for a status without a body), and the server's
 * and raw field lines (`lines`, "name: value\r\n" each). Returns the fields and the declared
 * Content-Length (-1: none).
 */
export function h2HeadFields(
  code: number,
  stored: readonly string[],
  length: number,
  noBody: boolean,
  lines: string,
  date: string,
): [Array<[string, string]>, number] {
  const out: Array<[string, string]> = [[':status', statusCodes[code] ?? String(code)]]
  let declared = -1
  let hasDate = false
  for (let i = 0; i < stored.length; i += 3) {
    const lower = stored[i]!
    if (lower === 'content-length') {
      if (isDigits(stored[i + 2]!)) declared = Number(stored[i + 2])
      continue
    }
    if (H2_DROPPED.has(lower)) continue
    if (lower === 'date') hasDate = true
    out.push([lower, stored[i + 2]!])
  }
  if (lines !== '') h2FieldLines(lines, 0, out)
  if (!hasDate) out.push(['date', date])
  if (!noBody) {
    if (length >= 0) out.push(['content-length', String(length)])
    else if (declared >= 0) out.push(['content-length', String(declared)])
  }
  return [out, declared]
}

/**
 * Field lines ("name: value\r\n" each, from `from`) as [lower-case name, value] pairs pushed onto
 * `out`, without the ones HTTP/2 forbids: the server's and raw lines of a head, a prepared head's
 * lines, trailers.
 */
export function h2FieldLines(lines: string, from: number, out: Array<[string, string]>): Array<[string, string]> {
  for (let p = from; p < lines.length; ) {
    let eol = lines.indexOf('\r\n', p)
    if (eol < 0) eol = lines.length
    const colon = lines.indexOf(':', p)
    if (colon > p && colon < eol) {
      const name = lines.slice(p, colon).toLowerCase()
      if (!H2_DROPPED.has(name)) out.push([name, lines.slice(colon + 1, eol).trim()])
    }
    p = eol + 2
  }
  return out
}

/** Fields HTTP/2 forbids (§8.2.2), and the framing HTTP/2 does itself. */
const H2_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])
/** Status codes as the strings :status carries, made once. */
const statusCodes: string[] = []
for (let code = 100; code < 600; code++) statusCodes[code] = String(code)
