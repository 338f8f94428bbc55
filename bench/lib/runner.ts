// The parts of a wrk suite's run that do not depend on what is measured: finding the tools,
// probing the peers, and running (scenario × peer × repetition) interleaved, with skips.

import { availableParallelism } from 'node:os'
import { ensureBenchDependencies } from './bench-deps.ts'
import { capture } from './children.ts'
import { machineFacts, type MachineFacts } from './machine.ts'
import { ServerStartError, type Bench, type RunMeasurement } from './measure.ts'
import { clockTicksPerSecond } from './proc-cpu.ts'
import { REPO_DIR } from './paths.ts'
import type { Launch, Peer } from './peers.ts'
import type { Cell, PeerInfo } from './results.ts'
import { findOnPath, isExecutable } from './which.ts'

export const SERVER_CPU = 0
export const WRK_CPU = 1

export interface LoadTools {
  readonly wrkPath: string
  readonly wrkVersion: string
  /** CPU 1, or CPU 0 (shared with the server) on a one-CPU machine. */
  readonly wrkCpu: number
  /** `git rev-parse --short HEAD` of the repo, i.e. which Petrel is measured. */
  readonly petrelRevision: string
}

function findTool(name: string, fallback: string): string | undefined {
  return [...findOnPath(name), fallback].find(isExecutable)
}

/** The program a suite drives as its load generator; wrk unless the suite says otherwise. */
export interface LoadGenerator {
  readonly name: string
  /** Where Debian puts it, for a PATH without it. */
  readonly fallback: string
  /** What to install when it is missing: printed, and the suite exits 2. */
  readonly install: string
  /** Arguments that print its version on the first line. */
  readonly versionArgs: readonly string[]
}

export const WRK: LoadGenerator = { name: 'wrk', fallback: '/usr/bin/wrk', install: 'apt-get install wrk', versionArgs: ['-v'] }

/**
 * The load generator (wrk by default) and taskset, or a message saying what to install (the
 * suite then exits 2). `wrkPath` and `wrkVersion` name whichever generator it is.
 */
