// Serves the files under a root directory: path resolution that can never leave the root,
// directories, index files and listings, validators and conditional requests, ranges,
// precompressed variants, Cache-Control and custom error pages. File metadata and the bytes of
// files up to smallFileBytes (within a memory budget, least recently used evicted) come from the
// open-file cache; larger files are streamed from disk with backpressure. Every byte and
// every name served comes from a descriptor the cache checked to be inside ROOT after opening it
// (see file-cache.ts); nothing here opens a path.

import { Buffer } from 'node:buffer'
import { read as readFd } from 'node:fs'
import path from 'node:path'
import { BufferPool } from '../../core/buffer-pool.ts'
import type { Handler } from '../../server/server.ts'
import { dateHeaderLine } from '../../server/status.ts'
import type { RequestHead } from '../../protocol/http1/request-head.ts'
import { equalsLowerAscii } from '../../protocol/http1/chars.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { evaluateConditions, ifRangeAllows } from './conditional.ts'
import { CompressedVariants, COMPRESS_DEFAULTS, DynamicCompression } from './compress.ts'
import { acceptEncodingWeights, chooseCoding, isCompressible, type ContentCoding } from '../../server/compression.ts'
import { FileCache, type FileEntry, type OpenFile } from './file-cache.ts'
import type { MemoryBudget } from './memory-budget.ts'
import { parseRange, contentRange, unsatisfiedRange, multipartBoundary, multipartParts, type ByteRange } from './ranges.ts'

export interface StaticOptions {
  /** Directory whose files are served. */
  root: string
  /** File served for a directory request. */
  index?: string
  /** HTML listing of a directory that has no index file (otherwise 403). */
  list?: boolean
  /** Follow symlinks whose target is outside the root (default: only those that stay inside). */
  followSymlinks?: boolean
  /** Cache-Control: public, max-age=N on files. */
  maxAgeSeconds?: number
  /** How long file metadata (and the bytes held in memory) are trusted before the disk is asked again. */
  cacheValidMs?: number
  /** Files up to this size are served from memory, within fileCacheBytes; larger ones are streamed from disk. */
  smallFileBytes?: number
  /** Most bytes of file contents held in memory (per process); the least recently used files are evicted to make room. */
  fileCacheBytes?: number
  /** Descriptors the file cache keeps open; beyond it files are opened per request. */
  maxOpenFiles?: number
  /** A line for the error log (running out of descriptors, answered 503); default: stderr. */
  log?: (line: string) => void
  /**
   * Compress files of a compressible type on the fly (zstd, br or gzip, as Accept-Encoding prefers)
   * when they have no precompressed NAME.br/NAME.gz sibling and are held in memory (see compress.ts).
   */
  compress?: boolean
  /** Files smaller than this are never compressed on the fly. */
  compressMinBytes?: number
  /** Most bytes of compressed variants kept in memory (per root); the least recently used are evicted. */
  compressCacheBytes?: number
  /** Levels for files too large to keep a compressed copy of, compressed as they stream (compress.ts, DYNAMIC_LEVELS by default). */
  compressLevels?: Partial<Record<ContentCoding, number>>
  /**
   * Budgets shared with other file servers of the process (every site's): the file contents held
   * (fileCacheBytes is then unused) and the compressed variants kept (compressCacheBytes unused).
   */
  shared?: { memory: MemoryBudget; variants: CompressedVariants }
}

export const STATIC_DEFAULTS = {
  index: 'index.html',
  cacheValidMs: 1000,
  smallFileBytes: 1024 * 1024,
  fileCacheBytes: 64 * 1024 * 1024,
  maxOpenFiles: 256,
} as const

/** Outcome of mapping a URL path to a file path: the file, or the status that answers the request. */
export type Resolved = { file: string } | { status: 400 | 404 }

/**
 * Map a normalised URL path (req.path: the server resolved its dot-segments, protocol/http1/target.ts)
 * to a path under `root`, or refuse. Decodes once; an encoded "/" or "\" or a NUL in a segment is
 * refused (400), and so is a dot-segment left in the path — it is refused, never resolved here,
 * so there is one place where dot-segments are resolved; dotfiles are hidden (404) except under
 * /.well-known/.
 */
