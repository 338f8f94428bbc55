// Starting `petrel inetd`'s services for a test: each listens at a port made of an offset (for a
// built-in, its standard port + the offset), so an offset is drawn at random until every one of
// those ports is free.

import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'
import { builtinServices, Inetd, type InetdOptions } from '../../src/apps/inetd/inetd.ts'
import type { ServiceConfig } from '../../src/apps/inetd/config.ts'

/** The built-ins the options name, or the services `servicesAt(offset)` gives. */
export async function startOnFreeOffset(
  options: Omit<InetdOptions, 'portOffset'> = {},
  servicesAt?: (offset: number) => ServiceConfig[],
): Promise<{ inetd: Inetd; offset: number }> {
  for (let attempt = 0; ; attempt++) {
    // Below the ephemeral range (32768 and up): a client's port elsewhere on the machine cannot take it.
    const offset = 10_000 + Math.floor(Math.random() * 20_000)
    const services = servicesAt?.(offset) ?? builtinServices({ ...options, portOffset: offset })
    try {
      return { inetd: await Inetd.start(services, options), offset }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 20) throw err
    }
  }
}

/** `petrel inetd ARGS` as a child process, its stderr gathered in log(). */
export function spawnInetd(args: string[]): { child: ChildProcessByStdio<null, null, Readable>; log: () => string } {
  const child = spawn(process.execPath, ['bin/petrel.js', 'inetd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => (log += text))
  return { child, log: () => log }
}
