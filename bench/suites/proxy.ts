// The proxy suite: Petrel's reverse proxy against nginx's proxy_pass (keep-alive upstream pool),
// both in front of the same upstream — a Petrel serving /plaintext. The proxy under test is
// pinned to CPU 0; the upstream and wrk share CPU 1, the same for every row, so the rows differ
// only in the proxy. A "direct" row (wrk straight to the upstream, pinned to CPU 0 for the run)
// gives the latency the proxies add. A "node relay floor" row (bench/peers/relay-floor.ts: bytes
// copied between paired connections, no HTTP) shows what Node's sockets alone cost a proxy.

import { join } from 'node:path'
import { defineFlags, parseSuiteFlags } from '../lib/flags.ts'
import { measureOnce, startServer, type Load, type RunMeasurement, type Started } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'
import { peerFile, petrelPeer, probeNginx, type Launch } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import { cellNotes, twoDigits, wholeNumber, finishTableReport } from '../lib/report.ts'
import { runWrkSuite, type Runnable } from '../lib/runner.ts'
import type { Cell } from '../lib/results.ts'
import { median } from '../lib/stats.ts'
import type { Column } from '../lib/table.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured wrk run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded wrk run before each measured one' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'wrk connections' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per row, interleaved; medians are reported' },
])

const LOAD = (connections: number): Load => ({
  path: '/plaintext',
  connections,
  headers: [],
  scriptPath: join(BENCH_DIR, 'wrk', 'report.lua'),
  scriptArgs: [],
  reportsLatency: true,
})

const DIRECT = 'direct (no proxy)'

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'proxy')
  const durationSec = flags.get('duration')
  const warmupSec = flags.get('warmup')
  const connections = flags.get('connections')
  const repeat = flags.get('repeat')
  const startedAt = new Date().toISOString()
  const check = expectBody('/plaintext', 'Hello, World!')
  const describe = (measured: RunMeasurement): string => `${wholeNumber(measured.requestsPerSec)} req/s, p99 ${measured.latencyP99Ms} ms`
  const rows: Cell[] = []
  let upstream: Started | null = null
  let upstreamLaunch: ((port: number) => Launch) | undefined
  let wrkCpu = 1
  let serverCpu = 0

  return runWrkSuite<RunMeasurement>({
    durationSec,
    warmupSec,
    repeat,
    prepare: async (tools, bench) => {
      wrkCpu = tools.wrkCpu
      serverCpu = bench.serverCpu
      // The upstream, on the generator's CPU while the proxies are measured.
      const upstreamProbe = await petrelPeer([]).probe()
      if (!upstreamProbe.ok) throw new Error(upstreamProbe.reason)
      upstreamLaunch = upstreamProbe.launch
      const started = await startServer(upstreamProbe.launch, tools.wrkCpu, '/plaintext', check)
      upstream = started
      const upstreamUrl = `http://127.0.0.1:${started.port}`
      const runnables: Runnable[] = []
      try {
        const petrel = await petrelPeer(['--proxy', `/=${upstreamUrl}`, '--proxy-health-interval', '0']).probe()
        runnables.push(petrel.ok ? { name: 'petrel --proxy', launchOn: petrel.launch } : { name: 'petrel --proxy', skipped: petrel.reason })
        const nginx = await probeNginx(join(BENCH_DIR, 'peers', 'proxy-nginx.conf'), { UPSTREAM_PORT: String(started.port) })
        runnables.push(nginx.ok ? { name: 'nginx proxy_pass', launchOn: nginx.launch } : { name: 'nginx proxy_pass', skipped: nginx.reason })
      } catch (error) {
        await started.stop()
        throw error
      }
      // Not an HTTP proxy: bytes copied between paired connections, the floor for any proxy on Node's sockets.
      runnables.push({ name: 'node relay floor', launchOn: peerFile('relay-floor.ts', [String(started.port)]) })
      console.log(
        `proxy: wrk ${connections} connections on /plaintext through each proxy (proxy on CPU ${bench.serverCpu}; upstream petrel and wrk on CPU ${tools.wrkCpu})`,
      )
      return {
        runnables,
        release: async () => {
          await upstream?.stop()
        },
      }
    },
    scenarios: (_tools, bench) => [
      {
        name: '',
        measure: async (launchOn) => (await measureOnce(launchOn, LOAD(connections), bench, check)).measured,
        describe,
        finish: (cells) => rows.push(...cells),
      },
      {
        // Direct: the upstream alone, for the latency a proxy adds (its own server on CPU 0 now).
        name: '',
        before: async () => {
          await upstream?.stop()
          upstream = null
        },
        runnables: [{ name: DIRECT, launchOn: upstreamLaunch }],
        measure: async (launchOn) => (await measureOnce(launchOn, LOAD(connections), bench, check)).measured,
        describe,
        finish: (cells) => rows.push(...cells),
      },
    ],
    writeReport: () => writeTable(rows, { startedAt, durationSec, warmupSec, connections, repeat, serverCpu, wrkCpu }),
  })
}

