// The opening handshake, server side (RFC 6455 §4.2): what makes a request a valid WebSocket
// upgrade, the Sec-WebSocket-Accept answer, and the permessage-deflate negotiation (RFC 7692 §7).
// Pure: header values in, a verdict out.

import { createHash } from 'node:crypto'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (§4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64')
}

/** Whether a comma-separated header value holds `token` (case-insensitive), as Connection: keep-alive, Upgrade does. */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true
  return false
}

export interface UpgradeHeaders {
  method: string
  httpVersion: string
  upgrade: string | undefined
  connection: string | undefined
  key: string | undefined
  version: string | undefined
}

/** Why a request is not a WebSocket handshake, with the status to answer; null when it is one. */
export function handshakeProblem(h: UpgradeHeaders): { status: number; why: string } | null {
  if (!hasToken(h.upgrade, 'websocket')) return { status: 426, why: 'this resource speaks WebSocket: send Upgrade: websocket' }
  if (h.method !== 'GET') return { status: 400, why: 'a WebSocket handshake is a GET' }
  if (h.httpVersion !== '1.1') return { status: 400, why: 'a WebSocket handshake needs HTTP/1.1' }
  if (!hasToken(h.connection, 'upgrade')) return { status: 400, why: 'a WebSocket handshake needs Connection: Upgrade' }
  // §4.2.1: the key is 16 random bytes in base64 (24 characters, two '=' of padding).
  if (h.key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(h.key.trim())) return { status: 400, why: 'Sec-WebSocket-Key must be 16 bytes in base64' }
  if (h.version?.trim() !== '13') return { status: 426, why: 'only WebSocket version 13 is spoken (Sec-WebSocket-Version: 13)' }
  return null
}

/** What permessage-deflate was agreed to: the window of this side's compressor (8–15; 15 when the client said nothing). */
export interface DeflateAgreement {
  serverMaxWindowBits: number
  /** The extension's line in the 101 response. */
  response: string
}

/**
 * Accept the first permessage-deflate offer this server can honour (§7.1), or null. Both
 * directions run without context takeover (the server says so for the client too, §7.1.1.1): no
 * compressor state per connection, and a message compressed once can go to every subscriber.
 * An offer with an unknown, repeated or malformed parameter is declined (§7.1).
 */
export function negotiateDeflate(header: string | undefined): DeflateAgreement | null {
  if (header === undefined) return null
  for (const offer of header.split(',')) {
    const params = offer.split(';').map((p) => p.trim())
    if (params[0]!.toLowerCase() !== 'permessage-deflate') continue
    const seen = new Set<string>()
    let serverBits = 15
    let ok = true
    for (const param of params.slice(1)) {
      if (param === '') continue
      const eq = param.indexOf('=')
      const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase()
      const raw =
        eq < 0
          ? null
          : param
              .slice(eq + 1)
              .trim()
              .replace(/^"(.*)"$/, '$1')
      if (seen.has(name)) ok = false
      seen.add(name)
      if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') ok &&= raw === null
      else if (name === 'server_max_window_bits') {
        const bits = raw === null || !/^\d+$/.test(raw) ? Number.NaN : Number(raw)
        // zlib's raw deflate has no 8-bit window: an offer that insists on one is declined.
        if (!(bits >= 9 && bits <= 15)) ok = false
        else serverBits = bits
      } else if (name === 'client_max_window_bits') {
        if (raw !== null && !(/^\d+$/.test(raw) && Number(raw) >= 8 && Number(raw) <= 15)) ok = false
      } else ok = false
      if (!ok) break
    }
    if (!ok) continue
    let response = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'
    if (seen.has('server_max_window_bits')) response += `; server_max_window_bits=${serverBits}`
    return { serverMaxWindowBits: serverBits, response }
  }
  return null
}
