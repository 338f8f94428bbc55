// Content codings for response bodies (RFC 9110 §8.4, §12.5.3): which coding a client accepts,
// which bodies are worth compressing, and the streaming encoder a Response runs its body through
// when compression was offered for it (Response.compress()). node:zlib does the work on the thread
// pool — the event loop never runs a compressor — and is taken on first use, so a server that
// never compresses does not load it.

import type { Buffer } from 'node:buffer'
import type zlibTypes from 'node:zlib'
import type { Transform } from 'node:stream'
import { InvalidOptionError } from '../core/option-error.ts'

/** The codings Petrel compresses in, in order of preference when the client weighs them equally. */
export const CONTENT_CODINGS = ['zstd', 'br', 'gzip'] as const
export type ContentCoding = (typeof CONTENT_CODINGS)[number]

/** Levels each coding accepts, for knobs and their messages. */
export const LEVEL_RANGES: Readonly<Record<ContentCoding, readonly [number, number]>> = { gzip: [1, 9], br: [0, 11], zstd: [1, 19] }

/**
 * What Response.compress() is given: the coding the client asked for, its level, and the body size
 * under which compressing is not worth it (a known length below it is sent as it is).
 */
export interface CompressionOffer {
  readonly coding: ContentCoding
  readonly level: number
  readonly minBytes: number
}

/** Throws InvalidOptionError for an offer whose coding or level node:zlib would refuse (after the head went out). */
export function checkOffer(offer: CompressionOffer): void {
  const range = (LEVEL_RANGES as Record<string, readonly [number, number] | undefined>)[offer.coding]
  if (range === undefined) throw new InvalidOptionError(`compress(): coding must be one of ${CONTENT_CODINGS.join(', ')}, got ${JSON.stringify(offer.coding)}`)
  if (!Number.isInteger(offer.level) || offer.level < range[0] || offer.level > range[1])
    throw new InvalidOptionError(`compress(): a ${offer.coding} level is a whole number from ${range[0]} to ${range[1]}, got ${offer.level}`)
  if (!Number.isInteger(offer.minBytes) || offer.minBytes < 0)
    throw new InvalidOptionError(`compress(): minBytes must be a whole number of at least 0, got ${offer.minBytes}`)
}

/**
 * Weights of each coding named in Accept-Encoding (RFC 9110 §12.5.3), lower-case, `x-gzip` read as
 * `gzip`, `*` kept as it is; a missing q is 1, an unreadable one 0 (refused).
 */
export function acceptEncodingWeights(header: string | undefined): Map<string, number> {
  const weights = new Map<string, number>()
  if (header === undefined) return weights
  for (const item of header.split(',')) {
    const [rawToken, ...params] = item.split(';')
    const token = rawToken!.trim().toLowerCase()
    if (token === '') continue
    let q = 1
    for (const p of params) {
      const [k, v] = p.split('=')
      if (k!.trim().toLowerCase() === 'q') q = Number(v)
    }
    weights.set(token === 'x-gzip' ? 'gzip' : token, Number.isFinite(q) && q > 0 ? Math.min(q, 1) : 0)
  }
  return weights
}

/**
 * The coding to compress in for this Accept-Encoding, or null for the identity: the highest q
 * among zstd, br and gzip (listed, or covered by `*`), ties in that order; q=0 refuses; an
 * `identity` listed with a higher q than every coding wins. No Accept-Encoding means identity.
 */
export function chooseCoding(header: string | undefined): ContentCoding | null {
  if (header === undefined || header === '') return null
  const weights = acceptEncodingWeights(header)
  const star = weights.get('*') ?? 0
  let best: ContentCoding | null = null
  let bestQ = 0
  for (const coding of CONTENT_CODINGS) {
    const q = weights.get(coding) ?? star
    if (q > bestQ) {
      best = coding
      bestQ = q
    }
  }
  const identityQ = weights.get('identity')
  if (identityQ !== undefined && identityQ > bestQ) return null
  return best
}

