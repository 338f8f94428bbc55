// An HTTP/2 request's decoded fields → the RequestHead every handler already reads (RFC 9113
// §8.2, §8.3). The fields are laid out in one latin1 buffer — target first, then each name and
// value — so that RequestHead's offsets, the router's byte matching and the path normalisation
// of HTTP/1.1 work unchanged. A request that breaks a rule of §8 is malformed: the caller resets
// its stream with PROTOCOL_ERROR (§8.1.1), naming why.

import { Buffer } from 'node:buffer'
import { RequestHead } from '../protocol/http1/request-head.ts'
import { normalizeOriginPath } from '../protocol/http1/target.ts'
import { FIELD_VALUE, TOKEN } from '../protocol/http1/chars.ts'
import type { Limits } from '../core/limits.ts'
import { isDigits } from './response-fields.ts'

/** Fields that belong to one HTTP/1.1 connection and never to an HTTP/2 message (§8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/** The head, or why the request is malformed (a stream error), or that a limit was passed (431 / 414). */
export type H2RequestResult = { head: RequestHead } | { malformed: string } | { status: 414 | 431; why: string }

/** `fields`: flat [name, value, …] as HPACK decoded them; `endStream`: the HEADERS frame ended the stream (no body). */
export function requestHead(fields: readonly string[], limits: Limits, endStream: boolean): H2RequestResult {
  let method: string | null = null
  let scheme: string | null = null
  let path: string | null = null
  let authority: string | null = null
  let regular = false
  const names: string[] = []
  const values: string[] = []
  let cookie: string | null = null
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    const value = fields[i + 1]!
    const problem = fieldProblem(name, value)
    if (problem !== null) return { malformed: problem }
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return { malformed: `the pseudo-header ${name} after a regular field` }
      if (name === ':method') {
        if (method !== null) return { malformed: 'a second :method' }
        method = value
      } else if (name === ':scheme') {
        if (scheme !== null) return { malformed: 'a second :scheme' }
        scheme = value
      } else if (name === ':path') {
        if (path !== null) return { malformed: 'a second :path' }
        path = value
      } else if (name === ':authority') {
        if (authority !== null) return { malformed: 'a second :authority' }
        authority = value
      } else return { malformed: `the pseudo-header ${name} in a request` }
      continue
    }
    regular = true
    if (CONNECTION_SPECIFIC.has(name)) return { malformed: `the connection-specific field ${name}` }
    if (name === 'te' && value !== 'trailers') return { malformed: `TE: ${value} (only "trailers" is allowed)` }
    if (name === 'cookie') {
      // Cookie crumbs are joined back into one field (§8.2.3).
      cookie = cookie === null ? value : `${cookie}; ${value}`
      continue
    }
    // :authority is the host; a Host field beside it is dropped (§8.3.1).
    if (name === 'host') {
      if (authority === null) authority = value
      continue
    }
    names.push(name)
    values.push(value)
  }
  if (cookie !== null) {
    names.push('cookie')
    values.push(cookie)
  }
  if (method === null) return { malformed: 'no :method' }
  if (method === 'CONNECT') {
    // A tunnel (§8.5): :authority only. Petrel's HTTP/2 serves no tunnels, and says so per stream.
    return { malformed: 'CONNECT over HTTP/2 is not served' }
  }
  if (scheme === null || path === null) return { malformed: 'no :scheme or no :path' }
  if (path === '' || (path.charCodeAt(0) !== 0x2f && !(path === '*' && method === 'OPTIONS'))) return { malformed: `the :path ${JSON.stringify(path)}` }
  if (!isToken(method)) return { malformed: 'the :method is not a token' }
  if (names.length + (authority === null ? 0 : 1) > limits.maxHeaderCount) return { status: 431, why: `more than ${limits.maxHeaderCount} fields` }
  if (path.length > limits.maxUriBytes) return { status: 414, why: `a :path over ${limits.maxUriBytes} bytes` }
  let contentLength = -1
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== 'content-length') continue
    const value = values[i]!
    if (!isDigits(value) || value.length > 15 || (contentLength >= 0 && Number(value) !== contentLength)) return { malformed: `Content-Length: ${value}` }
    contentLength = Number(value)
  }
  if (endStream && contentLength > 0) return { malformed: `Content-Length: ${contentLength} on a request without DATA` }
  // One latin1 string: the path, the authority, then each name and value; offsets into it.
  let text = path
  const head = new RequestHead(Buffer.alloc(0))
  const offsets: number[] = []
  let hostStart = -1
  let hostEnd = -1
  if (authority !== null) {
    hostStart = text.length
    text += authority
    hostEnd = text.length
  }
  for (let i = 0; i < names.length; i++) {
    const nameStart = text.length
    text += names[i]!
    const valueStart = text.length
    text += values[i]!
    offsets.push(nameStart, valueStart, valueStart, text.length)
  }
  const buf = Buffer.from(text, 'latin1')
  head.buf = buf
  head.method = method
  head.targetStart = 0
  head.targetEnd = path.length
  const query = path.indexOf('?')
  head.queryStart = query
  head.versionMajor = 2
  head.versionMinor = 0
  head.headers = offsets
  head.hostStart = hostStart
  head.hostEnd = hostEnd
  head.contentLength = contentLength
  // A body of no declared length (DATA frames until END_STREAM) is read as a chunked one is.
  head.chunked = !endStream && contentLength < 0
  head.keepAlive = true
  if (path !== '*') {
    const problem = normalizeOriginPath(head, buf, 0, query < 0 ? path.length : query)
    if (problem !== null) return { malformed: `the :path ${JSON.stringify(path)} cannot be normalised (${problem})` }
  }
  return { head }
}

/** Why a field is malformed in HTTP/2 (§8.2.1), or null: names are lower-case tokens, values hold no NUL, CR or LF nor start or end with whitespace. */
export function fieldProblem(name: string, value: string): string | null {
  const pseudo = name.charCodeAt(0) === 0x3a
  if (name.length === (pseudo ? 1 : 0)) return 'an empty field name'
  for (let i = pseudo ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c >= 0x41 && c <= 0x5a) return `the upper-case field name ${JSON.stringify(name)}`
    if (c > 0x7f || TOKEN[c] === 0) return `the field name ${JSON.stringify(name)}`
  }
  const last = value.length - 1
  if (last >= 0) {
    const first = value.charCodeAt(0)
    const end = value.charCodeAt(last)
    if (first === 0x20 || first === 0x09 || end === 0x20 || end === 0x09) return `whitespace around the value of ${name}`
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c > 0xff || FIELD_VALUE[c] === 0) return `a control character in the value of ${name}`
  }
  return null
}

function isToken(text: string): boolean {
  if (text === '') return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0x7f || TOKEN[c] === 0) return false
  }
  return true
}

/** Trailer fields (flat [name, value, …]) as RequestHead.trailers keeps them, or why they are malformed: no pseudo-headers (§8.1), each field valid. */
export function requestTrailers(fields: readonly string[]): string[] | { malformed: string } {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    if (name.charCodeAt(0) === 0x3a) return { malformed: `the pseudo-header ${name} in trailers` }
    const problem = fieldProblem(name, fields[i + 1]!)
    if (problem !== null) return { malformed: problem }
  }
  return fields.slice()
}
