// Renders an HttpReport as terminal tables and as the markdown + JSON result files.

import { cellNotes, machineLines, twoDigits, wholeNumber, writeResultFiles, requestColumns } from '../lib/report.ts'
import { markdownTable, textTable } from '../lib/table.ts'
import { describeErrors, errorCount } from '../lib/wrk.ts'
import { summarize, type HttpReport, type ScenarioResult } from './results.ts'

const BASELINE_PEER = 'petrel'

function rows (scenario: ScenarioResult, repeat: number): string[][] {
  const baseline = summarize(scenario.cells.find((cell) => cell.peer === BASELINE_PEER)?.runs ?? [])
  return scenario.cells.map((cell) => {
    const summary = summarize(cell.runs)
    if (summary === undefined) {
      return [cell.peer, 'skipped', ...(repeat > 1 ? ['–'] : []), '–', '–', '–', '–', '–']
    }
    const errors = errorCount(summary.errors) === 0 ? 'none' : `! ${describeErrors(summary.errors)}`
    const partial = summary.runs < repeat ? ` (${summary.runs}/${repeat} runs)` : ''
    return [
      cell.peer,
      wholeNumber(summary.requestsPerSec),
      ...(repeat > 1 ? [`${wholeNumber(summary.minRequestsPerSec)}–${wholeNumber(summary.maxRequestsPerSec)}`] : []),
      baseline === undefined ? '–' : `${(summary.requestsPerSec / baseline.requestsPerSec).toFixed(2)}×`,
      twoDigits(summary.cpuUsPerRequest),
      `${Math.round(summary.serverCpuPercent)} %`,
      twoDigits(summary.latencyP99Ms),
      errors + partial
    ]
  })
}

function notes (scenario: ScenarioResult): string[] {
  return cellNotes(scenario.cells)
}

export function scenarioText (scenario: ScenarioResult, report: HttpReport): string {
  const { durationSec, repeat } = report.settings
  const heading = `${scenario.name}: ${scenario.description}; ${durationSec} s per run × ${repeat}`
  const notesText = notes(scenario).map((note) => `  ${note}`).join('\n')
  return `${heading}\n${textTable(requestColumns(repeat, BASELINE_PEER), rows(scenario, repeat))}${notesText === '' ? '' : `\n${notesText}`}\n`
}

export function reportMarkdown (report: HttpReport): string {
  const { machine, settings } = report
  const lines = [
    `# HTTP benchmark, ${report.startedAt}`,
    '',
    `Produced by \`npm run bench -- http\`; method and caveats in docs/benchmarks.md.`,
    `Server pinned to CPU ${machine.serverCpu}, wrk (1 thread) to CPU ${machine.wrkCpu}. ` +
      `${settings.durationSec} s measured per run after a ${settings.warmupSec} s warm-up, ` +
      `${settings.repeat} run(s) per cell interleaved across peers; medians shown. ` +
      '"vs petrel" is peer req/s ÷ Petrel req/s. CPU µs/req is server user+system CPU ÷ requests completed.',
    '',
    ...machineLines(report),
    ''
  ]
  for (const scenario of report.scenarios) {
    lines.push(`## ${scenario.name}`, '', scenario.description, '', markdownTable(requestColumns(settings.repeat, BASELINE_PEER), rows(scenario, settings.repeat)), '')
    const scenarioNotes = notes(scenario)
    if (scenarioNotes.length > 0) lines.push(...scenarioNotes.map((note) => `- ${note}`), '')
  }
  return lines.join('\n')
}

/** Writes http-<timestamp>.md/.json and overwrites http-latest.md; returns the paths written. */
export function writeReportFiles (report: HttpReport): string[] {
  return writeResultFiles('http', report.startedAt, reportMarkdown(report), report)
}
