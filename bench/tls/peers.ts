// The servers the tls suite compares, all with the same certificate and the same directory:
// Petrel (`petrel serve --tls-cert C --tls-key K`, with ROOT for the file scenario), nginx
// (ssl, one worker, session cache and tickets), node:https, and the tls-floor peer (a bare
// node:tls server answering each request head with a constant: the floor for any server on
// Node's TLS sockets). A peer that cannot run is skipped with the probe's reason.

import { join } from 'node:path'
import { BENCH_DIR } from '../lib/paths.ts'
import { peerFile, petrelPeer, probeNginx, type Peer } from '../lib/peers.ts'
import type { BenchCertificate } from './certificate.ts'

const PEERS_DIR = join(BENCH_DIR, 'peers')

/** In table order: Petrel, the floor under it, Node's own server, nginx. */
export const TLS_PEER_NAMES = ['petrel', 'tls-floor', 'node-https', 'nginx'] as const
export type TlsPeerName = (typeof TLS_PEER_NAMES)[number]

/**
 * The peers for one kind of scenario: `withRoot` serves `root`'s files (Petrel then runs
 * `serve ROOT`, which has no /plaintext route); without it Petrel runs `serve` with its built-in
 * /plaintext. The other peers answer both from one launch. `file` is the static scenario's file,
 * which the floor answers from memory.
 */
export function tlsPeers(certificate: BenchCertificate, root: string, file: string, withRoot: boolean): Peer[] {
  const tlsArgs = ['--tls-cert', certificate.cert, '--tls-key', certificate.key]
  const petrel = petrelPeer(withRoot ? [root, ...tlsArgs] : tlsArgs)
  const builtin = (name: string, script: string, args: string[], what: string): Peer => ({
    name,
    benchPackages: [],
    probe: async () => ({ ok: true, version: `${what} on node ${process.version}`, launch: peerFile(script, args) }),
  })
  const peers: Peer[] = [
    petrel,
    builtin('tls-floor', 'tls-floor.ts', [certificate.cert, certificate.key, file], 'node:tls'),
    builtin('node-https', 'node-https.ts', [certificate.cert, certificate.key, root], 'node:https'),
    {
      name: 'nginx',
      benchPackages: [],
      probe: () => probeNginx(join(PEERS_DIR, 'tls-nginx.conf'), { CERT: certificate.cert, KEY: certificate.key, ROOT: root }),
    },
  ]
  return peers
}
