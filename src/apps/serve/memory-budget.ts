// The bytes of file contents a process holds in memory, within one budget shared by every file
// cache given it (every site's root): the least recently used body anywhere makes room, so a
// process with ten sites holds at most the budget, not ten of them. Entries are kept in one list
// by recent use, threaded through the entries themselves: a hit is a few pointer writes.

import type { FileEntry } from './file-cache.ts'

/** What the budget asks of a cache whose entry is the least recently used: forget it (and give its bytes back). */
export interface BudgetOwner {
  evict(entry: FileEntry): void
}

export class MemoryBudget {
  readonly limit: number
  /** Bytes of the bodies held plus those being read for entries not stored yet. */
  private used = 0
  private oldest: FileEntry | null = null
  private newest: FileEntry | null = null
  /** The cache each listed entry belongs to, asked only when the entry is evicted. */
  private readonly owners = new Map<FileEntry, BudgetOwner>()

  constructor(limit: number) {
    this.limit = limit
  }

  /** Bytes counted now (never above the limit). */
  get bytes(): number {
    return this.used
  }

  /**
   * Count `size` bytes, first evicting the least recently used bodies until they fit; false
   * (nothing counted) when they cannot: larger than the whole budget, or the rest of it is held
   * by reads still under way.
   */
  reserve(size: number): boolean {
    if (size > this.limit) return false
    while (this.used + size > this.limit && this.oldest !== null) {
      const oldest = this.oldest
      const owner = this.owners.get(oldest)!
      owner.evict(oldest)
      // An owner that did not let go would loop here forever: it is unlinked whatever it did.
      if (this.oldest === oldest) this.unlink(oldest)
    }
    if (this.used + size > this.limit) return false
    this.used += size
    return true
  }

  /** Give back bytes counted by reserve() (a read that failed, or a body forgotten). */
  release(size: number): void {
    this.used -= size
  }

  /** An entry whose body is held: listed as the most recently used. */
  link(entry: FileEntry, owner: BudgetOwner): void {
    this.owners.set(entry, owner)
    this.linkNewest(entry)
  }

  /** A hit: the entry moves to the newest end. */
  touch(entry: FileEntry): void {
    if (entry === this.newest) return
    this.detach(entry)
    this.linkNewest(entry)
  }

  /** The entry is forgotten by its cache: out of the list (its bytes are given back with release()). */
  unlink(entry: FileEntry): void {
    if (!this.owners.delete(entry)) return
    this.detach(entry)
  }

  private linkNewest(entry: FileEntry): void {
    entry.lruOlder = this.newest
    entry.lruNewer = null
    if (this.newest !== null) this.newest.lruNewer = entry
    else this.oldest = entry
    this.newest = entry
  }

  private detach(entry: FileEntry): void {
    if (entry.lruOlder !== null) entry.lruOlder.lruNewer = entry.lruNewer
    else this.oldest = entry.lruNewer
    if (entry.lruNewer !== null) entry.lruNewer.lruOlder = entry.lruOlder
    else this.newest = entry.lruOlder
    entry.lruOlder = null
    entry.lruNewer = null
  }
}
