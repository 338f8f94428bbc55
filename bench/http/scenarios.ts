// The three load shapes of the http suite. All request GET /plaintext, so the scenarios differ
// only in how connections are used: reused one request at a time, reused with many requests
// in flight, or opened and closed for every request.

import { join } from 'node:path'
import type { Load } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'

export interface Scenario extends Load {
  readonly name: string
  readonly description: string
}

export interface ScenarioSettings {
  readonly connections: number
  readonly closeConnections: number
  readonly pipelineDepth: number
}

export const SCENARIO_NAMES: readonly string[] = ['keepalive', 'pipeline', 'close']

const REPORT_SCRIPT = join(BENCH_DIR, 'wrk', 'report.lua')
const PIPELINE_SCRIPT = join(BENCH_DIR, 'wrk', 'pipeline.lua')

export function buildScenario(name: string, settings: ScenarioSettings): Scenario {
  switch (name) {
    case 'keepalive':
      return {
        name,
        description: `keep-alive, ${settings.connections} connections, one request in flight per connection`,
        path: '/plaintext',
        connections: settings.connections,
        headers: [],
        scriptPath: REPORT_SCRIPT,
        scriptArgs: [],
        reportsLatency: true,
      }
    case 'pipeline':
      return {
        name,
        description: `keep-alive, ${settings.connections} connections, ${settings.pipelineDepth} pipelined requests per write (no latency: wrk times whole batches)`,
        path: '/plaintext',
        connections: settings.connections,
        headers: [],
        scriptPath: PIPELINE_SCRIPT,
        scriptArgs: [String(settings.pipelineDepth)],
        reportsLatency: false,
      }
    case 'close':
      return {
        name,
        description: `Connection: close, ${settings.closeConnections} connections, a new TCP connection per request`,
        path: '/plaintext',
        connections: settings.closeConnections,
        headers: ['Connection: close'],
        scriptPath: REPORT_SCRIPT,
        scriptArgs: [],
        reportsLatency: true,
      }
    default:
      throw new Error(`unknown scenario ${name}`)
  }
}
