// The workers suite's results: one table per placement (peer, req/s, ratio to petrel-1, CPU
// µs/request) and a summary with both placements side by side; terminal text, markdown and JSON.

import { cellNotes, machineLines, twoDigits, wholeNumber, writeResultFiles, requestColumns, requestRows } from '../lib/report.ts'
import { summarize, type Cell, type CellSummary, type PeerInfo } from '../lib/results.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import { BASELINE_PEER } from './peers.ts'
import type { ReportHeader, ReportMachine } from '../lib/runner.ts'

export interface PlacementResult {
  readonly name: string
  readonly serverCpus: string
  readonly description: string
  readonly cells: Cell[]
}

/** The run's header (suite, times, revision, machine) as every suite writes it, then this suite's results. */
export interface WorkersReport extends ReportHeader<'workers', ReportMachine> {
  readonly settings: { readonly durationSec: number; readonly warmupSec: number; readonly repeat: number; readonly connections: number }
  /** The wrk load, the http suite's keepalive scenario. */
  readonly load: string
  readonly peers: PeerInfo[]
  readonly placements: PlacementResult[]
}

function baselineOf(placement: PlacementResult): CellSummary | undefined {
  return summarize(placement.cells.find((cell) => cell.peer === BASELINE_PEER)?.runs ?? [])
}

function ratio(summary: CellSummary, baseline: CellSummary | undefined): string {
  return baseline === undefined ? '–' : `${(summary.requestsPerSec / baseline.requestsPerSec).toFixed(2)}×`
}

/** Peers down, placements across: "req/s (× petrel-1), CPU µs/req" in each cell. */
function summaryTable(report: WorkersReport): { columns: Column[]; rows: string[][] } {
  const summaryColumns: Column[] = [
    { title: 'peer', alignRight: false },
    ...report.placements.map((placement) => ({
      title: `${placement.name} (server on CPU${placement.serverCpus.includes(',') ? 's' : ''} ${placement.serverCpus})`,
      alignRight: true,
    })),
  ]
  const peers = report.placements[0]?.cells.map((cell) => cell.peer) ?? []
  const summaryRows = peers.map((peer) => [
    peer,
    ...report.placements.map((placement) => {
      const summary = summarize(placement.cells.find((cell) => cell.peer === peer)?.runs ?? [])
      if (summary === undefined) return 'skipped'
      return `${wholeNumber(summary.requestsPerSec)}, ${ratio(summary, baselineOf(placement))}, ${twoDigits(summary.cpuUsPerRequest)}`
    }),
  ])
  return { columns: summaryColumns, rows: summaryRows }
}

export function placementText(placement: PlacementResult, report: WorkersReport): string {
  const { durationSec, repeat } = report.settings
  const heading = `${placement.name}: ${placement.description}; ${durationSec} s per run × ${repeat}`
  const notes = cellNotes(placement.cells)
    .map((note) => `  ${note}`)
    .join('\n')
  return `${heading}\n${textTable(requestColumns(repeat, BASELINE_PEER), requestRows(placement.cells, repeat, BASELINE_PEER))}${notes === '' ? '' : `\n${notes}`}\n`
}

export function summaryText(report: WorkersReport): string {
  const { columns: summaryColumns, rows: summaryRows } = summaryTable(report)
  return `summary (req/s, ratio to ${BASELINE_PEER} in the same placement, CPU µs/req):\n${textTable(summaryColumns, summaryRows)}\n`
}

export function reportMarkdown(report: WorkersReport): string {
  const { machine, settings } = report
  const summary = summaryTable(report)
  const lines = [
    `# Workers benchmark, ${report.startedAt}`,
    '',
    'Produced by `npm run bench -- workers`; method and caveats in docs/benchmarks.md (the `workers` section).',
    `Load: GET /plaintext, ${report.load}; wrk (1 thread) on CPU ${machine.wrkCpu}. ` +
      `${settings.durationSec} s measured per run after a ${settings.warmupSec} s warm-up, ` +
      `${settings.repeat} run(s) per cell interleaved across peers; medians shown. ` +
      `"vs ${BASELINE_PEER}" is req/s ÷ ${BASELINE_PEER}'s req/s in the same placement. ` +
      "CPU µs/req is user+system CPU of the server's whole process tree (master and workers) ÷ requests completed; " +
      'server CPU is that CPU time ÷ wall time, in % of one core (up to 200 % on two).',
    '',
    `The machine has ${machine.logicalCpus} CPUs and wrk needs one, so there are two placements: ` +
      '**spread** lets the server use every CPU (its work on CPU 1 competes with wrk), ' +
      '**pinned** keeps it on CPU 0 (every worker shares one core).',
    '',
    ...machineLines(report),
    '',
    '## Summary',
    '',
    `Each cell: req/s, ratio to ${BASELINE_PEER} in the same placement, CPU µs/req.`,
    '',
    markdownTable(summary.columns, summary.rows),
    '',
  ]
  for (const placement of report.placements) {
    lines.push(
      `## ${placement.name}`,
      '',
      placement.description,
      '',
      markdownTable(requestColumns(settings.repeat, BASELINE_PEER), requestRows(placement.cells, settings.repeat, BASELINE_PEER)),
      '',
    )
    const notes = cellNotes(placement.cells)
    if (notes.length > 0) lines.push(...notes.map((note) => `- ${note}`), '')
  }
  return lines.join('\n')
}

/** Writes bench/runs/workers-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: WorkersReport): string[] {
  return writeResultFiles('workers', report.startedAt, reportMarkdown(report), report)
}
