// Real peers from Debian's packages: a test that needs one installs it when it is missing (as
// root, the way CI runs), so nothing has to be set up by hand on a fresh machine.

import { execFileSync } from 'node:child_process'

/** Whether `command` is on PATH. */
export function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Install Debian package `pkg` unless `present()` says it is there; throws when that fails. */
export function ensureDebianPackage(pkg: string, present: () => boolean): void {
  if (present()) return
  const apt = (args: string[]): void => {
    execFileSync('apt-get', args, { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 })
  }
  try {
    apt(['install', '-y', '-qq', pkg])
  } catch {
    // A fresh machine may not have the package lists yet.
    apt(['update', '-qq'])
    apt(['install', '-y', '-qq', pkg])
  }
  if (!present()) throw new Error(`installed ${pkg}, but it is still not usable`)
}