export async function findLoadTools(generator: LoadGenerator = WRK): Promise<LoadTools | { readonly missing: string }> {
  const wrkPath = findTool(generator.name, generator.fallback)
  if (wrkPath === undefined) return { missing: `${generator.name} not found: ${generator.install}` }
  if (findTool('taskset', '/usr/bin/taskset') === undefined) return { missing: 'taskset not found: apt-get install util-linux' }
  const cpuCount = availableParallelism()
  if (cpuCount < 2) console.log(`warning: only ${cpuCount} CPU available; server and ${generator.name} will share it`)
  const [firstLine = ''] = (await capture(wrkPath, [...generator.versionArgs])).output.split('\n')
  const [wrkVersion = ''] = firstLine.split(' Copyright')
  const revision = await capture('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR })
  return {
    wrkPath,
    wrkVersion,
    wrkCpu: Math.min(WRK_CPU, cpuCount - 1),
    petrelRevision: revision.code === '0' ? revision.output : 'no commit yet',
  }
}

/** The run-wide measurement settings every wrk suite passes to its measurements. */
export function makeBench(tools: LoadTools, durationSec: number, warmupSec: number): Bench {
  return { wrkPath: tools.wrkPath, serverCpu: SERVER_CPU, wrkCpu: tools.wrkCpu, clockTicksPerSec: clockTicksPerSecond(), durationSec, warmupSec }
}

/** The machine a report was measured on; suites that pin the server add serverCpu. */
export type ReportMachine = MachineFacts & { clockTicksPerSec: number; wrkCpu: number; wrk: string }
type Machine = ReportMachine

export interface ReportHeader<S extends string, M = Machine & { serverCpu: number }> {
  suite: S
  startedAt: string
  finishedAt: string
  petrelRevision: string
  machine: M
}

/**
 * What every suite's report says about where and on what it ran. `serverCpu: false` leaves the
 * server's CPU out, for a suite whose placements choose the server's CPUs themselves.
 */
export function reportHeader<S extends string>(suite: S, tools: LoadTools, bench: Bench): ReportHeader<S>
export function reportHeader<S extends string>(suite: S, tools: LoadTools, bench: Bench, options: { serverCpu: false }): ReportHeader<S, Machine>
export function reportHeader<S extends string>(
  suite: S,
  tools: LoadTools,
  bench: Bench,
  options: { serverCpu?: false } = {},
): ReportHeader<S, Machine & { serverCpu?: number }> {
  const machine: Machine = { ...machineFacts(), clockTicksPerSec: bench.clockTicksPerSec, wrkCpu: tools.wrkCpu, wrk: tools.wrkVersion }
  return {
    suite,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    petrelRevision: tools.petrelRevision,
    machine: options.serverCpu === false ? machine : { ...machine, serverCpu: bench.serverCpu },
  }
}

export interface Runnable {
  readonly name: string
  launchOn?: (port: number) => Launch
  /** Set when the peer cannot run (probe) or stopped running (failed to start once). */
  skipped?: string
}

/** Installs missing bench packages the chosen peers need, probes them and prints one line each. */
export async function probePeers(peers: readonly Peer[], names: readonly string[]): Promise<{ runnables: Runnable[]; infos: PeerInfo[] }> {
  const chosen = peers.filter((candidate) => names.includes(candidate.name))
  const packages = chosen.flatMap((peer) => peer.benchPackages)
  if (packages.length > 0) await ensureBenchDependencies(packages)
  console.log('peers:')
  const runnables: Runnable[] = []
  const infos: PeerInfo[] = []
  for (const peer of chosen) {
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

export interface ScenarioRun<M extends RunMeasurement> {
  /** Shown before the peer on each progress line; '' for a suite with one unnamed scenario. */
  readonly name: string
  readonly repeat: number
  measure(launchOn: (port: number) => Launch): Promise<M>
  /** Why this peer is left out of this scenario only (e.g. it served a file wrongly); undefined to run it. */
  skipHere?: (peer: string) => string | undefined
  /** The progress line's result, e.g. "12,345 req/s". */
  describe(measured: M): string
  /** Adds remarks on a run to its cell's notes. */
  afterRun?: (cell: Cell<M>, measured: M) => void
}

/**
 * Runs every runnable peer `repeat` times in one scenario. Repetitions are on the outside and
 * peers inside: each peer's runs are spread over the whole period, so a burst of noise from
 * other tenants hits every peer alike rather than one. A server that does not start once is
 * skipped from then on (in later scenarios too); a run that fails otherwise becomes a note.
 */
export async function runScenario<M extends RunMeasurement>(scenario: ScenarioRun<M>, runnables: readonly Runnable[]): Promise<Cell<M>[]> {
  const lanes = runnables.map((peer) => {
    const cell: Cell<M> = { peer: peer.name, runs: [], notes: [], skipped: peer.skipped ?? scenario.skipHere?.(peer.name) }
    return { peer, cell }
  })
  const cells = lanes.map(({ cell }) => cell)
  const { repeat } = scenario
  for (let repetition = 1; repetition <= repeat; repetition++) {
    for (const { peer, cell } of lanes) {
      if (peer.launchOn === undefined || peer.skipped !== undefined || (cell.runs.length === 0 && cell.skipped !== undefined)) continue
      process.stdout.write(`  ${scenario.name === '' ? '' : `${scenario.name} `}${peer.name}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
      try {
        const measured = await scenario.measure(peer.launchOn)
        cell.runs.push(measured)
        scenario.afterRun?.(cell, measured)
        console.log(scenario.describe(measured))
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
  return cells
}

/** Rough duration, printed before a suite starts; `runnablesPerScenario` lists each scenario's peers. */
export function estimateLine(runnablesPerScenario: readonly (readonly Runnable[])[], repeat: number, durationSec: number, warmupSec: number): string {
  const runs = runnablesPerScenario.map((runnables) => runnables.filter((peer) => peer.skipped === undefined).length * repeat)
  const total = runs.reduce((sum, count) => sum + count, 0)
  const secondsPerRun = durationSec + warmupSec + 1
  const shape = runs.every((count) => count === runs[0])
    ? `${runs.length} scenario(s) × ${runs[0] ?? 0} run(s)`
    : `${total} run(s) over ${runs.length} scenario(s)`
  return `about ${Math.ceil((total * secondsPerRun) / 60)} min: ${shape} × ~${secondsPerRun} s\n`
}

/** One scenario of a wrk suite: a ScenarioRun (without `repeat`, which is the suite's) and what follows its runs. */
export interface WrkScenario<M extends RunMeasurement> extends Omit<ScenarioRun<M>, 'repeat'> {
  /** Runs before this scenario's first run (e.g. stopping a server the earlier scenarios needed). */
  before?: () => Promise<void>
  /** The peers of this scenario when they are not the suite's (e.g. one server measured alone). */
  readonly runnables?: readonly Runnable[]
  /** Keeps the scenario's cells for the report and prints its table. */
  finish(cells: Cell<M>[]): void
}

export interface WrkSuite<M extends RunMeasurement> {
  /** The load generator the scenarios drive, when it is not wrk (the h2 suite's h2load). */
  readonly generator?: LoadGenerator
  readonly durationSec: number
  readonly warmupSec: number
  readonly repeat: number
  /**
   * Probes the peers (installing what they need) and readies whatever must exist before the
   * first run; `release` is called once the last run is over, whatever happened.
   */
  prepare(tools: LoadTools, bench: Bench): Promise<{ runnables: Runnable[]; release?: () => Promise<void> | void }>
  /** The scenarios, in the order they run. */
  scenarios(tools: LoadTools, bench: Bench, runnables: readonly Runnable[]): Promise<readonly WrkScenario<M>[]> | readonly WrkScenario<M>[]
  /** Writes the report (the finished scenarios are in it) and returns the paths written. */
  writeReport(): string[]
}

/**
 * The skeleton every wrk suite runs on: find wrk (or the suite's generator) and taskset (exit 2
 * naming what to install), prepare the peers, print the estimate, then per scenario run every peer `repeat` times,
 * interleaved, each run a fresh server pinned to its CPU with wrk on the other, warmed up and
 * measured with its CPU µs/request from /proc (measure.ts), and print the scenario's table of
 * medians; finally write the report and print where. Exits 0 when anything was measured, 1 when
 * nothing was.
 */
export async function runWrkSuite<M extends RunMeasurement>(suite: WrkSuite<M>): Promise<number> {
  const tools = await findLoadTools(suite.generator)
  if ('missing' in tools) {
    console.error(tools.missing)
    return 2
  }
  const bench = makeBench(tools, suite.durationSec, suite.warmupSec)
  const { runnables, release } = await suite.prepare(tools, bench)
  let measuredAnything = false
  try {
    const scenarios = await suite.scenarios(tools, bench, runnables)
    console.log(
      estimateLine(
        scenarios.map((scenario) => scenario.runnables ?? runnables),
        suite.repeat,
        suite.durationSec,
        suite.warmupSec,
      ),
    )
    for (const scenario of scenarios) {
      await scenario.before?.()
      const cells = await runScenario({ ...scenario, repeat: suite.repeat }, scenario.runnables ?? runnables)
      if (cells.some((cell) => cell.runs.length > 0)) measuredAnything = true
      scenario.finish(cells)
    }
  } finally {
    await release?.()
  }
  const written = suite.writeReport()
  console.log(`wrote ${written.join(', ')}`)
  return measuredAnything ? 0 : 1
}
