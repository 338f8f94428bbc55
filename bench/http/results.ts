// What the http suite records: every run of every (scenario, peer), and per cell the medians
// that the tables show. Raw runs are kept in the JSON file so a median can be checked later.

import type { Cell as LoadCell, PeerInfo } from '../lib/results.ts'
import type { RunMeasurement } from './measure.ts'
import type { ReportHeader } from '../lib/runner.ts'

export { summarize, type CellSummary, type PeerInfo } from '../lib/results.ts'

export type Cell = LoadCell<RunMeasurement>

export interface ScenarioResult {
  readonly name: string
  readonly description: string
  readonly cells: Cell[]
}

/** The run's header (suite, times, revision, machine) as every suite writes it, then this suite's results. */
export interface HttpReport extends ReportHeader<'http'> {
  readonly settings: {
    readonly durationSec: number
    readonly warmupSec: number
    readonly repeat: number
    readonly connections: number
    readonly closeConnections: number
    readonly pipelineDepth: number
  }
  readonly peers: PeerInfo[]
  readonly scenarios: ScenarioResult[]
}
