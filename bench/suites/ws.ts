// The ws suite: Petrel's WebSocket server (server.websocket) against `ws` on node:http,
// uWebSockets.js, Bun's WebSocket and a floor on node:net, each started afresh per run pinned to
// CPU 0, with the suite's own load generator (bench/ws/generator.ts, raw TCP, one Node process)
// pinned to CPU 1. Scenarios:
//
// - echo-1: 100 connections, 32-byte text messages, one in flight per connection: messages/s.
// - echo-16: the same with 16 in flight per connection (each echo replaced at once).
// - fanout: 10,000 subscribers of a topic, one publisher sending 100 messages/s of 64 bytes:
//   deliveries/s and the delivery latency (the send time is in the payload).
// - memory: 10,000 idle WebSockets held; the server's RSS before and after, per connection.
//
// Server CPU µs per message from /proc (the generator reads it at the edges of its window);
// medians of --repeat interleaved runs; the issue's targets under the tables. docs/benchmarks.md.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTracked, stopTracked, type Tracked } from '../lib/children.ts'
import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { machineFacts } from '../lib/machine.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import type { Launch } from '../lib/peers.ts'
import { freePort } from '../lib/ports.ts'
import { twoDigits, wholeNumber, writeResultFiles } from '../lib/report.ts'
import { probePeers, SERVER_CPU, WRK_CPU } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import { findOnPath, isExecutable } from '../lib/which.ts'
import { WS_PEER_NAMES, WS_PEERS } from '../ws/peers.ts'
import { waitForWebSocket } from '../ws/ready.ts'
import type { Suite } from './suite.ts'

const SCENARIOS = ['echo-1', 'echo-16', 'fanout', 'memory'] as const
type ScenarioName = (typeof SCENARIOS)[number]

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'load before each measured run, not counted' },
  {
    name: 'repeat',
    type: 'integer',
    valueName: 'N',
    min: 1,
    default: 1,
    description: 'runs per (scenario, peer), interleaved across peers; medians are reported',
  },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 100, description: 'connections in the echo scenarios' },
  { name: 'size', type: 'integer', valueName: 'BYTES', min: 1, default: 32, description: 'text message size in the echo scenarios' },
  { name: 'subscribers', type: 'integer', valueName: 'N', min: 1, default: 10_000, description: 'subscribers in the fanout scenario' },
  { name: 'rate', type: 'integer', valueName: 'N', min: 1, default: 100, description: 'messages published per second in the fanout scenario' },
  {
    name: 'fanout-size',
    type: 'integer',
    valueName: 'BYTES',
    min: 16,
    default: 64,
    description: 'published message size (the first 16 bytes are its send time)',
  },
  { name: 'idle', type: 'integer', valueName: 'N', min: 1, default: 10_000, description: 'idle connections held in the memory scenario' },
  { name: 'only', type: 'string', valueName: 'PEERS', default: WS_PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: SCENARIOS.join(','), description: 'comma-separated scenarios to run' },
])

/** Connections held before the memory scenario's first RSS reading (the server's first ones cost it more). */
const MEMORY_BASE = 100
/** Seconds the memory scenario waits after connecting before it reads the RSS. */
const MEMORY_SETTLE_SEC = 3
/** A generator still running this long after its expected end is stopped and its run failed. */
const GENERATOR_GRACE_MS = 120_000

/** What bench/ws/generator.ts prints (the fields of its three modes). */
interface GeneratorResult {
  readonly mode: 'echo' | 'fanout' | 'memory'
  readonly refused: number
  readonly disconnected: number
  readonly durationS?: number
  readonly messagesPerSec?: number
  readonly deliveriesPerSec?: number
  readonly offeredPerSec?: number
  readonly latencyMs?: { samples: number; p50: number; p90: number; p99: number; p999: number; max: number }
  readonly serverCpuUsPerMessage?: number | null
  readonly serverCpuPct?: number | null
  readonly generatorCpuUsPerMessage?: number | null
  readonly generatorCpuPct?: number
  readonly rssBeforeKb?: number
  readonly rssAfterKb?: number
  readonly bytesPerConnection?: number
  readonly connectS?: number
}

