// The peer servers' npm packages live in bench/package.json, apart from Petrel's own, so the
// product never depends on them. They are installed on first use from the committed lock.

import { existsSync } from 'node:fs'
import { startTracked } from './children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR } from './paths.ts'

/** Runs `npm ci` in bench/ if bench/node_modules is missing; never fails the run, only reports. */
export async function ensureBenchDependencies (): Promise<void> {
  if (existsSync(BENCH_MODULES_DIR)) return
  console.log('bench/node_modules is missing: installing the peer servers with `npm ci` in bench/ …')
  const npm = startTracked('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH_DIR }, true)
  const exitCode = await npm.exited
  if (exitCode !== '0') {
    console.log(`npm ci in bench/ failed (exit ${exitCode}); peers whose packages are missing will be skipped.`)
  }
}
