// A reverse proxy on a cleartext server of the test's own, so that the test reads the proxy's log
// lines (ProxyOptions.log) instead of a process's stderr.

import type { TestContext } from 'node:test'
import { createServer } from '../../src/index.ts'
import { ReverseProxy } from '../../src/apps/proxy/reverse.ts'
import type { ProxyOptions } from '../../src/apps/proxy/settings.ts'

/** Requests under "/" go to `upstreams`; `lines` collects what the proxy logs. Closed after the test. */
export async function proxyWithLog(t: TestContext, upstreams: string[], options: ProxyOptions = {}): Promise<{ base: string; lines: string[] }> {
  const lines: string[] = []
  const reverse = new ReverseProxy([{ prefix: '/', upstreams }], { ...options, log: (line) => lines.push(line) })
  const server = createServer()
  server.mount('/', (req, res) => reverse.handle(reverse.groups[0]!, req, res))
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    reverse.close()
    await server.close()
  })
  return { base: `http://127.0.0.1:${port}`, lines }
}
