// The proxy's field rules: which request and response fields pass, which are hop-by-hop
// (RFC 9110 §7.6.1), what the proxy adds (X-Forwarded-*, Forwarded), the underscores rule, and the
// Upgrade protocols a request may switch to. Pure: bytes and strings in, strings out, no sockets.
// Decisions are made on the bytes of the client's buffer, so a field that is not passed on costs no string.

import type { Buffer } from 'node:buffer'
import { equalsLowerAscii, FIELD_VALUE } from '../../protocol/http1/chars.ts'
import type { RequestHead } from '../../protocol/http1/request-head.ts'
import type { Request } from '../../server/request.ts'

/** The name of an Upgrade protocol ("websocket", "WebSocket/13" → "websocket"), lower-case. */
function protocolName(protocol: string): string {
  const slash = protocol.indexOf('/')
  return (slash < 0 ? protocol : protocol.slice(0, slash)).toLowerCase()
}

/**
 * The protocols of the request's Upgrade fields that the proxy passes on, as one value, or null when
 * none is allowed: the request then goes up as plain HTTP, and the upstream answers it as such —
 * declining the upgrade, which RFC 9110 §7.8 lets a server do. Only upgrade requests pay for this.
 */
export function allowedUpgrades(head: RequestHead, allowed: ReadonlySet<string>): string | null {
  let kept = ''
  for (let i = head.indexOf('upgrade', 0); i >= 0; i = head.indexOf('upgrade', i + 4)) {
    for (const offered of head.buf.toString('latin1', head.headers[i + 2]!, head.headers[i + 3]!).split(',')) {
      const protocol = offered.trim()
      if (protocol !== '' && allowed.has(protocolName(protocol))) kept += kept === '' ? protocol : `, ${protocol}`
    }
  }
  return kept === '' ? null : kept
}

/** True when a 101's Upgrade value names protocols, each one the request offered (`offered`, the value sent). */
export function switchOffered(value: string, offered: string): boolean {
  const names = new Set<string>()
  for (const protocol of offered.split(',')) names.add(protocolName(protocol.trim()))
  let any = false
  for (const protocol of value.split(',')) {
    const name = protocolName(protocol.trim())
    if (name === '') continue
    if (!names.has(name)) return false
    any = true
  }
  return any
}

/** Lower-case field names, tested against bytes in a buffer (in any case) without making a string of them. */
class NameSet {
  private readonly names: Set<string>
  /** The names by length: most names are turned away by their length alone. */
  private readonly byLength: Array<string[] | undefined> = []

  constructor(names: readonly string[]) {
    this.names = new Set(names)
    for (const name of names) (this.byLength[name.length] ??= []).push(name)
  }

  has(buf: Buffer, start: number, end: number): boolean {
    const names = this.byLength[end - start]
    if (names === undefined) return false
    for (let i = 0; i < names.length; i++) if (equalsLowerAscii(buf, start, end, names[i]!)) return true
    return false
  }

  hasString(lowerName: string): boolean {
    return this.names.has(lowerName)
  }
}

/** Hop-by-hop fields (RFC 9110 §7.6.1) and the proxy's own, dropped both ways. */
export const HOP_BY_HOP = new NameSet([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
])

/** What checkValue found in a field value. */
const VALUE_INVALID = 0
const VALUE_ASCII = 1
const VALUE_OBS_TEXT = 2
type ValueKind = typeof VALUE_INVALID | typeof VALUE_ASCII | typeof VALUE_OBS_TEXT

/**
 * A field value's bytes, checked before they go to the client: VALUE_INVALID for CR, LF, NUL or
 * another control but HTAB (which could split the head), else VALUE_OBS_TEXT when it has bytes
 * 0x80–0xff, else VALUE_ASCII.
 */
function checkValue(buf: Buffer, start: number, end: number): ValueKind {
  let kind: ValueKind = VALUE_ASCII
  for (let i = start; i < end; i++) {
    const c = buf[i]!
    if (FIELD_VALUE[c] === 0) return VALUE_INVALID
    if (c > 0x7f) kind = VALUE_OBS_TEXT
  }
  return kind
}

/** A response field's value about to be passed on: throws on a control character (the exchange fails, 502); true when it has obs-text. */
export function passedValueHasObsText(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): boolean {
  const kind = checkValue(buf, valueStart, valueEnd)
  if (kind === VALUE_INVALID) throw new Error(`a control character in the value of ${buf.toString('latin1', nameStart, nameEnd)}`)
  return kind === VALUE_OBS_TEXT
}

/** True when the name buf[start, end) holds an underscore. A loop, not indexOf: names are short, and a native call costs more. */
function hasUnderscore(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] === 0x5f) return true
  return false
}

/** The field line `name: value` of buf's bytes: one slice when it is written that way already. */
export function fieldLine(buf: Buffer, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): string {
  if (valueStart === nameEnd + 2 && buf[nameEnd + 1] === 0x20) return buf.toString('latin1', nameStart, valueEnd)
  return `${buf.toString('latin1', nameStart, nameEnd)}: ${buf.toString('latin1', valueStart, valueEnd)}`
}
/** The field names a Connection value lists (lower-case): hop-by-hop for that message; null for none. */
export function namedByConnection(value: string): Set<string> | null {
  if (value === '') return null
  const names = new Set<string>()
  for (const token of value.toLowerCase().split(',')) names.add(token.trim())
  return names
}

