// A test server: started on port 0 with the test's routes, stopped after the test together with
// every raw client made through it.

import type { TestContext } from 'node:test'
import { createServer, type ServerOptions, type HttpServer } from '../../src/index.ts'
import { RawClient } from './tcp.ts'

export async function serve(t: TestContext, options: ServerOptions, setup: (s: HttpServer) => void) {
  const errors: Error[] = []
  const clients: RawClient[] = []
  const server = createServer({ onError: (err) => errors.push(err), ...options, timeouts: { shutdownMs: 1000, ...options.timeouts } })
  setup(server)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })
  const connect = async (opts: { paused?: boolean } = {}): Promise<RawClient> => {
    const c = await RawClient.connect(port, opts)
    clients.push(c)
    return c
  }
  return { server, port, errors, connect }
}
