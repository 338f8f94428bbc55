// The chat suite: N clients in one room, each sending one message per second (the issue's
// 1,000 × 1/s, so up to N×(N−1) ≈ 1M deliveries per second). Reports the fan-out actually
// delivered (lines/s read by all clients), the delivery latency seen by probe clients, and the
// server's CPU per delivery. Rows:
//
// - petrel chat: one process.
// - petrel chat --workers 2: the master's relay; master and workers all on the server CPU, so
//   this row shows the relay's cost, not a gain from a second core.
// - petrel chat --redis: one instance whose every line also goes through redis-server (on the
//   server CPU too) and back — the price of a room that spans machines.
// - naive node:net: a room written the obvious way (a socket.write per line per client).
//
// The generator (bench/chat/generator.ts) runs pinned to the other CPU.

import { join } from 'node:path'
import { startTracked, stopTracked, type Tracked } from '../lib/children.ts'
import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import { freePort } from '../lib/ports.ts'
import { twoDigits, wholeNumber, finishTableReport } from '../lib/report.ts'
import { SERVER_CPU, WRK_CPU } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import type { Column } from '../lib/table.ts'
import { findOnPath } from '../lib/which.ts'
import { runPinned } from '../loadgen/generators.ts'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Suite } from './suite.ts'

const ROWS = ['petrel', 'workers', 'redis', 'naive'] as const
type Row = (typeof ROWS)[number]
const ROW_NAMES: Record<Row, string> = {
  petrel: 'petrel chat',
  workers: 'petrel chat --workers 2',
  redis: 'petrel chat --redis',
  naive: 'naive node:net',
}

const FLAGS = defineFlags([
  { name: 'clients', type: 'integer', valueName: 'N', min: 2, default: 1000, description: 'clients in the room' },
  { name: 'interval-ms', type: 'integer', valueName: 'MS', min: 1, default: 1000, description: 'each client sends one message this often' },
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run (after a 2 s warm-up)' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per row, interleaved; medians are reported' },
  { name: 'rows', type: 'string', valueName: 'NAMES', default: ROWS.join(','), description: `comma-separated rows to run (${ROWS.join(', ')})` },
])

interface GeneratorJson {
  clients: number
  refused: number
  durationS: number
  sentPerSec: number
  fanoutPerSec: number
  expectedFanoutPerSec: number
  disconnected: number
  latencyMs: { samples: number; p50: number; p90: number; p99: number; p999: number; max: number }
  serverCpuUsPerDelivery: number
  serverCpuPct: number
  serverPeakRssMb: number
  generatorCpuPct: number
}

/** Resolves once `port` accepts a connection; rejects when the process exits first or 15 s pass. */
async function waitForPort(port: number, process: Tracked): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (process.hasExited()) throw new Error(`exited before listening: ${process.outputTail().trim().split('\n').slice(-2).join(' | ')}`)
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (up) return
    await sleep(50)
  }
  throw new Error(`nothing listening on ${port} after 15 s`)
}

interface Running {
  pids: () => number[]
  stop: () => Promise<void>
}

async function startRow(row: Row, port: number, clients: number): Promise<Running> {
  const pinned = (args: readonly string[]): Tracked => startTracked('taskset', ['-c', String(SERVER_CPU), process.execPath, ...args], { cwd: REPO_DIR })
  const petrel = (extra: readonly string[]): string[] => [
    join(REPO_DIR, 'bin', 'petrel.js'),
    'chat',
    '--port',
    String(port),
    '--max-users',
    String(clients + 10),
    ...extra,
  ]
  const started: Tracked[] = []
  const running: Running = {
    pids: () => started.map((t) => t.pid),
    stop: async () => {
      for (const t of started.reverse()) await stopTracked(t)
    },
  }
  try {
    if (row === 'redis') {
      if (findOnPath('redis-server').length === 0) throw new Error('redis-server not found (apt-get install redis-server)')
      const redisPort = await freePort()
      const redis = startTracked('taskset', [
        '-c',
        String(SERVER_CPU),
        'redis-server',
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ])
      started.push(redis)
      await waitForPort(redisPort, redis)
      started.push(pinned(petrel(['--redis', `redis://127.0.0.1:${redisPort}`, '--room', `bench${process.pid}`])))
    } else if (row === 'naive') {
      started.push(pinned([join(BENCH_DIR, 'chat', 'naive-server.ts'), String(port)]))
    } else {
      started.push(pinned(petrel(row === 'workers' ? ['--workers', '2'] : [])))
    }
    await waitForPort(port, started.at(-1)!)
    return running
  } catch (error) {
    await running.stop()
    throw error
  }
}

