// A log destination — a file path, or '-' for standard output — written in batches, the way
// nginx's `access_log ... buffer=64k flush=1s` is. A caller's write() only appends a string to an
// in-memory list: no system call, no promise, nothing on the request's path. The list goes out
// in ONE write when it passes `flushBytes`, or when the flush timer fires.
//
// Every operation on the descriptor (a batch write, a reopen, the close) runs through one
// promise chain, so at most one write is in flight, batches land in the order their lines were
// written, and a reopen can never close the descriptor under a write. Lines written while a
// write is in flight wait in the buffer for the next batch.
//
// Memory is bounded: the buffer plus the batch in flight never exceed `maxBufferBytes`. Past
// that (the disk is stuck or full) new lines are dropped and counted, and once there is room
// again one line saying how many were lost is written where the gap is. Write errors (ENOSPC,
// EIO, a deleted directory) never throw into callers: they are counted and handed to `onError`.
//
// Sizes are counted in string length (UTF-16 code units), which equals bytes for the ASCII
// lines the access and error logs produce and stays close for the rest; it keeps write() free
// of an encoding pass.

import { systemFailure } from './system-failure.ts'
import { Buffer } from 'node:buffer'
import fs from 'node:fs'
import { dirname } from 'node:path'
import { PetrelError } from './errors.ts'

export interface LogFileOptions {
  /** Flush as soon as the buffer holds this many bytes. Default 64 KiB. */
  flushBytes?: number
  /** Flush buffered lines at the latest this long after the first of them. Default 1000 ms. */
  flushIntervalMs?: number
  /** Hard cap on buffered plus in-flight bytes; lines past it are dropped. Default 16 MiB. */
  maxBufferBytes?: number
  /** Told about every failed open, write or close. Must not throw (a throw is swallowed). */
  onError?: (error: Error) => void
  /** The line written where lines were lost; access logs in JSON pass a JSON line here. */
  droppedLine?: (count: number) => string
}

export const LOG_FILE_DEFAULTS = {
  flushBytes: 64 * 1024,
  flushIntervalMs: 1000,
  maxBufferBytes: 16 * 1024 * 1024,
} as const

/** Standard output as a log destination, as in nginx's `access_log /dev/stdout`. */
export const STDOUT = '-'

/** Files are created readable by the group (adm, on most systems) and by nobody else. */
const FILE_MODE = 0o640

/** A log file that cannot be opened, as the error that names it: for start-up, where it stops the server. */
export function logOpenError(path: string, err: unknown): PetrelError {
  return systemFailure(err) ?? new PetrelError('PETREL_ERR_LOG_OPEN', `${path}: ${toError(err).message}`, { cause: err })
}

/**
 * Opens the log file at `path` — creating it (mode 0640) if need be — and closes it again; with
 * `ownerUid`, makes it that user's when it is not yet. A master that is still root does this
 * before its workers, which gave root up, open the path themselves (at start, reload or
 * reopen): they could neither create a file in a root-owned directory nor open a root-owned
 * 0640 file. nginx's master does the same in ngx_reopen_files. The group is left as it is, so a
 * `create 0640 www-data adm` from logrotate keeps its meaning. Throws PETREL_ERR_LOG_OPEN.
 */
export function prepareLogFile(path: string, ownerUid?: number): void {
  if (path === STDOUT) return
  let fd: number
  try {
    fd = fs.openSync(path, 'a', FILE_MODE)
  } catch (err) {
    throw logOpenError(path, err)
  }
  try {
    if (ownerUid !== undefined && fs.fstatSync(fd).uid !== ownerUid) fs.fchownSync(fd, ownerUid, -1)
  } catch (err) {
    throw new PetrelError('PETREL_ERR_LOG_OPEN', `${path}: cannot give it to uid ${ownerUid}: ${toError(err).message}`, { cause: err })
  } finally {
    fs.closeSync(fd)
  }
}

function defaultDroppedLine(count: number): string {
  return `petrel: ${count} log line${count === 1 ? ' was' : 's were'} lost (log buffer full or write failed)`
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

function openAsync(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'a', FILE_MODE, (err, fd) => (err ? reject(err) : resolve(fd)))
  })
}

function closeAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.close(fd, (err) => (err ? reject(err) : resolve()))
  })
}

function writeAsync(fd: number, data: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, offset, data.length - offset, null, (err, written) => (err ? reject(err) : resolve(written)))
  })
}

function stdoutWrite(data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()))
  })
}