export function resolveUrlPath(root: string, urlPath: string): Resolved {
  const segments: string[] = []
  // Raw bytes above 0x7f (not valid in a target, but sent by some clients) arrive as latin1
  // characters; they are the UTF-8 bytes of the name, as nginx takes them.
  const raw = (isAscii(urlPath) ? urlPath : Buffer.from(urlPath, 'latin1').toString('utf8')).split('/')
  for (let i = 1; i < raw.length; i++) {
    let segment: string
    try {
      segment = decodeURIComponent(raw[i]!)
    } catch {
      return { status: 400 }
    }
    if (segment.includes('/') || segment.includes('\\') || segment.includes('\0')) return { status: 400 }
    if (segment === '') continue
    if (segment === '.' || segment === '..') return { status: 400 }
    if (segment.startsWith('.') && !(segments.length === 0 && segment === '.well-known')) return { status: 404 }
    segments.push(segment)
  }
  return { file: path.join(root, ...segments) }
}

/** The content codings served from precompressed siblings (NAME.br, NAME.gz), in order of preference. */
const ENCODINGS = ['br', 'gzip'] as const

export function staticFiles(options: StaticOptions): Handler {
  const root = path.resolve(options.root)
  const index = options.index ?? STATIC_DEFAULTS.index
  const cache = new FileCache({
    root,
    validMs: options.cacheValidMs ?? STATIC_DEFAULTS.cacheValidMs,
    smallFileBytes: options.smallFileBytes ?? STATIC_DEFAULTS.smallFileBytes,
    maxCachedBytes: options.fileCacheBytes ?? STATIC_DEFAULTS.fileCacheBytes,
    memory: options.shared?.memory,
    followSymlinks: options.followSymlinks ?? false,
    maxOpenFiles: options.maxOpenFiles ?? STATIC_DEFAULTS.maxOpenFiles,
    log: options.log,
  })
  const cacheControl = options.maxAgeSeconds === undefined ? null : `public, max-age=${options.maxAgeSeconds}`
  const list = options.list ?? false
  const compressed =
    options.compress !== true ? null : (options.shared?.variants ?? new CompressedVariants(options.compressCacheBytes ?? COMPRESS_DEFAULTS.cacheBytes))
  const compressMinBytes = options.compressMinBytes ?? COMPRESS_DEFAULTS.minBytes
  const streamed = options.compress === true ? new DynamicCompression(options.compressLevels, compressMinBytes) : null

  /** Answer an error status, with ROOT/404.html or ROOT/403.html as the body when present. */
  function sendError(req: Request, res: Response, status: 400 | 403 | 404): Step {
    const fallback = (): void => {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8')
      res.status(status).end(status === 404 ? '404 Not Found\n' : status === 403 ? '403 Forbidden\n' : '400 Bad Request: the path is not acceptable\n')
    }
    if (status === 400) return fallback()
    return withEntry(cache.lookup(path.join(root, `${status}.html`)), (page) => {
      if (page.kind !== 'file') return fallback()
      if (page.body === null) return sendErrorPageFromDisk(req, res, page, status, fallback)
      res.setHeader('Content-Type', page.contentType)
      res.status(status)
      return sendWhole(req, res, page, null)
    })
  }

  /** An error page too large for memory: read from a checked descriptor, or the plain text when it is gone. */
  async function sendErrorPageFromDisk(req: Request, res: Response, page: FileEntry, status: 403 | 404, fallback: () => void): Promise<void> {
    const held = await holdDescriptor(page)
    if (held === null) return fallback()
    try {
      res.setHeader('Content-Type', held.entry.contentType)
      res.status(status)
      await sendWhole(req, res, held.entry, held.file)
    } finally {
      held.file.release()
    }
  }

  /**
   * A descriptor for a file served from disk, with a reference taken for the whole response, so
   * that a refresh or eviction of the cache entry cannot close it under the response: the
   * entry's own, or else the file opened and checked again for this response alone (beyond the
   * descriptor budget), whose size and validators then answer. Null when the file is gone.
   */
  function holdDescriptor(entry: FileEntry): { entry: FileEntry; file: OpenFile } | null | Promise<{ entry: FileEntry; file: OpenFile } | null> {
    const cached = entry.open
    if (cached !== null && cached.acquire()) return { entry, file: cached }
    return cache.openForResponse(entry).then((fresh) => (fresh.kind === 'file' && fresh.open !== null ? { entry: fresh, file: fresh.open } : null))
  }

  function serveDirectory(req: Request, res: Response, file: string): Step {
    if (!req.path.endsWith('/')) {
      const search = req.search
      // One leading slash only: "//evil.example/" would be a protocol-relative URL (an open redirect).
      res.setHeader('Location', `/${trimLeadingSlashes(req.path)}/${search === '' ? '' : `?${search}`}`)
      res.status(301).end()
      return
    }
    return withEntry(cache.lookup(path.join(file, index)), (indexEntry) => {
      if (indexEntry.kind === 'file') return serveFile(req, res, indexEntry, path.join(file, index))
      if (!list) return sendError(req, res, 403)
      // Null: it stopped being a directory inside the root since its entry was made.
      return cache.readDirectory(file).then((names) => (names === null ? sendError(req, res, 404) : sendListing(req, res, file, names, cache)))
    })
  }

  function serveFile(req: Request, res: Response, entry: FileEntry, file: string): Step {
    if (!hasEncodingVariants(file)) return sendFile(req, res, entry, null, false)
    // The variants are looked up like any file (cached, missing ones too).
    const br = cache.lookup(file + '.br')
    const gz = cache.lookup(file + '.gz')
    if (br instanceof Promise || gz instanceof Promise) {
      return Promise.all([br, gz]).then(([b, g]) => chooseVariant(req, res, entry, b, g)) as Promise<void>
    }
    return chooseVariant(req, res, entry, br, gz)
  }

  /** br first, then gzip, if the client accepts it; Accept-Encoding is read only when a variant exists. */
  function chooseVariant(req: Request, res: Response, entry: FileEntry, br: FileEntry, gz: FileEntry): Step {
    if (br.kind !== 'file' && gz.kind !== 'file')
      return compressed === null ? sendFile(req, res, entry, null, false) : sendCompressed(req, res, entry, compressed)
    const accepted = acceptedEncodings(req.header('accept-encoding'))
    if (br.kind === 'file' && accepted.has('br')) return sendFile(req, res, br, { encoding: 'br', contentType: entry.contentType }, true)
    if (gz.kind === 'file' && accepted.has('gzip')) return sendFile(req, res, gz, { encoding: 'gzip', contentType: entry.contentType }, true)
    return sendFile(req, res, entry, null, true)
  }

  /**
   * A file with no precompressed sibling, under --compress, of a compressible type and at least
   * compressMinBytes: in the coding the client prefers. One held in memory is compressed once and
   * the variant kept (CompressedVariants); a larger one, streamed from disk, is compressed as it
   * streams at the dynamic levels (Response.compress(): chunked, a weak ETag), so memory stays
   * bounded by the compressor's window. A Range request gets the identity (byte ranges of a
   * stream compressed on the fly would change with the compressor); Vary is sent either way.
   */
  function sendCompressed(req: Request, res: Response, entry: FileEntry, variants: CompressedVariants): Step {
    if (entry.size < compressMinBytes || !isCompressible(entry.contentType)) return sendFile(req, res, entry, null, false)
    if (req.header('range') !== undefined) return sendFile(req, res, entry, null, true)
    const coding = chooseCoding(req.header('accept-encoding'))
    if (coding === null) return sendFile(req, res, entry, null, true)
    if (entry.body === null) {
      // Vary on every answer, HEAD and 304 included (Response.compress() leaves those uncompressed).
      res.compress(streamed!.offerIn(coding))
      return sendFile(req, res, entry, null, true)
    }
    const variant = variants.variant(entry, coding)
    if (variant instanceof Promise) return variant.then((made) => sendVariant(req, res, entry, made, coding))
    return sendVariant(req, res, entry, variant, coding)
  }

  function sendVariant(req: Request, res: Response, entry: FileEntry, variant: FileEntry | null, coding: ContentCoding): Step {
    if (variant === null) return sendFile(req, res, entry, null, true)
    return sendFile(req, res, variant, { encoding: coding, contentType: entry.contentType }, true)
  }

  function serveEntry(req: Request, res: Response, entry: FileEntry, file: string): Step {
    // "/a.txt/" names a directory that does not exist, as nginx and Apache answer.
    if (entry.kind === 'file') return req.path.endsWith('/') ? sendError(req, res, 404) : serveFile(req, res, entry, file)
    if (entry.kind === 'directory') return serveDirectory(req, res, file)
    // A symlink out of the root is answered exactly like a missing file: nothing is revealed.
    return sendError(req, res, 404)
  }

  /**
   * The whole 200 head of an in-memory file served in one role (plain, or as a variant), built
   * once and kept on the cache entry until the Date line changes: a hot small file costs one
   * string a second, not a head per request.
   */
  function preparedHead(entry: FileEntry, variant: Variant | null, vary: boolean, serverFields: string): string {
    const dateLine = dateHeaderLine()
    const role = variant !== null ? variant.encoding : vary ? 'vary' : ''
    const prepared = entry.prepared
    if (prepared !== null && prepared.dateLine === dateLine && prepared.role === role && prepared.serverFields === serverFields) return prepared.head
    // The fields and their order are those of the general path below.
    let head = `HTTP/1.1 200 OK\r\n${serverFields}Content-Type: ${variant === null ? entry.contentType : variant.contentType}\r\n`
    if (variant !== null) head += `Content-Encoding: ${variant.encoding}\r\n`
    if (vary) head += 'Vary: Accept-Encoding\r\n'
    head += `ETag: ${entry.etag}\r\nLast-Modified: ${entry.lastModified}\r\nAccept-Ranges: bytes\r\n`
    if (cacheControl !== null) head += `Cache-Control: ${cacheControl}\r\n`
    head += `${dateLine}Content-Length: ${entry.size}\r\n\r\n`
    entry.prepared = { head, dateLine, role, serverFields }
    return head
  }

  function sendFile(req: Request, res: Response, entry: FileEntry, variant: Variant | null, vary: boolean): Step {
    if (entry.body !== null) {
      // The common case: a whole in-memory file, with no validator or range to weigh.
      if (asksForWholeFile(req.head) && res.endPrepared(preparedHead(entry, variant, vary, res.serverFields), entry.body)) return
      return answer(req, res, entry, null, variant, vary)
    }
    return sendFromDisk(req, res, entry, variant, vary)
  }

  /** A file from disk: its descriptor is held before anything about the answer is decided, and until its last byte is read. */
  async function sendFromDisk(req: Request, res: Response, entry: FileEntry, variant: Variant | null, vary: boolean): Promise<void> {
    const held = await holdDescriptor(entry)
    // The file went away since its entry was made: answered as any missing file.
    if (held === null) return sendError(req, res, 404)
    try {
      await answer(req, res, held.entry, held.file, variant, vary)
    } finally {
      held.file.release()
    }
  }

  /**
   * The general answer for a file: its fields, then 304/412 from the conditions, a range or
   * several, or the whole file. `file` is the held descriptor of a file served from disk (null
   * for one in memory).
   */
  function answer(req: Request, res: Response, entry: FileEntry, file: OpenFile | null, variant: Variant | null, vary: boolean): Step {
    res.setHeader('Content-Type', variant === null ? entry.contentType : variant.contentType)
    if (variant !== null) res.setHeader('Content-Encoding', variant.encoding)
    // Appended: a site's CORS rule may have said Vary: Origin already.
    if (vary) res.appendHeader('Vary', 'Accept-Encoding')
    res.setHeader('ETag', entry.etag)
    res.setHeader('Last-Modified', entry.lastModified)
    res.setHeader('Accept-Ranges', 'bytes')
    // A site's header rule for this path says more than the site-wide max-age, and wins.
    if (cacheControl !== null && !res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', cacheControl)
    const validators = { etag: entry.etag, lastModifiedMs: entry.mtimeMs }
    const outcome = evaluateConditions(
      {
        ifMatch: req.header('if-match'),
        ifNoneMatch: req.header('if-none-match'),
        ifModifiedSince: req.header('if-modified-since'),
        ifUnmodifiedSince: req.header('if-unmodified-since'),
      },
      validators,
      req.method,
    )
    if (outcome !== 'proceed') {
      res.status(outcome).end()
      return
    }
    const rangeHeader = req.header('range')
    if (rangeHeader !== undefined && ifRangeAllows(req.header('if-range'), validators)) {
      const range = parseRange(rangeHeader, entry.size)
      if (range.kind === 'unsatisfiable') {
        res.setHeader('Content-Range', unsatisfiedRange(entry.size))
        res.setHeader('Content-Type', 'text/plain; charset=utf-8')
        res.status(416).end('416 Range Not Satisfiable\n')
        return
      }
      if (range.kind === 'ranges') {
        if (range.ranges.length === 1) return sendRange(req, res, entry, file, range.ranges[0]!)
        return sendMultipart(req, res, entry, file, range.ranges, variant === null ? entry.contentType : variant.contentType)
      }
    }
    return sendWhole(req, res, entry, file)
  }

  return function serveStatic(req: Request, res: Response): Step {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      res.status(405).end('405 Method Not Allowed: files are served with GET and HEAD\n')
      return
    }
    const resolved = resolveUrlPath(root, req.path)
    if ('status' in resolved) return sendError(req, res, resolved.status)
    const file = resolved.file
    const lookup = cache.lookup(file)
    // A cached entry — the common case — is served with no closure, promise or extra tick.
    if (lookup instanceof Promise) return lookup.then((entry) => serveEntry(req, res, entry, file)) as Promise<void>
    return serveEntry(req, res, lookup, file)
  }
}