/** The proxies' table: medians of each row that has runs, ratios to petrel's, p99 added over the direct row's. */
function writeTable(
  cells: readonly Cell[],
  run: { startedAt: string; durationSec: number; warmupSec: number; connections: number; repeat: number; serverCpu: number; wrkCpu: number },
): string[] {
  const rows = new Map(cells.filter((cell) => cell.runs.length > 0).map((cell) => [cell.peer, cell.runs]))
  const base = rows.get('petrel --proxy') ?? []
  const baseRps = base.length === 0 ? Number.NaN : median(base.map((m) => m.requestsPerSec))
  const directP99 = median((rows.get(DIRECT) ?? []).map((m) => m.latencyP99Ms ?? Number.NaN))
  const columns: Column[] = [
    { title: 'proxy', alignRight: false },
    { title: 'req/s', alignRight: true },
    { title: 'vs petrel', alignRight: true },
    { title: 'proxy CPU µs/req', alignRight: true },
    { title: 'proxy CPU', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'p99 added ms', alignRight: true },
    { title: 'errors', alignRight: true },
  ]
  const table = [...rows].map(([name, list]) => {
    const p99 = median(list.map((m) => m.latencyP99Ms ?? Number.NaN))
    const direct = name === DIRECT
    return [
      name,
      wholeNumber(median(list.map((m) => m.requestsPerSec))),
      direct ? '–' : `${(median(list.map((m) => m.requestsPerSec)) / baseRps).toFixed(2)}×`,
      twoDigits(median(list.map((m) => m.cpuUsPerRequest))),
      `${Math.round(median(list.map((m) => m.serverCpuPercent)))}%`,
      p99.toFixed(2),
      direct ? '–' : (p99 - directP99).toFixed(2),
      wholeNumber(list.reduce((sum, m) => sum + m.errors.connect + m.errors.read + m.errors.write + m.errors.timeout + m.errors.status, 0)),
    ]
  })
  const { durationSec, warmupSec, connections, repeat, serverCpu, wrkCpu } = run
  return finishTableReport({
    suite: 'proxy',
    startedAt: run.startedAt,
    title: "proxy: Petrel's reverse proxy against nginx proxy_pass",
    method:
      `wrk, ${connections} keep-alive connections, GET /plaintext, ${durationSec} s runs after ${warmupSec} s of warm-up${repeat > 1 ? `, medians of ${repeat}` : ''}. ` +
      `The proxy on CPU ${serverCpu}; its upstream (petrel serve) and wrk on CPU ${wrkCpu}. "p99 added" is the proxy's p99 minus the direct row's (the upstream alone, on CPU ${serverCpu}).`,
    columns,
    rows: table,
    notes: cellNotes(cells),
    data: { durationSec, warmupSec, connections, repeat, rows: Object.fromEntries(rows) },
  })
}

export const proxySuite: Suite = {
  name: 'proxy',
  summary: 'reverse proxy req/s and added p99: petrel --proxy against nginx proxy_pass with upstream keepalive',
  flags: FLAGS,
  passThrough: false,
  run,
}
