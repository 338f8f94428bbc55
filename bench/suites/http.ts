// The http suite: Petrel against node:http, Fastify, uWebSockets.js, Bun.serve and nginx, each
// on CPU 0 with wrk on CPU 1, in three scenarios (see bench/http/scenarios.ts). Method and
// caveats: docs/benchmarks.md.

import { listOf, parseFlags, wholeNumber, type FlagSpec } from '../lib/flags.ts'
import { probePeers, reportHeader, runWrkSuite } from '../lib/runner.ts'
import { measureOnce, type RunMeasurement } from '../http/measure.ts'
import { PEERS, PEER_NAMES } from '../http/peers.ts'
import { scenarioText, writeReportFiles } from '../http/report.ts'
import type { Cell, HttpReport } from '../http/results.ts'
import { buildScenario, SCENARIO_NAMES } from '../http/scenarios.ts'
import type { Suite } from './suite.ts'

const FLAGS: readonly FlagSpec[] = [
  { name: 'duration', valueName: 'SECONDS', defaultValue: '10', description: 'length of each measured wrk run' },
  { name: 'warmup', valueName: 'SECONDS', defaultValue: '2', description: 'discarded wrk run before each measured one; 0 for none' },
  { name: 'connections', valueName: 'N', defaultValue: '100', description: 'wrk connections in the keepalive and pipeline scenarios' },
  { name: 'close-connections', valueName: 'N', defaultValue: '50', description: 'wrk connections in the close scenario' },
  { name: 'depth', valueName: 'N', defaultValue: '16', description: 'requests per pipelined batch in the pipeline scenario' },
  { name: 'only', valueName: 'PEERS', defaultValue: PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', valueName: 'NAMES', defaultValue: SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
  { name: 'repeat', valueName: 'N', defaultValue: '1', description: 'runs per (scenario, peer), interleaved across peers; medians are reported' }
]

const SILENT_CLOSE_NOTE = 'answers `Connection: close` requests without `Connection: close` in the response ' +
  '(RFC 9112 §9.6 says it SHOULD), so wrk counts a read error per request; requests are still counted'

async function run (args: readonly string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS)
  const settings = {
    durationSec: wholeNumber(flags, 'duration', 1),
    warmupSec: wholeNumber(flags, 'warmup', 0),
    repeat: wholeNumber(flags, 'repeat', 1),
    connections: wholeNumber(flags, 'connections', 1),
    closeConnections: wholeNumber(flags, 'close-connections', 1),
    pipelineDepth: wholeNumber(flags, 'depth', 1)
  }
  const peerNames = listOf(flags, 'only', PEER_NAMES)
  const scenarios = listOf(flags, 'scenario', SCENARIO_NAMES).map((name) => buildScenario(name, settings))
  let report: HttpReport | undefined

  return runWrkSuite<RunMeasurement>({
    ...settings,
    prepare: async (tools, bench) => {
      const { runnables, infos } = await probePeers(PEERS, peerNames)
      report = { ...reportHeader('http', tools, bench), settings, peers: infos, scenarios: [] }
      return { runnables }
    },
    scenarios: (_tools, bench) => scenarios.map((scenario) => {
      const askedToClose = scenario.headers.includes('Connection: close')
      return {
        name: scenario.name,
        measure: (launchOn) => measureOnce(launchOn, scenario, bench),
        describe: (measured) => `${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s`,
        afterRun: (cell: Cell, measured) => {
          if (askedToClose && !measured.announcesClose && !cell.notes.includes(SILENT_CLOSE_NOTE)) cell.notes.push(SILENT_CLOSE_NOTE)
        },
        finish: (cells) => {
          const result = { name: scenario.name, description: scenario.description, cells }
          report!.scenarios.push(result)
          console.log(`\n${scenarioText(result, report!)}`)
        }
      }
    }),
    writeReport: () => {
      report!.finishedAt = new Date().toISOString()
      return writeReportFiles(report!)
    }
  })
}

export const httpSuite: Suite = {
  name: 'http',
  summary: 'Petrel vs node:http, Fastify, uWebSockets.js, Bun.serve and nginx under wrk (keepalive, pipeline, close)',
  flags: FLAGS,
  passThrough: false,
  run
}
