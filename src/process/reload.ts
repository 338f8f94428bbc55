// What a reload (SIGHUP) does with a new configuration, the same for a master and for a single
// process: everything is applied by building new servers from it, except two things that are
// named in a log line instead of being dropped without a word.
//
// - The listening address (host, port) moves: the caller listens on the new address first —
//   and refuses the reload with a log line if it cannot — then closes the old one once the
//   servers on it have finished their connections.
// - The admin listener stays where it was started (see docs/monitoring.md): it keeps the
//   figures of processes that come and go, so moving it takes a restart.

import type { ServeOptions } from '../apps/serve/serve.ts'

export interface ReloadPlan {
  /** The options to serve with from now on. */
  options: ServeOptions
  /** Whether the listening address changed: a new listener is needed. */
  moved: boolean
  /** The address as the new configuration asks for it (port 0 included). */
  configured: { host: string; port: number }
}

/**
 * Load the new configuration (`load` throws when it is invalid: then `refuse` is told why and
 * the result is null). `configured` is the address as the running configuration asked for it,
 * port 0 included: a configuration that asks for the same is not a move, even when port 0 was
 * resolved to a port.
 */
export async function planReload(
  load: () => Promise<ServeOptions>,
  running: ServeOptions,
  configured: { host: string; port: number },
  log: (line: string) => void,
  refuse: (why: string) => void,
): Promise<ReloadPlan | null> {
  let next: ServeOptions
  try {
    next = await load()
  } catch (err) {
    refuse((err as Error).message)
    return null
  }
  if (JSON.stringify(next.admin) !== JSON.stringify(running.admin)) {
    log('reload cannot move, add or remove the admin listener (--admin); it stays as started, restart the server to change it. Other settings are applied.')
  }
  return {
    options: { ...next, admin: running.admin },
    moved: next.host !== configured.host || next.port !== configured.port,
    configured: { host: next.host, port: next.port },
  }
}
