// The servers the static suite compares, all serving the same directory: Petrel's `serve ROOT`,
// sirv and send (the two common Node.js static-file servers, each on a bare node:http server)
// and nginx. A peer that cannot run is skipped with the probe's reason.

import { join } from 'node:path'
import { BENCH_DIR } from '../lib/paths.ts'
import { missingPackage, packageVersion, peerFile, probeNginx, type Peer, petrelPeer } from '../lib/peers.ts'

const PEERS_DIR = join(BENCH_DIR, 'peers')

/** In table order: Petrel, the Node.js servers, nginx. */
export const STATIC_PEER_NAMES: readonly string[] = ['petrel', 'sirv', 'send', 'nginx']

/** A peer that runs bench/peers/<file> on the harness's Node with PORT ROOT. */
function nodePeer(name: string, packageName: string, file: string, root: string): Peer {
  return {
    name,
    benchPackages: [packageName],
    async probe() {
      const version = packageVersion(packageName)
      if (version === undefined) return missingPackage(packageName)
      return {
        ok: true,
        version: `${packageName} ${version} on node:http, node ${process.version}`,
        launch: peerFile(file, [root]),
      }
    },
  }
}

export function staticPeers(root: string): Peer[] {
  // --compress as nginx has gzip on: both compress the HTML page, neither touches the .bin files.
  const petrel = petrelPeer([root, '--compress'])
  const nginx: Peer = {
    name: 'nginx',
    benchPackages: [],
    probe: () => probeNginx(join(PEERS_DIR, 'static-nginx.conf'), { ROOT: root }),
  }
  const peers = [petrel, nodePeer('sirv', 'sirv', 'static-sirv.ts', root), nodePeer('send', 'send', 'static-send.ts', root), nginx]
  return STATIC_PEER_NAMES.map((name) => peers.find((peer) => peer.name === name) as Peer)
}
