// Renders an H2Report as terminal tables and as the markdown + JSON result files, and checks
// the issue's targets (informational: they never change the exit code).

import { cellNotes, machineLines, twoDigits, wholeNumber, writeResultFiles } from '../lib/report.ts'
import { summarize, type Cell, type PeerInfo } from '../lib/results.ts'
import type { ReportHeader } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import type { H2Measurement } from './measure.ts'
import type { H2PeerName } from './peers.ts'
import type { H2ScenarioName } from './scenarios.ts'

const BASELINE_PEER = 'petrel'

export interface H2ScenarioResult {
  readonly name: H2ScenarioName
  readonly description: string
  readonly cells: Cell<H2Measurement>[]
}

export interface H2Target {
  readonly scenario: H2ScenarioName
  /** e.g. "Petrel ≥ 0.8× nginx". */
  readonly goal: string
  /** Petrel's req/s ÷ the peer's; null when either has no numbers. */
  readonly ratio: number | null
  readonly minimum: number
  readonly met: boolean | null
  /** The peer's server CPU µs/request ÷ Petrel's: the same comparison by cost, which holds when req/s is capped elsewhere. */
  readonly cpuRatio: number | null
  /** Set when a side's server used less than SATURATED_PERCENT of its core: its req/s was capped by h2load or the machine. */
  readonly note?: string
}

/** Below this share of its core a server was not the limit: the generator's core was (or other tenants). */
const SATURATED_PERCENT = 90

export interface H2Report extends ReportHeader<'h2'> {
  readonly settings: {
    readonly durationSec: number
    readonly warmupSec: number
    readonly repeat: number
    readonly staticConnections: number
    readonly staticStreams: number
    readonly certificate: string
  }
  readonly peers: PeerInfo[]
  readonly scenarios: H2ScenarioResult[]
  targets: H2Target[]
}

const PLAINTEXT_SCENARIOS: readonly H2ScenarioName[] = ['tls-c10-m100', 'tls-c100-m10', 'clear-c10-m100', 'clear-c100-m10']

/** The issue's targets for /plaintext (docs/http2.md): Petrel's req/s over nginx's and node:http2's. */
const TARGETS: ReadonlyArray<{ scenario: H2ScenarioName; peer: H2PeerName; minimum: number }> = PLAINTEXT_SCENARIOS.flatMap((scenario) => [
  { scenario, peer: 'nginx' as const, minimum: 0.8 },
  { scenario, peer: 'node-http2' as const, minimum: 3 },
])

export function checkTargets(scenarios: readonly H2ScenarioResult[]): H2Target[] {
  const targets: H2Target[] = []
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
      goal: `Petrel ≥ ${target.minimum}× ${target.peer}`,
      ratio,
      minimum: target.minimum,
      met: ratio === null ? null : ratio >= target.minimum,
      cpuRatio: petrel === undefined || other === undefined ? null : other.cpuUsPerRequest / petrel.cpuUsPerRequest,
      ...(unsaturated ? { note: `a server below ${SATURATED_PERCENT} % CPU: req/s was capped elsewhere; compare CPU µs/req` } : {}),
    })
  }
  return targets
}

function targetLine(target: H2Target): string {
  if (target.met === null) return `${target.scenario}: ${target.goal}: not measured`
  const byCost = `; by CPU µs/req ${target.cpuRatio!.toFixed(2)}×`
  return `${target.scenario}: ${target.goal}: ${target.ratio!.toFixed(2)}× (${target.met ? 'met' : 'missed'})${byCost}${target.note === undefined ? '' : ` (${target.note})`}`
}

export function targetsText(targets: readonly H2Target[]): string {
  return ['targets:', ...targets.map((target) => `  ${targetLine(target)}`)].join('\n')
}

/**
 * The http suite's columns, with h2load's figures where wrk's were: its mean time per request
 * (h2load gives no percentiles) and the response header bytes per request on the wire (HPACK's
 * work, or an HTTP/1.1 head). A run with any failed request is not a number here but a note
 * under the table, and the errors column counts such runs.
 */
