// Renders a TlsReport as terminal tables and as the markdown + JSON result files, and checks
// the issue's targets (informational: they never change the exit code).

import { cellNotes, machineLines, requestScenarioMarkdown, requestScenarioText, writeResultFiles } from '../lib/report.ts'
import { summarize, type Cell, type PeerInfo } from '../lib/results.ts'
import type { ReportHeader } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import type { TlsMeasurement } from './measure.ts'
import type { TlsPeerName } from './peers.ts'
import type { TlsScenarioName } from './scenarios.ts'

const BASELINE_PEER = 'petrel'

export interface TlsScenarioResult {
  readonly name: TlsScenarioName
  readonly description: string
  readonly cells: Cell<TlsMeasurement>[]
}

export interface TlsTarget {
  readonly scenario: TlsScenarioName
  /** e.g. "Petrel ≥ 0.85× nginx". */
  readonly goal: string
  /** Petrel's req/s ÷ the peer's; null when either has no numbers. */
  readonly ratio: number | null
  readonly minimum: number
  readonly met: boolean | null
  /** The peer's server CPU µs/request ÷ Petrel's: the same comparison by cost, which holds when req/s is capped elsewhere. */
  readonly cpuRatio: number | null
  /** Set when a side's server used less than SATURATED_PERCENT of its core: its req/s was capped by the generator or the machine. */
  readonly note?: string
}

/** Below this share of its core a server was not the limit: the generator's core was (or other tenants). */
const SATURATED_PERCENT = 90

export interface TlsReport extends ReportHeader<'tls'> {
  readonly settings: {
    readonly durationSec: number
    readonly warmupSec: number
    readonly repeat: number
    readonly connections: number
    readonly closeConnections: number
    readonly staticConnections: number
    readonly certificate: string
  }
  readonly peers: PeerInfo[]
  readonly scenarios: TlsScenarioResult[]
  targets: TlsTarget[]
}

/** The issue's targets: Petrel's req/s over each peer's, per scenario. */
const TARGETS: ReadonlyArray<{ scenario: TlsScenarioName; peer: TlsPeerName; minimum: number; goal?: true }> = [
  { scenario: 'keepalive', peer: 'nginx', minimum: 0.85 },
  { scenario: 'keepalive', peer: 'node-https', minimum: 1.3 },
  { scenario: 'keepalive', peer: 'tls-floor', minimum: 0.95 },
  { scenario: 'handshake', peer: 'tls-floor', minimum: 0.95 },
  { scenario: 'handshake', peer: 'node-https', minimum: 1.0 },
  { scenario: 'handshake', peer: 'nginx', minimum: 0.5, goal: true },
  { scenario: 'static-100k', peer: 'nginx', minimum: 0.8 },
]

export function checkTargets(scenarios: readonly TlsScenarioResult[]): TlsTarget[] {
  const targets: TlsTarget[] = []
  for (const target of TARGETS) {
    const scenario = scenarios.find((candidate) => candidate.name === target.scenario)
    if (scenario === undefined) continue
    const cell = (peer: string) => summarize(scenario.cells.find((candidate) => candidate.peer === peer)?.runs ?? [])
    const petrel = cell(BASELINE_PEER)
    const other = cell(target.peer)
    const ratio = petrel === undefined || other === undefined ? null : petrel.requestsPerSec / other.requestsPerSec
    const unsaturated = [petrel, other].some((side) => side !== undefined && side.serverCpuPercent < SATURATED_PERCENT)
    targets.push({
      scenario: target.scenario,
      goal: `Petrel ≥ ${target.minimum}× ${target.peer}${target.goal === true ? ' (a goal, not a target)' : ''}`,
      ratio,
      minimum: target.minimum,
      met: ratio === null ? null : ratio >= target.minimum,
      cpuRatio: petrel === undefined || other === undefined ? null : other.cpuUsPerRequest / petrel.cpuUsPerRequest,
      ...(unsaturated ? { note: `a server below ${SATURATED_PERCENT} % CPU: req/s was capped elsewhere; compare CPU µs/req` } : {}),
    })
  }
  return targets
}

function targetLine(target: TlsTarget): string {
  if (target.met === null) return `${target.scenario}: ${target.goal}: not measured`
  const byCost = `; by CPU µs/req ${target.cpuRatio!.toFixed(2)}×`
  return `${target.scenario}: ${target.goal}: ${target.ratio!.toFixed(2)}× (${target.met ? 'met' : 'missed'})${byCost}${target.note === undefined ? '' : ` (${target.note})`}`
}

export function targetsText(targets: readonly TlsTarget[]): string {
  return ['targets:', ...targets.map((target) => `  ${targetLine(target)}`)].join('\n')
}

/** Skips and failed runs, then what share of petrel bench's handshakes resumed (the resumed scenario's premise). */
function notes(scenario: TlsScenarioResult): string[] {
  const resumption = scenario.cells.flatMap((cell) => {
    const shares = cell.runs.flatMap((run) => (run.resumedPercent === undefined ? [] : [run.resumedPercent]))
    return shares.length === 0 ? [] : [`${cell.peer}: ${median(shares).toFixed(1)} % of handshakes resumed a session`]
  })
  return [...cellNotes(scenario.cells), ...resumption]
}

export function scenarioText(scenario: TlsScenarioResult, report: TlsReport): string {
  return requestScenarioText(scenario, report.settings, notes(scenario), BASELINE_PEER)
}

export function reportMarkdown(report: TlsReport): string {
  const { machine, settings } = report
  const lines = [
    `# TLS benchmark, ${report.startedAt}`,
    '',
    'Produced by `npm run bench -- tls`; method and findings in docs/tls.md.',
    `Server pinned to CPU ${machine.serverCpu}, the generator (wrk, 1 thread; petrel bench in the resumed scenario) to CPU ${machine.wrkCpu}. ` +
      `Every peer uses the same certificate (${settings.certificate}, self-signed, made for the run). ` +
      `${settings.durationSec} s measured per run after a ${settings.warmupSec} s warm-up, ` +
      `${settings.repeat} run(s) per cell interleaved across peers; medians shown. ` +
      '"vs petrel" is peer req/s ÷ Petrel req/s. CPU µs/req is server user+system CPU ÷ requests completed.',
    '',
    ...machineLines(report),
    '',
  ]
  for (const scenario of report.scenarios) lines.push(...requestScenarioMarkdown(scenario, settings.repeat, notes(scenario), BASELINE_PEER))
  lines.push('## Targets', '', ...report.targets.map((target) => `- ${targetLine(target)}`), '')
  return lines.join('\n')
}

/** Writes bench/runs/tls-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: TlsReport): string[] {
  return writeResultFiles('tls', report.startedAt, reportMarkdown(report), report)
}
