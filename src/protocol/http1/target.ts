// The request-target (RFC 9112 §3.2) and the one path that everything routes on. At the space
// that ends the target, when its bytes are whole in one buffer, the parser finds an origin-form
// target's query itself and calls normalizeOriginPath() when the path could mean something other
// than its bytes; every other form goes to readTarget(), which tells them apart and takes an
// absolute-form target's authority as the request's host. A bad target is refused with 400 there,
// before the rest of the head arrives.
//
// One path for every consumer: routes, mounts, the reverse proxy and static files all see the
// same normalised path, so that no layer can take a request to lie under a prefix that another
// layer — or a server behind the proxy — resolves elsewhere (`/api/../private` is `/private`
// everywhere, as nginx matches locations). Normalising is RFC 3986 §6.2.2: percent-encoded
// unreserved characters decoded (`%2e` is "."), dot-segments removed (§5.2.4), and, as nginx's
// merge_slashes does, "//" merged: static files cannot name an empty segment, so a route or a
// mount must not see one either ("//cgi-bin/x" is the file handler's "/cgi-bin/x"). Other
// percent-encodings stay as they were sent, so the upstream of a proxy sees the same resource.
//
// A path without "%", "\", ";", "/." or "//" — nearly every request — is normal already: the
// parser's loop that finds the "?" notices that, and nothing is made. Only the others pay for a copy.

import { Buffer } from 'node:buffer'
import type { ErrorCode } from '../../core/errors.ts'
import { COLON, HEX_PLUS_ONE, SEMICOLON, UNRESERVED } from './chars.ts'
import { isValidHost, uriHostEnd } from './fields.ts'
import type { RequestHead } from './request-head.ts'

const SLASH = 0x2f
const BACKSLASH = 0x5c
const DOT = 0x2e
const PERCENT = 0x25
const QUESTION = 0x3f
const ASTERISK = 0x2a

/** The path of an absolute-form target that has none ("http://host" and "http://host?q"). */
export const ROOT_PATH: Buffer = Buffer.from('/', 'latin1')
/** CONNECT's path: its target is an authority. */
const EMPTY_PATH: Buffer = Buffer.alloc(0)

/**
 * The path buf[start, end) of an origin-form target in which the parser saw a byte after which
 * normalising may change it ("%", "\", ";", "/.", "//"): refuse it, or set head.normalizedPath
 * when normalising changes it.
 */
export function normalizeOriginPath(head: RequestHead, buf: Buffer, start: number, end: number): ErrorCode | null {
  const normal = normalizePath(buf, start, end)
  if (typeof normal === 'string') return normal
  // "/.well-known/x" and "/a;b" looked irregular and are not: they keep pointing at the target.
  if (normal.length !== end - start || !normal.equals(buf.subarray(start, end))) head.normalizedPath = normal
  return null
}

/**
 * Any other target buf[start, end) of `head` (whose method is known): CONNECT's, "*", or
 * absolute-form. Sets its path, query and — for absolute-form — host. Returns the error that
 * refuses the request, or null.
 */
export function readTarget(head: RequestHead, buf: Buffer, start: number, end: number): ErrorCode | null {
  if (head.method === 'CONNECT') {
    // authority-form (§3.2.3), the only form CONNECT takes: uri-host ":" port. There is no path.
    const hostEnd = uriHostEnd(buf, start, end)
    if (hostEnd <= start || hostEnd + 1 >= end || !isValidHost(buf, start, end)) return 'PETREL_ERR_INVALID_TARGET'
    head.normalizedPath = EMPTY_PATH
    return null
  }
  if (buf[start] === ASTERISK && end - start === 1 && head.method === 'OPTIONS') {
    // asterisk-form (§3.2.4): the server as a whole. "*" is its path; nothing routes on it.
    return null
  }
  return readAbsoluteForm(head, buf, start, end)
}

/**
 * absolute-form (§3.2.2): "http" or "https", "://", an authority without userinfo (RFC 9110
 * §4.2.4) that names a host (§4.2.1), then path-abempty and the query. The authority is the
 * request's host, whatever a Host field says; an empty path stands for "/".
 */
function readAbsoluteForm(head: RequestHead, buf: Buffer, start: number, end: number): ErrorCode | null {
  let p = start + 4
  if (p > end || (buf[start]! | 0x20) !== 0x68 || (buf[start + 1]! | 0x20) !== 0x74 || (buf[start + 2]! | 0x20) !== 0x74 || (buf[start + 3]! | 0x20) !== 0x70) {
    return 'PETREL_ERR_INVALID_TARGET'
  }
  if (p < end && (buf[p]! | 0x20) === 0x73) p++ // https
  if (p + 3 > end || buf[p] !== COLON || buf[p + 1] !== SLASH || buf[p + 2] !== SLASH) return 'PETREL_ERR_INVALID_TARGET'
  const authorityStart = p + 3
  p = authorityStart
  while (p < end && buf[p] !== SLASH && buf[p] !== QUESTION) p++
  if (uriHostEnd(buf, authorityStart, p) <= authorityStart || !isValidHost(buf, authorityStart, p)) return 'PETREL_ERR_INVALID_HOST'
  head.hostStart = authorityStart
  head.hostEnd = p
  const pathStart = p
  while (p < end && buf[p] !== QUESTION) p++
  head.queryStart = p < end ? p : -1
  if (p === pathStart) {
    head.normalizedPath = ROOT_PATH
    return null
  }
  // The path does not start the target, so it is always a copy: the form is rare.
  const normal = normalizePath(buf, pathStart, p)
  if (typeof normal === 'string') return normal
  head.normalizedPath = normal
  return null
}