/** Types that compress well: text, and the textual or already-uncompressed application types. */
export function isCompressible(contentType: string): boolean {
  // A file server asks about the same few types on every request: each is worked out once. The
  // memo is bounded, so types made up by upstreams or scripts cannot grow it without end.
  const known = compressibleTypes.get(contentType)
  if (known !== undefined) return known
  const compressible = typeCompresses(contentType)
  if (compressibleTypes.size < MAX_REMEMBERED_TYPES) compressibleTypes.set(contentType, compressible)
  return compressible
}
const compressibleTypes = new Map<string, boolean>()
const MAX_REMEMBERED_TYPES = 256

function typeCompresses(contentType: string): boolean {
  const semicolon = contentType.indexOf(';')
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
  if (type.startsWith('text/')) return true
  if (type.endsWith('+json') || type.endsWith('+xml')) return true
  return COMPRESSIBLE_TYPES.has(type)
}

const COMPRESSIBLE_TYPES = new Set([
  'application/json',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/wasm',
  'application/x-ndjson',
  'application/graphql',
  'application/x-sh',
  'application/x-tar',
  'application/vnd.ms-fontobject',
  'font/ttf',
  'font/otf',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/bmp',
])

/**
 * Whether a response of this status may have its body compressed: the successes with a whole
 * body and the errors, as nginx does; not 1xx, 204, 304 (no body), 206 (the ranges are of the
 * identity) or the redirects (a few bytes).
 */
export function statusMayCompress(code: number): boolean {
  return (code >= 200 && code <= 203) || code >= 400
}

/** Whether Cache-Control forbids changing the body on the way (RFC 9111 §5.2.2.6). */
export function forbidsTransform(cacheControl: string | undefined): boolean {
  return cacheControl !== undefined && cacheControl.toLowerCase().includes('no-transform')
}

/** `value` of Vary with Accept-Encoding added, unless it is there or `*` already covers it. */
export function varyWithAcceptEncoding(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'Accept-Encoding'
  for (const item of value.split(',')) {
    const name = item.trim().toLowerCase()
    if (name === 'accept-encoding' || name === '*') return value
  }
  return `${value}, Accept-Encoding`
}

/** A strong entity tag made weak: the compressed bytes are not the identity's (RFC 9110 §8.8.1). */
export function weakEtag(value: string): string {
  return value.startsWith('W/') ? value : `W/${value}`
}

/** node:zlib, taken when first needed. */
function zlib(): typeof zlibTypes {
  return process.getBuiltinModule('node:zlib')
}

/**
 * Compress a whole body at `level` on the thread pool; `done` gets the result. For a response
 * whose body is known when it ends: one call, and the compressed length goes in Content-Length.
 */
export function compressWhole(body: Buffer, coding: ContentCoding, level: number, done: (err: Error | null, out: Buffer) => void): void {
  const z = zlib()
  if (coding === 'gzip') z.gzip(body, { level }, done)
  else if (coding === 'br')
    z.brotliCompress(body, { params: { [z.constants.BROTLI_PARAM_QUALITY]: level, [z.constants.BROTLI_PARAM_SIZE_HINT]: body.length } }, done)
  else z.zstdCompress(body, { params: { [z.constants.ZSTD_c_compressionLevel]: level } }, done)
}

/**
 * Window of a streaming encoder, as a power of two: 32 KiB for gzip (its largest), 256 KiB for
 * brotli and zstd rather than their megabytes, so a connection's encoder holds a few hundred KiB at
 * most (memory per connection stays bounded, as nginx's gzip_buffers bound its own).
 */
const STREAM_WINDOW_LOG = 18

/**
 * A compressing stream whose every write is flushed (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH,
 * ZSTD_e_flush): what a handler writes reaches the client compressed at once, so a stream of
 * events or a slow upstream is not held back in the compressor.
 */
export function compressStream(coding: ContentCoding, level: number): Transform {
  const z = zlib()
  const c = z.constants
  if (coding === 'gzip') return z.createGzip({ level, flush: c.Z_SYNC_FLUSH })
  if (coding === 'br')
    return z.createBrotliCompress({
      flush: c.BROTLI_OPERATION_FLUSH,
      params: { [c.BROTLI_PARAM_QUALITY]: level, [c.BROTLI_PARAM_LGWIN]: STREAM_WINDOW_LOG },
    })
  return z.createZstdCompress({
    flush: c.ZSTD_e_flush,
    params: { [c.ZSTD_c_compressionLevel]: level, [c.ZSTD_c_windowLog]: STREAM_WINDOW_LOG },
  })
}
