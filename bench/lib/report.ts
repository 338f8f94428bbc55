// Pieces every suite's report shares: number formats, the notes under a table, the machine
// lines of a result file, and writing bench/runs/<suite>-<timestamp>.md/.json.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { machineFacts, type MachineFacts } from './machine.ts'
import { REPO_DIR, RUNS_DIR } from './paths.ts'
import { summarize, type Cell, type PeerInfo } from './results.ts'
import { markdownTable, textTable, type Column } from './table.ts'
import { describeErrors, errorCount } from './wrk.ts'

export const wholeNumber = (value: number): string => Math.round(value).toLocaleString('en-US')
export const twoDigits = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : 'n/a')

/** Skip reasons and failed runs, shown under each table. */
export function cellNotes(cells: readonly Cell[]): string[] {
  return cells.flatMap((cell) => [
    ...(cell.skipped === undefined ? [] : [`${cell.peer}: skipped: ${cell.skipped}`]),
    ...cell.notes.map((note) => `${cell.peer}: ${note}`),
  ])
}

export interface ReportBasics {
  readonly petrelRevision: string
  readonly machine: MachineFacts & { readonly wrk: string }
  readonly peers: readonly PeerInfo[]
}

/** The markdown list of what produced the numbers: machine, revisions, peer versions. */
export function machineLines(report: ReportBasics): string[] {
  const { machine } = report
  return [
    `- CPU: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs, ${machine.memoryGiB} GiB; kernel ${machine.kernel}`,
    `- petrel revision: ${report.petrelRevision}; harness: node ${machine.harnessNode}; load: ${machine.wrk}`,
    ...report.peers.map((peer) => `- ${peer.name}: ${peer.version ?? `skipped: ${peer.skipped ?? 'unknown reason'}`}`),
  ]
}

export interface TableReport {
  suite: string
  startedAt: string
  /** The report's heading (the start time is appended). */
  title: string
  /** How the figures were measured: pinning, durations, what each column means. */
  method: string
  columns: readonly Column[]
  rows: readonly (readonly string[])[]
  notes: readonly string[]
  /** What goes into the .json beside the machine facts: settings and raw runs. */
  data: Record<string, unknown>
}

/**
 * The end of a one-table suite: the table and its notes on the terminal, then the markdown
 * report (heading, method, machine, table, notes) and the JSON written to bench/runs/; returns
 * the paths written.
 */
export function finishTableReport(report: TableReport): string[] {
  console.log(`\n${textTable(report.columns, report.rows)}`)
  for (const note of report.notes) console.log(`  ${note}`)
  console.log('')
  const machine = machineFacts()
  const markdown = [
    `# ${report.title} (${report.startedAt})`,
    '',
    report.method,
    '',
    `- CPU: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs; kernel ${machine.kernel}; node ${machine.harnessNode}`,
    '',
    markdownTable(report.columns, report.rows),
    '',
    ...report.notes.map((note) => `- ${note}`),
  ].join('\n')
  return writeResultFiles(report.suite, report.startedAt, markdown, { suite: report.suite, startedAt: report.startedAt, machine, ...report.data })
}

/**
 * Writes bench/runs/<suite>-<timestamp>.md/.json and returns the paths written (the suites print
 * them). Runs are not committed: bench/runs/ is in .gitignore, and only the result files that the
 * docs cite are copied to bench/results/, under the same name, with the docs that cite them. There
 * is no "latest" copy: a link to one would silently change meaning with the next run.
 */
export function writeResultFiles(suite: string, startedAt: string, markdown: string, report: unknown, dir = RUNS_DIR): string[] {
  mkdirSync(dir, { recursive: true })
  // ISO 8601 without ':' so the name is safe in every shell and on every file system.
  const stamp = startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
  const files = [
    [join(dir, `${suite}-${stamp}.md`), markdown],
    [join(dir, `${suite}-${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`],
  ] as const
  for (const [path, text] of files) writeFileSync(path, text)
  return files.map(([path]) => relative(REPO_DIR, path))
}

/** The columns of a req/s table (http and workers suites): ratios are to `baseline`. */
export function requestColumns(repeat: number, baseline: string): Column[] {
  return [
    { title: 'peer', alignRight: false },
    { title: repeat > 1 ? `req/s (median of ${repeat})` : 'req/s', alignRight: true },
    ...(repeat > 1 ? [{ title: 'req/s min–max', alignRight: true }] : []),
    { title: `vs ${baseline}`, alignRight: true },
    { title: 'CPU µs/req', alignRight: true },
    { title: 'server CPU', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'errors', alignRight: false },
  ]
}

/** The rows of a requestColumns() table: one per peer's cell, ratios to `baseline`'s median. */
export function requestRows(cells: readonly Cell[], repeat: number, baseline: string): string[][] {
  const base = summarize(cells.find((cell) => cell.peer === baseline)?.runs ?? [])
  return cells.map((cell) => {
    const summary = summarize(cell.runs)
    if (summary === undefined) return [cell.peer, 'skipped', ...(repeat > 1 ? ['–'] : []), '–', '–', '–', '–', '–']
    const errors = errorCount(summary.errors) === 0 ? 'none' : `! ${describeErrors(summary.errors)}`
    const partial = summary.runs < repeat ? ` (${summary.runs}/${repeat} runs)` : ''
    return [
      cell.peer,
      wholeNumber(summary.requestsPerSec),
      ...(repeat > 1 ? [`${wholeNumber(summary.minRequestsPerSec)}–${wholeNumber(summary.maxRequestsPerSec)}`] : []),
      base === undefined ? '–' : `${(summary.requestsPerSec / base.requestsPerSec).toFixed(2)}×`,
      twoDigits(summary.cpuUsPerRequest),
      `${Math.round(summary.serverCpuPercent)} %`,
      twoDigits(summary.latencyP99Ms),
      errors + partial,
    ]
  })
}

/** A scenario of a req/s suite (http, tls): its peers' cells under a name and a description. */
export interface RequestScenario {
  readonly name: string
  readonly description: string
  readonly cells: readonly Cell[]
}

/** A req/s scenario on the terminal: heading, the requestColumns() table, its notes. */
export function requestScenarioText(
  scenario: RequestScenario,
  settings: { durationSec: number; repeat: number },
  notes: readonly string[],
  baseline: string,
): string {
  const heading = `${scenario.name}: ${scenario.description}; ${settings.durationSec} s per run × ${settings.repeat}`
  const table = textTable(requestColumns(settings.repeat, baseline), requestRows(scenario.cells, settings.repeat, baseline))
  return [heading, table, ...notes.map((note) => `  ${note}`), ''].join('\n')
}

/** A req/s scenario as a section of a markdown report: heading, description, table, notes. */
export function requestScenarioMarkdown(scenario: RequestScenario, repeat: number, notes: readonly string[], baseline: string): string[] {
  const lines = [
    `## ${scenario.name}`,
    '',
    scenario.description,
    '',
    markdownTable(requestColumns(repeat, baseline), requestRows(scenario.cells, repeat, baseline)),
    '',
  ]
  if (notes.length > 0) lines.push(...notes.map((note) => `- ${note}`), '')
  return lines
}
