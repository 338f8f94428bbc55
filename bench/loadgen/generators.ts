// The load generators the loadgen suite compares: petrel bench, wrk and autocannon. Each runs
// pinned to one CPU against the same server and reports what it counted itself; the harness adds
// the generator's own CPU time, read from this process's reaped-children times after it exits.

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTracked } from '../lib/children.ts'
import { BENCH_DIR, BENCH_MODULES_DIR, REPO_DIR } from '../lib/paths.ts'
import { reapedChildrenCpuTicks } from '../lib/proc-cpu.ts'
import { runWrk } from '../lib/wrk.ts'

export interface GeneratorLoad {
  readonly url: string
  readonly cpu: number
  readonly connections: number
  readonly durationSec: number
  /** Requests per pipelined batch; 1 for none. */
  readonly depth: number
  /** Requests per second for the whole run (open model); 0 for as fast as possible. */
  readonly rate: number
}

export interface GeneratorMeasurement {
  readonly requests: number
  readonly durationSec: number
  readonly requestsPerSec: number
  /** The generator's CPU time (user + system) per request it completed. */
  readonly cpuUsPerRequest: number
  /** null where the tool's latency does not mean per-request latency (wrk pipelined). */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly errors: number
  /** How the tool ran when it could not run the load as asked (wrk has no fixed rate). */
  readonly note?: string
}

export interface Generator {
  readonly name: string
  /** The version, or why it cannot run here. */
  probe(): Promise<{ ok: true; version: string } | { ok: false; reason: string }>
  run(load: GeneratorLoad, clockTicksPerSec: number): Promise<GeneratorMeasurement>
}

/** Runs a command pinned to `cpu` and returns its stdout; exit 1 is a result (a run that failed every request), not an error. */
export async function runPinned(cpu: number, command: string, args: readonly string[]): Promise<string> {
  const tracked = startTracked('taskset', ['-c', String(cpu), command, ...args], { cwd: REPO_DIR }, false, true)
  const exit = await tracked.exited
  if (exit !== '0' && exit !== '1') throw new Error(`${command} exited with ${exit}: ${tracked.outputTail().trim().split('\n').slice(-2).join(' | ')}`)
  return tracked.stdout()
}

/** What `run` returns, and the CPU µs of the children reaped meanwhile: the generator it ran, alone. */
async function withChildCpu<T>(clockTicksPerSec: number, run: () => Promise<T>): Promise<{ value: T; cpuUs: number }> {
  const before = reapedChildrenCpuTicks()
  const value = await run()
  return { value, cpuUs: ((reapedChildrenCpuTicks() - before) / clockTicksPerSec) * 1e6 }
}

function measurement(
  requests: number,
  durationSec: number,
  cpuUs: number,
  p50Ms: number | null,
  p99Ms: number | null,
  errors: number,
  note?: string,
): GeneratorMeasurement {
  return {
    requests,
    durationSec,
    requestsPerSec: requests / durationSec,
    cpuUsPerRequest: requests > 0 ? cpuUs / requests : Number.NaN,
    p50Ms,
    p99Ms,
    errors,
    ...(note === undefined ? {} : { note }),
  }
}

export const petrelBench: Generator = {
  name: 'petrel bench',
  async probe() {
    const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }
    return { ok: true, version: `${version} on node ${process.versions.node}` }
  },
  async run(load, ticks) {
    const args = [join(REPO_DIR, 'bin', 'petrel.js'), 'bench', '--json', '-c', String(load.connections), '-d', `${load.durationSec}s`, '-p', String(load.depth)]
    if (load.rate > 0) args.push('-R', String(load.rate))
    const { value: stdout, cpuUs } = await withChildCpu(ticks, () => runPinned(load.cpu, process.execPath, [...args, load.url]))
    const result = JSON.parse(stdout) as { requests: number; duration_s: number; latency_ms: { p50: number; p99: number }; errors: Record<string, number> }
    const errors = Object.values(result.errors).reduce((sum, n) => sum + n, 0)
    return measurement(result.requests, result.duration_s, cpuUs, result.latency_ms.p50, result.latency_ms.p99, errors)
  },
}

