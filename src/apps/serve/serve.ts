// `petrel serve`: the web server program. Without a ROOT it serves the bundled demo site and
// the two benchmark routes every HTTP server is measured on.

import { fileURLToPath } from 'node:url'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { createServer, type HttpServer } from '../../server/server.ts'
import type { Limits, Timeouts } from '../../core/limits.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { staticFiles, type StaticOptions } from './static.ts'

export const DEMO_SITE = fileURLToPath(new URL('../../../site/', import.meta.url))

export interface ServeOptions {
  /** Directory to serve; null serves the bundled demo site plus /plaintext and /json. */
  root: string | null
  host: string
  port: number
  limits?: Partial<Limits>
  timeouts?: Partial<Timeouts>
  /** Static file behaviour: listing, symlinks, Cache-Control, the open-file cache. */
  files?: Omit<StaticOptions, 'root'>
}

export interface Serving {
  server: HttpServer
  address: AddressInfo
  root: string
}

const HELLO = 'Hello, World!'

function plaintext(_req: Request, res: Response): void {
  res.setHeader('Content-Type', 'text/plain')
  res.end(HELLO)
}

function json(_req: Request, res: Response): void {
  res.json({ message: HELLO })
}

/** How a worker process listens: its own reusePort socket, or a socket shared by the master. */
export interface ListenMode {
  reusePort?: boolean
  shared?: NetServer
}

export async function startServe(options: ServeOptions, mode: ListenMode = {}): Promise<Serving> {
  const server = createServer({ limits: options.limits, timeouts: options.timeouts })
  const root = options.root ?? DEMO_SITE
  if (options.root === null) {
    server.get('/plaintext', plaintext)
    server.get('/json', json)
  }
  server.fallback(staticFiles({ ...options.files, root }))
  const address = await server.listen({ host: options.host, port: options.port, reusePort: mode.reusePort, shared: mode.shared })
  return { server, address, root }
}

/**
 * Stop gracefully on SIGTERM or SIGINT: stop accepting, finish what is in flight, exit 0.
 * A second signal exits at once. Node delivers signals on the event loop, so acting here is
 * what nginx's "the handler sets a flag, the loop acts" achieves in C.
 */
export function stopOnSignals(server: HttpServer, log: (line: string) => void): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log(`petrel: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    log(`petrel: ${signal}, finishing in-flight requests (up to ${server.timeouts.shutdownMs} ms)`)
    server.close().then(() => process.exit(0))
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
