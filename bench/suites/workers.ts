// The workers suite: does `petrel serve --workers 2` serve more than `--workers 1`? Petrel's
// master with 1 and 2 workers, and plain `petrel serve` (no master) for reference, under the
// http suite's keepalive load (GET /plaintext), in two placements: the server on all CPUs, and
// pinned to CPU 0. Method and caveats: docs/benchmarks.md.

import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { measureOnce, type Bench, type Load, type RunMeasurement } from '../lib/measure.ts'
import type { Launch } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import { probePeers, reportHeader, runWrkSuite, SERVER_CPU } from '../lib/runner.ts'
import { buildScenario } from '../http/scenarios.ts'
import { listenersProblem } from '../workers/listeners.ts'
import { expectedListeners, WORKER_PEERS, WORKER_PEER_NAMES } from '../workers/peers.ts'
import { buildPlacement, PLACEMENT_NAMES, type Placement } from '../workers/placements.ts'
import { placementText, summaryText, writeReportFiles, type WorkersReport } from '../workers/report.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured wrk run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded wrk run before each measured one; 0 for none' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 100, description: 'wrk connections (keep-alive)' },
  { name: 'only', type: 'string', valueName: 'PEERS', default: WORKER_PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  {
    name: 'placement',
    type: 'string',
    valueName: 'NAMES',
    default: PLACEMENT_NAMES.join(','),
    description: 'spread (server on all CPUs), pinned (server on CPU 0); wrk is on CPU 1 in both',
  },
  {
    name: 'repeat',
    type: 'integer',
    valueName: 'N',
    min: 1,
    default: 1,
    description: 'runs per (placement, peer), interleaved across peers; medians are reported',
  },
])

/**
 * One run: the launch placed as asked, ready once GET /plaintext answers `Hello, World!` and
 * every worker listens, then bench/lib's measurement (CPU summed over master and workers).
 */
async function measureIn(placement: Placement, launchOn: (port: number) => Launch, load: Load, bench: Bench): Promise<RunMeasurement> {
  let port = -1
  let listeners = 1
  const placedLaunchOn = (chosenPort: number): Launch => {
    const launch = launchOn(chosenPort)
    port = chosenPort
    listeners = expectedListeners(launch.args)
    return placement.wrap(launch)
  }
  const answers = expectBody(load.path, 'Hello, World!')
  const check = (response: string): string | undefined => answers(response) ?? listenersProblem(port, listeners)
  return (await measureOnce(placedLaunchOn, load, bench, check)).measured
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'workers')
  const settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    connections: flags.get('connections'),
  }
  const peerNames = listOf('only', flags.get('only'), WORKER_PEER_NAMES)
  const placementNames = listOf('placement', flags.get('placement'), PLACEMENT_NAMES)
  // The http suite's keepalive load; the other two settings only shape its other scenarios.
  const load = buildScenario('keepalive', { connections: settings.connections, closeConnections: settings.connections, pipelineDepth: 1 })

  let report: WorkersReport | undefined

  return runWrkSuite<RunMeasurement>({
    ...settings,
    prepare: async (tools, bench) => {
      const { runnables, infos } = await probePeers(WORKER_PEERS, peerNames)
      report = { ...reportHeader('workers', tools, bench, { serverCpu: false }), settings, load: load.description, peers: infos, placements: [] }
      return { runnables }
    },
    scenarios: (tools, bench) =>
      placementNames
        .map((name) => buildPlacement(name, SERVER_CPU, tools.wrkCpu))
        .map((placement) => ({
          name: placement.name,
          measure: (launchOn) => measureIn(placement, launchOn, load, bench),
          describe: (measured) => `${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s, ${measured.cpuUsPerRequest.toFixed(2)} CPU µs/req`,
          finish: (cells) => {
            const result = { name: placement.name, serverCpus: placement.serverCpus, description: placement.description, cells }
            report!.placements.push(result)
            console.log(`\n${placementText(result, report!)}`)
          },
        })),
    writeReport: () => {
      if (report!.placements.length > 1) console.log(summaryText(report!))
      report!.finishedAt = new Date().toISOString()
      return writeReportFiles(report!)
    },
  })
}

export const workersSuite: Suite = {
  name: 'workers',
  summary: 'Petrel with 1 vs 2 worker processes (and without a master) on keep-alive /plaintext, server on all CPUs and pinned to CPU 0',
  flags: FLAGS,
  passThrough: false,
  run,
}
