// The loadgen suite: how much load `petrel bench` generates from one core, against wrk and
// autocannon. One server (nginx by default) runs pinned to CPU 0 for the whole suite; each
// generator runs in turn pinned to CPU 1, interleaved across repetitions. Scenarios:
// keep-alive, pipelined (depth 16), and a fixed rate well below capacity, where latency should
// be the unloaded service time (compared with wrk's one-connection latency: wrk 4 has no rate).

import { join } from 'node:path'
import { ensureBenchDependencies } from '../lib/bench-deps.ts'
import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { machineFacts } from '../lib/machine.ts'
import { startServer, type Started } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'
import { petrelPeer, probeNginx, type Probe } from '../lib/peers.ts'
import { clockTicksPerSecond, processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { expectBody } from '../lib/ready.ts'
import { twoDigits, wholeNumber, writeResultFiles } from '../lib/report.ts'
import { findLoadTools, SERVER_CPU } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import { autocannon, petrelBench, wrkGenerator, type Generator, type GeneratorLoad, type GeneratorMeasurement } from '../loadgen/generators.ts'
import type { Suite } from './suite.ts'

const GENERATOR_NAMES = ['petrel', 'wrk', 'autocannon'] as const
const SCENARIO_NAMES = ['keepalive', 'pipeline', 'rate'] as const
const TARGETS = ['nginx', 'petrel'] as const

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 5, description: 'length of each generator run' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 64, description: 'connections in the keepalive and pipeline scenarios' },
  { name: 'depth', type: 'integer', valueName: 'N', min: 2, default: 16, description: 'requests per pipelined batch' },
  {
    name: 'rate',
    type: 'integer',
    valueName: 'REQ/S',
    min: 1,
    default: 10000,
    description: "fixed rate of the rate scenario (well below the server's capacity)",
  },
  { name: 'rate-connections', type: 'integer', valueName: 'N', min: 1, default: 10, description: 'connections in the rate scenario' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per (scenario, generator), interleaved; medians are reported' },
  { name: 'only', type: 'string', valueName: 'GENERATORS', default: GENERATOR_NAMES.join(','), description: 'comma-separated generators to run' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: SCENARIO_NAMES.join(','), description: 'comma-separated scenarios to run' },
  { name: 'target', type: 'string', valueName: 'SERVER', default: 'nginx', description: `the server under load: ${TARGETS.join(' or ')}` },
])

interface Cell {
  generator: string
  version: string | null
  skipped?: string
  runs: Array<GeneratorMeasurement & { serverCpuPercent: number }>
  notes: string[]
}

interface ScenarioResult {
  name: string
  description: string
  cells: Cell[]
}

function describeScenario(name: string, load: Omit<GeneratorLoad, 'url' | 'cpu'>): string {
  if (name === 'pipeline') return `${load.connections} connections, ${load.depth} requests per pipelined batch, GET /plaintext`
  if (name === 'rate') return `${wholeNumber(load.rate)} req/s over ${load.connections} connections (open model), GET /plaintext`
  return `${load.connections} keep-alive connections, GET /plaintext`
}

const COLUMNS = (repeat: number): Column[] => [
  { title: 'generator', alignRight: false },
  { title: repeat > 1 ? `req/s (median of ${repeat})` : 'req/s', alignRight: true },
  { title: 'vs petrel bench', alignRight: true },
  { title: 'generator CPU µs/req', alignRight: true },
  { title: 'server CPU', alignRight: true },
  { title: 'p50 ms', alignRight: true },
  { title: 'p99 ms', alignRight: true },
  { title: 'errors', alignRight: true },
]

function summarize(cell: Cell): { rps: number; cpu: number; server: number; p50: number | null; p99: number | null; errors: number } | undefined {
  if (cell.runs.length === 0) return undefined
  const pick = (f: (run: GeneratorMeasurement & { serverCpuPercent: number }) => number | null): number | null => {
    const values = cell.runs.map(f).filter((v): v is number => v !== null && Number.isFinite(v))
    return values.length === 0 ? null : median(values)
  }
  return {
    rps: pick((run) => run.requestsPerSec) ?? 0,
    cpu: pick((run) => run.cpuUsPerRequest) ?? Number.NaN,
    server: pick((run) => run.serverCpuPercent) ?? Number.NaN,
    p50: pick((run) => run.p50Ms),
    p99: pick((run) => run.p99Ms),
    errors: cell.runs.reduce((sum, run) => sum + run.errors, 0),
  }
}

