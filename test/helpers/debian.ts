// Real peers from Debian's packages: a test that needs one installs it when it is missing (as
// root, the way CI runs), so nothing has to be set up by hand on a fresh machine.

import { execFileSync } from 'node:child_process'

function installed(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Make `command` available, installing Debian package `pkg` if need be; throws when that fails. */
export function ensureDebianPackage(command: string, pkg: string): void {
  if (installed(command)) return
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
  if (!installed(command)) throw new Error(`installed ${pkg} but ${command} is still not on PATH`)
}
