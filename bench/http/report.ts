// Renders an HttpReport as terminal tables and as the markdown + JSON result files.

import { cellNotes, machineLines, requestScenarioMarkdown, requestScenarioText, writeResultFiles } from '../lib/report.ts'
import type { HttpReport, ScenarioResult } from './results.ts'

const BASELINE_PEER = 'petrel'

function notes(scenario: ScenarioResult): string[] {
  return cellNotes(scenario.cells)
}

export function scenarioText(scenario: ScenarioResult, report: HttpReport): string {
  return requestScenarioText(scenario, report.settings, notes(scenario), BASELINE_PEER)
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
  for (const scenario of report.scenarios) lines.push(...requestScenarioMarkdown(scenario, settings.repeat, notes(scenario), BASELINE_PEER))
  return lines.join('\n')
}

/** Writes bench/runs/http-<timestamp>.md/.json; returns the paths written. */
export function writeReportFiles(report: HttpReport): string[] {
  return writeResultFiles('http', report.startedAt, reportMarkdown(report), report)
}
