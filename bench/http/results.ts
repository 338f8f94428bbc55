// What the http suite records: every run of every (scenario, peer), and per cell the medians
// that the tables show. Raw runs are kept in the JSON file so a median can be checked later.

import type { MachineFacts } from '../lib/machine.ts'
import { median } from '../lib/stats.ts'
import type { WrkErrors } from '../lib/wrk.ts'
import type { RunMeasurement } from './measure.ts'

export interface CellSummary {
  readonly runs: number
  readonly requestsPerSec: number
  readonly minRequestsPerSec: number
  readonly maxRequestsPerSec: number
  readonly cpuUsPerRequest: number
  readonly serverCpuPercent: number
  /** NaN when no run reported latency. */
  readonly latencyP99Ms: number
  /** Summed over all runs, not a median: one run with errors must stay visible. */
  readonly errors: WrkErrors
}

export interface Cell {
  readonly peer: string
  readonly runs: RunMeasurement[]
  /** Why the peer has no numbers here, when it has none. */
  skipped?: string
  /** Runs that failed part-way and other remarks on the numbers, one line each. */
  readonly notes: string[]
}

export interface ScenarioResult {
  readonly name: string
  readonly description: string
  readonly cells: Cell[]
}

export interface PeerInfo {
  readonly name: string
  readonly version?: string
  readonly skipped?: string
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

export function summarize (runs: readonly RunMeasurement[]): CellSummary | undefined {
  if (runs.length === 0) return undefined
  const rates = runs.map((run) => run.requestsPerSec)
  const sum = (pick: (errors: WrkErrors) => number): number => runs.reduce((total, run) => total + pick(run.errors), 0)
  return {
    runs: runs.length,
    requestsPerSec: median(rates),
    minRequestsPerSec: Math.min(...rates),
    maxRequestsPerSec: Math.max(...rates),
    cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)),
    serverCpuPercent: median(runs.map((run) => run.serverCpuPercent)),
    latencyP99Ms: median(runs.flatMap((run) => (run.latencyP99Ms === null ? [] : [run.latencyP99Ms]))),
    errors: {
      connect: sum((errors) => errors.connect),
      read: sum((errors) => errors.read),
      write: sum((errors) => errors.write),
      status: sum((errors) => errors.status),
      timeout: sum((errors) => errors.timeout)
    }
  }
}
