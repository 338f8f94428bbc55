// On-the-fly compression for petrel serve --compress. Dynamic responses (CGI, proxied) get a
// compression offer (DynamicCompression) that Response.compress() takes up when they qualify.
// Static files: a file of a compressible type
// that has no precompressed NAME.br/NAME.gz sibling is compressed once, on the thread pool
// (node:zlib's asynchronous API: the event loop never runs a compressor), in the coding the
// client prefers, and the result is kept in a cache bounded by a byte budget, least recently used
// evicted. Each variant is keyed by the file's real path and coding and remembers the ETag of the
// bytes it was made from, so a file changed on disk (a new size or mtime, hence a new ETag) is
// compressed again and the old variant is dropped.

import type { Buffer } from 'node:buffer'
import type { FileEntry } from './file-cache.ts'
import { chooseCoding, compressWhole, type CompressionOffer, type ContentCoding } from '../../server/compression.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import type { Handler } from '../../server/server.ts'

export const COMPRESS_DEFAULTS = {
  /** Smaller files gain too little (a few header bytes saved, a round trip of CPU) to be worth compressing. */
  minBytes: 1024,
  /** Most bytes of compressed variants kept in memory, per static root. */
  cacheBytes: 32 * 1024 * 1024,
} as const

/** The variant's entity tag: the file's own with the coding added inside the quotes, so it never equals the identity one. */
export function variantEtag(etag: string, coding: ContentCoding): string {
  return `${etag.slice(0, -1)}-${coding}"`
}

/**
 * Levels of the variants kept for static files, made once per file: those of nginx's and the CLIs'
 * defaults for fast compressors (gzip 6, zstd 3); brotli at quality 5 rather than its default 11,
 * which costs tens of times the CPU for a few per cent.
 */
export const STATIC_LEVELS: Readonly<Record<ContentCoding, number>> = { gzip: 6, br: 5, zstd: 3 }

/** Compress with the thread pool (node:zlib is taken on first use: a file server without --compress never loads it). */
function compress(body: Buffer, coding: ContentCoding): Promise<Buffer> {
  return new Promise((resolve, reject) => compressWhole(body, coding, STATIC_LEVELS[coding], (err, out) => (err ? reject(err) : resolve(out))))
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
  variant(entry: FileEntry, coding: ContentCoding): FileEntry | null | Promise<FileEntry | null> {
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

  private async make(entry: FileEntry, coding: ContentCoding, key: string): Promise<FileEntry | null> {
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

/**
 * Levels for responses compressed as they are made (CGI, proxied, handlers): each costs CPU on
 * every response, so they are low, as nginx's gzip_comp_level 1 is; brotli 3 and zstd 1 compress
 * better than gzip 1 at about its cost.
 */
export const DYNAMIC_LEVELS: Readonly<Record<ContentCoding, number>> = { gzip: 1, br: 3, zstd: 1 }

/** Compression of dynamic responses: the offer a response gets for each coding a client may ask for. */
export class DynamicCompression {
  private readonly offers: Readonly<Record<ContentCoding, CompressionOffer>>

  constructor(levels: Partial<Record<ContentCoding, number>> = {}, minBytes: number = COMPRESS_DEFAULTS.minBytes) {
    const offer = (coding: ContentCoding): CompressionOffer => ({ coding, level: levels[coding] ?? DYNAMIC_LEVELS[coding], minBytes })
    this.offers = { zstd: offer('zstd'), br: offer('br'), gzip: offer('gzip') }
  }

  /** Offer compression in the coding the request prefers, if any (Response.compress() decides when the head is sent). */
  offer(req: Request, res: Response): void {
    const coding = chooseCoding(req.header('accept-encoding'))
    if (coding !== null) res.compress(this.offers[coding])
  }

  /** The offer for `coding`, chosen already. */
  offerIn(coding: ContentCoding): CompressionOffer {
    return this.offers[coding]
  }

  /** `handler`, its responses compressed when they qualify. */
  around(handler: Handler): Handler {
    return (req, res) => {
      this.offer(req, res)
      return handler(req, res)
    }
  }
}
