// The servers the ws suite compares, each serving /echo, /sub and /pub (bench/peers/ws-*). A
// peer that cannot run here is skipped with its probe's reason. uWebSockets.js and Bun run on
// the runtimes the http suite finds for them (the machine's Node 20, the bun binary from
// bench/node_modules): their probes are the http suite's, with the ws file put in.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PEERS as HTTP_PEERS } from '../http/peers.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import { missingPackage, packageVersion, peerFile, type Peer, type Probe } from '../lib/peers.ts'

const petrel: Peer = {
  name: 'petrel',
  benchPackages: [],
  async probe() {
    const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }
    return { ok: true, version: `petrel ${version} (server.websocket, from src/) on node ${process.version}`, launch: peerFile('ws-petrel.ts') }
  },
}

const wsPackage: Peer = {
  name: 'ws',
  benchPackages: ['ws'],
  async probe() {
    const version = packageVersion('ws')
    if (version === undefined) return missingPackage('ws')
    const bufferutil = packageVersion('bufferutil')
    const extra = bufferutil === undefined ? '' : ` with bufferutil ${bufferutil}`
    return { ok: true, version: `ws ${version}${extra} on node:http, node ${process.version}`, launch: peerFile('ws-node.ts') }
  },
}

/** Not a WebSocket server: the least a server on node:net does per message (bench/peers/ws-floor.ts). */
const floor: Peer = {
  name: 'ws-floor',
  benchPackages: [],
  async probe() {
    return { ok: true, version: `node:net on node ${process.version}`, launch: peerFile('ws-floor.ts') }
  },
}

/** The http suite's peer `name`, probed as it is there, started with bench/peers/`file` instead of its own. */
function sameRuntimeAs(name: string, file: string): Peer {
  const base = HTTP_PEERS.find((peer) => peer.name === name)
  if (base === undefined) throw new Error(`no http peer ${name}`)
  return {
    name,
    benchPackages: base.benchPackages,
    async probe(): Promise<Probe> {
      const probe = await base.probe()
      if (!probe.ok) return probe
      return {
        ok: true,
        version: probe.version,
        launch: (port) => ({ ...probe.launch(port), args: [join(BENCH_DIR, 'peers', file), String(port)], cwd: BENCH_DIR }),
      }
    },
  }
}

const uws = sameRuntimeAs('uws', 'ws-uws.cjs')
const bun = sameRuntimeAs('bun', 'ws-bun.ts')

/** In table order: Petrel first, then Node's `ws`, the floor under both, then the native servers. */
export const WS_PEERS: readonly Peer[] = [petrel, wsPackage, floor, uws, bun]
export const WS_PEER_NAMES: readonly string[] = WS_PEERS.map((peer) => peer.name)
