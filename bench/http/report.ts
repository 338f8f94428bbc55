// Renders an HttpReport as terminal tables and as the markdown + JSON result files.

import { cellNotes, machineLines, writeResultFiles, requestColumns, requestRows } from '../lib/report.ts'
import { markdownTable, textTable } from '../lib/table.ts'
import type { HttpReport, ScenarioResult } from './results.ts'

const BASELINE_PEER = 'petrel'

function notes(scenario: ScenarioResult): string[] {
  return cellNotes(scenario.cells)
}

export function scenarioText(scenario: ScenarioResult, report: HttpReport): string {
  const { durationSec, repeat } = report.settings
  const heading = `${scenario.name}: ${scenario.description}; ${durationSec} s per run × ${repeat}`
  const notesText = notes(scenario)
    .map((note) => `  ${note}`)
    .join('\n')
  return `${heading}\n${textTable(requestColumns(repeat, BASELINE_PEER), requestRows(scenario.cells, repeat, BASELINE_PEER))}${notesText === '' ? '' : `\n${notesText}`}\n`
}

export function reportMarkdown(report: HttpReport): string {
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
    '',
  ]
  for (const scenario of report.scenarios) {
    lines.push(
      `## ${scenario.name}`,
      '',
      scenario.description,
      '',
      markdownTable(requestColumns(settings.repeat, BASELINE_PEER), requestRows(scenario.cells, settings.repeat, BASELINE_PEER)),
      '',
    )
    const scenarioNotes = notes(scenario)
    if (scenarioNotes.length > 0) lines.push(...scenarioNotes.map((note) => `- ${note}`), '')
  }
  return lines.join('\n')
}

/** Writes bench/runs/http-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: HttpReport): string[] {
  return writeResultFiles('http', report.startedAt, reportMarkdown(report), report)
}
