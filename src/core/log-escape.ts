// Escaping for text that reaches a log from outside: a client's request line and fields in the
// access log, a CGI script's stderr and head in the error log. It is nginx's ngx_http_log_escape:
// `"`, `\`, control characters and bytes from 0x7F up become `\xHH`, so the text can neither end
// a quoted field nor start a forged line, nor drive the terminal of whoever reads the log (ESC,
// CR, the C1 controls).
//
// Example: the string `GET /<ESC>[2J HTTP/1.1` becomes the plain text `GET /\x1B[2J HTTP/1.1`.
//   const field = `"${escapeLogValue(requestLine)}"`

import { Buffer } from 'node:buffer'

const HEX = '0123456789ABCDEF'

function needsEscape(code: number): boolean {
  return code < 0x20 || code === 0x22 || code === 0x5c || code >= 0x7f
}

function escapeByte(byte: number): string {
  return '\\x' + HEX[byte >> 4] + HEX[byte & 0xf]
}

/**
 * Escapes a value for a quoted field of a log line. Header strings in Petrel are latin1, one
 * byte per character; a character above 0xFF (from application code) is escaped as its UTF-8
 * bytes, so the line stays ASCII.
 */
export function escapeLogValue(value: string): string {
  let i = 0
  while (i < value.length && !needsEscape(value.charCodeAt(i))) i++
  if (i === value.length) return value
  let out = value.slice(0, i)
  for (; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (!needsEscape(code)) {
      out += value[i]
    } else if (code <= 0xff) {
      out += escapeByte(code)
    } else {
      const codePoint = value.codePointAt(i)!
      if (codePoint > 0xffff) i++
      for (const byte of Buffer.from(String.fromCodePoint(codePoint), 'utf8')) out += escapeByte(byte)
    }
  }
  return out
}
