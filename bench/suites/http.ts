// The http suite: Petrel against node:http, Fastify, uWebSockets.js, Bun.serve and nginx, each
// on CPU 0 with wrk on CPU 1, in three scenarios (see bench/http/scenarios.ts). Method and
// caveats: docs/benchmarks.md.

import { availableParallelism } from 'node:os'
import { ensureBenchDependencies } from '../lib/bench-deps.ts'
import { capture } from '../lib/children.ts'
import { listOf, parseFlags, wholeNumber, type FlagSpec } from '../lib/flags.ts'
import { machineFacts } from '../lib/machine.ts'
import { REPO_DIR } from '../lib/paths.ts'
import { clockTicksPerSecond } from '../lib/proc-cpu.ts'
import { findOnPath, isExecutable } from '../lib/which.ts'
import { measureOnce, ServerStartError, type Bench } from '../http/measure.ts'
import { PEERS, PEER_NAMES, type Launch } from '../http/peers.ts'
import { scenarioText, writeReportFiles } from '../http/report.ts'
import type { Cell, HttpReport, PeerInfo, ScenarioResult } from '../http/results.ts'
import { buildScenario, SCENARIO_NAMES, type Scenario } from '../http/scenarios.ts'
import type { Suite } from './suite.ts'

const SERVER_CPU = 0
const WRK_CPU = 1

