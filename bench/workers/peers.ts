// The workers suite's peers: one Petrel, started three ways. `petrel-1` and `petrel-2` run a
// master that forks 1 or 2 worker processes (each listening with reusePort); `petrel-single`
// is plain `petrel serve`, one process and no master, for reference.

import { petrelPeer, type Peer } from '../lib/peers.ts'

/** A root master refuses to start workers without --user; as root the suite asks for root on purpose. */
function runAsArgs(): string[] {
  return process.getuid?.() === 0 ? ['--user', 'root'] : []
}

function named(name: string, serveArgs: readonly string[]): Peer {
  const base = petrelPeer(serveArgs)
  return {
    ...base,
    name,
    async probe() {
      const probe = await base.probe()
      if (!probe.ok) return probe
      const command = ['petrel serve', ...serveArgs].join(' ')
      return { ...probe, version: `${probe.version}, \`${command}\`` }
    },
  }
}

/** The peer every ratio is taken against. */
export const BASELINE_PEER = 'petrel-1'

/** In table order: the baseline, the one that should scale, then the reference without a master. */
export const WORKER_PEERS: readonly Peer[] = [
  named('petrel-1', ['--workers', '1', ...runAsArgs()]),
  named('petrel-2', ['--workers', '2', ...runAsArgs()]),
  named('petrel-single', []),
]
export const WORKER_PEER_NAMES: readonly string[] = WORKER_PEERS.map((peer) => peer.name)

/**
 * How many sockets a launch will listen on once it is fully up: one per worker (reusePort), or
 * one for plain `petrel serve`. With PETREL_LISTEN_MODE=shared (inherited by the server) the
 * master holds the only listening socket and hands connections over.
 */
export function expectedListeners(args: readonly string[]): number {
  const at = args.indexOf('--workers')
  if (at === -1 || process.env.PETREL_LISTEN_MODE === 'shared') return 1
  return Number(args[at + 1])
}
