// Reading a configuration file that a server re-reads while it serves (SIGHUP): only a regular
// file, only up to a size, and never on the event loop.
//
// readFileSync() of a path that names a FIFO waits for a writer with the event loop stopped, and
// of /dev/zero reads until memory runs out: either way a running server stops answering. So the
// file is opened with O_NONBLOCK (opening a FIFO then returns at once instead of waiting for a
// writer), the open descriptor is checked with fstat (the thing that was opened, not whatever the
// path names a moment later), and reading stops one byte past the limit, whatever the file
// claims its size is (a file may grow while it is read; /proc files say 0).

import { Buffer } from 'node:buffer'
import { constants, type Stats } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import { UsageError, type ErrorCode } from './errors.ts'

export interface ConfigFileOptions {
  /** Largest accepted file. */
  maxBytes: number
  /** The knob that sets maxBytes, named in the refusal (e.g. "--max-config-bytes"). */
  maxBytesKnob: string
  /** The code of the UsageError thrown for a file that cannot be used. */
  code: ErrorCode
}

const READ_CHUNK_BYTES = 64 * 1024

/** The largest configuration file read by default (`--max-config-bytes`): real ones are a few KiB. */
export const DEFAULT_MAX_CONFIG_BYTES = 1024 * 1024

/**
 * The text of `file` (UTF-8). Throws a UsageError whose message is `FILE: the problem`: missing,
 * unreadable, not a regular file (a FIFO, a device, a directory, a socket), or over the limit.
 */
export async function readConfigFile(file: string, options: ConfigFileOptions): Promise<string> {
  const refuse = (problem: string): never => {
    throw new UsageError(options.code, `${file}: ${problem}`)
  }
  let handle
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return refuse(
      code === 'ENOENT'
        ? `not found (looked for ${path.resolve(file)})`
        : code === 'EACCES' || code === 'EPERM'
          ? 'not readable: permission denied'
          : code === 'ENXIO'
            ? 'is a socket, not a regular file; give the path of the configuration file itself'
            : `cannot be opened: ${(err as Error).message}`,
    )
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) refuse(`is ${kindOf(stats)}, not a regular file; give the path of the configuration file itself`)
    if (stats.size > options.maxBytes) refuse(`is ${stats.size} bytes, over the limit of ${options.maxBytes}; raise it with ${options.maxBytesKnob}`)
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, options.maxBytes + 1 - total))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > options.maxBytes) refuse(`is over the limit of ${options.maxBytes} bytes; raise it with ${options.maxBytesKnob}`)
    }
    return Buffer.concat(chunks, total).toString('utf8')
  } finally {
    await handle.close()
  }
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)'
  if (stats.isCharacterDevice()) return 'a character device'
  if (stats.isBlockDevice()) return 'a block device'
  if (stats.isDirectory()) return 'a directory'
  if (stats.isSocket()) return 'a socket'
  return 'an unknown kind of file'
}
