// The servers the http suite compares. Each peer first probes the machine (is its runtime,
// package or binary here?) and, if it can run, says how to start it on a given port. A peer
// that cannot run is skipped with the probe's reason; it never fails the benchmark.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { capture } from '../lib/children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR, REPO_DIR } from '../lib/paths.ts'
import { findOnPath, isExecutable } from '../lib/which.ts'

export interface Launch {
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
  /** Removes whatever was made for this launch; called once the server has stopped. */
  readonly cleanup?: () => void
}

export type Probe =
  | { readonly ok: true, readonly version: string, readonly launch: (port: number) => Launch }
  | { readonly ok: false, readonly reason: string }

export interface Peer {
  readonly name: string
  /** Whether it needs bench/node_modules, which the harness then installs if missing. */
  readonly usesBenchPackages: boolean
  probe (): Promise<Probe>
}

const PEERS_DIR = join(BENCH_DIR, 'peers')

function packageVersion (name: string): string | undefined {
  const manifest = join(BENCH_MODULES_DIR, name, 'package.json')
  if (!existsSync(manifest)) return undefined
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

function missingPackage (name: string): Probe {
  return { ok: false, reason: `npm package ${name} is not installed in bench/node_modules (run: npm ci --prefix bench)` }
}

const petrel: Peer = {
  name: 'petrel',
  usesBenchPackages: false,
  async probe () {
    const cli = join(REPO_DIR, 'bin', 'petrel.js')
    if (!existsSync(cli)) return { ok: false, reason: 'bin/petrel.js not found (Petrel\'s server is not there yet)' }
    const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }
    return {
      ok: true,
      version: `petrel ${version} on node ${process.version}`,
      launch: (port) => ({
        command: process.execPath,
        args: [cli, 'serve', '--host', '127.0.0.1', '--port', String(port)],
        cwd: REPO_DIR
      })
    }
  }
}

const nodeHttp: Peer = {
  name: 'node-http',
  usesBenchPackages: false,
  async probe () {
    return {
      ok: true,
      version: `node:http on node ${process.version}`,
      launch: (port) => ({ command: process.execPath, args: [join(PEERS_DIR, 'node-http.ts'), String(port)], cwd: BENCH_DIR })
    }
  }
}

const fastify: Peer = {
  name: 'fastify',
  usesBenchPackages: true,
  async probe () {
    const version = packageVersion('fastify')
    if (version === undefined) return missingPackage('fastify')
    return {
      ok: true,
      version: `fastify ${version} on node ${process.version}`,
      launch: (port) => ({ command: process.execPath, args: [join(PEERS_DIR, 'fastify.ts'), String(port)], cwd: BENCH_DIR })
    }
  }
}

/** The machine's own Node 20 (uWS's binaries exist only for its ABI), never npm's pinned Node 26. */
async function findNode20 (): Promise<string | undefined> {
  const candidates = [
    ...findOnPath('node', (dir) => dir.includes('node_modules')),
    '/usr/local/bin/node',
    '/usr/bin/node'
  ]
  for (const candidate of candidates) {
    if (!isExecutable(candidate)) continue
    const { output } = await capture(candidate, ['--version'])
    if (output.startsWith('v20.')) return candidate
  }
  return undefined
}

const uws: Peer = {
  name: 'uws',
  usesBenchPackages: true,
  async probe () {
    const packageName = '@trufflesuite/uws-js-unofficial'
    const version = packageVersion(packageName)
    if (version === undefined) return missingPackage(packageName)
    const node20 = await findNode20()
    if (node20 === undefined) return { ok: false, reason: 'no Node v20 found on PATH (uWebSockets.js binaries need its ABI)' }
    const { output: node20Version } = await capture(node20, ['--version'])
    return {
      ok: true,
      version: `uWebSockets.js ${version} on node ${node20Version}`,
      launch: (port) => ({ command: node20, args: [join(PEERS_DIR, 'uws.cjs'), String(port)], cwd: BENCH_DIR })
    }
  }
}

const bun: Peer = {
  name: 'bun',
  usesBenchPackages: true,
  async probe () {
    if (packageVersion('bun') === undefined) return missingPackage('bun')
    // bun's postinstall moves the platform binary over bin/bun.exe; if install scripts did not
    // run, bin/bun.exe is a placeholder and the binary is still in the platform package.
    const candidates = [
      join(BENCH_MODULES_DIR, 'bun', 'bin', 'bun.exe'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-x64', 'bin', 'bun'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-x64-baseline', 'bin', 'bun'),
      join(BENCH_MODULES_DIR, '@oven', 'bun-linux-aarch64', 'bin', 'bun')
    ]
    for (const binary of candidates) {
      if (!isExecutable(binary)) continue
      const { code, output } = await capture(binary, ['--version'])
      if (code !== '0') continue
      return {
        ok: true,
        version: `bun ${output}`,
        launch: (port) => ({ command: binary, args: [join(PEERS_DIR, 'bun.ts'), String(port)], cwd: BENCH_DIR })
      }
    }
    return { ok: false, reason: 'the npm package bun is installed but none of its binaries runs on this machine' }
  }
}

const nginx: Peer = {
  name: 'nginx',
  usesBenchPackages: false,
  async probe () {
    // /usr/sbin is not on every user's PATH.
    const binary = [...findOnPath('nginx'), '/usr/sbin/nginx'].find(isExecutable)
    if (binary === undefined) return { ok: false, reason: 'nginx not found (apt-get install nginx-light)' }
    const { output } = await capture(binary, ['-v'])
    const template = readFileSync(join(PEERS_DIR, 'nginx.conf'), 'utf8')
    return {
      ok: true,
      version: output.replace(/^nginx version: /, ''),
      launch: (port) => {
        const runDir = mkdtempSync(join(tmpdir(), 'petrel-bench-nginx-'))
        const config = template.replaceAll('{{PORT}}', String(port)).replaceAll('{{RUN_DIR}}', runDir)
        writeFileSync(join(runDir, 'nginx.conf'), config)
        return {
          command: binary,
          args: ['-p', runDir, '-c', join(runDir, 'nginx.conf'), '-e', join(runDir, 'error.log')],
          cwd: runDir,
          cleanup: () => rmSync(runDir, { recursive: true, force: true })
        }
      }
    }
  }
}

/** In table order: Petrel first, then from the same runtime outwards to native servers. */
export const PEERS: readonly Peer[] = [petrel, nodeHttp, fastify, uws, bun, nginx]
export const PEER_NAMES: readonly string[] = PEERS.map((peer) => peer.name)
