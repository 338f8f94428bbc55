// The http suite: Petrel against node:http, Fastify, uWebSockets.js, Bun.serve and nginx, each
// on CPU 0 with wrk on CPU 1, in three scenarios (see bench/http/scenarios.ts). Method and
// caveats: docs/benchmarks.md.

import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { probePeers, reportHeader, runWrkSuite } from '../lib/runner.ts'
import { measureOnce, type RunMeasurement } from '../http/measure.ts'
import { PEERS, PEER_NAMES } from '../http/peers.ts'
import { scenarioText, writeReportFiles } from '../http/report.ts'
import type { Cell, HttpReport } from '../http/results.ts'
import { buildScenario, SCENARIO_NAMES } from '../http/scenarios.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured wrk run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded wrk run before each measured one; 0 for none' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 100, description: 'wrk connections in the keepalive and pipeline scenarios' },
  { name: 'close-connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'wrk connections in the close scenario' },
  { name: 'depth', type: 'integer', valueName: 'N', min: 1, default: 16, description: 'requests per pipelined batch in the pipeline scenario' },
  { name: 'only', type: 'string', valueName: 'PEERS', default: PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
  {
    name: 'repeat',
    type: 'integer',
    valueName: 'N',
    min: 1,
    default: 1,
    description: 'runs per (scenario, peer), interleaved across peers; medians are reported',
  },
])

const SILENT_CLOSE_NOTE =
  'answers `Connection: close` requests without `Connection: close` in the response ' +
  '(RFC 9112 §9.6 says it SHOULD), so wrk counts a read error per request; requests are still counted'

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'http')
  const settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    connections: flags.get('connections'),
    closeConnections: flags.get('close-connections'),
    pipelineDepth: flags.get('depth'),
  }
  const peerNames = listOf('only', flags.get('only'), PEER_NAMES)
  const scenarios = listOf('scenario', flags.get('scenario'), SCENARIO_NAMES).map((name) => buildScenario(name, settings))
  let report: HttpReport | undefined

  return runWrkSuite<RunMeasurement>({
    ...settings,
    prepare: async (tools, bench) => {
      const { runnables, infos } = await probePeers(PEERS, peerNames)
      report = { ...reportHeader('http', tools, bench), settings, peers: infos, scenarios: [] }
      return { runnables }
    },
    scenarios: (_tools, bench) =>
      scenarios.map((scenario) => {
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
          },
        }
      }),
    writeReport: () => {
      report!.finishedAt = new Date().toISOString()
      return writeReportFiles(report!)
    },
  })
}

export const httpSuite: Suite = {
  name: 'http',
  summary: 'Petrel vs node:http, Fastify, uWebSockets.js, Bun.serve and nginx under wrk (keepalive, pipeline, close)',
  flags: FLAGS,
  passThrough: false,
  run,
}
