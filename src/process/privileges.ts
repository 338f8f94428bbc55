// Server conventions of the book's chapter 7: who the workers run as, and the limits they run under.

import { readFileSync } from 'node:fs'
import { PetrelError } from '../core/errors.ts'

export interface RunAs {
  user: string
  group?: string
}

/** "NAME" or "NAME:GROUP" from --user. */
export function parseRunAs(value: string): RunAs {
  const [user, group, extra] = value.split(':')
  if (!user || extra !== undefined || group === '')
    throw new PetrelError('PETREL_ERR_CLI_BAD_VALUE', `--user ${JSON.stringify(value)}: expected NAME or NAME:GROUP`)
  return group === undefined ? { user } : { user, group }
}

/**
 * Drop to `runAs` after the listening socket is bound: group first (while still allowed to),
 * then supplementary groups, then the user — the order that leaves no root privilege behind.
 */
export function dropPrivileges(runAs: RunAs): void {
  if (process.getuid === undefined || process.getuid() !== 0) return
  if (runAs.user === 'root' && (runAs.group === undefined || runAs.group === 'root')) return
  const group = runAs.group ?? primaryGroup(runAs.user)
  process.setgid!(group)
  // Supplementary groups of the target user, so root's are not kept (typed loosely in @types/node).
  ;(process as unknown as { initgroups?: (user: string, group: string | number) => void }).initgroups?.(runAs.user, group)
  process.setuid!(runAs.user)
}

export interface UserIds {
  uid: number
  gid: number
}

/** A user's uid and primary gid from /etc/passwd (Node has no getpwnam), or null when there is none. */
export function lookupUser(user: string): UserIds | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':')
      if (fields[0] === user && fields[3] !== undefined) return { uid: Number(fields[2]), gid: Number(fields[3]) }
    }
  } catch {}
  return null
}

/** The user's primary group id; else a group of the same name. */
function primaryGroup(user: string): string | number {
  return lookupUser(user)?.gid ?? user
}

/** The soft limit on open files, from /proc/self/limits (Node has no getrlimit), or null. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    if (soft === undefined) return null
    return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft)
  } catch {
    return null
  }
}

/** One start-up line about the descriptor limit, with a warning when connections could exhaust it. */
export function describeOpenFilesLimit(maxConnections: number): string {
  const limit = openFilesLimit()
  if (limit === null) return 'open-files limit unknown'
  // Each connection is a descriptor; the listener, logs and cached files need some too.
  const needed = maxConnections + 64
  if (limit < needed) {
    return `warning: open-files limit is ${limit}, below --max-connections ${maxConnections} plus headroom; raise it (ulimit -n ${needed}) or lower --max-connections`
  }
  return `open-files limit ${limit === Number.POSITIVE_INFINITY ? 'unlimited' : limit}`
}