export class LogFile {
  /** The file path, or '-' for standard output. */
  readonly path: string
  /** Lines lost since this LogFile was made: over the cap, in a failed write, or written after close(). */
  dropped = 0
  /** Write system calls issued; one per flushed batch unless the kernel took a batch in parts. */
  writes = 0
  /** Failed opens, writes and closes since this LogFile was made. */
  errors = 0
  lastError: Error | null = null

  private readonly flushBytes: number
  private readonly flushIntervalMs: number
  private readonly maxBufferBytes: number
  private readonly onError: ((error: Error) => void) | undefined
  private readonly droppedLine: (count: number) => string
  private readonly toStdout: boolean

  private lines: string[] = []
  private bufferedBytes = 0
  private inFlightBytes = 0
  /** Lines lost since the last "lines were lost" notice was buffered. */
  private lostSinceNotice = 0
  /** Notice lines in `lines`, so a failed write does not count them as lost log lines. */
  private noticesBuffered = 0
  private fd: number | null = null
  private timer: NodeJS.Timeout | null = null
  /** The last operation on the descriptor; each new one runs after it. Never rejects. */
  private tail: Promise<void> = Promise.resolve()
  /** A batch write that is queued but has not taken the buffer yet. */
  private queuedFlush: Promise<void> | null = null
  private closing: Promise<void> | null = null
  /** The write callback already reports a failed stdout write; this only keeps it from crashing. */
  private readonly onStdoutError = (): void => {}

  constructor(path: string, options: LogFileOptions = {}) {
    this.path = path
    this.flushBytes = options.flushBytes ?? LOG_FILE_DEFAULTS.flushBytes
    this.flushIntervalMs = options.flushIntervalMs ?? LOG_FILE_DEFAULTS.flushIntervalMs
    this.maxBufferBytes = options.maxBufferBytes ?? LOG_FILE_DEFAULTS.maxBufferBytes
    this.onError = options.onError
    this.droppedLine = options.droppedLine ?? defaultDroppedLine
    this.toStdout = path === STDOUT
    // A reader of our stdout that goes away (EPIPE) must not crash the server; nginx ignores
    // SIGPIPE for the same reason. The write callback reports the error like any other.
    if (this.toStdout) process.stdout.on('error', this.onStdoutError)
  }

  /** Bytes waiting in memory, buffered and in flight. */
  get pendingBytes(): number {
    return this.bufferedBytes + this.inFlightBytes
  }

  /**
   * Opens the file now and rejects if it cannot be opened, so that a bad path fails at startup
   * (as nginx does) instead of at the first flush. Optional: writes open the file lazily.
   */
  open(): Promise<void> {
    // The caller gets a failure as the rejection; handing it to onError too would report it twice.
    return this.enqueue(async () => {
      if (!this.toStdout && this.fd === null) this.fd = await openAsync(this.path)
    }, false)
  }

  /** Appends one line (without its newline). Never does I/O and never throws. */
  write(line: string): void {
    if (this.closing !== null) {
      this.dropped++
      return
    }
    const bytes = line.length + 1
    if (this.bufferedBytes + this.inFlightBytes + bytes > this.maxBufferBytes) {
      this.dropped++
      this.lostSinceNotice++
      return
    }
    if (this.lostSinceNotice > 0) this.bufferNotice()
    this.lines.push(line)
    this.bufferedBytes += bytes
    if (this.bufferedBytes >= this.flushBytes) this.startFlush()
    else if (this.timer === null && this.queuedFlush === null) this.armTimer()
  }

  /** Resolves when every line written before the call has been handed to the kernel (or lost and reported). */
  flush(): Promise<void> {
    if (this.closing !== null) return this.closing
    return this.startFlush()
  }

  /**
   * For log rotation: writes what is buffered to the current file, opens the path again and
   * only then closes the old descriptor, so that after logrotate moved the file away new lines
   * go to a new file at the path. When the path cannot be opened (a directory the process may no
   * longer write to, a full disk), the old file stays in use — lines keep going to it, as with
   * nginx — and the failure is reported through onError and resolved as the result, so that the
   * caller can say so where an operator looks. Never rejects.
   */
  reopen(): Promise<Error | null> {
    if (this.closing !== null) return this.closing.then(() => null)
    let failure: Error | null = null
    return this.enqueue(async () => {
      await this.writeBatch()
      if (this.toStdout) return
      let fresh: number
      try {
        fresh = await openAsync(this.path)
      } catch (err) {
        failure = toError(err)
        this.report(failure)
        return
      }
      const old = this.fd
      this.fd = fresh
      if (old !== null) await closeAsync(old).catch((err: unknown) => this.report(err))
    }).then(() => failure, toError)
  }