interface Cell {
  readonly peer: string
  readonly runs: GeneratorResult[]
  readonly notes: string[]
  skipped?: string
}

interface Settings {
  readonly durationSec: number
  readonly warmupSec: number
  readonly repeat: number
  readonly connections: number
  readonly size: number
  subscribers: number
  readonly rate: number
  readonly fanoutSize: number
  idle: number
}

/** The server could not be started: the peer is skipped from then on. */
class StartError extends Error {}

/** The open-files limit (soft, hard) of this process, which the servers and the generator inherit. */
function openFilesLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('Max open files'))
    const [soft, hard] = (line ?? '').split(/\s+/).slice(3, 5)
    const value = (text: string | undefined): number => (text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text))
    if (line !== undefined) return { soft: value(soft), hard: value(hard) }
  } catch {
    // Not Linux: assume nothing needs raising.
  }
  return { soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY }
}

/**
 * The command prefix that gives the servers and the generator enough descriptors for `need`
 * connections each (prlimit when the soft limit is too low and the hard one allows), or the
 * connection count the hard limit allows, with a note.
 */
function descriptorPlan(need: number): { prefix: string[]; allowed: number; note?: string } {
  const { soft, hard } = openFilesLimit()
  const headroom = 200
  if (soft >= need + headroom) return { prefix: [], allowed: need }
  const prlimit = [...findOnPath('prlimit'), '/usr/bin/prlimit'].find(isExecutable)
  if (hard >= need + headroom && prlimit !== undefined) {
    return { prefix: [prlimit, `--nofile=${need + headroom}:${hard}`], allowed: need, note: `open files raised to ${need + headroom} (soft limit ${soft})` }
  }
  const ceiling = Math.min(hard, prlimit === undefined ? soft : hard)
  const allowed = Math.max(1, ceiling - headroom)
  return {
    prefix: prlimit === undefined || ceiling === soft ? [] : [prlimit, `--nofile=${ceiling}:${hard}`],
    allowed,
    note: `open-files limit ${ceiling} (soft ${soft}, hard ${hard}): ${allowed.toLocaleString('en-US')} connections instead of ${need.toLocaleString('en-US')}`,
  }
}

function generatorArgs(scenario: ScenarioName, settings: Settings): string[] {
  const common = ['--duration', String(settings.durationSec), '--warmup', String(settings.warmupSec)]
  switch (scenario) {
    case 'echo-1':
    case 'echo-16':
      return [
        '--mode',
        'echo',
        '--connections',
        String(settings.connections),
        '--depth',
        scenario === 'echo-1' ? '1' : '16',
        '--size',
        String(settings.size),
        ...common,
      ]
    case 'fanout':
      return [
        '--mode',
        'fanout',
        '--subscribers',
        String(settings.subscribers),
        '--rate',
        String(settings.rate),
        '--size',
        String(settings.fanoutSize),
        ...common,
      ]
    case 'memory':
      return ['--mode', 'memory', '--base', String(MEMORY_BASE), '--idle', String(settings.idle), '--settle', String(MEMORY_SETTLE_SEC)]
  }
}

/** Roughly how long one run takes, in seconds (start, connect, warm-up, window, stop). */
function secondsPerRun(scenario: ScenarioName, settings: Settings): number {
  if (scenario === 'memory') return 2 * MEMORY_SETTLE_SEC + Math.ceil(settings.idle / 4000) + 2
  const connect = scenario === 'fanout' ? Math.ceil(settings.subscribers / 4000) : 0
  return settings.warmupSec + settings.durationSec + connect + 2
}

/** Runs the generator pinned to the load CPU; its JSON, or an error with its output's tail. */
async function runGenerator(prefix: readonly string[], args: readonly string[], expectedMs: number): Promise<GeneratorResult> {
  const command = [...prefix, 'taskset', '-c', String(WRK_CPU), process.execPath, join(BENCH_DIR, 'ws', 'generator.ts'), ...args]
  const tracked = startTracked(command[0]!, command.slice(1), { cwd: REPO_DIR }, false, true)
  const timer = setTimeout(() => tracked.child.kill('SIGKILL'), expectedMs + GENERATOR_GRACE_MS)
  const exit = await tracked.exited
  clearTimeout(timer)
  if (exit !== '0') throw new Error(`generator exited with ${exit}: ${tracked.outputTail().trim().split('\n').slice(-2).join(' | ')}`)
  return JSON.parse(tracked.stdout()) as GeneratorResult
}

