// The pidfile, as nginx keeps one: written at start, refused when a live process holds it,
// removed at exit, and read by `petrel serve --signal ...` to find the server.

import { readFileSync, writeFileSync, unlinkSync, openSync, closeSync, readlinkSync, realpathSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PetrelError } from '../core/errors.ts'
import { systemFailure } from '../core/system-failure.ts'

/** The `petrel` command's entry script, as the kernel would show it in a process's arguments. */
const ENTRY_SCRIPT = fileURLToPath(new URL('../../bin/petrel.js', import.meta.url))

/** The pid recorded in `file`, or null when there is none (missing file, empty or garbage). */
export function readPid(file: string): number | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return null
  }
  const pid = Number(text.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : null
}

/** Whether a process with this pid exists (signal 0 tests for it without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else — alive all the same.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface ProcessIdentity {
  /** Whether the process runs `petrel serve` (its arguments hold Petrel's entry script, then `serve`); null when there is no /proc to ask. */
  isPetrelServer: boolean | null
  /** Its command line, for messages ('' when unknown). */
  command: string
}

/**
 * What runs as `pid`, from /proc/PID/cmdline. A pidfile outlives its server when the server is
 * killed; the kernel may then give the pid to any other process, which a signal meant for the
 * server must not reach. A relative script path is resolved against the process's own working
 * directory, and symlinks (node_modules/.bin/petrel, /usr/bin/petrel) are followed.
 */
export function identify(pid: number): ProcessIdentity {
  let args: string[]
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    let haveProc = true
    try {
      readFileSync('/proc/self/cmdline')
    } catch {
      haveProc = false
    }
    return { isPetrelServer: haveProc ? false : null, command: '' }
  }
  if (args.at(-1) === '') args.pop()
  let cwd = '/'
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`)
  } catch {}
  const entry = realpathOrSelf(ENTRY_SCRIPT)
  let isPetrelServer = false
  for (let i = 1; i < args.length - 1 && !isPetrelServer; i++) {
    const arg = args[i]!
    if (!arg.endsWith('petrel') && !arg.endsWith('petrel.js')) continue
    isPetrelServer = realpathOrSelf(path.resolve(cwd, arg)) === entry && args[i + 1] === 'serve'
  }
  const command = args.join(' ')
  return { isPetrelServer, command: command.length > 120 ? `${command.slice(0, 117)}...` : command }
}

function realpathOrSelf(file: string): string {
  try {
    return realpathSync(file)
  } catch {
    return file
  }
}

/**
 * Record this process in `file`. A file naming a live Petrel server is a running server:
 * refuse. A stale file (the process is gone, or its pid now belongs to another program) is taken
 * over. Exclusive creation closes the race between two servers starting at once.
 */
export function writePidfile(file: string, pid: number = process.pid): void {
  const holder = readPid(file)
  if (holder !== null && holder !== pid && isAlive(holder) && identify(holder).isPetrelServer !== false) {
    throw new PetrelError(
      'PETREL_ERR_PIDFILE_HELD',
      `${file} names process ${holder}, which is running; stop it with \`petrel serve --signal stop --pid ${file}\` or remove the file`,
    )
  }
  try {
    unlinkSync(file)
  } catch {}
  let fd: number
  try {
    fd = openSync(file, 'wx', 0o644)
  } catch (err) {
    // Not held by a server: a missing directory or no permission, told with what to do about it.
    throw systemFailure(err, `create the pidfile ${file}`) ?? err
  }
  closeSync(fd)
  writeFileSync(file, `${pid}\n`)
}

/** Remove the pidfile if it still names this process (a successor may have taken it over). */
export function removePidfile(file: string, pid: number = process.pid): void {
  if (readPid(file) !== pid) return
  try {
    unlinkSync(file)
  } catch {}
}
