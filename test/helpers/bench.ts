// What the tests of `petrel bench` share: a short run's options, and the command run as a user
// runs it (stdout, stderr and exit code).

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { BenchOptions } from '../../src/apps/bench/plan.ts'

/** A short closed-model run with two connections; each test overrides what it is about. */
export const BENCH_OPTIONS: BenchOptions = {
  url: '',
  connections: 2,
  threads: 1,
  durationMs: 700,
  warmupMs: 0,
  pipelining: 1,
  rate: 0,
  timeoutMs: 10_000,
  method: 'GET',
  headers: [],
  body: null,
  keepAlive: true,
}

/** `petrel bench ARGS` from bin/petrel.js, to its exit. */
export async function benchCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/petrel.js', 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c) => (stdout += c))
  child.stderr.on('data', (c) => (stderr += c))
  const [code] = await once(child, 'exit')
  return { code, stdout, stderr }
}
