// The session ticket secret of `petrel serve`: one ratchet per process that parses the flags
// (a master, or a single process), from which each server it starts — each worker, each
// configuration a reload brings — gets the current period's secret. Servers started at
// different times thus derive the same key at the same moment, and sessions resume across
// workers and reloads; the master keeps only the current period's secret, so reading its
// memory does not give the keys of periods gone by (docs/https.md, "Session resumption").

import { TicketRatchet, TLS_DEFAULTS, newTicketSecret } from '../../server/tls.ts'
import type { ServeOptions } from './serve.ts'

let ratchet: TicketRatchet | null = null

/**
 * `options` with the current ticket secret and its period, for a server about to start; the
 * options themselves are left as they are, so the copy a master keeps holds no secret.
 * Options that carry a secret already (a worker's, from its master) are returned unchanged.
 */
export function withTicketSecret(options: ServeOptions): ServeOptions {
  const tls = options.tls
  if (tls === undefined || tls.ticketSecret !== undefined) return options
  const rotationMs = tls.ticketRotationMs ?? TLS_DEFAULTS.ticketRotationMs
  // A reload that changes the rotation changes what a period is: a new ratchet.
  if (ratchet === null || ratchet.rotationMs !== rotationMs) ratchet = new TicketRatchet(newTicketSecret(), rotationMs)
  const { secret, period } = ratchet.current()
  return { ...options, tls: { ...tls, ticketSecret: secret, ticketSecretPeriod: period } }
}
