// Modules a server loads only when its options need them (test/memory.test.ts): server/tls.ts
// for TLS, server/h2-connection.ts (and the HTTP/2 protocol code under it) for HTTP/2,
// server/ws-upgrade.ts for WebSocket.

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

/** server/h2-connection.ts, loaded the first time a server serves HTTP/2 (as tlsModule()). */
export function h2Module(): typeof import('./h2-connection.ts') {
  loadedH2 ??= createRequire(import.meta.url)(fileURLToPath(moduleUrl('./h2-connection.ts', import.meta.url))) as typeof import('./h2-connection.ts')
  return loadedH2
}
let loadedH2: typeof import('./h2-connection.ts') | null = null

/** server/ws-upgrade.ts (and the WebSocket code under it), loaded the first time a server serves WebSocket. */
export function wsModule(): typeof import('./ws-upgrade.ts') {
  loadedWs ??= createRequire(import.meta.url)(fileURLToPath(moduleUrl('./ws-upgrade.ts', import.meta.url))) as typeof import('./ws-upgrade.ts')
  return loadedWs
}
let loadedWs: typeof import('./ws-upgrade.ts') | null = null
