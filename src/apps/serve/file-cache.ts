// What the static server knows about a path, cached for a validity period like nginx's
// open_file_cache: the symlink check, the stat, the validators and content type, and — for
// small files — the bytes themselves. A request for a cached file costs a Map lookup; the file
// system is asked again only when the entry is older than `validMs`. Concurrent lookups of the
// same path share one set of file system calls. Every call is asynchronous: no synchronous
// file system call ever runs on the request path.

import { open, readFile, realpath, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import mime from 'mime-types'
import { weakEtag, httpDate } from './conditional.ts'

export interface FileEntry {
  /** `forbidden`: the path leaves the root through a symlink; it is answered like a missing file. */
  readonly kind: 'file' | 'directory' | 'missing' | 'forbidden'
  /** The resolved path (symlinks followed). */
  readonly realPath: string
  readonly size: number
  readonly mtimeMs: number
  readonly etag: string
  readonly lastModified: string
  readonly contentType: string
  /** The whole file, when it is at most smallFileBytes and the cache had room for it. */
  readonly body: Buffer | null
  /** The open file for a file served from disk (nginx caches descriptors the same way); null when the
   * file is in memory or the descriptor budget is spent (it is then read by path per request). */
  readonly open: OpenFile | null
  /** When the entry was made (monotonic ms); it is trusted for validMs after that. */
  readonly checkedAt: number
  /** The whole 200 head for an in-memory file, kept by the static server (see static.ts). */
  prepared: PreparedHead | null
}

/** A response head built for one in-memory file, valid while the Date line and the way it is served stay the same. */
export interface PreparedHead {
  readonly head: string
  readonly dateLine: string
  /** The fields it was built with besides the file's own (variant, Vary, Cache-Control), as one key. */
  readonly role: string
}

export interface FileCacheOptions {
  root: string
  /** How long an entry is trusted before the file system is asked again (nginx: open_file_cache_valid). */
  validMs: number
  /** Files up to this size are held in memory. */
  smallFileBytes: number
  /** Follow symlinks that lead outside the root. */
  followSymlinks: boolean
  /** Most entries kept; the oldest is dropped beyond it (nginx: open_file_cache max). */
  maxEntries?: number
  /** Most bytes of file contents kept in memory; files beyond it are streamed. */
  maxCachedBytes?: number
  /**
   * Most descriptors kept open (nginx: the open_file_cache max counts them). Beyond it files are
   * opened per request: descriptors are also what accept() needs, and the process limit is shared.
   */
  maxOpenFiles?: number
}

/**
 * A file descriptor shared by the cache and the responses reading from it. The cache holds one
 * reference while the entry is current; each response holds one while it reads. The descriptor
 * is closed when the last is released, so refreshing or evicting an entry never closes a file
 * under a response that is still being sent.
 */
export class OpenFile {
  readonly handle: FileHandle
  private refs = 1

  constructor(handle: FileHandle) {
    this.handle = handle
  }

  /** Take a reference for reading; false when the descriptor was already closed. */
  acquire(): boolean {
    if (this.refs === 0) return false
    this.refs++
    return true
  }

  release(): void {
    if (--this.refs === 0) this.handle.close().catch(() => {})
  }
}

const MISSING_BASE = { realPath: '', size: 0, mtimeMs: 0, etag: '', lastModified: '', contentType: '', body: null, open: null, prepared: null }

export class FileCache {
  private readonly options: Required<FileCacheOptions>
  private readonly entries = new Map<string, FileEntry>()
  private readonly inFlight = new Map<string, Promise<FileEntry>>()
  private cachedBytes = 0
  /** Descriptors held by cache entries (responses may hold them a little longer). */
  private openFiles = 0
  /** realpath(root), re-checked like any entry: ROOT may itself be a symlink that a deploy re-points. */
  private realRoot: Promise<string> | null = null
  private realRootCheckedAt = 0

  constructor(options: FileCacheOptions) {
    this.options = { maxEntries: 10_000, maxCachedBytes: 64 * 1024 * 1024, maxOpenFiles: 256, ...withoutUndefined(options), root: path.resolve(options.root) }
  }

  /** The entry for an absolute path under the root: from the cache while valid, else fresh. */
  lookup(file: string): Promise<FileEntry> | FileEntry {
    const cached = this.entries.get(file)
    if (cached !== undefined && performance.now() - cached.checkedAt < this.options.validMs) return cached
    let pending = this.inFlight.get(file)
    if (pending === undefined) {
      pending = this.load(file).finally(() => this.inFlight.delete(file))
      this.inFlight.set(file, pending)
    }
    return pending
  }

  private async load(file: string): Promise<FileEntry> {
    const entry = await this.examine(file)
    this.store(file, entry)
    return entry
  }

  private async examine(file: string): Promise<FileEntry> {
    const checkedAt = performance.now()
    let realPath: string
    try {
      realPath = await realpath(file)
    } catch {
      return { kind: 'missing', ...MISSING_BASE, checkedAt }
    }
    const root = await this.resolveRoot(checkedAt)
    const inside = realPath === root || realPath.startsWith(root + path.sep)
    if (!inside && !this.options.followSymlinks) return { kind: 'forbidden', ...MISSING_BASE, checkedAt }
    // Dotfiles stay hidden whatever name reaches them: a visible symlink to .env inside the root is refused too.
    if (inside && isHiddenPath(realPath.slice(root.length))) return { kind: 'forbidden', ...MISSING_BASE, checkedAt }
    let info
    try {
      info = await stat(realPath)
    } catch {
      return { kind: 'missing', ...MISSING_BASE, checkedAt }
    }
    if (info.isDirectory()) return { kind: 'directory', ...MISSING_BASE, realPath, mtimeMs: info.mtimeMs, checkedAt }
    if (!info.isFile()) return { kind: 'missing', ...MISSING_BASE, checkedAt }
    let body: Buffer | null = null
    if (info.size <= this.options.smallFileBytes && this.cachedBytes + info.size <= this.options.maxCachedBytes) {
      body = await readFile(realPath).catch(() => null)
      // A file that changed between stat and read is served from disk, with fresh validators next time.
      if (body !== null && body.length !== info.size) body = null
    }
    let opened: OpenFile | null = null
    if (body === null && this.openFiles < this.options.maxOpenFiles) {
      // Counted from here: an entry that is never stored is dropped through the same path.
      this.openFiles++
      const handle = await open(realPath, 'r').catch(() => null)
      if (handle === null) {
        this.openFiles--
        return { kind: 'missing', ...MISSING_BASE, checkedAt }
      }
      opened = new OpenFile(handle)
    }
    return {
      kind: 'file',
      realPath,
      size: info.size,
      mtimeMs: info.mtimeMs,
      etag: weakEtag(info.size, info.mtimeMs),
      lastModified: httpDate(info.mtimeMs),
      contentType: contentTypeFor(file),
      body,
      open: opened,
      checkedAt,
      prepared: null,
    }
  }

  private resolveRoot(now: number): Promise<string> {
    if (this.realRoot === null || now - this.realRootCheckedAt >= this.options.validMs) {
      this.realRootCheckedAt = now
      const root = this.options.root
      this.realRoot = realpath(root).catch(() => root)
    }
    return this.realRoot
  }

  private store(file: string, entry: FileEntry): void {
    const old = this.entries.get(file)
    if (old !== undefined) this.drop(file, old)
    while (this.entries.size >= this.options.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, FileEntry]
      this.drop(oldestKey, oldest)
    }
    this.entries.set(file, entry)
    if (entry.body !== null) this.cachedBytes += entry.body.length
  }

  private drop(file: string, entry: FileEntry): void {
    this.entries.delete(file)
    if (entry.body !== null) this.cachedBytes -= entry.body.length
    if (entry.open !== null) {
      this.openFiles--
      entry.open.release()
    }
  }

  /** Close every cached descriptor (responses still reading keep theirs until they finish). */
  clear(): void {
    for (const [file, entry] of this.entries) this.drop(file, entry)
  }
}

/** Options given as undefined take their defaults. */
function withoutUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T
}

/**
 * Content type from the mime-types database; text types carry charset=utf-8, and so do XML-based
 * types such as SVG (the database gives them none); unknown is octet-stream.
 */
export function contentTypeFor(file: string): string {
  const type = mime.contentType(path.extname(file))
  if (type === false) return 'application/octet-stream'
  return type.endsWith('+xml') ? `${type}; charset=utf-8` : type
}

/** A path (relative to the root, starting with a separator) with a dot-segment other than a top-level .well-known. */
function isHiddenPath(relative: string): boolean {
  const segments = relative.split(path.sep)
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!
    if (segment.startsWith('.') && !(i === 1 && segment === '.well-known')) return true
  }
  return false
}