  /** Writes every buffered line, then closes the file. Lines written after close() are dropped. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing
    this.clearTimer()
    this.closing = this.enqueue(async () => {
      await this.writeBatch()
      if (this.fd !== null) {
        const fd = this.fd
        this.fd = null
        await closeAsync(fd).catch((err: unknown) => this.report(err))
      }
      if (this.toStdout) process.stdout.off('error', this.onStdoutError)
    })
    return this.closing
  }

  /**
   * Writes the buffer synchronously. Only for exit paths (`process.on('exit')`, a fatal error
   * handler), where no further turn of the event loop will come. A batch already in flight is
   * not waited for, so at exit its lines may land after these.
   */
  flushSync(): void {
    this.clearTimer()
    if (this.lostSinceNotice > 0) this.bufferNotice()
    if (this.lines.length === 0) return
    const { data, lineCount } = this.takeBuffer()
    let fd = this.toStdout ? 1 : this.fd
    let openedHere = false
    try {
      if (fd === null) {
        fd = fs.openSync(this.path, 'a', FILE_MODE)
        openedHere = true
      }
      const buffer = Buffer.from(data)
      let offset = 0
      while (offset < buffer.length) {
        this.writes++
        offset += fs.writeSync(fd, buffer, offset, buffer.length - offset)
      }
    } catch (err) {
      this.lose(lineCount)
      this.report(err)
    } finally {
      this.inFlightBytes = 0
      if (openedHere && fd !== null) {
        try {
          fs.closeSync(fd)
        } catch (err) {
          this.report(err)
        }
      }
    }
  }

  /** Runs `op` after the operations before it. Its failure is counted, and told to onError unless `notify` is false. */
  private enqueue(op: () => Promise<void>, notify = true): Promise<void> {
    const done = this.tail.then(op)
    this.tail = done.then(
      () => undefined,
      (err: unknown) => this.report(err, notify),
    )
    return done
  }

  private startFlush(): Promise<void> {
    this.clearTimer()
    if (this.queuedFlush !== null) return this.queuedFlush
    const queued = this.enqueue(() => {
      this.queuedFlush = null
      return this.writeBatch()
    })
    this.queuedFlush = queued
    return queued
  }

  /** Takes the whole buffer and writes it in one write. Runs only inside the operation chain. */
  private async writeBatch(): Promise<void> {
    if (this.lostSinceNotice > 0) this.bufferNotice()
    if (this.lines.length === 0) return
    const { data, lineCount } = this.takeBuffer()
    try {
      if (this.toStdout) {
        this.writes++
        await stdoutWrite(data)
      } else {
        const fd = this.fd ?? (this.fd = await openAsync(this.path))
        const buffer = Buffer.from(data)
        let offset = 0
        while (offset < buffer.length) {
          this.writes++
          offset += await writeAsync(fd, buffer, offset)
        }
      }
    } catch (err) {
      this.lose(lineCount)
      this.report(err)
    } finally {
      this.inFlightBytes = 0
    }
    // Lines that arrived during the write and already fill a batch go out at once; smaller
    // leftovers have armed the timer in write().
    if (this.bufferedBytes >= this.flushBytes && this.closing === null) this.startFlush()
  }

  private takeBuffer(): { data: string; lineCount: number } {
    const lines = this.lines
    const lineCount = lines.length - this.noticesBuffered
    this.inFlightBytes = this.bufferedBytes
    this.lines = []
    this.bufferedBytes = 0
    this.noticesBuffered = 0
    return { data: lines.join('\n') + '\n', lineCount }
  }

  private bufferNotice(): void {
    const notice = this.droppedLine(this.lostSinceNotice)
    this.lostSinceNotice = 0
    // The notice may overshoot the cap by one short line; it is the line the operator needs.
    this.lines.push(notice)
    this.bufferedBytes += notice.length + 1
    this.noticesBuffered++
  }

  private lose(lineCount: number): void {
    this.dropped += lineCount
    this.lostSinceNotice += lineCount
  }

  private armTimer(): void {
    this.timer = setTimeout(() => {
      this.timer = null
      this.startFlush()
    }, this.flushIntervalMs)
    // A pending flush must never keep the process alive; exit paths use flushSync().
    this.timer.unref()
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
  }

  private report(value: unknown, notify = true): void {
    const error = toError(value)
    this.errors++
    this.lastError = error
    if (this.onError === undefined || !notify) return
    try {
      this.onError(error)
    } catch {
      // The error callback is the last resort; a throw from it has nowhere left to go.
    }
  }
}
