// Decoders for the header fields that frame a message (RFC 9112 §6, RFC 9110 §7.6.1), and the
// method table. Pure functions over byte ranges, so the parser's state machine stays about
// states and these stay about grammar.

import type { ErrorCode } from '../../core/errors.ts'
import { SP, HTAB, COLON, SEMICOLON, TOKEN, FIELD_VALUE, REG_NAME, IP_LITERAL, equalsLowerAscii } from './chars.ts'

const COMMA = 0x2c

/** What parseContentLength returns for a value too large to hold exactly; it exceeds any body limit. */
export const CONTENT_LENGTH_SATURATED = Number.MAX_SAFE_INTEGER

/** Content-Length as a number, or -1 when it is not plain digits. */
export function parseContentLength(buf: Uint8Array, start: number, end: number): number {
  if (start === end) return -1
  let value = 0
  for (let p = start; p < end; p++) {
    const c = buf[p]!
    if (c < 0x30 || c > 0x39) return -1
    // Below 9e14, value * 10 + 9 stays under 2^53 and exact.
    value = value < 9e14 ? value * 10 + (c - 0x30) : CONTENT_LENGTH_SATURATED
  }
  return value
}

const DOT = 0x2e
const LEFT_BRACKET = 0x5b
const RIGHT_BRACKET = 0x5d

/**
 * Where the uri-host at buf[start, end) ends (RFC 3986 §3.2.2): just past an IP-literal's "]", or
 * at the first byte that is not part of a reg-name (its unreserved and sub-delims bytes). -1 when
 * an IP-literal is malformed. IPv4address is a reg-name by its bytes. Stricter than the grammar,
 * as nginx is: a name with pct-encoding (no client sends one: names go as punycode) or with two
 * dots in a row ends there, so a Host that later becomes a path — a virtual host's root, a CGI
 * script's SERVER_NAME — cannot climb out of it with ".." or "%2e%2e".
 */
export function uriHostEnd(buf: Uint8Array, start: number, end: number): number {
  if (start < end && buf[start] === LEFT_BRACKET) return ipLiteralEnd(buf, start, end)
  let p = start
  let previous = 0
  for (; p < end; p++) {
    const c = buf[p]!
    if (REG_NAME[c] !== 1 || (c === DOT && previous === DOT)) break
    previous = c
  }
  return p
}

/**
 * uriHostEnd for an IP-literal. Inside the brackets only the bytes are checked, not the IPv6
 * grammar: a wrong address there can name nothing, and cannot smuggle a "/", "@" or space past
 * the check.
 */
function ipLiteralEnd(buf: Uint8Array, start: number, end: number): number {
  let p = start + 1
  while (p < end && IP_LITERAL[buf[p]!] === 1) p++
  return p === end || buf[p] !== RIGHT_BRACKET || p === start + 1 ? -1 : p + 1
}

/**
 * Where host = uri-host [ ":" port ], port = *DIGIT (RFC 9112 §3.2, RFC 3986 §3.2.3) at
 * buf[start, end) ends: at the first byte that cannot continue it, or -1 for a malformed IP-literal.
 */
export function hostEnd(buf: Uint8Array, start: number, end: number): number {
  let p = uriHostEnd(buf, start, end)
  if (p < 0 || p === end || buf[p] !== COLON) return p
  for (p++; p < end; p++) {
    const c = buf[p]!
    if (c < 0x30 || c > 0x39) break
  }
  return p
}

/** Whether buf[start, end) is host = uri-host [ ":" port ]. An empty value is valid. */
export function isValidHost(buf: Uint8Array, start: number, end: number): boolean {
  return hostEnd(buf, start, end) === end
}

// Transfer-Encoding, folded over every field line of a message into bits.
export const TE_CHUNKED_SEEN = 1
export const TE_CHUNKED_LAST = 2
export const TE_UNKNOWN = 4
export const TE_CHUNKED_TWICE = 8
export const TE_MALFORMED = 16
export const TE_UNSUPPORTED = 32

