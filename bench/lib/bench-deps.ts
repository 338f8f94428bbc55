// The peer servers' npm packages live in bench/package.json, apart from Petrel's own, so the
// product never depends on them. They are installed on first use from the committed lock.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startTracked } from './children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR } from './paths.ts'

/**
 * Runs `npm ci` in bench/ if bench/node_modules or one of `packages` is missing there (a
 * checkout from before a peer was added); never fails the run, only reports.
 */
export async function ensureBenchDependencies(packages: readonly string[] = []): Promise<void> {
  const missing = packages.filter((name) => !existsSync(join(BENCH_MODULES_DIR, name, 'package.json')))
  if (existsSync(BENCH_MODULES_DIR) && missing.length === 0) return
  const what = existsSync(BENCH_MODULES_DIR) ? `${missing.join(', ')} missing from bench/node_modules` : 'bench/node_modules is missing'
  console.log(`${what}: installing the peer servers with \`npm ci\` in bench/ …`)
  const npm = startTracked('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH_DIR }, true)
  const exitCode = await npm.exited
  if (exitCode !== '0') {
    console.log(`npm ci in bench/ failed (exit ${exitCode}); peers whose packages are missing will be skipped.`)
  }
}
