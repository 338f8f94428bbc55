// The static suite: Petrel's `serve ROOT` against nginx (sendfile, open-file cache), sirv and
// send, all serving one temp directory of random files (1 KiB, 100 KiB, 10 MiB), each server
// on CPU 0 with wrk on CPU 1. Method and caveats: docs/benchmarks.md.

import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { measureOnce, ServerStartError, startServer, type RunMeasurement } from '../lib/measure.ts'
import { getOnce } from '../lib/ready.ts'
import { probePeers, reportHeader, runWrkSuite, SERVER_CPU, type Runnable } from '../lib/runner.ts'
import { FILES, makeFileTree, type FileTree } from '../static/files.ts'
import { staticPeers, STATIC_PEER_NAMES } from '../static/peers.ts'
import { checkTargets, scenarioText, targetsText, writeReportFiles, type StaticReport } from '../static/report.ts'
import { buildStaticScenario, STATIC_SCENARIO_NAMES, type StaticScenario } from '../static/scenarios.ts'
import { answersHttp, servesFile, servesGzipped } from '../static/verify.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured wrk run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded wrk run before each measured one; 0 for none' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'wrk connections in the 1k and 100k scenarios' },
  { name: 'large-connections', type: 'integer', valueName: 'N', min: 1, default: 8, description: 'wrk connections in the 10m scenario' },
  { name: 'only', type: 'string', valueName: 'PEERS', default: STATIC_PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  {
    name: 'scenario',
    type: 'string',
    valueName: 'NAMES',
    default: STATIC_SCENARIO_NAMES.join(','),
    description: 'comma-separated scenarios (file sizes) to run',
  },
  {
    name: 'repeat',
    type: 'integer',
    valueName: 'N',
    min: 1,
    default: 1,
    description: 'runs per (scenario, peer), interleaved across peers; medians are reported',
  },
])

/**
 * Before anything is measured, every peer is started once and asked for every file in the
 * chosen scenarios: status 200, Content-Length equal to the file's size, the file's exact
 * bytes. A peer that does not start is skipped everywhere; one that serves a file wrongly is
 * skipped in that file's scenario, with what was wrong. Returns peer → scenario → problem.
 */
async function verifyPeers(runnables: readonly Runnable[], scenarios: readonly StaticScenario[], tree: FileTree): Promise<Map<string, Map<string, string>>> {
  const problems = new Map<string, Map<string, string>>()
  console.log('checking every peer serves every file (200, Content-Length, bytes):')
  for (const peer of runnables) {
    if (peer.launchOn === undefined || peer.skipped !== undefined) continue
    let started
    try {
      // listOf() gives at least one scenario.
      started = await startServer(peer.launchOn, SERVER_CPU, scenarios[0]!.path, answersHttp)
    } catch (error) {
      if (!(error instanceof ServerStartError)) throw error
      peer.skipped = `did not start: ${error.message}`
      console.log(`  ${peer.name.padEnd(10)} skipped: ${peer.skipped}`)
      continue
    }
    const peerProblems = new Map<string, string>()
    try {
      for (const scenario of scenarios) {
        const content = tree.contents.get(scenario.file.name) as Buffer
        let problem: string | undefined
        try {
          problem =
            scenario.file.gzip === true
              ? servesGzipped(scenario.path, content)(await getOnce(started.port, scenario.path, false, scenario.headers))
              : servesFile(scenario.path, content)(await getOnce(started.port, scenario.path))
        } catch (error) {
          problem = `GET ${scenario.path}: ${(error as Error).message}`
        }
        if (problem !== undefined) peerProblems.set(scenario.name, `serves the file wrongly: ${problem}`)
      }
    } finally {
      await started.stop()
    }
    problems.set(peer.name, peerProblems)
    const failed = [...peerProblems.values()]
    console.log(`  ${peer.name.padEnd(10)} ${failed.length === 0 ? `ok (${scenarios.map((scenario) => scenario.name).join(', ')})` : failed.join('; ')}`)
  }
  return problems
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'static')
  const settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    connections: flags.get('connections'),
    largeConnections: flags.get('large-connections'),
  }
  const peerNames = listOf('only', flags.get('only'), STATIC_PEER_NAMES)
  const scenarios = listOf('scenario', flags.get('scenario'), STATIC_SCENARIO_NAMES).map((name) => buildStaticScenario(name, settings))

  let tree: FileTree | undefined
  let problems = new Map<string, Map<string, string>>()
  let report: StaticReport | undefined

  return runWrkSuite<RunMeasurement>({
    ...settings,
    prepare: async (tools, bench) => {
      const files = makeFileTree()
      tree = files
      try {
        console.log(`files: ${files.root} (${FILES.map((file) => file.urlPath.slice(1)).join(', ')}; removed at the end)`)
        const { runnables, infos } = await probePeers(staticPeers(files.root), peerNames)
        problems = await verifyPeers(runnables, scenarios, files)
        report = { ...reportHeader('static', tools, bench), settings, files: FILES, peers: infos, scenarios: [], targets: [] }
        console.log('')
        return { runnables, release: () => files.remove() }
      } catch (error) {
        files.remove()
        throw error
      }
    },
    scenarios: (_tools, bench) =>
      scenarios.map((scenario) => {
        const content = tree!.contents.get(scenario.file.name) as Buffer
        return {
          name: scenario.name,
          // Every run's readiness check is the full one: a server restarted for the run must serve the file right again.
          measure: async (launchOn) => (await measureOnce(launchOn, scenario, bench, servesFile(scenario.path, content))).measured,
          skipHere: (peer) => problems.get(peer)?.get(scenario.name),
          describe: (measured) => `${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s, ${(measured.bytesPerSec / 1e6).toFixed(1)} MB/s`,
          finish: (cells) => {
            const result = { name: scenario.name, description: scenario.description, file: scenario.file, byThroughput: scenario.byThroughput, cells }
            report!.scenarios.push(result)
            console.log(`\n${scenarioText(result, report!)}`)
          },
        }
      }),
    writeReport: () => {
      report!.targets = checkTargets(report!.scenarios)
      console.log(`${targetsText(report!.targets)}\n`)
      report!.finishedAt = new Date().toISOString()
      return writeReportFiles(report!)
    },
  })
}

export const staticSuite: Suite = {
  name: 'static',
  summary:
    "Petrel's `serve ROOT --compress` vs nginx (sendfile, open_file_cache, gzip), sirv and send: 1 KiB, 100 KiB and 10 MiB files, and a 100 KiB page with Accept-Encoding: gzip, under wrk",
  flags: FLAGS,
  passThrough: false,
  run,
}
