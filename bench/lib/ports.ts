import { createServer } from 'node:net'

/**
 * Asks the kernel for a free loopback port by binding port 0, then releases it for the server
 * about to start. Another process could take it in between; on a bench machine that is rare,
 * and the readiness check would then fail loudly rather than measure the wrong server.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}
