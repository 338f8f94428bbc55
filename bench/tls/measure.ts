// One tls-suite measurement. The wrk scenarios are lib/measure.ts over https. The resumed
// scenario is driven by `petrel bench` instead (wrk never resumes a session), pinned to wrk's
// CPU, with the same shape: a fresh server, a discarded warm-up run, then the measured run with
// the server's CPU time read right before and after it.

import { measureOnce as measureWrk, startServer, type AnswerCheck, type Bench, type RunMeasurement } from '../lib/measure.ts'
import type { Launch } from '../lib/peers.ts'
import { processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { petrelBenchJson, type BenchJson } from '../loadgen/generators.ts'
import type { TlsScenario } from './scenarios.ts'

export interface TlsMeasurement extends RunMeasurement {
  /** petrel bench runs: the share of TLS handshakes that resumed a session, in %. */
  readonly resumedPercent?: number
}

/** Measure `scenario` on the server `launchOn` starts; `caFile` is the certificate petrel bench trusts. */
export async function measureTls(
  launchOn: (port: number) => Launch,
  scenario: TlsScenario,
  bench: Bench,
  check: AnswerCheck,
  caFile: string,
): Promise<TlsMeasurement> {
  if (scenario.generator === 'wrk') return (await measureWrk(launchOn, scenario, bench, check)).measured
  const { server, port, stop } = await startServer(launchOn, bench.serverCpu, scenario.path, check, true)
  try {
    // localhost, not 127.0.0.1: SNI carries a host name, and the certificate names both.
    const args = ['-c', String(scenario.connections), '--no-keepalive', '--ca', caFile, `https://localhost:${port}${scenario.path}`]
    if (bench.warmupSec > 0) await petrelBenchJson(bench.wrkCpu, ['-d', `${bench.warmupSec}s`, ...args])
    const ticksBefore = processTreeCpuTicks(server.pid)
    const result = await petrelBenchJson(bench.wrkCpu, ['-d', `${bench.durationSec}s`, ...args])
    const ticksAfter = processTreeCpuTicks(server.pid)
    if (server.hasExited()) throw new Error(`server exited during the run (exit ${await server.exited})`)
    const cpuUs = ((ticksAfter - ticksBefore) / bench.clockTicksPerSec) * 1e6
    return fromBenchJson(result, cpuUs)
  } finally {
    await stop()
  }
}

function fromBenchJson(result: BenchJson, cpuUs: number): TlsMeasurement {
  const durationUs = result.duration_s * 1e6
  const notOk = Object.entries(result.status).reduce((sum, [code, n]) => (Number(code) >= 400 ? sum + n : sum), 0)
  const tls = result.tls
  return {
    requests: result.requests,
    durationSec: result.duration_s,
    requestsPerSec: result.rps,
    bytesPerSec: result.bytes_per_s,
    cpuUsPerRequest: result.requests > 0 ? cpuUs / result.requests : Number.NaN,
    serverCpuPercent: durationUs > 0 ? (cpuUs / durationUs) * 100 : Number.NaN,
    latencyP50Ms: result.requests > 0 ? result.latency_ms.p50 : null,
    latencyP99Ms: result.requests > 0 ? result.latency_ms.p99 : null,
    errors: {
      connect: result.errors.connect ?? 0,
      read: (result.errors.read ?? 0) + (result.errors.parse ?? 0),
      write: result.errors.write ?? 0,
      status: notOk,
      timeout: result.errors.timeout ?? 0,
    },
    ...(tls === null || tls.handshakes === 0 ? {} : { resumedPercent: (100 * tls.resumed) / tls.handshakes }),
  }
}
