// The servers the h2 suite compares, all with the same certificate and the same directory:
// Petrel (`petrel serve`, which speaks HTTP/2 by default: ALPN h2 with --tls-cert/--tls-key,
// prior knowledge on cleartext; ROOT for the file), the h2-floor peer (the least of HTTP/2 on
// Node's sockets: the floor under any server there), node:http2 (core API), nginx (`listen …
// ssl http2` / `listen … http2`), and Petrel's own HTTP/1.1 as a reference row (the same `petrel
// serve`, spoken to with h2load --h1, see below). A peer that cannot run is skipped with the
// probe's reason.

import { join } from 'node:path'
import { BENCH_DIR } from '../lib/paths.ts'
import { peerFile, petrelPeer, probeNginx, type Peer } from '../lib/peers.ts'
import type { BenchCertificate } from '../tls/certificate.ts'
import type { H2Protocol } from './h2load.ts'
import type { H2Launch } from './measure.ts'
import type { H2Variant } from './scenarios.ts'

const PEERS_DIR = join(BENCH_DIR, 'peers')

/** In table order: Petrel, the floor under it, Node's own server, nginx, then Petrel on HTTP/1.1. */
export const H2_PEER_NAMES = ['petrel', 'h2-floor', 'node-http2', 'nginx', 'petrel-h1'] as const
export type H2PeerName = (typeof H2_PEER_NAMES)[number]

/** `peer` under another name, its launches marked with the protocol h2load speaks to them. */
function speaking(peer: Peer, name: string, protocol: H2Protocol): Peer {
  return {
    name,
    benchPackages: peer.benchPackages,
    probe: async () => {
      const probe = await peer.probe()
      if (!probe.ok) return probe
      return { ...probe, launch: (port): H2Launch => ({ ...probe.launch(port), protocol }) }
    },
  }
}

/**
 * The peers for one kind of scenario: /plaintext over TLS (`tls`) or on cleartext (`clear`), or
 * `root`'s files over TLS (`static`: Petrel then runs `serve ROOT`, which has no /plaintext
 * route; the floor answers every request with `file`'s bytes, as it cannot tell paths apart).
 *
 * The reference row, petrel-h1, is the same `petrel serve` as the petrel row spoken to on
 * HTTP/1.1 (ALPN http/1.1 over TLS; a cleartext connection whose first bytes are not the preface
 * stays HTTP/1.1) by the same h2load with --h1, where -m is the number of requests pipelined per
 * connection: the same client, connections and requests in flight as the HTTP/2 rows, so it shows
 * what the same load costs Petrel on HTTP/1.1. (wrk, which the other suites use, would be another
 * client at another cost of its own on the generator's core, and its pipelining script sends
 * batches rather than keeping -m in flight.)
 */
export function h2Peers(certificate: BenchCertificate, root: string, file: string, variant: H2Variant): Peer[] {
  const secure = variant !== 'clear'
  const files = variant === 'static'
  const tlsArgs = secure ? ['--tls-cert', certificate.cert, '--tls-key', certificate.key] : []
  const rootArgs = files ? [root] : []
  const builtin = (name: string, script: string, args: string[], what: string): Peer =>
    speaking(
      { name, benchPackages: [], probe: async () => ({ ok: true, version: `${what} on node ${process.version}`, launch: peerFile(script, args) }) },
      name,
      'h2',
    )
  const peers: Peer[] = [
    speaking(petrelPeer([...rootArgs, ...tlsArgs]), 'petrel', 'h2'),
    builtin('h2-floor', 'h2-floor.ts', [...tlsArgs, ...(files ? ['--file', file] : [])], 'node:net and node:tls'),
    builtin('node-http2', 'node-http2.ts', [root, ...(secure ? [certificate.cert, certificate.key] : [])], 'node:http2'),
    speaking(
      {
        name: 'nginx',
        benchPackages: [],
        probe: () =>
          probeNginx(join(PEERS_DIR, 'h2-nginx.conf'), { LISTEN: secure ? 'ssl http2' : 'http2', CERT: certificate.cert, KEY: certificate.key, ROOT: root }),
      },
      'nginx',
      'h2',
    ),
    speaking(petrelPeer([...rootArgs, ...tlsArgs]), 'petrel-h1', 'http/1.1'),
  ]
  return peers
}