async function measure(launchOn: (port: number) => Launch, scenario: ScenarioName, settings: Settings, prefix: readonly string[]): Promise<GeneratorResult> {
  const port = await freePort()
  const launch = launchOn(port)
  const command = [...prefix, 'taskset', '-c', String(SERVER_CPU), launch.command, ...launch.args]
  const server: Tracked = startTracked(command[0]!, command.slice(1), { cwd: launch.cwd })
  try {
    try {
      await waitForWebSocket(server, port)
    } catch (error) {
      throw new StartError((error as Error).message)
    }
    // Under prlimit the server is prlimit's child (prlimit execs, so the pid is the server's).
    const args = [...generatorArgs(scenario, settings), '--port', String(port), '--cpu-pids', String(server.pid)]
    const result = await runGenerator(prefix, args, secondsPerRun(scenario, settings) * 1000)
    if (server.hasExited()) throw new Error(`the server exited during the run: ${server.outputTail().trim().split('\n').slice(-2).join(' | ')}`)
    return result
  } finally {
    await stopTracked(server)
    launch.cleanup?.()
  }
}

function describe(result: GeneratorResult): string {
  const cpu = (value: number | null | undefined): string => (value === null || value === undefined ? 'n/a' : `${value.toFixed(2)} µs`)
  const lost = result.refused + result.disconnected > 0 ? `, ${result.refused} refused, ${result.disconnected} cut off` : ''
  switch (result.mode) {
    case 'echo':
      return `${wholeNumber(result.messagesPerSec!)} msgs/s, ${cpu(result.serverCpuUsPerMessage)}/msg, server ${Math.round(result.serverCpuPct ?? 0)} %, generator ${Math.round(result.generatorCpuPct ?? 0)} %${lost}`
    case 'fanout':
      return `${wholeNumber(result.deliveriesPerSec!)} deliveries/s, p99 ${result.latencyMs!.p99} ms, ${cpu(result.serverCpuUsPerMessage)}/delivery, server ${Math.round(result.serverCpuPct ?? 0)} %, generator ${Math.round(result.generatorCpuPct ?? 0)} %${lost}`
    case 'memory':
      return `${((result.bytesPerConnection ?? 0) / 1024).toFixed(2)} KiB/connection (RSS ${Math.round(result.rssBeforeKb! / 1024)} → ${Math.round(result.rssAfterKb! / 1024)} MB)${lost}`
  }
}

// ---- tables ----

const m = (runs: readonly GeneratorResult[], pick: (run: GeneratorResult) => number | null | undefined): number =>
  median(runs.map(pick).filter((value): value is number => typeof value === 'number' && Number.isFinite(value)))

/** The scenario's headline figure: messages/s, deliveries/s, or bytes per connection. */
function headline(scenario: ScenarioName, run: GeneratorResult): number | undefined {
  if (scenario === 'memory') return run.bytesPerConnection
  if (scenario === 'fanout') return run.deliveriesPerSec
  return run.messagesPerSec
}

function columns(scenario: ScenarioName, repeat: number): Column[] {
  const right = (title: string): Column => ({ title, alignRight: true })
  const ofRuns = repeat > 1 ? ` (median of ${repeat})` : ''
  if (scenario === 'memory')
    return [
      { title: 'peer', alignRight: false },
      right(`KiB/connection${ofRuns}`),
      right('vs petrel'),
      right('RSS before MB'),
      right('RSS after MB'),
      right('lost'),
    ]
  const rate = scenario === 'fanout' ? 'deliveries/s' : 'msgs/s'
  return [
    { title: 'peer', alignRight: false },
    right(`${rate}${ofRuns}`),
    ...(repeat > 1 ? [right(`${rate} min–max`)] : []),
    right('vs petrel'),
    ...(scenario === 'fanout' ? [right('of offered')] : []),
    right(`CPU µs/${scenario === 'fanout' ? 'delivery' : 'msg'}`),
    right('server CPU'),
    right('generator CPU'),
    right('p50 ms'),
    right('p99 ms'),
    right('lost'),
  ]
}

