// Byte classification tables for the HTTP/1.1 grammar (RFC 9110 §5.6.2, RFC 9112 §3).
// A table lookup per byte is the cheapest classification a JavaScript loop can do.

/** tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
export const TOKEN = new Uint8Array(256)
/** Lower-case of a token byte, or 0 for a non-token byte: validates and folds a header name in one lookup. */
export const TOKEN_LOWER = new Uint8Array(256)
/** Bytes allowed in a request-target: visible ASCII but "#", and obs-text. Controls, space, DEL and "#" are not. */
export const TARGET = new Uint8Array(256)
/** field-vchar / SP / HTAB: bytes allowed inside a field value (RFC 9110 §5.5), obs-text included. */
export const FIELD_VALUE = new Uint8Array(256)
/** Every byte but CR and LF: what a line may hold when its content is skipped, not read (an upstream's chunk extensions). */
export const LINE_TEXT = new Uint8Array(256)
/** Value of a hexadecimal digit plus one, 0 for anything else. */
export const HEX_PLUS_ONE = new Uint8Array(256)
/** unreserved (RFC 3986 §2.3): ALPHA / DIGIT / "-" / "." / "_" / "~", whose percent-encodings a normalised path decodes. */
export const UNRESERVED = new Uint8Array(256)
/** reg-name bytes other than pct-encoded (RFC 3986 §3.2.2): unreserved / sub-delims. */
export const REG_NAME = new Uint8Array(256)
/** Bytes inside an IP-literal's brackets: unreserved / sub-delims / ":" (all that IPv6address and IPvFuture use). */
export const IP_LITERAL = new Uint8Array(256)

for (let c = 0; c < 256; c++) {
  const isAlpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  const isDigit = c >= 0x30 && c <= 0x39
  if (isAlpha || isDigit || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))) {
    TOKEN[c] = 1
    TOKEN_LOWER[c] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c
  }
  // No "#": a request-target has no fragment (RFC 9112 §3.2), and an upstream that ends a path
  // at "#" before resolving ".." would read "/api/..#" as "/": a way out of a proxy's prefix.
  if (c > 0x20 && c !== 0x7f && c !== 0x23) TARGET[c] = 1
  if (c === 0x09 || (c >= 0x20 && c !== 0x7f)) FIELD_VALUE[c] = 1
  if (c !== 0x0d && c !== 0x0a) LINE_TEXT[c] = 1
  if (isAlpha || isDigit || '-._~'.includes(String.fromCharCode(c))) UNRESERVED[c] = 1
  if (UNRESERVED[c] === 1 || "!$&'()*+,;=".includes(String.fromCharCode(c))) REG_NAME[c] = 1
  if (REG_NAME[c] === 1 || c === 0x3a) IP_LITERAL[c] = 1
  if (isDigit) HEX_PLUS_ONE[c] = c - 0x30 + 1
  else if (c >= 0x41 && c <= 0x46) HEX_PLUS_ONE[c] = c - 0x41 + 11
  else if (c >= 0x61 && c <= 0x66) HEX_PLUS_ONE[c] = c - 0x61 + 11
}

export const CR = 0x0d
export const LF = 0x0a
export const SP = 0x20
export const HTAB = 0x09
export const COLON = 0x3a
export const SEMICOLON = 0x3b

/** True when buf[start, end) equals the lower-case ASCII `lower`, comparing case-insensitively. */
export function equalsLowerAscii(buf: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]!
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}
