// On-the-fly compression of static files (petrel serve --compress): a file of a compressible type
// that has no precompressed NAME.br/NAME.gz sibling is compressed once, on the thread pool
// (node:zlib's asynchronous API: the event loop never runs a compressor), in the coding the
// client prefers, and the result is kept in a cache bounded by a byte budget, least recently used
// evicted. Each variant is keyed by the file's real path and coding and remembers the ETag of the
// bytes it was made from, so a file changed on disk (a new size or mtime, hence a new ETag) is
// compressed again and the old variant is dropped.

import type { Buffer } from 'node:buffer'
import type zlibTypes from 'node:zlib'
import type { FileEntry } from './file-cache.ts'

/** The codings made on the fly, in order of preference when the client weighs them equally. */
export const ON_THE_FLY_CODINGS = ['zstd', 'br', 'gzip'] as const
export type OnTheFlyCoding = (typeof ON_THE_FLY_CODINGS)[number]

export const COMPRESS_DEFAULTS = {
  /** Smaller files gain too little (a few header bytes saved, a round trip of CPU) to be worth compressing. */
  minBytes: 1024,
  /** Most bytes of compressed variants kept in memory, per static root. */
  cacheBytes: 32 * 1024 * 1024,
} as const

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
export function chooseCoding(header: string | undefined): OnTheFlyCoding | null {
  const weights = acceptEncodingWeights(header)
  const star = weights.get('*') ?? 0
  let best: OnTheFlyCoding | null = null
  let bestQ = 0
  for (const coding of ON_THE_FLY_CODINGS) {
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

/** The variant's entity tag: the file's own with the coding added inside the quotes, so it never equals the identity one. */
export function variantEtag(etag: string, coding: OnTheFlyCoding): string {
  return `${etag.slice(0, -1)}-${coding}"`
}

/**
 * Compress with the thread pool. Levels are those of nginx's and the CLIs' defaults for fast
 * compressors (gzip 6, zstd 3); brotli at quality 5 rather than its default 11, which costs tens of
 * times the CPU for a few per cent.
 */
function compress(body: Buffer, coding: OnTheFlyCoding): Promise<Buffer> {
  // Taken on first use, not at import: a file server without --compress never loads node:zlib
  // (test/memory.test.ts).
  const zlib: typeof zlibTypes = process.getBuiltinModule('node:zlib')
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => (err ? reject(err) : resolve(out))
    if (coding === 'gzip') zlib.gzip(body, { level: 6 }, done)
    else if (coding === 'br')
      zlib.brotliCompress(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } }, done)
    else zlib.zstdCompress(body, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } }, done)
  })
}

/** A cached result: the variant, or null when compressing did not make the file smaller (served as it is). */
interface Kept {
  readonly sourceEtag: string
  readonly variant: FileEntry | null
  readonly bytes: number
}

/** The compressed variants of one static root, within a byte budget, least recently used evicted. */
export class CompressedVariants {
  private readonly budgetBytes: number
  /** Insertion order is recency: a hit is deleted and set again, eviction takes the first. */
  private readonly kept = new Map<string, Kept>()
  /** Compressions under way, shared by concurrent requests for the same bytes and coding. */
  private readonly pending = new Map<string, Promise<FileEntry | null>>()
  private keptBytes = 0

  constructor(budgetBytes: number) {
    this.budgetBytes = budgetBytes
  }

  /** Bytes held now (never above the budget). */
  get bytes(): number {
    return this.keptBytes
  }

  /**
   * The variant of an in-memory file in this coding: at once when kept, else once compressed.
   * Null means serve the identity (compressing did not help, or failed).
   */
  variant(entry: FileEntry, coding: OnTheFlyCoding): FileEntry | null | Promise<FileEntry | null> {
    const key = `${entry.realPath}\0${coding}`
    const kept = this.kept.get(key)
    if (kept !== undefined) {
      this.kept.delete(key)
      if (kept.sourceEtag === entry.etag) {
        this.kept.set(key, kept)
        return kept.variant
      }
      // The file changed on disk: its old variant is of no use to anyone.
      this.keptBytes -= kept.bytes
    }
    const pendingKey = `${key}\0${entry.etag}`
    const under = this.pending.get(pendingKey)
    if (under !== undefined) return under
    const made = this.make(entry, coding, key).finally(() => this.pending.delete(pendingKey))
    this.pending.set(pendingKey, made)
    return made
  }

  private async make(entry: FileEntry, coding: OnTheFlyCoding, key: string): Promise<FileEntry | null> {
    let body: Buffer
    try {
      body = await compress(entry.body!, coding)
    } catch {
      return null
    }
    const variant: FileEntry | null =
      body.length >= entry.size
        ? null
        : {
            kind: 'file',
            file: entry.file,
            realPath: entry.realPath,
            size: body.length,
            mtimeMs: entry.mtimeMs,
            etag: variantEtag(entry.etag, coding),
            lastModified: entry.lastModified,
            contentType: entry.contentType,
            body,
            open: null,
            checkedAt: entry.checkedAt,
            prepared: null,
            lruOlder: null,
            lruNewer: null,
          }
    // A "did not help" answer is remembered too (costing a nominal byte), so it is not recomputed per request.
    const bytes = variant === null ? 1 : body.length
    // One larger than the whole budget is served this once and not kept.
    if (bytes > this.budgetBytes) return variant
    const previous = this.kept.get(key)
    if (previous !== undefined) {
      this.kept.delete(key)
      this.keptBytes -= previous.bytes
    }
    for (const [oldKey, old] of this.kept) {
      if (this.keptBytes + bytes <= this.budgetBytes) break
      this.kept.delete(oldKey)
      this.keptBytes -= old.bytes
    }
    this.kept.set(key, { sourceEtag: entry.etag, variant, bytes })
    this.keptBytes += bytes
    return variant
  }
}
