// One measurement: start a fresh server pinned to its CPU, wait until it answers, warm it up
// (JIT, caches, connection setup), then run wrk for the measured period while sampling the
// server's CPU time right before and right after. The server is always stopped afterwards.

import { onCleanup, startTracked, stopTracked, type Tracked } from './children.ts'
import type { Launch } from './peers.ts'
import { freePort } from './ports.ts'
import { processTreeCpuTicks } from './proc-cpu.ts'
import { waitUntilServing } from './ready.ts'
import { runWrk, type WrkErrors } from './wrk.ts'

const READY_DEADLINE_MS = 15_000

/** What wrk is pointed at: one URL path, how many connections, which script and headers. */
export interface Load {
  readonly path: string
  readonly connections: number
  readonly headers: readonly string[]
  readonly scriptPath: string
  readonly scriptArgs: readonly string[]
  /** False where wrk's latency figures do not mean per-request latency (see wrk/report.lua). */
  readonly reportsLatency: boolean
  /** https:// (the tls suite): wrk and the readiness check speak TLS. */
  readonly secure?: boolean
}

export interface RunMeasurement {
  readonly requests: number
  readonly durationSec: number
  readonly requestsPerSec: number
  /** Bytes wrk read (response heads and bodies) per second of the measured run. */
  readonly bytesPerSec: number
  /** Server CPU time (user + system, whole process tree) divided by requests completed. */
  readonly cpuUsPerRequest: number
  /** Server CPU time over wall time; near 100 % means the server, not wrk, was the limit. */
  readonly serverCpuPercent: number
  /** null where the load does not report latency, or wrk could not compute it. */
  readonly latencyP50Ms: number | null
  readonly latencyP99Ms: number | null
  readonly errors: WrkErrors
}

export interface Bench {
  readonly wrkPath: string
  readonly serverCpu: number
  readonly wrkCpu: number
  readonly clockTicksPerSec: number
  readonly durationSec: number
  readonly warmupSec: number
}

/** The server could not be started or did not answer: the peer is skipped from then on. */
export class ServerStartError extends Error {}

/** Why an answer to GET path is not the expected one; undefined when it is. */
export type AnswerCheck = (response: string) => string | undefined

export interface Started {
  readonly server: Tracked
  readonly port: number
  /** The answer that showed the server ready (raw head and body, latin1). */
  readonly readyAnswer: string
  stop(): Promise<void>
}

/**
 * Starts a server pinned to `cpu` on a free port and waits until GET `path` (over TLS when
 * `secure`; with `ask` instead of HTTP/1.1 when given) gets an answer that `check` accepts;
 * throws ServerStartError (server already stopped) if it does not.
 */
export async function startServer(
  launchOn: (port: number) => Launch,
  cpu: number,
  path: string,
  check: AnswerCheck,
  secure = false,
  ask?: (port: number, path: string) => Promise<string>,
): Promise<Started> {
  const port = await freePort()
  const launch = launchOn(port)
  const removeCleanup = launch.cleanup === undefined ? () => {} : onCleanup(launch.cleanup)
  const server = startTracked('taskset', ['-c', String(cpu), launch.command, ...launch.args], { cwd: launch.cwd })
  const stop = async (): Promise<void> => {
    await stopTracked(server)
    launch.cleanup?.()
    removeCleanup()
  }
  try {
    const readyAnswer = await waitUntilServing(server, {
      port,
      path,
      problemWith: check,
      deadlineMs: READY_DEADLINE_MS,
      secure,
      ...(ask === undefined ? {} : { ask }),
    })
    return { server, port, readyAnswer, stop }
  } catch (error) {
    await stop()
    const lastLine = server.outputTail().trim().split('\n').at(-1) ?? ''
    throw new ServerStartError(`${(error as Error).message}${lastLine === '' ? '' : `: ${lastLine}`}`)
  }
}

/** wrk reports 0 when it cannot compute a percentile; no real request takes 0 µs. */
function latencyMs(load: Load, latencyUs: number): number | null {
  return load.reportsLatency && latencyUs > 0 ? latencyUs / 1000 : null
}

/** Measures one run; also returns the readiness answer, for checks on the server's headers. */
export async function measureOnce(
  launchOn: (port: number) => Launch,
  load: Load,
  bench: Bench,
  check: AnswerCheck,
): Promise<{ measured: RunMeasurement; readyAnswer: string }> {
  const secure = load.secure === true
  const { server, port, readyAnswer, stop } = await startServer(launchOn, bench.serverCpu, load.path, check, secure)
  try {
    const wrkRun = {
      wrkPath: bench.wrkPath,
      cpu: bench.wrkCpu,
      url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}${load.path}`,
      connections: load.connections,
      scriptPath: load.scriptPath,
      scriptArgs: load.scriptArgs,
      headers: load.headers,
    }
    if (bench.warmupSec > 0) await runWrk({ ...wrkRun, durationSec: bench.warmupSec })
    const ticksBefore = processTreeCpuTicks(server.pid)
    const result = await runWrk({ ...wrkRun, durationSec: bench.durationSec })
    const ticksAfter = processTreeCpuTicks(server.pid)
    if (server.hasExited()) throw new Error(`server exited during the run (exit ${await server.exited})`)
    const cpuUs = ((ticksAfter - ticksBefore) / bench.clockTicksPerSec) * 1e6
    const durationSec = result.durationUs / 1e6
    const measured: RunMeasurement = {
      requests: result.requests,
      durationSec,
      requestsPerSec: result.requests / durationSec,
      bytesPerSec: result.bytes / durationSec,
      cpuUsPerRequest: result.requests > 0 ? cpuUs / result.requests : Number.NaN,
      serverCpuPercent: (cpuUs / result.durationUs) * 100,
      latencyP50Ms: latencyMs(load, result.latencyUs.p50),
      latencyP99Ms: latencyMs(load, result.latencyUs.p99),
      errors: result.errors,
    }
    return { measured, readyAnswer }
  } finally {
    await stop()
  }
}
