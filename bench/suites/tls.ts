// The tls suite: Petrel's HTTPS against nginx (ssl, one worker, session cache and tickets),
// node:https and a tls-floor peer (a bare node:tls server answering each request head with a
// constant), every one with the same certificate made for the run (EC P-256, or RSA 2048 with
// --cert-type rsa), each server on CPU 0 with the generator on CPU 1. Scenarios in
// bench/tls/scenarios.ts; method and findings in docs/tls.md.

import { join } from 'node:path'
import { defineFlags, listOf, oneOf, parseSuiteFlags } from '../lib/flags.ts'
import { expectBody } from '../lib/ready.ts'
import { probePeers, reportHeader, runWrkSuite, type Runnable } from '../lib/runner.ts'
import { makeFileTree, type FileTree } from '../static/files.ts'
import { servesFile } from '../static/verify.ts'
import { CERT_TYPES, makeBenchCertificate, type BenchCertificate } from '../tls/certificate.ts'
import { measureTls, type TlsMeasurement } from '../tls/measure.ts'
import { TLS_PEER_NAMES, tlsPeers } from '../tls/peers.ts'
import { checkTargets, scenarioText, targetsText, writeReportFiles, type TlsReport } from '../tls/report.ts'
import { buildTlsScenario, STATIC_FILE, TLS_SCENARIO_NAMES } from '../tls/scenarios.ts'
import type { Suite } from './suite.ts'

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run' },
  { name: 'warmup', type: 'integer', valueName: 'SECONDS', min: 0, default: 2, description: 'discarded run before each measured one; 0 for none' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 100, description: 'connections in the keepalive scenario' },
  { name: 'close-connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'connections in the handshake and resumed scenarios' },
  { name: 'static-connections', type: 'integer', valueName: 'N', min: 1, default: 50, description: 'connections in the static-100k scenario' },
  { name: 'cert-type', type: 'string', valueName: 'ec|rsa', default: 'ec', description: "the certificate's key: ec (ECDSA P-256) or rsa (RSA 2048)" },
  { name: 'only', type: 'string', valueName: 'PEERS', default: TLS_PEER_NAMES.join(','), description: 'comma-separated peers to run' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: TLS_SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
  {
    name: 'repeat',
    type: 'integer',
    valueName: 'N',
    min: 1,
    default: 1,
    description: 'runs per (scenario, peer), interleaved across peers; medians are reported',
  },
])

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'tls')
  const certType = oneOf('cert-type', flags.get('cert-type'), CERT_TYPES) ?? 'ec'
  const settings = {
    durationSec: flags.get('duration'),
    warmupSec: flags.get('warmup'),
    repeat: flags.get('repeat'),
    connections: flags.get('connections'),
    closeConnections: flags.get('close-connections'),
    staticConnections: flags.get('static-connections'),
  }
  const peerNames = listOf('only', flags.get('only'), TLS_PEER_NAMES)
  const scenarios = listOf('scenario', flags.get('scenario'), TLS_SCENARIO_NAMES).map((name) => buildTlsScenario(name, settings))

  let certificate: BenchCertificate | undefined
  let tree: FileTree | undefined
  let staticRunnables: Runnable[] = []
  let report: TlsReport | undefined

  return runWrkSuite<TlsMeasurement>({
    ...settings,
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
        const { runnables, infos } = await probePeers(tlsPeers(certificate, tree.root, file, false), peerNames)
        // The file scenario runs the same peers, Petrel as `serve ROOT` (no /plaintext there).
        const rootPeers = tlsPeers(certificate, tree.root, file, true)
        staticRunnables = await Promise.all(
          runnables.map(async (runnable): Promise<Runnable> => {
            if (runnable.name !== 'petrel' || runnable.launchOn === undefined) return runnable
            const probe = await rootPeers.find((peer) => peer.name === 'petrel')!.probe()
            return probe.ok ? { name: runnable.name, launchOn: probe.launch } : { name: runnable.name, skipped: probe.reason }
          }),
        )
        report = {
          ...reportHeader('tls', tools, bench),
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
        const check = scenario.withRoot ? servesFile(scenario.path, tree!.contents.get(STATIC_FILE.name) as Buffer) : expectBody(scenario.path, 'Hello, World!')
        return {
          name: scenario.name,
          ...(scenario.withRoot ? { runnables: staticRunnables } : {}),
          measure: (launchOn) => measureTls(launchOn, scenario, bench, check, certificate!.cert),
          describe: (measured) =>
            `${Math.round(measured.requestsPerSec).toLocaleString('en-US')} req/s, ${measured.cpuUsPerRequest.toFixed(1)} µs/req` +
            (measured.resumedPercent === undefined ? '' : `, ${measured.resumedPercent.toFixed(1)} % resumed`),
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

export const tlsSuite: Suite = {
  name: 'tls',
  summary: "Petrel's HTTPS vs nginx (ssl), node:https and a bare node:tls floor: keep-alive, a full handshake per request, resumed handshakes, a 100 KiB file",
  flags: FLAGS,
  passThrough: false,
  run,
}
