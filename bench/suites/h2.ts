// The h2 suite: Petrel's HTTP/2 against nginx (`listen … ssl http2` / `http2`), node:http2 and
// an h2-floor peer (the least of HTTP/2 on Node's sockets), with Petrel's HTTP/1.1 under the same
// load as a reference row, every TLS peer with the same certificate made for the run (EC P-256,
// or RSA 2048 with --cert-type rsa), each server on CPU 0 with h2load on CPU 1. The tls suite's
// skeleton with h2load for wrk. Scenarios in bench/h2/scenarios.ts; method in docs/benchmarks.md.

import { join } from 'node:path'
import { defineFlags, listOf, oneOf, parseSuiteFlags } from '../lib/flags.ts'
import type { Peer } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import { probePeers, reportHeader, runWrkSuite, type LoadGenerator, type Runnable } from '../lib/runner.ts'
import { measureH2, type H2Measurement } from '../h2/measure.ts'
import { h2Peers, H2_PEER_NAMES } from '../h2/peers.ts'
import { checkTargets, scenarioText, targetsText, writeReportFiles, type H2Report } from '../h2/report.ts'
import { buildH2Scenario, H2_SCENARIO_NAMES, STATIC_FILE, type H2Variant } from '../h2/scenarios.ts'
import { makeFileTree, type FileTree } from '../static/files.ts'
import { servesFile } from '../static/verify.ts'
import { CERT_TYPES, makeBenchCertificate, type BenchCertificate } from '../tls/certificate.ts'
import type { Suite } from './suite.ts'

const H2LOAD: LoadGenerator = { name: 'h2load', fallback: '/usr/bin/h2load', install: 'apt-get install nghttp2-client', versionArgs: ['--version'] }

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run' },
  {
    name: 'warmup',
    type: 'integer',
    valueName: 'SECONDS',
    min: 0,
    default: 2,
    description: "h2load's warm-up (--warm-up-time) before each measured period, on the connections it then measures; 0 for none",
  },
  { name: 'static-connections', type: 'integer', valueName: 'N', min: 1, default: 10, description: 'h2load -c in the static-100k scenario' },
  { name: 'static-streams', type: 'integer', valueName: 'N', min: 1, default: 10, description: 'h2load -m in the static-100k scenario' },
  { name: 'cert-type', type: 'string', valueName: 'ec|rsa', default: 'ec', description: "the certificate's key: ec (ECDSA P-256) or rsa (RSA 2048)" },
  { name: 'only', type: 'string', valueName: 'PEERS', default: H2_PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: H2_SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
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
 * The runnables of another variant of the same peers: each peer that probed fine in `base` probed
 * again in its `variant` form (another launch, the same name), a skipped one left skipped.
 */
async function variantRunnables(base: readonly Runnable[], peers: readonly Peer[]): Promise<Runnable[]> {
  return Promise.all(
    base.map(async (runnable): Promise<Runnable> => {
      if (runnable.launchOn === undefined) return { name: runnable.name, skipped: runnable.skipped ?? 'not probed' }
      const probe = await peers.find((peer) => peer.name === runnable.name)!.probe()
      return probe.ok ? { name: runnable.name, launchOn: probe.launch } : { name: runnable.name, skipped: probe.reason }
    }),
  )
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'h2')
  const certType = oneOf('cert-type', flags.get('cert-type'), CERT_TYPES) ?? 'ec'
  const settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    staticConnections: flags.get('static-connections'),
    staticStreams: flags.get('static-streams'),
  }
  const peerNames = listOf('only', flags.get('only'), H2_PEER_NAMES)
  const scenarios = listOf('scenario', flags.get('scenario'), H2_SCENARIO_NAMES).map((name) => buildH2Scenario(name, settings))

  let certificate: BenchCertificate | undefined
  let tree: FileTree | undefined
  const runnablesOf = new Map<H2Variant, Runnable[]>()
  let report: H2Report | undefined

  return runWrkSuite<H2Measurement>({
    ...settings,
    generator: H2LOAD,
    prepare: async (tools, bench) => {
      certificate = makeBenchCertificate(certType)
      tree = makeFileTree()
      const release = (): void => {
        certificate?.remove()
        tree?.remove()
      }
      try {
        console.log(`certificate: ${certificate.description}, self-signed for localhost and 127.0.0.1 (${certificate.cert}; removed at the end)`)
        const file = join(tree.root, STATIC_FILE.urlPath.slice(1))
        const peersOf = (variant: H2Variant): Peer[] => h2Peers(certificate!, tree!.root, file, variant)
        // Probed (and listed) once; the cleartext and file launches of the same peers follow from it.
        const { runnables, infos } = await probePeers(peersOf('tls'), peerNames)
        runnablesOf.set('tls', runnables)
        runnablesOf.set('clear', await variantRunnables(runnables, peersOf('clear')))
        runnablesOf.set('static', await variantRunnables(runnables, peersOf('static')))
        report = {
          ...reportHeader('h2', tools, bench),
          settings: { ...settings, certificate: certificate.description },
          peers: infos,
          scenarios: [],
          targets: [],
        }
        console.log('')
        return { runnables, release }
      } catch (error) {
        release()
        throw error
      }
    },
    scenarios: (_tools, bench) =>
      scenarios.map((scenario) => {
        const check =
          scenario.variant === 'static' ? servesFile(scenario.path, tree!.contents.get(STATIC_FILE.name) as Buffer) : expectBody(scenario.path, 'Hello, World!')
        return {
          name: scenario.name,
          runnables: runnablesOf.get(scenario.variant)!,
          measure: (launchOn) => measureH2(launchOn, scenario, bench, check),
          describe: (measured) => `${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s, ${measured.cpuUsPerRequest.toFixed(1)} µs/req`,
          afterRun: (cell, measured) => {
            if (measured.stoppedEarly)
              cell.notes.push(
                `one run: h2load kept reconnecting after its measured period (h2load 1.52 with --h1) until the server was stopped; its figures end with the period`,
              )
          },
          finish: (cells) => {
            const result = { name: scenario.name, description: scenario.description, cells }
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

export const h2Suite: Suite = {
  name: 'h2',
  summary:
    "Petrel's HTTP/2 vs nginx (http2), node:http2 and a bare HTTP/2 floor on Node's sockets, with Petrel's HTTP/1.1 as a reference, under h2load: /plaintext over TLS and cleartext at 10×100 and 100×10 streams, a 100 KiB file over TLS",
  flags: FLAGS,
  passThrough: false,
  run,
}
