// What the static server knows about a path, cached for a validity period like nginx's
// open_file_cache: the check that the path stays inside ROOT, the stat, the validators and
// content type, and — for files up to smallFileBytes — the bytes themselves, within a byte budget
// (maxCachedBytes, or a MemoryBudget shared by every site's cache) kept by evicting the least
// recently used. A request for a cached file costs a
// Map lookup; the file system is asked again only when the entry is older than `validMs`.
// Concurrent lookups of the same path share one set of file system calls. Every call is
// asynchronous: no synchronous file system call ever runs on the request path.
//
// Open first, then check what was opened. Checking a path (realpath) and then opening it again
// lets a racer swap a directory for a symlink in between, and the second open reads outside
// ROOT. So every lookup opens the path with O_PATH — which follows symlinks but neither reads
// the file nor has the side effects of opening a FIFO or a device — asks the kernel where that
// descriptor really is (/proc/self/fd/N), checks that against ROOT, and only then reopens that
// very inode for reading through the same /proc link, which the kernel resolves to the inode
// and not by walking the path again. Everything served — bytes in memory, a cached descriptor,
// a descriptor opened for one response, a directory's names — comes from a checked descriptor.

import { existsSync, constants as fsConstants } from 'node:fs'
import { open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { contentTypeFor } from './media-types.ts'
import { PetrelError } from '../../core/errors.ts'
import { weakEtag, httpDate } from './conditional.ts'
import { MemoryBudget, type BudgetOwner } from './memory-budget.ts'

/**
 * open(2)'s O_PATH, which Node does not export. 010000000 is its value on every Linux
 * architecture Node runs on (the asm-generic value: x64, arm64, arm, ppc64, s390x, riscv64,
 * loong64).
 */
const O_PATH = 0o10000000

/** Where the kernel shows what a descriptor of this process refers to. */
const PROC_FD = '/proc/self/fd/'

/** Errors that mean "no descriptor free now", not "no such file": answered 503 and never cached. */
const DESCRIPTORS_EXHAUSTED = new Set(['EMFILE', 'ENFILE'])

/** Running out of descriptors is logged at most this often; the lines in between are counted. */
const EXHAUSTED_LOG_INTERVAL_MS = 1000

export interface FileEntry {
  /** `forbidden`: the path leaves the root through a symlink, or reaches a dotfile; it is answered like a missing file. */
  readonly kind: 'file' | 'directory' | 'missing' | 'forbidden'
  /** The path looked up (under the root, as the URL named it): what a response opens again when the entry holds no descriptor. */
  readonly file: string
  /** Where the checked descriptor really was (symlinks followed), as the kernel reported it. */
  readonly realPath: string
  readonly size: number
  readonly mtimeMs: number
  readonly etag: string
  readonly lastModified: string
  readonly contentType: string
  /** The whole file, when it is at most smallFileBytes and the memory budget had room for it. */
  readonly body: Buffer | null
  /** The open file for a file served from disk (nginx caches descriptors the same way); null when the
   * file is in memory or the descriptor budget is spent (a response then opens it again with
   * openForResponse(), checked the same way). */
  readonly open: OpenFile | null
  /** When the entry was made (monotonic ms); it is trusted for validMs after that. */
  readonly checkedAt: number
  /** The whole 200 head for an in-memory file, kept by the static server (see static.ts). */
  prepared: PreparedHead | null
  /**
   * The neighbours of an in-memory entry in the cache's list of them by recent use (null at
   * either end, and for an entry without a body): owned by the cache, which moves an entry
   * to the newest end on each hit with a few pointer writes, and evicts from the oldest end.
   */
  lruOlder: FileEntry | null
  lruNewer: FileEntry | null
}

/** A response head built for one in-memory file, valid while the Date line and the way it is served stay the same. */
export interface PreparedHead {
  readonly head: string
  readonly dateLine: string
  /** The fields it was built with besides the file's own (variant, Vary, Cache-Control), as one key. */
  readonly role: string
  /** The server's own fields it holds (Response.serverFields): a head is built for one server's. */
  readonly serverFields: string
}

export interface FileCacheOptions {
  root: string
  /** How long an entry is trusted before the file system is asked again (nginx: open_file_cache_valid). */
  validMs: number
  /** Files up to this size are held in memory (within maxCachedBytes). */
  smallFileBytes: number
  /** Follow symlinks that lead outside the root. */
  followSymlinks: boolean
  /** Most entries kept; the oldest is dropped beyond it (nginx: open_file_cache max). */
  maxEntries?: number
  /**
   * Most bytes of file contents kept in memory (reads under way included): a file that does not
   * fit pushes out the least recently used ones; one larger than the whole budget is streamed.
   */
  maxCachedBytes?: number
  /** A budget shared with other caches (every site's): then maxCachedBytes is unused and the budget's limit holds for all of them together. */
  memory?: MemoryBudget
  /**
   * Most descriptors kept open (nginx: the open_file_cache max counts them). Beyond it files are
   * opened per request: descriptors are also what accept() needs, and the process limit is shared.
   */
  maxOpenFiles?: number
  /** A line for the error log (running out of descriptors); default: stderr. */
  log?: (line: string) => void
}

/**
 * A file descriptor shared by the cache and the responses reading from it. The cache holds one
 * reference while the entry is current; each response holds one while it is answered. The descriptor
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

const MISSING_BASE = {
  realPath: '',
  size: 0,
  mtimeMs: 0,
  etag: '',
  lastModified: '',
  contentType: '',
  body: null,
  open: null,
  prepared: null,
  lruOlder: null,
  lruNewer: null,
}

/** What the cache holds now: for the operator's and the tests' eyes. */
export interface FileCacheStats {
  /** Entries of any kind (files, directories, missing paths). */
  readonly entries: number
  /** Bytes of file contents in memory, reads under way included: never above maxCachedBytes. */
  readonly memoryBytes: number
  /** Files whose bytes are in memory. */
  readonly memoryFiles: number
  /** Descriptors held by entries. */
  readonly openFiles: number
}

/** A path opened with O_PATH and checked: where it really is, and what it is. */
interface Found {
  readonly handle: FileHandle
  readonly realPath: string
  readonly isFile: boolean
  readonly isDirectory: boolean
  readonly size: number
  readonly mtimeMs: number
}

/**
 * Whom a file's readable descriptor is for: the cache, which keeps it within its budget (else the
 * entry holds the metadata only, and small files their bytes); or one response, which always
 * gets it and never has its bytes put in memory; or nobody (a directory listing's rows need only
 * the metadata).
 */
const KEEP = { IF_BUDGET: 0, FOR_RESPONSE: 1, NOTHING: 2 } as const
type Keep = (typeof KEEP)[keyof typeof KEEP]

export class FileCache implements BudgetOwner {
  private readonly options: Required<Omit<FileCacheOptions, 'memory'>>
  /** The byte budget of the bodies held, maybe shared with other caches. */
  private readonly memory: MemoryBudget
  private readonly entries = new Map<string, FileEntry>()
  private readonly inFlight = new Map<string, Promise<FileEntry>>()
  /** This cache's share of the budget: bytes of the bodies it holds plus those being read for entries not stored yet. */
  private cachedBytes = 0
  private memoryFiles = 0
  /** Descriptors held by cache entries (responses may hold them a little longer). */
  private openFiles = 0
  /** realpath(root), re-checked like any entry: ROOT may itself be a symlink that a deploy re-points. */
  private realRoot: Promise<string> | null = null
  private realRootCheckedAt = 0

  /** Descriptor exhaustion since the last logged line, and when that line was written. */
  private exhaustedSinceLog = 0
  private exhaustedLoggedAt = -Infinity

  constructor(options: FileCacheOptions) {
    const { memory, ...rest } = options
    this.options = {
      maxEntries: 10_000,
      maxCachedBytes: 64 * 1024 * 1024,
      maxOpenFiles: 256,
      log: (line) => console.error(`petrel: ${line}`),
      ...withoutUndefined(rest),
      root: path.resolve(options.root),
    }
    this.memory = memory ?? new MemoryBudget(this.options.maxCachedBytes)
    // Once at startup: without /proc no opened file could be checked, and every file would be refused.
    if (!existsSync(PROC_FD)) throw new PetrelError('PETREL_ERR_NO_PROC_FD')
  }

  /** The entry for an absolute path under the root: from the cache while valid, else fresh. */
  lookup(file: string): Promise<FileEntry> | FileEntry {
    const cached = this.entries.get(file)
    if (cached !== undefined && performance.now() - cached.checkedAt < this.options.validMs) {
      if (cached.body !== null) this.memory.touch(cached)
      return cached
    }
    let pending = this.inFlight.get(file)
    if (pending === undefined) {
      pending = this.load(file).finally(() => this.inFlight.delete(file))
      this.inFlight.set(file, pending)
    }
    return pending
  }

  private async load(file: string): Promise<FileEntry> {
    // The entry being replaced has expired and no lookup returns it any more: its bytes are given
    // back now, so that reading the file again does not need room for two copies of it.
    const expired = this.entries.get(file)
    if (expired !== undefined) this.drop(file, expired)
    const entry = await this.entryFor(file, performance.now(), KEEP.IF_BUDGET)
    this.store(file, entry)
    return entry
  }

  /**
   * What a path is (kind, size, mtime), checked like any lookup but neither read, nor holding a
   * descriptor, nor stored: a listing of a large directory must not read its files into memory,
   * spend the descriptor budget or push the hot files out of the cache. A valid cached entry is
   * used as it is.
   */
  describe(file: string): Promise<FileEntry> | FileEntry {
    const cached = this.entries.get(file)
    if (cached !== undefined && performance.now() - cached.checkedAt < this.options.validMs) return cached
    return this.entryFor(file, performance.now(), KEEP.NOTHING)
  }

  /**
   * The file an entry without a descriptor names, opened and checked again for one response: the
   * entry as it is now, never stored, whose descriptor (when it is a file) the caller owns and
   * releases. Its size and validators are those of the file actually opened.
   */
  openForResponse(entry: FileEntry): Promise<FileEntry> {
    return this.entryFor(entry.file, performance.now(), KEEP.FOR_RESPONSE)
  }

  /**
   * The names in a directory, read from a descriptor checked like any file; null when the path
   * is no longer a directory inside the root. Dotfiles are left to the caller.
   */
  async readDirectory(dir: string): Promise<string[] | null> {
    const found = await this.find(dir, performance.now())
    if (found === null || found === FORBIDDEN) return null
    try {
      if (!found.isDirectory) return null
      // The /proc link opens the checked directory itself, whatever its path means by now.
      return await readdir(PROC_FD + found.handle.fd).catch((err: NodeJS.ErrnoException) => this.refuse(err, dir, null))
    } finally {
      await found.handle.close()
    }
  }

  private async entryFor(file: string, checkedAt: number, keep: Keep): Promise<FileEntry> {
    const found = await this.find(file, checkedAt)
    if (found === null || found === FORBIDDEN) return { kind: found === null ? 'missing' : 'forbidden', ...MISSING_BASE, file, checkedAt }
    const { size, mtimeMs } = found
    // The bytes are counted (and room made for them) before the first await, so concurrent loads cannot overrun the budget.
    const inMemory = keep === KEEP.IF_BUDGET && found.isFile && size <= this.options.smallFileBytes && this.reserveMemory(size)
    // A descriptor the cache may keep is counted before the first await, so concurrent lookups cannot overrun the budget.
    const reserved = keep === KEEP.IF_BUDGET && found.isFile && !inMemory && this.openFiles < this.options.maxOpenFiles
    if (reserved) this.openFiles++
    let opened: OpenFile | null = null
    let body: Buffer | null = null
    try {
      if (found.isDirectory) return { kind: 'directory', ...MISSING_BASE, file, realPath: found.realPath, mtimeMs, checkedAt }
      // FIFOs, sockets and devices are not served (and were never opened for reading).
      if (!found.isFile) return { kind: 'missing', ...MISSING_BASE, file, checkedAt }
      const mayKeep = keep === KEEP.FOR_RESPONSE || reserved
      if (inMemory || mayKeep) {
        // The checked inode itself, through its /proc link: no path is walked again.
        const handle = await open(PROC_FD + found.handle.fd, fsConstants.O_RDONLY).catch((err: NodeJS.ErrnoException) => this.refuse(err, file, null))
        if (handle === null) return { kind: 'missing', ...MISSING_BASE, file, checkedAt }
        // A file that shrank since its stat (or failed to read) is not kept in memory; a response opens it again.
        if (inMemory) body = await readWhole(handle, size).catch(() => null)
        if (body === null && mayKeep) opened = new OpenFile(handle)
        else await handle.close()
      }
      return {
        kind: 'file',
        file,
        realPath: found.realPath,
        size,
        mtimeMs,
        etag: weakEtag(size, mtimeMs),
        lastModified: httpDate(mtimeMs),
        contentType: contentTypeFor(file),
        body,
        open: opened,
        checkedAt,
        prepared: null,
        lruOlder: null,
        lruNewer: null,
      }
    } finally {
      // A reservation that did not become a kept descriptor is given back; a kept one is given back when its entry is dropped.
      if (reserved && opened === null) this.openFiles--
      // Likewise bytes counted for a body that was not read (the file shrank, or is no longer a file).
      if (inMemory && body === null) this.releaseMemory(size)
      await found.handle.close()
    }
  }

  /**
   * Open `file` with O_PATH and check where it really is: null when there is nothing there,
   * FORBIDDEN when it is outside the root (without followSymlinks) or a dotfile whatever name
   * reached it. Running out of descriptors rejects with a 503 error instead.
   */
  private async find(file: string, now: number): Promise<Found | typeof FORBIDDEN | null> {
    const handle = await open(file, O_PATH).catch((err: NodeJS.ErrnoException) => this.refuse(err, file, null))
    if (handle === null) return null
    let keepHandle = false
    try {
      const realPath = await readlink(PROC_FD + handle.fd).catch(() => null)
      if (realPath === null) return null
      const root = await this.resolveRoot(now)
      const inside = isUnder(realPath, root)
      if (!inside && !this.options.followSymlinks) return FORBIDDEN
      // Dotfiles stay hidden whatever name reaches them: a visible symlink to .env inside the root
      // is refused too; outside it (--follow-symlinks), a target whose own name is a dotfile.
      if (inside ? isHiddenPath(realPath.slice(root === path.sep ? 0 : root.length)) : path.basename(realPath).startsWith('.')) return FORBIDDEN
      const info = await handle.stat().catch(() => null)
      if (info === null) return null
      keepHandle = true
      return { handle, realPath, isFile: info.isFile(), isDirectory: info.isDirectory(), size: info.size, mtimeMs: info.mtimeMs }
    } finally {
      if (!keepHandle) await handle.close()
    }
  }

  /**
   * An open or read that failed: `otherwise` when the file is just not there (or not readable),
   * which may be cached; a 503 error, logged at most once a second, when no descriptor was free —
   * that says nothing about the file and must not be cached as missing.
   */
  private refuse<T>(err: NodeJS.ErrnoException, file: string, otherwise: T): T {
    if (err.code === undefined || !DESCRIPTORS_EXHAUSTED.has(err.code)) return otherwise
    this.exhaustedSinceLog++
    const now = performance.now()
    if (now - this.exhaustedLoggedAt >= EXHAUSTED_LOG_INTERVAL_MS) {
      const more = this.exhaustedSinceLog > 1 ? ` (${this.exhaustedSinceLog - 1} more since the last report)` : ''
      this.options.log(
        `static: out of file descriptors (${err.code}) opening ${file}: answered 503${more}; raise the open-files limit (ulimit -n) or lower --max-open-files or --max-connections`,
      )
      this.exhaustedLoggedAt = now
      this.exhaustedSinceLog = 0
    }
    throw new PetrelError('PETREL_ERR_OUT_OF_DESCRIPTORS', err.code, { cause: err })
  }

  private resolveRoot(now: number): Promise<string> {
    if (this.realRoot === null || now - this.realRootCheckedAt >= this.options.validMs) {
      this.realRootCheckedAt = now
      const root = this.options.root
      this.realRoot = realpath(root).catch(() => root)
    }
    return this.realRoot
  }

  /** Count `size` bytes of file contents against the budget (room is made by evicting the least recently used anywhere); false when they do not fit. */
  private reserveMemory(size: number): boolean {
    if (!this.memory.reserve(size)) return false
    this.cachedBytes += size
    return true
  }

  private releaseMemory(size: number): void {
    this.cachedBytes -= size
    this.memory.release(size)
  }

  /** The budget wants room: this entry was the least recently used of all. */
  evict(entry: FileEntry): void {
    this.drop(entry.file, entry)
  }

  private store(file: string, entry: FileEntry): void {
    const old = this.entries.get(file)
    if (old !== undefined) this.drop(file, old)
    while (this.entries.size >= this.options.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, FileEntry]
      this.drop(oldestKey, oldest)
    }
    this.entries.set(file, entry)
    // Its bytes were counted when the read began (reserveMemory).
    if (entry.body !== null) {
      this.memory.link(entry, this)
      this.memoryFiles++
    }
  }

  /**
   * Forget an entry: its bytes leave the budget and the cache keeps no reference to them (a
   * response still sending them holds its own until the socket is done with it); its
   * descriptor is released.
   */
  private drop(file: string, entry: FileEntry): void {
    // An entry is dropped once: a second drop of an entry already replaced must not count its bytes twice.
    if (this.entries.get(file) !== entry) return
    this.entries.delete(file)
    if (entry.body !== null) {
      this.memory.unlink(entry)
      this.memoryFiles--
      this.releaseMemory(entry.body.length)
    }
    if (entry.open !== null) {
      this.openFiles--
      entry.open.release()
    }
  }

  /** What the cache holds now. */
  stats(): FileCacheStats {
    return { entries: this.entries.size, memoryBytes: this.cachedBytes, memoryFiles: this.memoryFiles, openFiles: this.openFiles }
  }

  /** Close every cached descriptor and let go of every body (responses still reading keep theirs until they finish). */
  clear(): void {
    for (const [file, entry] of this.entries) this.drop(file, entry)
  }
}

/** Marks a path that leaves the root or names a dotfile: answered like a missing one. */
const FORBIDDEN = Symbol('forbidden')

/** Whether `realPath` is `root` or below it. */
function isUnder(realPath: string, root: string): boolean {
  if (root === path.sep) return true
  return realPath === root || (realPath.startsWith(root) && realPath.charCodeAt(root.length) === 0x2f)
}

/**
 * The first `size` bytes of a file, or null when it has fewer now (it shrank since its stat). The
 * buffer is its own allocation, never a slice of Node's shared pool: a small body kept in the
 * cache would otherwise keep a whole 8 KiB slab alive, and the budget would count a fraction of
 * the memory held.
 */
async function readWhole(handle: FileHandle, size: number): Promise<Buffer | null> {
  const body = Buffer.allocUnsafeSlow(size)
  let filled = 0
  while (filled < size) {
    const { bytesRead } = await handle.read(body, filled, size - filled, filled)
    if (bytesRead === 0) return null
    filled += bytesRead
  }
  return body
}

/** Options given as undefined take their defaults. */
function withoutUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T
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
