// What every suite records per (scenario, peer): each run, and the medians the tables show.
// Raw runs are kept in the JSON file so a median can be checked later.

import type { RunMeasurement } from './measure.ts'
import { median } from './stats.ts'
import type { WrkErrors } from './wrk.ts'

export interface CellSummary {
  readonly runs: number
  readonly requestsPerSec: number
  readonly minRequestsPerSec: number
  readonly maxRequestsPerSec: number
  readonly bytesPerSec: number
  readonly cpuUsPerRequest: number
  readonly serverCpuPercent: number
  /** NaN when no run reported latency. */
  readonly latencyP99Ms: number
  /** Summed over all runs, not a median: one run with errors must stay visible. */
  readonly errors: WrkErrors
}

export interface Cell<M extends RunMeasurement = RunMeasurement> {
  readonly peer: string
  readonly runs: M[]
  /** Why the peer has no numbers here, when it has none. */
  skipped?: string
  /** Runs that failed part-way and other remarks on the numbers, one line each. */
  readonly notes: string[]
}

export interface PeerInfo {
  readonly name: string
  readonly version?: string
  readonly skipped?: string
}

export function summarize(runs: readonly RunMeasurement[]): CellSummary | undefined {
  if (runs.length === 0) return undefined
  const rates = runs.map((run) => run.requestsPerSec)
  const sum = (pick: (errors: WrkErrors) => number): number => runs.reduce((total, run) => total + pick(run.errors), 0)
  return {
    runs: runs.length,
    requestsPerSec: median(rates),
    minRequestsPerSec: Math.min(...rates),
    maxRequestsPerSec: Math.max(...rates),
    bytesPerSec: median(runs.map((run) => run.bytesPerSec)),
    cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)),
    serverCpuPercent: median(runs.map((run) => run.serverCpuPercent)),
    latencyP99Ms: median(runs.flatMap((run) => (run.latencyP99Ms === null ? [] : [run.latencyP99Ms]))),
    errors: {
      connect: sum((errors) => errors.connect),
      read: sum((errors) => errors.read),
      write: sum((errors) => errors.write),
      status: sum((errors) => errors.status),
      timeout: sum((errors) => errors.timeout),
    },
  }
}
