// A test server: started on port 0 with the test's routes, stopped after the test together with
// every raw client made through it.
//
// Every error the server reports (a handler that threw or rejected and was answered with a 500, a
// socket error, a failed accept, a handler timeout: everything that reaches ServerOptions.onError)
// is collected, and after the server has closed the test fails if any arrived, with their
// messages. A server error nobody expected is a defect even when the bytes on the wire looked
// right, and a test must not pass over it silently. A test that provokes server errors on purpose
// says so with `expectErrors: true`, and then asserts on `errors` itself.

import type { TestContext } from 'node:test'
import { createServer, type ServerOptions, type HttpServer } from '../../src/index.ts'
import { RawClient } from './tcp.ts'

export interface ServeOptions extends ServerOptions {
  /** The test provokes server errors on purpose and checks `errors` itself; without it any error fails the test. */
  expectErrors?: boolean
}

export async function serve(t: TestContext, options: ServeOptions, setup: (s: HttpServer) => void) {
  const { expectErrors = false, onError, ...serverOptions } = options
  const errors: Error[] = []
  const clients: RawClient[] = []
  const server = createServer({
    ...serverOptions,
    onError: (err, req) => {
      errors.push(err)
      if (onError !== undefined) onError(err, req)
    },
    timeouts: { shutdownMs: 1000, ...serverOptions.timeouts },
  })
  setup(server)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
    if (!expectErrors && errors.length > 0) throw unexpectedServerErrors(errors)
  })
  const connect = async (opts: { paused?: boolean } = {}): Promise<RawClient> => {
    const c = await RawClient.connect(port, opts)
    clients.push(c)
    return c
  }
  return { server, port, errors, connect }
}

/** The failure of a test whose server reported errors it did not expect: each message, and how to opt in. */
export function unexpectedServerErrors(errors: readonly Error[]): Error {
  // The first few are enough to see what went wrong; a flood of the same error says nothing more.
  const shown = errors.slice(0, 10).map((err) => `  ${err.stack ?? err.message}`)
  const more = errors.length > shown.length ? `\n  … and ${errors.length - shown.length} more` : ''
  return new Error(
    `the server reported ${errors.length} error(s) this test did not expect:\n${shown.join('\n')}${more}\n` +
      'If the test provokes them on purpose, pass { expectErrors: true } to serve() and assert on `errors`.',
  )
}
