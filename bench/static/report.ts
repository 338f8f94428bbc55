// Renders a StaticReport as terminal tables and as the markdown + JSON result files, and checks
// the issue's targets (informational: they never change the exit code).

import { cellNotes, machineLines, twoDigits, wholeNumber, writeResultFiles } from '../lib/report.ts'
import { summarize, type Cell, type CellSummary, type PeerInfo } from '../lib/results.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import { describeErrors, errorCount } from '../lib/wrk.ts'
import type { StaticFile } from './files.ts'
import type { ReportHeader } from '../lib/runner.ts'

const BASELINE_PEER = 'petrel'

export interface StaticScenarioResult {
  readonly name: string
  readonly description: string
  readonly file: StaticFile
  readonly byThroughput: boolean
  readonly cells: Cell[]
}

export interface TargetResult {
  readonly scenario: string
  /** e.g. "Petrel req/s ≥ 0.8× nginx". */
  readonly goal: string
  /** Petrel's figure ÷ the peer's; null when either has no numbers. */
  readonly ratio: number | null
  readonly minimum: number
  readonly met: boolean | null
  /** Set when a side's server was not saturated, so the ratio says more about wrk than about it. */
  readonly note?: string
}

/** Below this share of its core a server was not the limit: wrk's core was (or other tenants). */
const SATURATED_PERCENT = 90

/** The run's header (suite, times, revision, machine) as every suite writes it, then this suite's results. */
export interface StaticReport extends ReportHeader<'static'> {
  readonly settings: {
    readonly durationSec: number
    readonly warmupSec: number
    readonly repeat: number
    readonly connections: number
    readonly largeConnections: number
  }
  readonly files: readonly StaticFile[]
  readonly peers: PeerInfo[]
  readonly scenarios: StaticScenarioResult[]
  targets: TargetResult[]
}

/** MB = 10^6 bytes (wrk's own "Transfer/sec" uses MiB). Counts heads and bodies as wrk read them. */
const megabytes = (bytesPerSec: number): string => (Number.isFinite(bytesPerSec) ? (bytesPerSec / 1e6).toFixed(1) : 'n/a')

function columns(repeat: number): Column[] {
  return [
    { title: 'peer', alignRight: false },
    { title: repeat > 1 ? `req/s (median of ${repeat})` : 'req/s', alignRight: true },
    ...(repeat > 1 ? [{ title: 'req/s min–max', alignRight: true }] : []),
    { title: 'MB/s', alignRight: true },
    { title: `vs ${BASELINE_PEER}`, alignRight: true },
    { title: 'CPU µs/req', alignRight: true },
    { title: 'server CPU', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'errors', alignRight: false },
  ]
}

/** The figure a scenario is judged by: bytes/s for the large file, req/s otherwise. */
function headline(scenario: StaticScenarioResult, summary: CellSummary): number {
  return scenario.byThroughput ? summary.bytesPerSec : summary.requestsPerSec
}

function summaryOf(scenario: StaticScenarioResult, peer: string): CellSummary | undefined {
  return summarize(scenario.cells.find((cell) => cell.peer === peer)?.runs ?? [])
}

function rows(scenario: StaticScenarioResult, repeat: number): string[][] {
  const baseline = summaryOf(scenario, BASELINE_PEER)
  return scenario.cells.map((cell) => {
    const summary = summarize(cell.runs)
    if (summary === undefined) {
      return [cell.peer, 'skipped', ...(repeat > 1 ? ['–'] : []), '–', '–', '–', '–', '–', '–']
    }
    const errors = errorCount(summary.errors) === 0 ? 'none' : `! ${describeErrors(summary.errors)}`
    const partial = summary.runs < repeat ? ` (${summary.runs}/${repeat} runs)` : ''
    return [
      cell.peer,
      wholeNumber(summary.requestsPerSec),
      ...(repeat > 1 ? [`${wholeNumber(summary.minRequestsPerSec)}–${wholeNumber(summary.maxRequestsPerSec)}`] : []),
      megabytes(summary.bytesPerSec),
      baseline === undefined ? '–' : `${(headline(scenario, summary) / headline(scenario, baseline)).toFixed(2)}×`,
      twoDigits(summary.cpuUsPerRequest),
      `${Math.round(summary.serverCpuPercent)} %`,
      twoDigits(summary.latencyP99Ms),
      errors + partial,
    ]
  })
}

function heading(scenario: StaticScenarioResult, report: StaticReport): string {
  const { durationSec, repeat } = report.settings
  const judged = scenario.byThroughput ? '"vs petrel" compares MB/s' : '"vs petrel" compares req/s'
  return `${scenario.name}: ${scenario.description}; ${durationSec} s per run × ${repeat}; ${judged}`
}

export function scenarioText(scenario: StaticScenarioResult, report: StaticReport): string {
  const notesText = cellNotes(scenario.cells)
    .map((note) => `  ${note}`)
    .join('\n')
  return (
    `${heading(scenario, report)}\n${textTable(columns(report.settings.repeat), rows(scenario, report.settings.repeat))}` +
    `${notesText === '' ? '' : `\n${notesText}`}\n`
  )
}