/**
 * The normal form of the path buf[start, end), which starts with "/": unreserved characters
 * decoded, "." and ".." segments resolved, empty segments dropped; a path that ended in "/", "/."
 * or "/.." ends in "/". Refused: a "%" without two hex digits or an encoded NUL (as nginx does), a
 * ".." above "/", and a segment that still hides ".." between separators another server may
 * honour — an encoded "/" or "\", a "\" or a ";" ("..%2f", "..;" in front of Tomcat) — since the
 * proxy cannot know how its upstream reads them.
 */
export function normalizePath(buf: Uint8Array, start: number, end: number): Buffer | ErrorCode {
  // Decoding and dropping only shorten: the output never outgrows the input.
  const out = Buffer.allocUnsafe(end - start)
  out[0] = SLASH
  let o = 1
  let p = start + 1
  for (;;) {
    // One segment: buf[p, next "/"), written at out[segmentStart, o).
    const segmentStart = o
    let dots = 0
    let mayHideDots = false
    while (p < end) {
      let c = buf[p]!
      if (c === SLASH) break
      if (c === PERCENT) {
        const high = p + 2 < end ? HEX_PLUS_ONE[buf[p + 1]!]! : 0
        const low = high === 0 ? 0 : HEX_PLUS_ONE[buf[p + 2]!]!
        if (low === 0) return 'PETREL_ERR_INVALID_PATH_ENCODING'
        const decoded = (high - 1) * 16 + (low - 1)
        if (decoded === 0) return 'PETREL_ERR_INVALID_PATH_ENCODING'
        if (UNRESERVED[decoded] === 0) {
          // Kept encoded — the upstream must see the resource the client named — with upper-case
          // hex digits (RFC 3986 §6.2.2.1): "%c3%a9" and "%C3%A9" are one path, and must match
          // one prefix.
          out[o++] = PERCENT
          out[o++] = upperHex(buf[p + 1]!)
          out[o++] = upperHex(buf[p + 2]!)
          p += 3
          mayHideDots = true
          continue
        }
        c = decoded
        p += 3
      } else {
        p++
        if (c === BACKSLASH || c === SEMICOLON) mayHideDots = true
      }
      if (c === DOT) dots++
      out[o++] = c
    }
    const length = o - segmentStart
    if (length === dots && length <= 2) {
      // "", "." or "..": nothing of it stays, and ".." takes the segment before it away.
      o = segmentStart
      if (length === 2) {
        if (segmentStart === 1) return 'PETREL_ERR_PATH_ABOVE_ROOT'
        o = segmentStart - 1
        while (out[o - 1] !== SLASH) o--
      }
    } else if (mayHideDots && hidesDotDot(out, segmentStart, o)) {
      return 'PETREL_ERR_AMBIGUOUS_PATH'
    } else if (p < end) {
      out[o++] = SLASH
    }
    if (p >= end) break
    p++
  }
  return out.subarray(0, o)
}

/** Whether the segment out[start, end), decoded, has a ".." between "/", "\" or ";" separators. */
function hidesDotDot(out: Uint8Array, start: number, end: number): boolean {
  let pieceLength = 0
  let pieceDots = 0
  for (let q = start; q < end; ) {
    let c = out[q]!
    if (c === PERCENT) {
      // Two hex digits follow: normalizePath wrote only valid escapes.
      c = (HEX_PLUS_ONE[out[q + 1]!]! - 1) * 16 + (HEX_PLUS_ONE[out[q + 2]!]! - 1)
      q += 3
    } else {
      q++
    }
    if (c === SLASH || c === BACKSLASH || c === SEMICOLON) {
      if (pieceLength === 2 && pieceDots === 2) return true
      pieceLength = 0
      pieceDots = 0
      continue
    }
    pieceLength++
    if (c === DOT) pieceDots++
  }
  return pieceLength === 2 && pieceDots === 2
}

/** Whether `text` (a route pattern or a mount prefix, starting with "/") is a normal path: one a request could be routed on. */
/** A hex digit's byte, upper-case. */
function upperHex(c: number): number {
  return c >= 0x61 ? c - 0x20 : c
}

/**
 * Whether `prefix` can be a mount's prefix: a normalised path of unreserved bytes and "/" only.
 * A prefix with a sub-delim, a percent-encoding or a byte above 0x7f has spellings that do not
 * match it byte for byte ("/secret!/" and "/secret%21/") yet name the same directory to the file
 * server, which decodes everything: a mount guarding it could be walked around.
 */
export function isMountablePrefix(prefix: string): boolean {
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i)
    if (c !== SLASH && (c > 0x7f || UNRESERVED[c] === 0)) return false
  }
  return prefix.startsWith('/') && isNormalPath(prefix)
}

export function isNormalPath(text: string): boolean {
  const bytes = Buffer.from(text, 'latin1')
  const normal = normalizePath(bytes, 0, bytes.length)
  return typeof normal !== 'string' && normal.equals(bytes)
}