function columns(repeat: number): Column[] {
  return [
    { title: 'peer', alignRight: false },
    { title: 'protocol', alignRight: false },
    { title: repeat > 1 ? `req/s (median of ${repeat})` : 'req/s', alignRight: true },
    ...(repeat > 1 ? [{ title: 'req/s min–max', alignRight: true }] : []),
    { title: `vs ${BASELINE_PEER}`, alignRight: true },
    { title: 'CPU µs/req', alignRight: true },
    { title: 'server CPU', alignRight: true },
    { title: 'MB/s', alignRight: true },
    { title: 'mean ms', alignRight: true },
    { title: 'header B/req', alignRight: true },
    { title: 'errors', alignRight: false },
  ]
}

function rows(cells: readonly Cell<H2Measurement>[], repeat: number): string[][] {
  const base = summarize(cells.find((cell) => cell.peer === BASELINE_PEER)?.runs ?? [])
  return cells.map((cell) => {
    const summary = summarize(cell.runs)
    const failedRuns = cell.notes.filter((note) => /^run \d+ failed/.test(note)).length
    if (summary === undefined)
      return [cell.peer, '–', 'skipped', ...(repeat > 1 ? ['–'] : []), '–', '–', '–', '–', '–', '–', failedRuns > 0 ? `! ${failedRuns} failed` : '–']
    const runs = cell.runs
    return [
      cell.peer,
      [...new Set(runs.map((run) => run.protocol))].join(', '),
      wholeNumber(summary.requestsPerSec),
      ...(repeat > 1 ? [`${wholeNumber(summary.minRequestsPerSec)}–${wholeNumber(summary.maxRequestsPerSec)}`] : []),
      base === undefined ? '–' : `${(summary.requestsPerSec / base.requestsPerSec).toFixed(2)}×`,
      twoDigits(summary.cpuUsPerRequest),
      `${Math.round(summary.serverCpuPercent)} %`,
      (summary.bytesPerSec / 1e6).toFixed(1),
      twoDigits(median(runs.map((run) => run.requestMeanMs))),
      median(runs.map((run) => run.headerBytesPerRequest)).toFixed(1),
      failedRuns > 0 ? `! ${failedRuns} run(s) failed (${summary.runs}/${repeat} measured)` : 'none',
    ]
  })
}

export function scenarioText(scenario: H2ScenarioResult, report: H2Report): string {
  const { settings } = report
  const heading = `${scenario.name}: ${scenario.description}; ${settings.durationSec} s per run × ${settings.repeat}`
  return [
    heading,
    textTable(columns(settings.repeat), rows(scenario.cells, settings.repeat)),
    ...cellNotes(scenario.cells).map((note) => `  ${note}`),
    '',
  ].join('\n')
}

export function reportMarkdown(report: H2Report): string {
  const { machine, settings } = report
  const lines = [
    `# HTTP/2 benchmark, ${report.startedAt}`,
    '',
    'Produced by `npm run bench -- h2`; method in docs/benchmarks.md.',
    `Server pinned to CPU ${machine.serverCpu}, h2load (1 thread) to CPU ${machine.wrkCpu}. ` +
      `Every TLS peer uses the same certificate (${settings.certificate}, self-signed, made for the run). ` +
      `${settings.durationSec} s measured per run after a ${settings.warmupSec} s warm-up, ` +
      `${settings.repeat} run(s) per cell interleaved across peers; medians shown. ` +
      '"vs petrel" is peer req/s ÷ Petrel req/s. CPU µs/req is server user+system CPU ÷ requests completed. ' +
      'A run with a failed request, a non-2xx answer or a stalled connection counts as failed, not as a number.',
    '',
    ...machineLines(report),
    '',
  ]
  for (const scenario of report.scenarios) {
    lines.push(`## ${scenario.name}`, '', scenario.description, '', markdownTable(columns(settings.repeat), rows(scenario.cells, settings.repeat)), '')
    const notes = cellNotes(scenario.cells)
    if (notes.length > 0) lines.push(...notes.map((note) => `- ${note}`), '')
  }
  lines.push('## Targets', '', ...report.targets.map((target) => `- ${targetLine(target)}`), '')
  return lines.join('\n')
}

/** Writes bench/runs/h2-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: H2Report): string[] {
  return writeResultFiles('h2', report.startedAt, reportMarkdown(report), report)
}
