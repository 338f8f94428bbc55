// Readiness for a master with N workers. One answer to GET only proves that one worker listens:
// workers start one after another, and connections wrk opens before the last one listens would
// all go to the others for the whole run. So the server counts as ready once the kernel shows
// as many listening sockets on its port as it will have workers (reusePort: one per worker).

import { readFileSync } from 'node:fs'

const LISTEN_STATE = '0A'

/** Listening TCP sockets on `port` (any address), from /proc/net/tcp and tcp6; null without /proc. */
export function listeningSockets(port: number): number | null {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0')
  let count = 0
  let readAny = false
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    readAny = true
    // "  sl  local_address rem_address   st ...": local_address is ADDR:PORT in hex.
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields[3] === LISTEN_STATE && fields[1]?.endsWith(`:${portHex}`) === true) count++
    }
  }
  return readAny ? count : null
}

/** Why the server on `port` is not fully up yet; undefined once `expected` sockets listen (or /proc cannot tell). */
export function listenersProblem(port: number, expected: number): string | undefined {
  const count = listeningSockets(port)
  if (count === null || count >= expected) return undefined
  return `${count} of ${expected} listening sockets on port ${port}`
}
