// One measurement: start a fresh server pinned to its CPU, wait until it answers, warm it up
// (JIT, caches, connection setup), then run wrk for the measured period while sampling the
// server's CPU time right before and right after. The server is always stopped afterwards.

import { onCleanup, startTracked, stopTracked } from '../lib/children.ts'
import { freePort } from '../lib/ports.ts'
import { processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { waitUntilServing } from '../lib/ready.ts'
import { runWrk, type WrkErrors } from '../lib/wrk.ts'
import type { Launch } from './peers.ts'
import type { Scenario } from './scenarios.ts'

const READY_DEADLINE_MS = 15_000

export interface RunMeasurement {
  readonly requests: number
  readonly durationSec: number
  readonly requestsPerSec: number
  /** Server CPU time (user + system, whole process tree) divided by requests completed. */
  readonly cpuUsPerRequest: number
  /** Server CPU time over wall time; near 100 % means the server, not wrk, was the limit. */
  readonly serverCpuPercent: number
  /** null where the scenario does not report latency, or wrk could not compute it. */
  readonly latencyP50Ms: number | null
  readonly latencyP99Ms: number | null
  readonly errors: WrkErrors
  /**
   * Whether the server's answer to a `Connection: close` request said `Connection: close`
   * (RFC 9112 §9.6: it SHOULD). wrk only learns of the close from that header; without it
   * wrk reuses the connection, reads EOF and counts a read error, once per request.
   */
  readonly announcesClose: boolean
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

/** wrk reports 0 when it cannot compute a percentile; no real request takes 0 µs. */
function latencyMs (scenario: Scenario, latencyUs: number): number | null {
  return scenario.reportsLatency && latencyUs > 0 ? latencyUs / 1000 : null
}

export async function measureOnce (launchOn: (port: number) => Launch, scenario: Scenario, bench: Bench): Promise<RunMeasurement> {
  const port = await freePort()
  const launch = launchOn(port)
  const removeCleanup = launch.cleanup === undefined ? () => {} : onCleanup(launch.cleanup)
  const server = startTracked('taskset', ['-c', String(bench.serverCpu), launch.command, ...launch.args], { cwd: launch.cwd })
  try {
    let readyAnswer: string
    try {
      readyAnswer = await waitUntilServing(server, { port, path: scenario.path, expectedBody: 'Hello, World!', deadlineMs: READY_DEADLINE_MS })
    } catch (error) {
      const lastLine = server.outputTail().trim().split('\n').at(-1) ?? ''
      throw new ServerStartError(`${(error as Error).message}${lastLine === '' ? '' : `: ${lastLine}`}`)
    }
    const wrkRun = {
      wrkPath: bench.wrkPath,
      cpu: bench.wrkCpu,
      url: `http://127.0.0.1:${port}${scenario.path}`,
      connections: scenario.connections,
      scriptPath: scenario.scriptPath,
      scriptArgs: scenario.scriptArgs,
      headers: scenario.headers
    }
    if (bench.warmupSec > 0) await runWrk({ ...wrkRun, durationSec: bench.warmupSec })
    const ticksBefore = processTreeCpuTicks(server.pid)
    const result = await runWrk({ ...wrkRun, durationSec: bench.durationSec })
    const ticksAfter = processTreeCpuTicks(server.pid)
    if (server.hasExited()) throw new Error(`server exited during the run (exit ${await server.exited})`)
    const cpuUs = (ticksAfter - ticksBefore) / bench.clockTicksPerSec * 1e6
    return {
      requests: result.requests,
      durationSec: result.durationUs / 1e6,
      requestsPerSec: result.requests / (result.durationUs / 1e6),
      cpuUsPerRequest: result.requests > 0 ? cpuUs / result.requests : Number.NaN,
      serverCpuPercent: cpuUs / result.durationUs * 100,
      latencyP50Ms: latencyMs(scenario, result.latencyUs.p50),
      latencyP99Ms: latencyMs(scenario, result.latencyUs.p99),
      errors: result.errors,
      announcesClose: /^connection:[ \t]*close\r$/im.test(readyAnswer.slice(0, readyAnswer.indexOf('\r\n\r\n') + 2))
    }
  } finally {
    await stopTracked(server)
    launch.cleanup?.()
    removeCleanup()
  }
}
