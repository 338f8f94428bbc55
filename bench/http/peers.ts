// The servers the http suite compares. Each peer first probes the machine (is its runtime,
// package or binary here?) and, if it can run, says how to start it on a given port. A peer
// that cannot run is skipped with the probe's reason; it never fails the benchmark.

import { join } from 'node:path'
import { capture } from '../lib/children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR } from '../lib/paths.ts'
import { missingPackage, packageVersion, peerFile, petrelPeer, probeNginx, type Peer } from '../lib/peers.ts'
import { findOnPath, isExecutable } from '../lib/which.ts'

export type { Launch, Peer, Probe } from '../lib/peers.ts'

const PEERS_DIR = join(BENCH_DIR, 'peers')

const petrel = petrelPeer([])
/** Petrel with metrics counted and the admin listener on (issue: ≥ 0.95× of metrics off). */
const petrelMetrics: Peer = { ...petrelPeer(['--admin', '127.0.0.1:0']), name: 'petrel-metrics' }

/** A peer with nothing to install: bench/peers/FILE on the harness's own Node. */
function builtinPeer(name: string, file: string, what: string): Peer {
  return {
    name,
    benchPackages: [],
    async probe() {
      return { ok: true, version: `${what} on node ${process.version}`, launch: peerFile(file) }
    },
  }
}

const nodeHttp = builtinPeer('node-http', 'node-http.ts', 'node:http')
/** Not an HTTP server: a fixed answer per request head on a bare net.Socket, the floor for any server on Node (bench/peers/net-floor.ts). */
const netFloor = builtinPeer('net-floor', 'net-floor.ts', 'node:net')

const fastify: Peer = {
  name: 'fastify',
  benchPackages: ['fastify'],
  async probe() {
    const version = packageVersion('fastify')
    if (version === undefined) return missingPackage('fastify')
    return {
      ok: true,
      version: `fastify ${version} on node ${process.version}`,
      launch: peerFile('fastify.ts'),
    }
  },
}

/** The machine's own Node 20 (uWS's binaries exist only for its ABI), never npm's pinned Node 26. */
async function findNode20(): Promise<string | undefined> {
  const candidates = [...findOnPath('node', (dir) => dir.includes('node_modules')), '/usr/local/bin/node', '/usr/bin/node']
  for (const candidate of candidates) {
    if (!isExecutable(candidate)) continue
    const { output } = await capture(candidate, ['--version'])
    if (output.startsWith('v20.')) return candidate
  }
  return undefined
}

const uws: Peer = {
  name: 'uws',
  benchPackages: ['@trufflesuite/uws-js-unofficial'],
  async probe() {
    const packageName = '@trufflesuite/uws-js-unofficial'
    const version = packageVersion(packageName)
    if (version === undefined) return missingPackage(packageName)
    const node20 = await findNode20()
    if (node20 === undefined) return { ok: false, reason: 'no Node v20 found on PATH (uWebSockets.js binaries need its ABI)' }
    const { output: node20Version } = await capture(node20, ['--version'])
    return {
      ok: true,
      version: `uWebSockets.js ${version} on node ${node20Version}`,
      launch: peerFile('uws.cjs', [], node20),
    }
  },
}

const bun: Peer = {
  name: 'bun',
  benchPackages: ['bun'],
  async probe() {
    if (packageVersion('bun') === undefined) return missingPackage('bun')
    // bun's postinstall moves the platform binary over bin/bun.exe; if install scripts did not
    // run, bin/bun.exe is a placeholder and the binary is still in the platform package.
    const candidates = [
      join(BENCH_MODULES_DIR, 'bun', 'bin', 'bun.exe'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-x64', 'bin', 'bun'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-x64-baseline', 'bin', 'bun'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-aarch64', 'bin', 'bun'),
    ]
    for (const binary of candidates) {
      if (!isExecutable(binary)) continue
      const { code, output } = await capture(binary, ['--version'])
      if (code !== '0') continue
      return {
        ok: true,
        version: `bun ${output}`,
        launch: peerFile('bun.ts', [], binary),
      }
    }
    return { ok: false, reason: 'the npm package bun is installed but none of its binaries runs on this machine' }
  },
}

const nginx: Peer = {
  name: 'nginx',
  benchPackages: [],
  probe: () => probeNginx(join(PEERS_DIR, 'nginx.conf')),
}

/** In table order: Petrel first, then from the same runtime outwards to native servers. */
export const PEERS: readonly Peer[] = [petrel, petrelMetrics, nodeHttp, netFloor, fastify, uws, bun, nginx]
export const PEER_NAMES: readonly string[] = PEERS.map((peer) => peer.name)