/** Request fields the proxy writes itself (framing, forwarding): the client's copies are not passed on. */
const OWN_FIELD_NAMES = new NameSet(['content-length', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'])

/**
 * The forwarding fields after X-Forwarded-For's earlier hops: this hop's address, then
 * X-Forwarded-Proto (https when the client's connection is TLS), X-Forwarded-Host and Forwarded.
 * They depend only on the client's address, its connection and Host, which stay the same for
 * every request on a connection (and often for every request a reverse proxy sees), so the last
 * result is kept: a hit costs two string compares and a boolean one.
 */
function forwardingLines(client: string, host: string, secure: boolean): string {
  if (client === forwarding.client && host === forwarding.host && secure === forwarding.secure) return forwarding.lines
  const proto = secure ? 'https' : 'http'
  let lines = `${client}\r\nx-forwarded-proto: ${proto}\r\n`
  if (host !== '') lines += `x-forwarded-host: ${host}\r\n`
  // A quoted-string may not hold a bare quote or backslash; a Host with either is malformed anyway.
  const quotedHost = host.includes('"') || host.includes('\\') ? host.replace(/[\\"]/g, '') : host
  lines += `forwarded: for=${client.includes(':') ? `"[${client}]"` : client};proto=${proto}${quotedHost === '' ? '' : `;host="${quotedHost}"`}\r\n`
  forwarding.client = client
  forwarding.host = host
  forwarding.secure = secure
  forwarding.lines = lines
  return lines
}
const forwarding = { client: '', host: '', secure: false, lines: '' }

/**
 * The request's head as it goes upstream, up to its framing fields (the caller adds an Upgrade, if
 * any, and the blank line): the request line with `target`, Host, the client's end-to-end fields,
 * the forwarding fields and the framing. `host` replaces the client's Host (a forward proxy sends
 * its URL's); `upstreamHost` is sent when the client gave none. Values stay latin1, byte for byte.
 */
export function upstreamRequestHead(req: Request, target: string, host: string | null, upstreamHost: string, underscores: boolean): string {
  const head = req.head
  const { buf, headers } = head
  // Names the client's Connection field lists are hop-by-hop too — except the fields the
  // message's framing and routing stand on: dropping Content-Length on a client's say-so would
  // turn its body into a second request upstream.
  let connectionValues = ''
  for (let i = head.indexOf('connection', 0); i >= 0; i = head.indexOf('connection', i + 4))
    connectionValues += `${buf.toString('latin1', headers[i + 2]!, headers[i + 3]!)},`
  const connection = namedByConnection(connectionValues)
  const clientHost = head.hostStart >= 0 ? buf.toString('latin1', head.hostStart, head.hostEnd) : ''
  // Host first (RFC 9112 §3.2): the forward proxy's from the URL; else the client's; else, for an
  // HTTP/1.0 client that sent none, the upstream's own name, as nginx's $proxy_host.
  let out = `${req.method} ${target} HTTP/1.1\r\nhost: ${host ?? (clientHost !== '' ? clientHost : upstreamHost)}\r\n`
  let forwardedFor = ''
  // Names are lower-case in the buffer already (the parser folds them); decided on the bytes.
  for (let i = 0; i < headers.length; i += 4) {
    const nameStart = headers[i]!
    const nameEnd = headers[i + 1]!
    if (HOP_BY_HOP.has(buf, nameStart, nameEnd)) continue
    if (OWN_FIELD_NAMES.has(buf, nameStart, nameEnd)) {
      if (equalsLowerAscii(buf, nameStart, nameEnd, 'x-forwarded-for')) forwardedFor += `${buf.toString('latin1', headers[i + 2]!, headers[i + 3]!)}, `
      continue
    }
    // Host went first; the parser let only one through.
    if (nameEnd - nameStart === 4 && equalsLowerAscii(buf, nameStart, nameEnd, 'host')) continue
    if (!underscores && hasUnderscore(buf, nameStart, nameEnd)) continue
    if (connection !== null && connection.has(buf.toString('latin1', nameStart, nameEnd))) continue
    out += `${fieldLine(buf, nameStart, nameEnd, headers[i + 2]!, headers[i + 3]!)}\r\n`
  }
  const client = req.remoteAddress ?? 'unknown'
  const forwardedHost = host ?? clientHost
  // The client's own X-Forwarded-Proto/Host and Forwarded are dropped (OWN_FIELD_NAMES): the
  // proxy says what it saw; only X-Forwarded-For keeps the chain, with this hop appended.
  out += `x-forwarded-for: ${forwardedFor}${forwardingLines(client, forwardedHost, req.secure)}`
  // The framing is written from the parsed message, never copied.
  if (head.chunked) out += 'transfer-encoding: chunked\r\n'
  else if (head.contentLength >= 0) out += `content-length: ${head.contentLength}\r\n`
  return out
}