/** How a file is served as a precompressed variant of another: its coding and the original's type. */
interface Variant {
  encoding: string
  contentType: string
}

/** The whole file as a 200 body (or its length, for HEAD). */
function sendWhole(req: Request, res: Response, entry: FileEntry, file: OpenFile | null): Step {
  res.setHeader('Content-Length', entry.size)
  if (req.method === 'HEAD' || entry.size === 0) {
    res.end()
    return
  }
  return sendBytes(res, entry, file, 0, entry.size - 1, true)
}

function sendRange(req: Request, res: Response, entry: FileEntry, file: OpenFile | null, range: ByteRange): Step {
  res.status(206)
  res.setHeader('Content-Range', contentRange(range.start, range.end, entry.size))
  res.setHeader('Content-Length', range.end - range.start + 1)
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  return sendBytes(res, entry, file, range.start, range.end, true)
}

async function sendMultipart(req: Request, res: Response, entry: FileEntry, file: OpenFile | null, ranges: ByteRange[], contentType: string): Promise<void> {
  const boundary = multipartBoundary()
  const layout = multipartParts(ranges, entry.size, contentType, boundary)
  res.status(206)
  res.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`)
  res.setHeader('Content-Length', layout.totalLength)
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  for (const part of layout.parts) {
    if (!res.write(part.head)) await res.drain()
    await sendBytes(res, entry, file, part.start, part.end, false)
  }
  res.end(layout.tail)
}

/**
 * Largest read from disk per step. Measured on 10 MiB files: 1 MiB reads gave 1.4 GB/s against
 * 0.96 GB/s for 256 KiB (fewer thread-pool round trips); memory per connection stays bounded
 * by backpressure to one chunk plus the socket's high-water mark.
 */
const READ_CHUNK_BYTES = 1024 * 1024

/** Read buffers shared by all responses of the process: 64 KiB to 1 MiB, at most 8 MiB idle per size. */
const readBuffers = new BufferPool({ minBytes: 64 * 1024, maxBytes: READ_CHUNK_BYTES, maxIdleBytesPerClass: 8 * 1024 * 1024 })

/**
 * Send bytes [start, end] of the file, from memory or from the descriptor the response holds,
 * honouring backpressure; end the response after them when `last`.
 */
function sendBytes(res: Response, entry: FileEntry, file: OpenFile | null, start: number, end: number, last: boolean): Step {
  if (entry.body === null) return readFromDisk(res, file!, start, end, last)
  const slice = entry.body.subarray(start, end + 1)
  if (last) {
    res.end(slice)
    return
  }
  if (!res.write(slice)) return res.drain()
}

/**
 * One positional read through the callback API on the handle's descriptor: measured about 12%
 * less CPU per 100 KiB response than FileHandle.read (interleaved runs, 75 vs 85 µs). The
 * reference the caller holds keeps the descriptor open for the duration.
 */
function readAt(file: OpenFile, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => readFd(file.handle.fd, buffer, 0, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))))
}

/**
 * Positional reads from a descriptor the response holds (shared with the cache, or its own): no
 * open or close per request when cached, one read per chunk.
 */
async function readFromDisk(res: Response, file: OpenFile, start: number, end: number, last: boolean): Promise<void> {
  let position = start
  while (position <= end) {
    if (res.closed) return
    const length = Math.min(READ_CHUNK_BYTES, end - position + 1)
    // A pooled buffer goes back to the pool when the socket has handed its bytes to the kernel.
    const chunk = readBuffers.take(length)
    const bytesRead = await readAt(file, chunk, length, position)
    if (bytesRead === 0) {
      // The file shrank after it was measured: the promised length can no longer be kept.
      readBuffers.give(chunk)
      res.abort()
      return
    }
    position += bytesRead
    // After the last chunk there is nothing to wait for: the connection itself stops reading
    // requests while its socket is over the mark.
    if (!res.write(chunk.subarray(0, bytesRead), () => readBuffers.give(chunk)) && position <= end) await res.drain()
  }
  if (last) res.end()
}

/**
 * The listing shows what a request could fetch: the names were read from the directory's checked
 * descriptor, and each is checked by the file cache (describe: metadata only, nothing read or
 * kept), so dotfiles and symlinks leading out of the root are left out, and nothing about them leaks.
 */
async function sendListing(req: Request, res: Response, dir: string, names: string[], cache: FileCache): Promise<void> {
  const entries = []
  for (const name of names) {
    if (name.startsWith('.')) continue
    const entry = await cache.describe(path.join(dir, name))
    if (entry.kind !== 'file' && entry.kind !== 'directory') continue
    entries.push({ name, isDirectory: entry.kind === 'directory', size: entry.size, mtimeMs: entry.mtimeMs })
  }
  // Loaded on the first listing: a server without --list never needs it.
  const { renderListing } = await import('./listing.ts')
  res.setHeader('Content-Type', 'text/html; charset=utf-8')
  // For HEAD the body is not sent, but its length is, as for GET.
  res.end(renderListing(decodedPath(req.path), entries))
}

/** The path as a person reads it; resolveUrlPath already refused what does not decode. */
function decodedPath(urlPath: string): string {
  try {
    return decodeURIComponent(urlPath)
  } catch {
    return urlPath
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false
  return true
}

function trimLeadingSlashes(urlPath: string): string {
  let i = 0
  while (i < urlPath.length && urlPath.charCodeAt(i) === 0x2f) i++
  return urlPath.slice(i)
}

/**
 * Which content codings the client accepts, from Accept-Encoding (RFC 9110 §12.5.3): listed
 * with q > 0, or covered by "*" with q > 0 and not listed with q=0.
 */
export function acceptedEncodings(header: string | undefined): Set<string> {
  const accepted = new Set<string>()
  const weights = acceptEncodingWeights(header)
  for (const [name, q] of weights) if (q > 0 && name !== '*') accepted.add(name)
  const star = weights.get('*')
  if (star !== undefined && star > 0) for (const coding of ENCODINGS) if (!weights.has(coding)) accepted.add(coding)
  return accepted
}

/** No If-* field and no Range: the answer is the whole file, whatever its validators. Names are lower-case already. */
function asksForWholeFile(head: RequestHead): boolean {
  const { buf, headers } = head
  for (let i = 0; i < headers.length; i += 4) {
    const start = headers[i]!
    const length = headers[i + 1]! - start
    if (length >= 3 && buf[start] === 0x69 && buf[start + 1] === 0x66 && buf[start + 2] === 0x2d) return false // if-
    if (length === 5 && equalsLowerAscii(buf, start, start + 5, 'range')) return false
  }
  return true
}

/** A request for NAME.gz or NAME.br itself is the file, not a variant of something. */
function hasEncodingVariants(file: string): boolean {
  return !file.endsWith('.gz') && !file.endsWith('.br')
}

/** What each step of serving returns: nothing when it finished synchronously, else a promise. */
type Step = void | Promise<void>

/**
 * Run `then` on an entry at once when the cache had it — the common case costs no promise and
 * no extra turn of the event loop — or when the lookup completes.
 */
function withEntry(lookup: FileEntry | Promise<FileEntry>, then: (entry: FileEntry) => Step): Step {
  // A promise that resolves to a promise is flattened by then(): the result is a Promise<void>.
  return lookup instanceof Promise ? (lookup.then(then) as Promise<void>) : then(lookup)
}