function rows(scenario: ScenarioName, cells: readonly Cell[], repeat: number): string[][] {
  const base = cells.find((cell) => cell.peer === 'petrel')
  const baseFigure = base === undefined ? Number.NaN : m(base.runs, (run) => headline(scenario, run))
  return cells.map((cell) => {
    const width = columns(scenario, repeat).length
    if (cell.runs.length === 0) return [cell.peer, 'skipped', ...Array.from({ length: width - 2 }, () => '–')]
    const runs = cell.runs
    const figure = m(runs, (run) => headline(scenario, run))
    const ratio = Number.isNaN(baseFigure) ? '–' : `${(figure / baseFigure).toFixed(2)}×`
    const lost = runs.reduce((sum, run) => sum + run.refused + run.disconnected, 0)
    const partial = runs.length < repeat ? ` (${runs.length}/${repeat} runs)` : ''
    if (scenario === 'memory') {
      return [
        cell.peer,
        (figure / 1024).toFixed(2),
        ratio,
        wholeNumber(m(runs, (run) => run.rssBeforeKb) / 1024),
        wholeNumber(m(runs, (run) => run.rssAfterKb) / 1024),
        `${lost === 0 ? 'none' : `! ${lost}`}${partial}`,
      ]
    }
    const figures = runs.map((run) => headline(scenario, run) ?? Number.NaN)
    return [
      cell.peer,
      wholeNumber(figure),
      ...(repeat > 1 ? [`${wholeNumber(Math.min(...figures))}–${wholeNumber(Math.max(...figures))}`] : []),
      ratio,
      ...(scenario === 'fanout' ? [`${(m(runs, (run) => run.deliveriesPerSec! / run.offeredPerSec!) * 100).toFixed(1)} %`] : []),
      twoDigits(m(runs, (run) => run.serverCpuUsPerMessage)),
      `${Math.round(m(runs, (run) => run.serverCpuPct))} %`,
      `${Math.round(m(runs, (run) => run.generatorCpuPct))} %`,
      twoDigits(m(runs, (run) => run.latencyMs?.p50)),
      twoDigits(m(runs, (run) => run.latencyMs?.p99)),
      `${lost === 0 ? 'none' : `! ${lost}`}${partial}`,
    ]
  })
}

function description(scenario: ScenarioName, settings: Settings): string {
  switch (scenario) {
    case 'echo-1':
      return `echo, ${settings.connections} connections, ${settings.size}-byte text messages, one in flight per connection`
    case 'echo-16':
      return `echo, ${settings.connections} connections, ${settings.size}-byte text messages, 16 in flight per connection`
    case 'fanout':
      return `fan-out: ${settings.subscribers.toLocaleString('en-US')} subscribers of one topic, one publisher sending ${settings.rate} messages/s of ${settings.fanoutSize} bytes`
    case 'memory':
      return `memory: ${settings.idle.toLocaleString('en-US')} idle WebSockets held (after ${MEMORY_BASE}); the server's RSS after ${MEMORY_SETTLE_SEC} s, before and after`
  }
}

function cellNotes(cells: readonly Cell[]): string[] {
  return cells.flatMap((cell) => [
    ...(cell.skipped === undefined ? [] : [`${cell.peer}: skipped: ${cell.skipped}`]),
    ...cell.notes.map((note) => `${cell.peer}: ${note}`),
  ])
}

// ---- targets (issue 23), informational ----

const TARGETS: readonly { scenario: ScenarioName; peer: string; atLeast: number }[] = [
  { scenario: 'echo-1', peer: 'ws', atLeast: 1.3 },
  { scenario: 'echo-1', peer: 'uws', atLeast: 0.95 },
  { scenario: 'echo-16', peer: 'ws', atLeast: 5 },
  { scenario: 'echo-16', peer: 'uws', atLeast: 0.8 },
  { scenario: 'fanout', peer: 'ws', atLeast: 3 },
  { scenario: 'fanout', peer: 'uws', atLeast: 0.8 },
]

