// What the http suite records: every run of every (scenario, peer), and per cell the medians
// that the tables show. Raw runs are kept in the JSON file so a median can be checked later.

import type { Cell as LoadCell, PeerInfo } from '../lib/results.ts'
import type { MachineFacts } from '../lib/machine.ts'
import type { RunMeasurement } from './measure.ts'

export { summarize, type CellSummary, type PeerInfo } from '../lib/results.ts'

export type Cell = LoadCell<RunMeasurement>

export interface ScenarioResult {
  readonly name: string
  readonly description: string
  readonly cells: Cell[]
}

export interface HttpReport {
  readonly suite: 'http'
  readonly startedAt: string
  finishedAt: string
  /** `git rev-parse --short HEAD` of the repo, i.e. which Petrel was measured. */
  readonly petrelRevision: string
  readonly machine: MachineFacts & { readonly clockTicksPerSec: number, readonly serverCpu: number, readonly wrkCpu: number, readonly wrk: string }
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
