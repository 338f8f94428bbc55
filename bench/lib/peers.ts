// What every suite's peers have in common: a probe (can this server run here, and which
// version is it?) and, if it can, how to start it on a given port. A peer that cannot run is
// skipped with the probe's reason; it never fails the benchmark.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { capture } from './children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR, REPO_DIR } from './paths.ts'
import { findOnPath, isExecutable } from './which.ts'

export interface Launch {
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
  /** Removes whatever was made for this launch; called once the server has stopped. */
  readonly cleanup?: () => void
}

export type Probe = { readonly ok: true; readonly version: string; readonly launch: (port: number) => Launch } | { readonly ok: false; readonly reason: string }

export interface Peer {
  readonly name: string
  /** npm packages it needs from bench/node_modules, which the harness then installs if missing. */
  readonly benchPackages: readonly string[]
  probe(): Promise<Probe>
}

/** How to start bench/peers/FILE: `command FILE PORT [...args]` (command: the harness's own Node unless given). */
export function peerFile(file: string, args: readonly string[] = [], command: string = process.execPath): (port: number) => Launch {
  const path = join(BENCH_DIR, 'peers', file)
  return (port) => ({ command, args: [path, String(port), ...args], cwd: BENCH_DIR })
}

/** The version of a package installed in bench/node_modules, if it is there. */
export function packageVersion(name: string): string | undefined {
  const manifest = join(BENCH_MODULES_DIR, name, 'package.json')
  if (!existsSync(manifest)) return undefined
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

export function missingPackage(name: string): Probe {
  return { ok: false, reason: `npm package ${name} is not installed in bench/node_modules (run: npm ci --prefix bench)` }
}

/**
 * nginx from a config template: every `{{KEY}}` is replaced (plus `{{PORT}}` and `{{RUN_DIR}}`,
 * a fresh temp dir per launch for its pid, logs and temp paths, removed after the run).
 */
export async function probeNginx(templatePath: string, values: Readonly<Record<string, string>> = {}): Promise<Probe> {
  // /usr/sbin is not on every user's PATH.
  const binary = [...findOnPath('nginx'), '/usr/sbin/nginx'].find(isExecutable)
  if (binary === undefined) return { ok: false, reason: 'nginx not found (apt-get install nginx-light)' }
  const { output } = await capture(binary, ['-v'])
  const template = readFileSync(templatePath, 'utf8')
  return {
    ok: true,
    version: output.replace(/^nginx version: /, ''),
    launch: (port) => {
      const runDir = mkdtempSync(join(tmpdir(), 'petrel-bench-nginx-'))
      let config = template.replaceAll('{{PORT}}', String(port)).replaceAll('{{RUN_DIR}}', runDir)
      for (const [key, value] of Object.entries(values)) config = config.replaceAll(`{{${key}}}`, value)
      writeFileSync(join(runDir, 'nginx.conf'), config)
      return {
        command: binary,
        args: ['-p', runDir, '-c', join(runDir, 'nginx.conf'), '-e', join(runDir, 'error.log')],
        cwd: runDir,
        cleanup: () => rmSync(runDir, { recursive: true, force: true }),
      }
    },
  }
}

/** Petrel itself, started as `petrel serve [...serveArgs] --host 127.0.0.1 --port P` from the repository. */
export function petrelPeer(serveArgs: readonly string[]): Peer {
  return {
    name: 'petrel',
    benchPackages: [],
    async probe() {
      const cli = join(REPO_DIR, 'bin', 'petrel.js')
      if (!existsSync(cli)) return { ok: false, reason: 'bin/petrel.js not found' }
      const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }
      return {
        ok: true,
        version: `petrel ${version} on node ${process.version}`,
        launch: (port) => ({
          command: process.execPath,
          args: [cli, 'serve', ...serveArgs, '--host', '127.0.0.1', '--port', String(port)],
          cwd: REPO_DIR,
        }),
      }
    },
  }
}