function targetLines(results: ReadonlyMap<ScenarioName, readonly Cell[]>): string[] {
  const lines: string[] = []
  for (const target of TARGETS) {
    const cells = results.get(target.scenario)
    const petrel = cells?.find((cell) => cell.peer === 'petrel')
    const peer = cells?.find((cell) => cell.peer === target.peer)
    if (petrel === undefined || peer === undefined || petrel.runs.length === 0 || peer.runs.length === 0) continue
    const ratio = m(petrel.runs, (run) => headline(target.scenario, run)) / m(peer.runs, (run) => headline(target.scenario, run))
    const byCpu = m(peer.runs, (run) => run.serverCpuUsPerMessage) / m(petrel.runs, (run) => run.serverCpuUsPerMessage)
    lines.push(
      `${target.scenario}: Petrel ≥ ${target.atLeast}× ${target.peer}: ${ratio.toFixed(2)}× (${ratio >= target.atLeast ? 'met' : 'missed'}); by CPU µs/${target.scenario === 'fanout' ? 'delivery' : 'msg'} ${byCpu.toFixed(2)}×`,
    )
  }
  return lines
}

// ---- the run ----

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'ws')
  const settings: Settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    connections: flags.get('connections'),
    size: flags.get('size'),
    subscribers: flags.get('subscribers'),
    rate: flags.get('rate'),
    fanoutSize: flags.get('fanout-size'),
    idle: flags.get('idle'),
  }
  const peerNames = listOf('only', flags.get('only'), WS_PEER_NAMES)
  const scenarios = listOf('scenario', flags.get('scenario'), SCENARIOS)
  if ([...findOnPath('taskset'), '/usr/bin/taskset'].find(isExecutable) === undefined) {
    console.error('taskset not found: apt-get install util-linux')
    return 2
  }
  const startedAt = new Date().toISOString()
  const revision = startTracked('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR }, false, true)
  const petrelRevision = (await revision.exited) === '0' ? revision.stdout().trim() : 'no commit yet'

  // Each server and the generator hold every connection of the largest scenario at once.
  const largest = Math.max(
    scenarios.includes('fanout') ? settings.subscribers + 1 : 0,
    scenarios.includes('memory') ? settings.idle + MEMORY_BASE : 0,
    settings.connections,
  )
  const descriptors = descriptorPlan(largest)
  const runNotes: string[] = []
  if (descriptors.note !== undefined) {
    runNotes.push(descriptors.note)
    console.log(descriptors.note)
  }
  if (descriptors.allowed < largest) {
    settings.subscribers = Math.min(settings.subscribers, descriptors.allowed - 1)
    settings.idle = Math.min(settings.idle, descriptors.allowed - MEMORY_BASE)
  }

  const { runnables, infos } = await probePeers(WS_PEERS, peerNames)
  const active = runnables.filter((peer) => peer.skipped === undefined).length
  const total = scenarios.reduce((sum, scenario) => sum + active * settings.repeat * secondsPerRun(scenario, settings), 0)
  console.log(
    `ws: server on CPU ${SERVER_CPU}, generator (bench/ws/generator.ts) on CPU ${WRK_CPU}; about ${Math.ceil(total / 60)} min: ${scenarios.length} scenario(s) × ${active} peer(s) × ${settings.repeat} run(s)\n`,
  )

  const results = new Map<ScenarioName, Cell[]>()
  const texts: string[] = []
  const markdown: string[] = []
  for (const scenario of scenarios) {
    console.log(`${scenario}: ${description(scenario, settings)}`)
    const cells: Cell[] = runnables.map((peer) => ({ peer: peer.name, runs: [], notes: [], skipped: peer.skipped }))
    for (let repetition = 1; repetition <= settings.repeat; repetition++) {
      for (const [index, peer] of runnables.entries()) {
        const cell = cells[index]!
        if (peer.launchOn === undefined || peer.skipped !== undefined) {
          if (cell.runs.length === 0) cell.skipped ??= peer.skipped
          continue
        }
        process.stdout.write(`  ${scenario} ${peer.name}${settings.repeat > 1 ? ` run ${repetition}/${settings.repeat}` : ''} … `)
        try {
          const result = await measure(peer.launchOn, scenario, settings, descriptors.prefix)
          cell.runs.push(result)
          console.log(describe(result))
        } catch (error) {
          const message = (error as Error).message
          console.log(`failed: ${message}`)
          if (error instanceof StartError) {
            peer.skipped = `did not start: ${message}`
            if (cell.runs.length === 0) cell.skipped = peer.skipped
            else cell.notes.push(peer.skipped)
          } else cell.notes.push(`run ${repetition} failed: ${message}`)
        }
      }
    }
    for (const cell of cells) if (cell.runs.length === 0 && cell.skipped === undefined) cell.skipped = 'every run failed'
    results.set(scenario, cells)
    const heading = `${scenario}: ${description(scenario, settings)}${scenario === 'memory' ? '' : `; ${settings.durationSec} s per run after ${settings.warmupSec} s`} × ${settings.repeat}`
    const notes = cellNotes(cells)
    const tableRows = rows(scenario, cells, settings.repeat)
    texts.push([heading, textTable(columns(scenario, settings.repeat), tableRows), ...notes.map((note) => `  ${note}`), ''].join('\n'))
    console.log(`\n${texts.at(-1)}`)
    markdown.push(
      `## ${scenario}`,
      '',
      `${description(scenario, settings)}.`,
      '',
      markdownTable(columns(scenario, settings.repeat), tableRows),
      '',
      ...notes.map((note) => `- ${note}`),
      '',
    )
  }

  const targets = targetLines(results)
  if (targets.length > 0) console.log(['targets:', ...targets.map((line) => `  ${line}`), ''].join('\n'))
  const machine = machineFacts()
  const report = [
    `# ws (${startedAt})`,
    '',
    `Each server started afresh per run, pinned to CPU ${SERVER_CPU}; the load generator (bench/ws/generator.ts, one Node process, raw TCP) pinned to CPU ${WRK_CPU}. ` +
      `${settings.durationSec} s measured after ${settings.warmupSec} s of load${settings.repeat > 1 ? `; medians of ${settings.repeat} runs interleaved across peers` : ''}. ` +
      "CPU µs per message: the server process's user + system time over the measured window (/proc), divided by the messages (echo) or deliveries (fan-out) the generator read in it. " +
      "Latency: echo, from the write that sent a message to the read that brought its echo back; fan-out, from the send time in the payload to the probe subscriber's read (one subscriber in ten), one clock. " +
      '"lost": connections refused or cut off during the runs.',
    '',
    `- CPU: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs, ${machine.memoryGiB} GiB; kernel ${machine.kernel}; harness node ${machine.harnessNode}`,
    `- petrel revision: ${petrelRevision}`,
    ...infos.map((info) => `- ${info.name}: ${info.version ?? `skipped: ${info.skipped ?? 'unknown reason'}`}`),
    ...runNotes.map((note) => `- ${note}`),
    '',
    ...markdown,
    ...(targets.length === 0 ? [] : ['## Targets (issue 23)', '', ...targets.map((line) => `- ${line}`), '']),
  ].join('\n')
  const written = writeResultFiles('ws', startedAt, report, {
    suite: 'ws',
    startedAt,
    finishedAt: new Date().toISOString(),
    petrelRevision,
    machine: { ...machine, serverCpu: SERVER_CPU, generatorCpu: WRK_CPU },
    settings,
    peers: infos,
    notes: runNotes,
    scenarios: Object.fromEntries(results),
    targets,
  })
  console.log(`wrote ${written.join(', ')}`)
  return [...results.values()].some((cells) => cells.some((cell) => cell.runs.length > 0)) ? 0 : 1
}

export const wsSuite: Suite = {
  name: 'ws',
  summary: 'WebSocket: Petrel vs ws, uWebSockets.js, Bun and a node:net floor — echo (1 and 16 in flight), fan-out to 10,000, memory per idle connection',
  flags: FLAGS,
  passThrough: false,
  run,
}
