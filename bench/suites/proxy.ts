// The proxy suite: Petrel's reverse proxy against nginx's proxy_pass (keep-alive upstream pool),
// both in front of the same upstream — a Petrel serving /plaintext. The proxy under test is
// pinned to CPU 0; the upstream and wrk share CPU 1, the same for every row, so the rows differ
// only in the proxy. A "direct" row (wrk straight to the upstream, pinned to CPU 0 for the run)
// gives the latency the proxies add. A "node relay floor" row (bench/peers/relay-floor.ts: bytes
// copied between paired connections, no HTTP) shows what Node's sockets alone cost a proxy.

import { join } from 'node:path'
import { defineFlags, parseSuiteFlags } from '../lib/flags.ts'
import { measureOnce, startServer, type Load, type RunMeasurement } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'
import { peerFile, petrelPeer, probeNginx, type Launch } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import { twoDigits, wholeNumber, finishTableReport } from '../lib/report.ts'
import { findLoadTools, makeBench } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import type { Column } from '../lib/table.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured wrk run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded wrk run before each measured one' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'wrk connections' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per row, interleaved; medians are reported' }
])

const LOAD = (connections: number): Load => ({
  path: '/plaintext',
  connections,
  headers: [],
  scriptPath: join(BENCH_DIR, 'wrk', 'report.lua'),
  scriptArgs: [],
  reportsLatency: true
})

async function run (args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'proxy')
  const durationSec = flags.get('duration')
  const warmupSec = flags.get('warmup')
  const connections = flags.get('connections')
  const repeat = flags.get('repeat')
  const tools = await findLoadTools()
  if ('missing' in tools) {
    console.error(tools.missing)
    return 2
  }
  const bench = makeBench(tools, durationSec, warmupSec)
  const startedAt = new Date().toISOString()
  const check = expectBody('/plaintext', 'Hello, World!')
  // The upstream, on the generator's CPU for the whole suite.
  const upstreamProbe = await petrelPeer([]).probe()
  if (!upstreamProbe.ok) throw new Error(upstreamProbe.reason)
  const upstream = await startServer(upstreamProbe.launch, tools.wrkCpu, '/plaintext', check)
  const notes: string[] = []
  const rows = new Map<string, RunMeasurement[]>()
  try {
    const upstreamUrl = `http://127.0.0.1:${upstream.port}`
    const peers: Array<{ name: string, launch: ((port: number) => Launch) | null }> = []
    const petrel = await petrelPeer(['--proxy', `/=${upstreamUrl}`, '--proxy-health-interval', '0']).probe()
    peers.push({ name: 'petrel --proxy', launch: petrel.ok ? petrel.launch : null })
    const nginx = await probeNginx(join(BENCH_DIR, 'peers', 'proxy-nginx.conf'), { UPSTREAM_PORT: String(upstream.port) })
    if (!nginx.ok) notes.push(`nginx proxy_pass: skipped: ${nginx.reason}`)
    peers.push({ name: 'nginx proxy_pass', launch: nginx.ok ? nginx.launch : null })
    // Not an HTTP proxy: bytes copied between paired connections, the floor for any proxy on Node's sockets.
    peers.push({ name: 'node relay floor', launch: peerFile('relay-floor.ts', [String(upstream.port)]) })
    console.log(`proxy: wrk ${connections} connections on /plaintext through each proxy (proxy on CPU ${bench.serverCpu}; upstream petrel and wrk on CPU ${tools.wrkCpu})`)
    for (let repetition = 1; repetition <= repeat; repetition++) {
      for (const peer of peers) {
        if (peer.launch === null) continue
        process.stdout.write(`  ${peer.name}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
        const { measured } = await measureOnce(peer.launch, LOAD(connections), bench, check)
        rows.set(peer.name, [...(rows.get(peer.name) ?? []), measured])
        console.log(`${wholeNumber(measured.requestsPerSec)} req/s, p99 ${measured.latencyP99Ms} ms`)
      }
    }
  } finally {
    await upstream.stop()
  }
  // Direct: the upstream alone, for the latency a proxy adds (its own server on CPU 0 now).
  for (let repetition = 1; repetition <= repeat; repetition++) {
    process.stdout.write(`  direct (no proxy)${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
    const { measured } = await measureOnce(upstreamProbe.launch, LOAD(connections), bench, check)
    rows.set('direct (no proxy)', [...(rows.get('direct (no proxy)') ?? []), measured])
    console.log(`${wholeNumber(measured.requestsPerSec)} req/s, p99 ${measured.latencyP99Ms} ms`)
  }
  const base = rows.get('petrel --proxy') ?? []
  const baseRps = base.length === 0 ? Number.NaN : median(base.map((m) => m.requestsPerSec))
  const directP99 = median((rows.get('direct (no proxy)') ?? []).map((m) => m.latencyP99Ms ?? Number.NaN))
  const columns: Column[] = [
    { title: 'proxy', alignRight: false },
    { title: 'req/s', alignRight: true },
    { title: 'vs petrel', alignRight: true },
    { title: 'proxy CPU µs/req', alignRight: true },
    { title: 'proxy CPU', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'p99 added ms', alignRight: true },
    { title: 'errors', alignRight: true }
  ]
  const table = [...rows].map(([name, list]) => {
    const p99 = median(list.map((m) => m.latencyP99Ms ?? Number.NaN))
    const direct = name === 'direct (no proxy)'
    return [
      name,
      wholeNumber(median(list.map((m) => m.requestsPerSec))),
      direct ? '–' : `${(median(list.map((m) => m.requestsPerSec)) / baseRps).toFixed(2)}×`,
      twoDigits(median(list.map((m) => m.cpuUsPerRequest))),
      `${Math.round(median(list.map((m) => m.serverCpuPercent)))}%`,
      p99.toFixed(2),
      direct ? '–' : (p99 - directP99).toFixed(2),
      wholeNumber(list.reduce((sum, m) => sum + m.errors.connect + m.errors.read + m.errors.write + m.errors.timeout + m.errors.status, 0))
    ]
  })
  finishTableReport({
    suite: 'proxy',
    startedAt,
    title: 'proxy: Petrel\'s reverse proxy against nginx proxy_pass',
    method: `wrk, ${connections} keep-alive connections, GET /plaintext, ${durationSec} s runs after ${warmupSec} s of warm-up${repeat > 1 ? `, medians of ${repeat}` : ''}. ` +
      `The proxy on CPU ${bench.serverCpu}; its upstream (petrel serve) and wrk on CPU ${tools.wrkCpu}. "p99 added" is the proxy's p99 minus the direct row's (the upstream alone, on CPU ${bench.serverCpu}).`,
    columns,
    rows: table,
    notes,
    data: { durationSec, warmupSec, connections, repeat, rows: Object.fromEntries(rows) }
  })
  return 0
}

export const proxySuite: Suite = {
  name: 'proxy',
  summary: 'reverse proxy req/s and added p99: petrel --proxy against nginx proxy_pass with upstream keepalive',
  flags: FLAGS,
  passThrough: false,
  run
}