const FLAGS: readonly FlagSpec[] = [
  { name: 'duration', valueName: 'SECONDS', defaultValue: '10', description: 'length of each measured wrk run' },
  { name: 'warmup', valueName: 'SECONDS', defaultValue: '2', description: 'discarded wrk run before each measured one; 0 for none' },
  { name: 'connections', valueName: 'N', defaultValue: '100', description: 'wrk connections in the keepalive and pipeline scenarios' },
  { name: 'close-connections', valueName: 'N', defaultValue: '50', description: 'wrk connections in the close scenario' },
  { name: 'depth', valueName: 'N', defaultValue: '16', description: 'requests per pipelined batch in the pipeline scenario' },
  { name: 'only', valueName: 'PEERS', defaultValue: PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', valueName: 'NAMES', defaultValue: SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
  { name: 'repeat', valueName: 'N', defaultValue: '1', description: 'runs per (scenario, peer), interleaved across peers; medians are reported' }
]

interface Runnable {
  readonly name: string
  launchOn?: (port: number) => Launch
  /** Set when the peer cannot run (probe) or stopped running (failed to start once). */
  skipped?: string
}

function findTool (name: string, fallback: string): string | undefined {
  return [...findOnPath(name), fallback].find(isExecutable)
}

async function probePeers (names: readonly string[]): Promise<{ runnables: Runnable[], infos: PeerInfo[] }> {
  const runnables: Runnable[] = []
  const infos: PeerInfo[] = []
  for (const peer of PEERS.filter((candidate) => names.includes(candidate.name))) {
    const probe = await peer.probe()
    if (probe.ok) {
      console.log(`  ${peer.name.padEnd(10)} ${probe.version}`)
      runnables.push({ name: peer.name, launchOn: probe.launch })
      infos.push({ name: peer.name, version: probe.version })
    } else {
      console.log(`  ${peer.name.padEnd(10)} skipped: ${probe.reason}`)
      runnables.push({ name: peer.name, skipped: probe.reason })
      infos.push({ name: peer.name, skipped: probe.reason })
    }
  }
  return { runnables, infos }
}

const SILENT_CLOSE_NOTE = 'answers `Connection: close` requests without `Connection: close` in the response ' +
  '(RFC 9112 §9.6 says it SHOULD), so wrk counts a read error per request; requests are still counted'

async function runScenario (scenario: Scenario, runnables: readonly Runnable[], bench: Bench, repeat: number): Promise<ScenarioResult> {
  const cells: Cell[] = runnables.map((peer) => ({ peer: peer.name, runs: [], notes: [], skipped: peer.skipped }))
  // Repetitions on the outside, peers inside: each peer's runs are spread over the whole
  // period, so a burst of noise from other tenants hits every peer alike rather than one.
  for (let repetition = 1; repetition <= repeat; repetition++) {
    for (const [index, peer] of runnables.entries()) {
      if (peer.launchOn === undefined || peer.skipped !== undefined) continue
      const cell = cells[index]
      process.stdout.write(`  ${scenario.name} ${peer.name}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
      try {
        const measured = await measureOnce(peer.launchOn, scenario, bench)
        cell.runs.push(measured)
        const askedToClose = scenario.headers.includes('Connection: close')
        if (askedToClose && !measured.announcesClose && !cell.notes.includes(SILENT_CLOSE_NOTE)) cell.notes.push(SILENT_CLOSE_NOTE)
        console.log(`${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s`)
      } catch (error) {
        const message = (error as Error).message
        console.log(`failed: ${message}`)
        if (error instanceof ServerStartError) {
          // A server that did not start once will not start next time either: skip it from now on.
          peer.skipped = `did not start: ${message}`
          if (cell.runs.length === 0) cell.skipped = peer.skipped
          else cell.notes.push(peer.skipped)
        } else {
          cell.notes.push(`run ${repetition} failed: ${message}`)
        }
      }
    }
  }
  for (const cell of cells) {
    if (cell.runs.length === 0 && cell.skipped === undefined) cell.skipped = 'every run failed'
  }
  return { name: scenario.name, description: scenario.description, cells }
}

async function run (args: readonly string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS)
  const settings = {
    durationSec: wholeNumber(flags, 'duration', 1),
    warmupSec: wholeNumber(flags, 'warmup', 0),
    repeat: wholeNumber(flags, 'repeat', 1),
    connections: wholeNumber(flags, 'connections', 1),
    closeConnections: wholeNumber(flags, 'close-connections', 1),
    pipelineDepth: wholeNumber(flags, 'depth', 1)
  }
  const peerNames = listOf(flags, 'only', PEER_NAMES)
  const scenarios = listOf(flags, 'scenario', SCENARIO_NAMES).map((name) => buildScenario(name, settings))

  const wrkPath = findTool('wrk', '/usr/bin/wrk')
  if (wrkPath === undefined) {
    console.error('wrk not found: apt-get install wrk')
    return 2
  }
  if (findTool('taskset', '/usr/bin/taskset') === undefined) {
    console.error('taskset not found: apt-get install util-linux')
    return 2
  }
  const cpuCount = availableParallelism()
  if (cpuCount < 2) console.log(`warning: only ${cpuCount} CPU available; server and wrk will share it`)
  const wrkCpu = Math.min(WRK_CPU, cpuCount - 1)
  const wrkVersion = (await capture(wrkPath, ['-v'])).output.split('\n')[0].split(' Copyright')[0]
  const revision = await capture('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR })

  if (PEERS.some((peer) => peer.usesBenchPackages && peerNames.includes(peer.name))) await ensureBenchDependencies()
  console.log('peers:')
  const { runnables, infos } = await probePeers(peerNames)

  const bench: Bench = {
    wrkPath,
    serverCpu: SERVER_CPU,
    wrkCpu,
    clockTicksPerSec: clockTicksPerSecond(),
    durationSec: settings.durationSec,
    warmupSec: settings.warmupSec
  }
  const report: HttpReport = {
    suite: 'http',
    startedAt: new Date().toISOString(),
    finishedAt: '',
    petrelRevision: revision.code === '0' ? revision.output : 'no commit yet',
    machine: { ...machineFacts(), clockTicksPerSec: bench.clockTicksPerSec, serverCpu: SERVER_CPU, wrkCpu, wrk: wrkVersion },
    settings,
    peers: infos,
    scenarios: []
  }

  const runsPerScenario = runnables.filter((peer) => peer.skipped === undefined).length * settings.repeat
  const secondsPerRun = settings.durationSec + settings.warmupSec + 1
  console.log(`about ${Math.ceil(runsPerScenario * scenarios.length * secondsPerRun / 60)} min: ` +
    `${scenarios.length} scenario(s) × ${runsPerScenario} run(s) × ~${secondsPerRun} s\n`)

  for (const scenario of scenarios) {
    const result = await runScenario(scenario, runnables, bench, settings.repeat)
    report.scenarios.push(result)
    console.log(`\n${scenarioText(result, report)}`)
  }

  report.finishedAt = new Date().toISOString()
  const written = writeReportFiles(report)
  console.log(`wrote ${written.join(', ')}`)
  const measuredAnything = report.scenarios.some((scenario) => scenario.cells.some((cell) => cell.runs.length > 0))
  return measuredAnything ? 0 : 1
}

export const httpSuite: Suite = {
  name: 'http',
  summary: 'Petrel vs node:http, Fastify, uWebSockets.js, Bun.serve and nginx under wrk (keepalive, pipeline, close)',
  flags: FLAGS,
  passThrough: false,
  run
}