/** Fold one Transfer-Encoding field value into `flags`; coding parameters are ignored. */
export function readTransferCodings(buf: Uint8Array, start: number, end: number, flags: number): number {
  let p = start
  while (p < end) {
    while (p < end && (buf[p] === SP || buf[p] === HTAB || buf[p] === COMMA)) p++
    if (p === end) break
    const tokenStart = p
    while (p < end && TOKEN[buf[p]!] === 1) p++
    const tokenEnd = p
    // After a coding only OWS and ";" parameters may follow (RFC 9110 §10.1.4); "chunked x" is not chunked.
    while (p < end && (buf[p] === SP || buf[p] === HTAB)) p++
    if (p < end && buf[p] !== COMMA && buf[p] !== SEMICOLON) flags |= TE_MALFORMED
    while (p < end && buf[p] !== COMMA) p++
    if (tokenEnd === tokenStart) {
      flags |= TE_MALFORMED
    } else if (equalsLowerAscii(buf, tokenStart, tokenEnd, 'chunked')) {
      if (flags & TE_CHUNKED_SEEN) flags |= TE_CHUNKED_TWICE
      flags |= TE_CHUNKED_SEEN | TE_CHUNKED_LAST
    } else {
      // gzip, deflate and compress are registered codings, but Petrel does not decode request
      // bodies: passing coded bytes to a handler as if they were the content would be wrong.
      flags &= ~TE_CHUNKED_LAST
      flags |= isRegisteredCoding(buf, tokenStart, tokenEnd) ? TE_UNSUPPORTED : TE_UNKNOWN
    }
  }
  return flags
}

/** Codings registered for HTTP besides chunked (RFC 9110 §18.6, with the x- aliases of §8.4.1). */
function isRegisteredCoding(buf: Uint8Array, start: number, end: number): boolean {
  return (
    equalsLowerAscii(buf, start, end, 'gzip') ||
    equalsLowerAscii(buf, start, end, 'x-gzip') ||
    equalsLowerAscii(buf, start, end, 'deflate') ||
    equalsLowerAscii(buf, start, end, 'compress') ||
    equalsLowerAscii(buf, start, end, 'x-compress')
  )
}

// Connection options that change how the connection is handled.
export const CONN_CLOSE = 1
export const CONN_KEEP_ALIVE = 2
export const CONN_UPGRADE = 4

/** The Connection options named in one field value, as bits. */
export function readConnectionOptions(buf: Uint8Array, start: number, end: number): number {
  let options = 0
  let p = start
  while (p < end) {
    while (p < end && (buf[p] === SP || buf[p] === HTAB || buf[p] === COMMA)) p++
    const tokenStart = p
    while (p < end && buf[p] !== COMMA && buf[p] !== SP && buf[p] !== HTAB) p++
    if (equalsLowerAscii(buf, tokenStart, p, 'close')) options |= CONN_CLOSE
    else if (equalsLowerAscii(buf, tokenStart, p, 'keep-alive')) options |= CONN_KEEP_ALIVE
    else if (equalsLowerAscii(buf, tokenStart, p, 'upgrade')) options |= CONN_UPGRADE
  }
  return options
}

/**
 * One trailer field line (without its CRLF) as [lower-case name, value], or the error that
 * rejects it. Trailers arrive in body reads and may be split across them, so the parser collects
 * their bytes and checks the line here once it is whole.
 */
export function parseTrailerLine(line: Buffer): [string, string] | ErrorCode {
  let colon = 0
  while (colon < line.length && TOKEN[line[colon]!] === 1) colon++
  if (colon === line.length || line[colon] !== COLON) {
    const c = line[colon]
    return c === SP || c === HTAB ? 'PETREL_ERR_WHITESPACE_BEFORE_COLON' : 'PETREL_ERR_INVALID_HEADER_NAME'
  }
  if (colon === 0) return 'PETREL_ERR_INVALID_HEADER_NAME'
  let valueStart = colon + 1
  let valueEnd = line.length
  for (let i = valueStart; i < valueEnd; i++) if (FIELD_VALUE[line[i]!] === 0) return 'PETREL_ERR_INVALID_HEADER_VALUE'
  while (valueStart < valueEnd && (line[valueStart] === SP || line[valueStart] === HTAB)) valueStart++
  while (valueEnd > valueStart && (line[valueEnd - 1] === SP || line[valueEnd - 1] === HTAB)) valueEnd--
  return [line.toString('latin1', 0, colon).toLowerCase(), line.toString('latin1', valueStart, valueEnd)]
}

/** Known methods are returned as constants so that the common ones cost no allocation. */
export function methodName(buf: Buffer, start: number, end: number): string {
  const len = end - start
  const c = buf[start]
  if (len === 3) {
    if (c === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET'
    if (c === 0x50 && buf[start + 1] === 0x55 && buf[start + 2] === 0x54) return 'PUT'
  } else if (len === 4) {
    if (c === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return 'POST'
    if (c === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41 && buf[start + 3] === 0x44) return 'HEAD'
  }
  return buf.toString('latin1', start, end)
}
