// server/tls.ts on demand: a server without TLS options never loads it (test/memory.test.ts).

import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { moduleUrl } from '../core/module-url.ts'

/**
 * server/tls.ts, loaded the first time a server has TLS options: require() loads an ES module
 * without top-level await synchronously, so createServer() stays synchronous, and a server
 * without TLS never holds the module (test/memory.test.ts).
 */
export function tlsModule(): typeof import('./tls.ts') {
  // moduleUrl: the built package's sibling is tls.js (tsc rewrites import specifiers, not this string).
  loadedTls ??= createRequire(import.meta.url)(fileURLToPath(moduleUrl('./tls.ts', import.meta.url))) as typeof import('./tls.ts')
  return loadedTls
}
let loadedTls: typeof import('./tls.ts') | null = null