async function measure(row: Row, clients: number, intervalMs: number, durationSec: number): Promise<GeneratorJson> {
  const port = await freePort()
  const running = await startRow(row, port, clients)
  try {
    // The generator reads the servers' CPU time itself, at the edges of its measured window.
    const output = await runPinned(WRK_CPU, process.execPath, [
      join(BENCH_DIR, 'chat', 'generator.ts'),
      '--port',
      String(port),
      '--clients',
      String(clients),
      '--interval-ms',
      String(intervalMs),
      '--duration',
      String(durationSec),
      '--warmup',
      '2',
      '--cpu-pids',
      running.pids().join(','),
    ])
    return JSON.parse(output) as GeneratorJson
  } finally {
    await running.stop()
  }
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'chat')
  const clients = flags.get('clients')
  const intervalMs = flags.get('interval-ms')
  const durationSec = flags.get('duration')
  const repeat = flags.get('repeat')
  const rows = listOf('rows', flags.get('rows'), ROWS) as Row[]
  const startedAt = new Date().toISOString()
  console.log(
    `chat: ${clients} clients, one message each per ${intervalMs} ms (server on CPU ${SERVER_CPU}, generator on CPU ${WRK_CPU}); ${durationSec} s runs`,
  )
  const results = new Map<Row, GeneratorJson[]>(rows.map((row) => [row, []]))
  const notes: string[] = []
  for (let repetition = 1; repetition <= repeat; repetition++) {
    for (const row of rows) {
      process.stdout.write(`  ${ROW_NAMES[row]}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
      try {
        const result = await measure(row, clients, intervalMs, durationSec)
        results.get(row)!.push(result)
        console.log(
          `${wholeNumber(result.fanoutPerSec)} deliveries/s, p99 ${result.latencyMs.p99} ms, server CPU ${Math.round(result.serverCpuPct)}%, generator CPU ${Math.round(result.generatorCpuPct)}%`,
        )
      } catch (error) {
        console.log(`skipped: ${(error as Error).message}`)
        if (!notes.some((note) => note.startsWith(ROW_NAMES[row]))) notes.push(`${ROW_NAMES[row]}: skipped: ${(error as Error).message}`)
      }
    }
  }
  const columns: Column[] = [
    { title: 'server', alignRight: false },
    { title: 'fan-out msgs/s', alignRight: true },
    { title: 'vs petrel', alignRight: true },
    { title: 'of offered', alignRight: true },
    { title: 'p50 ms', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'p99.9 ms', alignRight: true },
    { title: 'server CPU µs/delivery', alignRight: true },
    { title: 'server CPU', alignRight: true },
    { title: 'peak RSS MB', alignRight: true },
    { title: 'cut off', alignRight: true },
  ]
  const base = results.get('petrel') ?? []
  const baseRate = base.length === 0 ? Number.NaN : median(base.map((r) => r.fanoutPerSec))
  const table = [...results]
    .filter(([, list]) => list.length > 0)
    .map(([row, list]) => {
      const m = (pick: (r: GeneratorJson) => number): number => median(list.map(pick))
      return [
        ROW_NAMES[row],
        wholeNumber(m((r) => r.fanoutPerSec)),
        Number.isNaN(baseRate) ? '–' : `${(m((r) => r.fanoutPerSec) / baseRate).toFixed(2)}×`,
        `${(m((r) => r.fanoutPerSec / r.expectedFanoutPerSec) * 100).toFixed(1)}%`,
        m((r) => r.latencyMs.p50).toFixed(2),
        m((r) => r.latencyMs.p99).toFixed(2),
        m((r) => r.latencyMs.p999).toFixed(2),
        twoDigits(m((r) => r.serverCpuUsPerDelivery)),
        `${Math.round(m((r) => r.serverCpuPct))}%`,
        wholeNumber(m((r) => r.serverPeakRssMb)),
        wholeNumber(list.reduce((sum, r) => sum + r.disconnected + r.refused, 0)),
      ]
    })
  finishTableReport({
    suite: 'chat',
    startedAt,
    title: `chat: ${clients} clients, one message each per ${intervalMs} ms`,
    method:
      `Server (and redis-server, and every worker) pinned to CPU ${SERVER_CPU}, the generator to CPU ${WRK_CPU}; ${durationSec} s runs after a 2 s warm-up${repeat > 1 ? `, medians of ${repeat}` : ''}. ` +
      '"fan-out" counts lines read by all clients; "of offered" is that over sent × (clients − 1). ' +
      "Latency: from the sender's write to a probe client's read (one client in ten), one clock. " +
      "Peak RSS: VmHWM summed over the server's processes (redis-server included).",
    columns,
    rows: table,
    notes,
    data: { clients, intervalMs, durationSec, repeat, results: Object.fromEntries(results) },
  })
  return 0
}

export const chatSuite: Suite = {
  name: 'chat',
  summary: '1,000 chat clients sending 1 message/s each: fan-out messages/s, p99 delivery latency, server CPU per delivery',
  flags: FLAGS,
  passThrough: false,
  run,
}
