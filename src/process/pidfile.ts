// The pidfile, as nginx keeps one: written at start, refused when a live process holds it,
// removed at exit, and read by `petrel serve --signal ...` to find the server.

import { readFileSync, writeFileSync, unlinkSync, openSync, closeSync } from 'node:fs'
import { PetrelError } from '../core/errors.ts'
import { systemFailure } from '../core/system-failure.ts'

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

/**
 * Record this process in `file`. A file naming a live process is a running server: refuse. A
 * stale file (the process is gone) is taken over. Exclusive creation closes the race between
 * two servers starting at once.
 */
export function writePidfile(file: string, pid: number = process.pid): void {
  const holder = readPid(file)
  if (holder !== null && holder !== pid && isAlive(holder)) {
    throw new PetrelError('PETREL_ERR_PIDFILE_HELD', `${file} names process ${holder}, which is running; stop it with \`petrel serve --signal stop --pid ${file}\` or remove the file`)
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