export function wrkGenerator(wrkPath: string, wrkVersion: string): Generator {
  return {
    name: 'wrk',
    async probe() {
      return { ok: true, version: wrkVersion }
    },
    async run(load, ticks) {
      // wrk 4 has no fixed rate: at a rate it runs one connection, closed model, so its latency
      // is the unloaded service time the open-model latency should agree with.
      const atRate = load.rate > 0
      const { value: result, cpuUs } = await withChildCpu(ticks, () =>
        runWrk({
          wrkPath,
          cpu: load.cpu,
          url: load.url,
          connections: atRate ? 1 : load.connections,
          durationSec: load.durationSec,
          scriptPath: join(BENCH_DIR, 'wrk', load.depth > 1 ? 'pipeline.lua' : 'report.lua'),
          scriptArgs: load.depth > 1 ? [String(load.depth)] : [],
          headers: [],
        }),
      )
      const errors = result.errors.connect + result.errors.read + result.errors.write + result.errors.timeout
      // wrk records one latency sample per pipelined batch (see bench/wrk/report.lua).
      const latency = (us: number): number | null => (load.depth > 1 || us <= 0 ? null : us / 1000)
      return measurement(
        result.requests,
        result.durationUs / 1e6,
        cpuUs,
        latency(result.latencyUs.p50),
        latency(result.latencyUs.p99),
        errors,
        atRate ? 'no fixed rate in wrk 4: one connection, closed model (unloaded latency)' : undefined,
      )
    },
  }
}

const AUTOCANNON = join(BENCH_MODULES_DIR, 'autocannon', 'autocannon.js')

export const autocannon: Generator = {
  name: 'autocannon',
  async probe() {
    if (!existsSync(AUTOCANNON)) return { ok: false, reason: 'npm package autocannon is not installed in bench/node_modules (run: npm ci --prefix bench)' }
    const { version } = JSON.parse(readFileSync(join(BENCH_MODULES_DIR, 'autocannon', 'package.json'), 'utf8')) as { version: string }
    return { ok: true, version: `${version} on node ${process.versions.node}` }
  },
  async run(load, ticks) {
    const args = [AUTOCANNON, '--json', '-c', String(load.connections), '-d', String(load.durationSec), '-p', String(load.depth)]
    if (load.rate > 0) args.push('--overallRate', String(load.rate))
    const { value: stdout, cpuUs } = await withChildCpu(ticks, () => runPinned(load.cpu, process.execPath, [...args, load.url]))
    const result = JSON.parse(stdout) as {
      requests: { total: number }
      duration: number
      latency: { p50: number; p99: number }
      errors: number
      timeouts: number
    }
    return measurement(result.requests.total, result.duration, cpuUs, result.latency.p50, result.latency.p99, result.errors + result.timeouts)
  },
}

/** What `petrel bench --json` prints (the fields the suites read). */
export interface BenchJson {
  requests: number
  rps: number
  duration_s: number
  bytes_per_s: number
  latency_ms: { p50: number; p99: number; p999: number; max: number }
  status: Record<string, number>
  errors: Record<string, number>
  /** https:// runs only. */
  tls: { handshakes: number; handshakes_per_s: number; resumed: number } | null
}

/** Run `petrel bench --json ARGS` pinned to `cpu` and return its result. */
export async function petrelBenchJson(cpu: number, args: readonly string[]): Promise<BenchJson> {
  return JSON.parse(await runPinned(cpu, process.execPath, [join(REPO_DIR, 'bin', 'petrel.js'), 'bench', '--json', ...args])) as BenchJson
}

/** Requests that failed: errors of every kind plus answers other than `ok` (default: any 2xx). */
export const benchFailures = (result: BenchJson, ok: (status: string) => boolean = (code) => code.startsWith('2')): number =>
  Object.values(result.errors).reduce((sum, n) => sum + n, 0) +
  Object.entries(result.status)
    .filter(([code]) => !ok(code))
    .reduce((sum, [, n]) => sum + n, 0)
