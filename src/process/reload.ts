// What a reload (SIGHUP) does with a new configuration, the same for a master and for a single
// process: everything is applied by building new servers from it, except two things that are
// named in a log line instead of being dropped without a word.
//
// - The listening address (host, port) moves: the caller listens on the new address first —
//   and refuses the reload with a log line if it cannot — then closes the old one once the
//   servers on it have finished their connections.
// - The admin listener stays where it was started (see docs/monitoring.md): it keeps the
//   figures of processes that come and go, so moving it takes a restart.

import type { AdminSettings } from '../monitor/admin.ts'
import type { ErrorCode } from '../core/errors.ts'

const RELOAD_REFUSED: ErrorCode = 'PETREL_ERR_CONFIG_RELOAD'

/**
 * The line of a refused reload, the same for a master and a single process: what keeps running,
 * why the reload was refused, and its code from the error table.
 */
export function refusedReloadLine(keeps: string, why: string): string {
  return `reload refused, ${keeps}: ${why} [${RELOAD_REFUSED}]`
}

/**
 * What a reload and the master read of a program's options (`petrel serve`'s ServeOptions has
 * them): where it listens, its admin listener, log files the master prepares, its shutdown timeout.
 */
export interface ProgramOptions {
  host: string
  port: number
  admin?: AdminSettings
  logs?: { accessLog?: string; errorLog?: string }
  timeouts?: { shutdownMs?: number }
  limits?: { maxConnections?: number }
  /** Present when the workers serve HTTPS (only its presence matters here: the URL in log lines). */
  tls?: object
}

export interface ReloadPlan<Options extends ProgramOptions> {
  /** The options to serve with from now on. */
  options: Options
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
export async function planReload<Options extends ProgramOptions>(
  load: () => Promise<Options>,
  running: Options,
  configured: { host: string; port: number },
  log: (line: string) => void,
  refuse: (why: string) => void,
): Promise<ReloadPlan<Options> | null> {
  let next: Options
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