function rows(scenario: ScenarioResult): string[][] {
  const base = summarize(scenario.cells.find((cell) => cell.generator === petrelBench.name) ?? { generator: '', version: null, runs: [], notes: [] })
  const ms = (value: number | null): string => (value === null ? '–' : value < 10 ? value.toFixed(3) : value.toFixed(1))
  return scenario.cells.map((cell) => {
    const s = summarize(cell)
    if (s === undefined) return [cell.generator, 'skipped', '–', '–', '–', '–', '–', '–']
    return [
      cell.generator,
      wholeNumber(s.rps),
      base === undefined ? '–' : `${(s.rps / base.rps).toFixed(2)}×`,
      twoDigits(s.cpu),
      `${Math.round(s.server)} %`,
      ms(s.p50),
      ms(s.p99),
      wholeNumber(s.errors),
    ]
  })
}

function notes(scenario: ScenarioResult): string[] {
  return scenario.cells.flatMap((cell) => [
    ...(cell.skipped === undefined ? [] : [`${cell.generator}: skipped: ${cell.skipped}`]),
    ...[...new Set([...cell.notes, ...cell.runs.flatMap((run) => (run.note === undefined ? [] : [run.note]))])].map((note) => `${cell.generator}: ${note}`),
  ])
}

/** Petrel bench's rate over wrk's and autocannon's in the keepalive and pipeline scenarios. */
function targetLines(scenarios: readonly ScenarioResult[]): string[] {
  const lines: string[] = []
  for (const scenario of scenarios) {
    if (scenario.name === 'rate') continue
    const petrel = summarize(scenario.cells.find((cell) => cell.generator === petrelBench.name)!)
    for (const [peer, target] of [
      ['wrk', 0.8],
      ['autocannon', 2.5],
    ] as const) {
      const cell = scenario.cells.find((c) => c.generator === peer)
      const other = cell === undefined ? undefined : summarize(cell)
      if (petrel === undefined || other === undefined) continue
      const ratio = petrel.rps / other.rps
      lines.push(`${scenario.name}: petrel bench = ${ratio.toFixed(2)}× ${peer} (target ≥ ${target}×: ${ratio >= target ? 'met' : 'missed'})`)
    }
  }
  return lines
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'loadgen')
  const durationSec = flags.get('duration')
  const repeat = flags.get('repeat')
  const connections = flags.get('connections')
  const depth = flags.get('depth')
  const rate = flags.get('rate')
  const rateConnections = flags.get('rate-connections')
  const [target] = listOf('target', flags.get('target'), TARGETS)
  const generatorNames = listOf('only', flags.get('only'), GENERATOR_NAMES)
  const scenarioNames = listOf('scenario', flags.get('scenario'), SCENARIO_NAMES)

  const tools = await findLoadTools()
  if ('missing' in tools) {
    console.error(tools.missing)
    return 2
  }
  if (generatorNames.includes('autocannon')) await ensureBenchDependencies(['autocannon'])
  const all: Record<string, Generator> = { petrel: petrelBench, wrk: wrkGenerator(tools.wrkPath, tools.wrkVersion), autocannon }
  const generators: Array<{ generator: Generator; version: string | null; skipped?: string }> = []
  for (const name of generatorNames) {
    const probe = await all[name]!.probe()
    generators.push(probe.ok ? { generator: all[name]!, version: probe.version } : { generator: all[name]!, version: null, skipped: probe.reason })
  }

  const probe: Probe = target === 'nginx' ? await probeNginx(join(BENCH_DIR, 'peers', 'nginx.conf')) : await petrelPeer([]).probe()
  if (!probe.ok) {
    console.error(`the target server cannot run: ${probe.reason}`)
    return 2
  }
  const ticks = clockTicksPerSecond()
  const startedAt = new Date().toISOString()
  const runsPerScenario = generators.filter((g) => g.skipped === undefined).length * repeat
  console.log(
    `about ${Math.ceil((runsPerScenario * scenarioNames.length * (durationSec + 1)) / 60)} min: ${scenarioNames.length} scenario(s) × ${runsPerScenario} run(s) × ~${durationSec + 1} s, against ${target} (${probe.version}) on CPU ${SERVER_CPU}, generators on CPU ${tools.wrkCpu}\n`,
  )

  const server: Started = await startServer(probe.launch, SERVER_CPU, '/plaintext', expectBody('/plaintext', 'Hello, World!'))
  const url = `http://127.0.0.1:${server.port}/plaintext`
  const scenarios: ScenarioResult[] = []
  try {
    for (const name of scenarioNames) {
      const load: GeneratorLoad = {
        url,
        cpu: tools.wrkCpu,
        durationSec,
        connections: name === 'rate' ? rateConnections : connections,
        depth: name === 'pipeline' ? depth : 1,
        rate: name === 'rate' ? rate : 0,
      }
      const result: ScenarioResult = {
        name,
        description: describeScenario(name, load),
        cells: generators.map((g) => ({
          generator: g.generator.name,
          version: g.version,
          ...(g.skipped === undefined ? {} : { skipped: g.skipped }),
          runs: [],
          notes: [],
        })),
      }
      for (let repetition = 1; repetition <= repeat; repetition++) {
        for (const [index, { generator, skipped }] of generators.entries()) {
          if (skipped !== undefined) continue
          const cell = result.cells[index]!
          process.stdout.write(`  ${name} ${generator.name}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
          try {
            const serverBefore = processTreeCpuTicks(server.server.pid)
            const wallBefore = performance.now()
            const measured = await generator.run(load, ticks)
            const serverCpuPercent = (((processTreeCpuTicks(server.server.pid) - serverBefore) / ticks) * 1e5) / (performance.now() - wallBefore)
            cell.runs.push({ ...measured, serverCpuPercent })
            console.log(`${wholeNumber(measured.requestsPerSec)} req/s, ${twoDigits(measured.cpuUsPerRequest)} µs CPU/req`)
          } catch (error) {
            console.log(`failed: ${(error as Error).message}`)
            cell.notes.push(`run ${repetition} failed: ${(error as Error).message}`)
          }
        }
      }
      scenarios.push(result)
      console.log(`\n${name}: ${result.description}\n${textTable(COLUMNS(repeat), rows(result))}`)
      for (const note of notes(result)) console.log(`  ${note}`)
      console.log('')
    }
  } finally {
    await server.stop()
  }
  const targets = targetLines(scenarios)
  for (const line of targets) console.log(line)

  const machine = machineFacts()
  const markdown = [
    `# loadgen: petrel bench vs wrk and autocannon (${startedAt})`,
    '',
    `Server under load: ${target} (${probe.version}) pinned to CPU ${SERVER_CPU}; each generator pinned to CPU ${tools.wrkCpu}, one after another, ${durationSec} s per run${repeat > 1 ? `, medians of ${repeat} interleaved runs` : ''}. ` +
      'Generator CPU is user + system time of the whole generator process (start-up included), per completed request. ' +
      'Server CPU near 100 % means the server, not the generator, set the pace: then compare generator CPU per request.',
    '',
    `- CPU: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs, ${machine.memoryGiB} GiB; kernel ${machine.kernel}`,
    `- petrel revision: ${tools.petrelRevision}; harness: node ${machine.harnessNode}`,
    ...generators.map((g) => `- ${g.generator.name}: ${g.version ?? `skipped: ${g.skipped}`}`),
    '',
    ...scenarios.flatMap((scenario) => [
      `## ${scenario.name}: ${scenario.description}`,
      '',
      markdownTable(COLUMNS(repeat), rows(scenario)),
      '',
      ...notes(scenario).map((note) => `- ${note}`),
      '',
    ]),
    ...(targets.length === 0 ? [] : ['## Targets', '', ...targets.map((line) => `- ${line}`), '']),
  ].join('\n')
  // Results against another target go to files of their own name (loadgen-petrel-…), apart from the nginx runs.
  const written = writeResultFiles(target === 'nginx' ? 'loadgen' : `loadgen-${target}`, startedAt, markdown, {
    suite: 'loadgen',
    startedAt,
    target,
    targetVersion: probe.version,
    machine,
    petrelRevision: tools.petrelRevision,
    durationSec,
    repeat,
    scenarios,
  })
  console.log(`wrote ${written.join(', ')}`)
  return scenarios.some((scenario) => scenario.cells.some((cell) => cell.runs.length > 0)) ? 0 : 1
}

export const loadgenSuite: Suite = {
  name: 'loadgen',
  summary: 'petrel bench vs wrk and autocannon: load generated from one core against nginx (keepalive, pipeline, fixed rate)',
  flags: FLAGS,
  passThrough: false,
  run,
}