/**
 * The issues' targets, by the scenario's figure (req/s, or bytes/s for 10 MiB): against nginx
 * 1 KiB ≥ 1.0×, 100 KiB ≥ 0.9× (issue 21: served from memory), 10 MiB ≥ 0.8×, and the gzip row
 * ≥ 1.0× (a variant compressed once against nginx compressing each response); every
 * uncompressed size ≥ 3× sirv (which does not compress, so has no gzip row).
 */
export function checkTargets(scenarios: readonly StaticScenarioResult[]): TargetResult[] {
  const goalsOf = (name: string): Array<{ peer: string; minimum: number }> => {
    if (name === '100k-gzip') return [{ peer: 'nginx', minimum: 1 }]
    const nginx = name === '1k' ? 1 : name === '100k' ? 0.9 : 0.8
    return [
      { peer: 'nginx', minimum: nginx },
      { peer: 'sirv', minimum: 3 },
    ]
  }
  return scenarios.flatMap((scenario) =>
    goalsOf(scenario.name).map(({ peer, minimum }) => {
      const petrel = summaryOf(scenario, BASELINE_PEER)
      const other = summaryOf(scenario, peer)
      const ratio = petrel === undefined || other === undefined ? null : headline(scenario, petrel) / headline(scenario, other)
      const unsaturated = petrel !== undefined && other !== undefined && Math.min(petrel.serverCpuPercent, other.serverCpuPercent) < SATURATED_PERCENT
      return {
        scenario: scenario.name,
        goal: `Petrel ${scenario.byThroughput ? 'bytes/s' : 'req/s'} ≥ ${minimum}× ${peer}`,
        ratio,
        minimum,
        met: ratio === null ? null : ratio >= minimum,
        ...(unsaturated
          ? {
              note:
                `server CPU Petrel ${Math.round(petrel.serverCpuPercent)} %, ${peer} ${Math.round(other.serverCpuPercent)} %: ` +
                `not both saturated, so wrk's core (or another tenant) was part of the limit; CPU µs/req Petrel ${twoDigits(petrel.cpuUsPerRequest)}, ${peer} ${twoDigits(other.cpuUsPerRequest)}`,
            }
          : {}),
      }
    }),
  )
}

function targetLine(target: TargetResult): string {
  const verdict = target.met === null ? 'n/a (no numbers for one side)' : `${target.ratio?.toFixed(2)}× — ${target.met ? 'met' : 'missed'}`
  return `${target.scenario.padEnd(5)} ${target.goal.padEnd(28)} ${verdict}${target.note === undefined ? '' : `\n        (${target.note})`}`
}

export function targetsText(targets: readonly TargetResult[]): string {
  return ['targets (informational, from the medians above):', ...targets.map((target) => `  ${targetLine(target)}`)].join('\n')
}

export function reportMarkdown(report: StaticReport): string {
  const { machine, settings } = report
  const lines = [
    `# Static-file benchmark, ${report.startedAt}`,
    '',
    'Produced by `npm run bench -- static`; method and caveats in docs/benchmarks.md.',
    `Server pinned to CPU ${machine.serverCpu}, wrk (1 thread) to CPU ${machine.wrkCpu}. ` +
      `${settings.durationSec} s measured per run after a ${settings.warmupSec} s warm-up, ` +
      `${settings.repeat} run(s) per cell interleaved across peers; medians shown. ` +
      'MB/s is bytes wrk read (heads and bodies) ÷ duration, MB = 10⁶ bytes. ' +
      '"vs petrel" is peer ÷ Petrel, in req/s for 1k and 100k and in MB/s for 10m. ' +
      'CPU µs/req is server user+system CPU ÷ requests completed.',
    '',
    ...machineLines(report),
    `- files: ${report.files.map((file) => `${file.urlPath} ${file.bytes.toLocaleString('en-US')} bytes`).join(', ')}`,
    '',
  ]
  for (const scenario of report.scenarios) {
    lines.push(`## ${scenario.name}`, '', scenario.description, '', markdownTable(columns(settings.repeat), rows(scenario, settings.repeat)), '')
    const notes = cellNotes(scenario.cells)
    if (notes.length > 0) lines.push(...notes.map((note) => `- ${note}`), '')
  }
  lines.push(
    '## Targets',
    '',
    'Informational; from the medians above.',
    '',
    markdownTable(
      [
        { title: 'scenario', alignRight: false },
        { title: 'goal', alignRight: false },
        { title: 'Petrel ÷ peer', alignRight: true },
        { title: 'verdict', alignRight: false },
        { title: 'note', alignRight: false },
      ],
      report.targets.map((target) => [
        target.scenario,
        target.goal,
        target.ratio === null ? 'n/a' : `${target.ratio.toFixed(2)}×`,
        target.met === null ? 'n/a' : target.met ? 'met' : 'missed',
        target.note ?? '',
      ]),
    ),
    '',
  )
  return lines.join('\n')
}

/** Writes bench/runs/static-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: StaticReport): string[] {
  return writeResultFiles('static', report.startedAt, reportMarkdown(report), report)
}
