// The logic suite: what the logic unit (docs/logic.md) does under load.
//
// - offload: the demo server on CPU 0 answers a steady open-model load on /plaintext while a
//   second load asks for scrypt hashes (about 17 ms of CPU each), inline on the event loop or on
//   the thread pool; both generators (petrel bench) run on CPU 1 at the same time. What matters
//   is /plaintext's latency: inline, every hash stops the loop.
// - cgi: requests/s for a trivial shell script through Petrel's CGI gateway, and through nginx
//   + fcgiwrap (Debian's packages), with server CPU per request counting the scripts (reaped
//   children) too.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup, startTracked, stopTracked } from '../lib/children.ts'
import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { machineFacts } from '../lib/machine.ts'
import { startServer, type Started } from '../lib/measure.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import { petrelPeer, probeNginx } from '../lib/peers.ts'
import { clockTicksPerSecond, processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { expectBody } from '../lib/ready.ts'
import { twoDigits, wholeNumber, writeResultFiles } from '../lib/report.ts'
import { findLoadTools, SERVER_CPU } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import { markdownTable, textTable, type Column } from '../lib/table.ts'
import { findOnPath, isExecutable } from '../lib/which.ts'
import { petrelBenchJson as petrelBench, benchFailures as failures, type BenchJson } from '../loadgen/generators.ts'
import type { Suite } from './suite.ts'

const SCENARIOS = ['offload', 'cgi'] as const

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per row, interleaved; medians are reported' },
  { name: 'rate', type: 'integer', valueName: 'REQ/S', min: 1, default: 2000, description: 'offload: steady /plaintext rate' },
  { name: 'hash-rate', type: 'integer', valueName: 'REQ/S', min: 1, default: 30, description: 'offload: scrypt requests per second (each ~17 ms of CPU)' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 8, description: 'cgi: connections of the generator' },
  { name: 'scenario', type: 'string', valueName: 'NAMES', default: SCENARIOS.join(','), description: 'comma-separated scenarios to run' },
])

// ---- offload ----

interface OffloadRun {
  plaintext: BenchJson
  hash: BenchJson | null
}

const OFFLOAD_MODES = ['no hashing', 'inline', 'pool'] as const

async function offload(cpu: number, durationSec: number, repeat: number, rate: number, hashRate: number): Promise<{ rows: string[][]; columns: Column[] }> {
  const probe = await petrelPeer([]).probe()
  if (!probe.ok) throw new Error(probe.reason)
  const runs = new Map<string, OffloadRun[]>(OFFLOAD_MODES.map((mode) => [mode, []]))
  for (let repetition = 1; repetition <= repeat; repetition++) {
    for (const mode of OFFLOAD_MODES) {
      // A fresh server per run, so one mode's queue or JIT state does not carry into the next.
      const server = await startServer(probe.launch, SERVER_CPU, '/plaintext', expectBody('/plaintext', 'Hello, World!'))
      try {
        const base = `http://127.0.0.1:${server.port}`
        process.stdout.write(`  offload ${mode}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
        // Warm both routes (JIT, the pool's threads) before measuring.
        await petrelBench(cpu, ['-c', '2', '-d', '1s', `${base}/plaintext`])
        if (mode !== 'no hashing') await petrelBench(cpu, ['-c', '1', '-R', '20', '-d', '1s', `${base}/scrypt/${mode}?password=x`])
        const [plaintext, hash] = await Promise.all([
          petrelBench(cpu, ['-c', '10', '-R', String(rate), '-d', `${durationSec}s`, `${base}/plaintext`]),
          mode === 'no hashing'
            ? Promise.resolve(null)
            : petrelBench(cpu, ['-c', '8', '-R', String(hashRate), '-d', `${durationSec}s`, `${base}/scrypt/${mode}?password=x`]),
        ])
        runs.get(mode)!.push({ plaintext, hash })
        console.log(`/plaintext p99 ${plaintext.latency_ms.p99} ms${hash === null ? '' : `, scrypt ${Math.round(hash.rps)}/s p99 ${hash.latency_ms.p99} ms`}`)
      } finally {
        await server.stop()
      }
    }
  }
  const columns: Column[] = [
    { title: 'scrypt load', alignRight: false },
    { title: '/plaintext req/s', alignRight: true },
    { title: 'p50 ms', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'p99.9 ms', alignRight: true },
    { title: 'max ms', alignRight: true },
    { title: 'scrypt req/s', alignRight: true },
    { title: 'scrypt p99 ms', alignRight: true },
    { title: 'failed', alignRight: true },
  ]
  const m = (values: number[]): string => (values.length === 0 ? '–' : median(values).toFixed(2))
  const rows = OFFLOAD_MODES.map((mode) => {
    const list = runs.get(mode)!
    const hashes = list.flatMap((run) => (run.hash === null ? [] : [run.hash]))
    return [
      mode === 'no hashing' ? 'none (baseline)' : `${hashRate}/s ${mode}`,
      wholeNumber(median(list.map((run) => run.plaintext.rps))),
      m(list.map((run) => run.plaintext.latency_ms.p50)),
      m(list.map((run) => run.plaintext.latency_ms.p99)),
      m(list.map((run) => run.plaintext.latency_ms.p999)),
      m(list.map((run) => run.plaintext.latency_ms.max)),
      hashes.length === 0 ? '–' : m(hashes.map((h) => h.rps)),
      m(hashes.map((h) => h.latency_ms.p99)),
      wholeNumber(list.reduce((sum, run) => sum + failures(run.plaintext) + (run.hash === null ? 0 : failures(run.hash)), 0)),
    ]
  })
  return { rows, columns }
}

// ---- cgi ----

const HELLO_SCRIPT = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nhi\\n"\n'

/** The script's answer arrives chunked or close-delimited, depending on the server: check status and text. */
function scriptAnswered(response: string): string | undefined {
  return response.startsWith('HTTP/1.1 200') && response.includes('hi\n')
    ? undefined
    : `unexpected answer to GET /cgi-bin/hello.sh: ${JSON.stringify(response.slice(0, 200))}`
}

interface CgiServer {
  name: string
  start(cgiDir: string, runDir: string): Promise<{ started: Started; pids: () => number[]; stop: () => Promise<void> }>
}

const petrelCgi: CgiServer = {
  name: 'petrel --cgi-bin',
  async start(cgiDir) {
    const probe = await petrelPeer([tmpdir(), '--cgi-bin', cgiDir]).probe()
    if (!probe.ok) throw new Error(probe.reason)
    const started = await startServer(probe.launch, SERVER_CPU, '/cgi-bin/hello.sh', scriptAnswered)
    return { started, pids: () => [started.server.pid], stop: () => started.stop() }
  },
}

const nginxFcgiwrap: CgiServer = {
  name: 'nginx + fcgiwrap',
  async start(cgiDir, runDir) {
    const fcgiwrap = [...findOnPath('fcgiwrap'), '/usr/sbin/fcgiwrap'].find(isExecutable)
    if (fcgiwrap === undefined) throw new Error('fcgiwrap not found (apt-get install fcgiwrap)')
    const socket = join(runDir, 'fcgiwrap.sock')
    // A killed fcgiwrap leaves its socket file behind, and the next one could not bind it.
    rmSync(socket, { force: true })
    // As many preforked fcgiwrap processes as Petrel's default --cgi-max is not: fcgiwrap serves
    // one request per process at a time, and 8 matches the generator's connections.
    // In its own process group, stopped as a group: fcgiwrap's preforked children outlive a
    // SIGTERM to the parent and would keep its output pipes (and the harness) waiting.
    const wrapper = startTracked('taskset', ['-c', String(SERVER_CPU), fcgiwrap, '-s', `unix:${socket}`, '-c', '8'], { detached: true })
    const stopWrapper = async (): Promise<void> => {
      try {
        process.kill(-wrapper.pid, 'SIGTERM')
      } catch {
        // Already gone.
      }
      await stopTracked(wrapper)
    }
    const probe = await probeNginx(join(BENCH_DIR, 'peers', 'cgi-nginx.conf'), { CGI_DIR: cgiDir, FCGI_SOCKET: socket })
    if (!probe.ok) {
      await stopWrapper()
      throw new Error(probe.reason)
    }
    try {
      const started = await startServer(probe.launch, SERVER_CPU, '/cgi-bin/hello.sh', scriptAnswered)
      return {
        started,
        pids: () => [started.server.pid, wrapper.pid],
        stop: async () => {
          await started.stop()
          await stopWrapper()
        },
      }
    } catch (error) {
      await stopWrapper()
      throw error
    }
  },
}

async function cgi(
  cpu: number,
  durationSec: number,
  repeat: number,
  connections: number,
  ticks: number,
): Promise<{ rows: string[][]; columns: Column[]; notes: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-bench-cgi-'))
  const removeCleanup = onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  const cgiDir = join(dir, 'cgi-bin')
  const runDir = join(dir, 'run')
  mkdirSync(cgiDir)
  mkdirSync(runDir)
  writeFileSync(join(cgiDir, 'hello.sh'), HELLO_SCRIPT)
  chmodSync(join(cgiDir, 'hello.sh'), 0o755)
  const notes: string[] = []
  const results = new Map<string, Array<{ rps: number; cpuUs: number; p99: number; failed: number }>>()
  try {
    for (let repetition = 1; repetition <= repeat; repetition++) {
      for (const server of [petrelCgi, nginxFcgiwrap]) {
        process.stdout.write(`  cgi ${server.name}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
        let running: Awaited<ReturnType<CgiServer['start']>>
        try {
          running = await server.start(cgiDir, runDir)
        } catch (error) {
          console.log(`skipped: ${(error as Error).message}`)
          if (!notes.some((note) => note.startsWith(server.name))) notes.push(`${server.name}: skipped: ${(error as Error).message}`)
          continue
        }
        try {
          const url = `http://127.0.0.1:${running.started.port}/cgi-bin/hello.sh`
          await petrelBench(cpu, ['-c', String(connections), '-d', '1s', url])
          const cpuBefore = running.pids().reduce((sum, pid) => sum + processTreeCpuTicks(pid, true), 0)
          const result = await petrelBench(cpu, ['-c', String(connections), '-d', `${durationSec}s`, url])
          const cpuUs = ((running.pids().reduce((sum, pid) => sum + processTreeCpuTicks(pid, true), 0) - cpuBefore) / ticks) * 1e6
          const row = {
            rps: result.rps,
            cpuUs: result.requests > 0 ? cpuUs / result.requests : Number.NaN,
            p99: result.latency_ms.p99,
            failed: failures(result),
          }
          results.set(server.name, [...(results.get(server.name) ?? []), row])
          console.log(`${wholeNumber(row.rps)} req/s, ${twoDigits(row.cpuUs)} µs server CPU/req`)
        } finally {
          await running.stop()
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    removeCleanup()
  }
  const base = results.get(petrelCgi.name)
  const columns: Column[] = [
    { title: 'server', alignRight: false },
    { title: 'req/s', alignRight: true },
    { title: 'vs petrel', alignRight: true },
    { title: 'server CPU µs/req (scripts included)', alignRight: true },
    { title: 'p99 ms', alignRight: true },
    { title: 'failed', alignRight: true },
  ]
  const rows = [...results].map(([name, list]) => [
    name,
    wholeNumber(median(list.map((r) => r.rps))),
    base === undefined ? '–' : `${(median(list.map((r) => r.rps)) / median(base.map((r) => r.rps))).toFixed(2)}×`,
    twoDigits(median(list.map((r) => r.cpuUs))),
    median(list.map((r) => r.p99)).toFixed(2),
    wholeNumber(list.reduce((sum, r) => sum + r.failed, 0)),
  ])
  return { rows, columns, notes }
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'logic')
  const durationSec = flags.get('duration')
  const repeat = flags.get('repeat')
  const rate = flags.get('rate')
  const hashRate = flags.get('hash-rate')
  const connections = flags.get('connections')
  const scenarios = listOf('scenario', flags.get('scenario'), SCENARIOS)
  const tools = await findLoadTools()
  if ('missing' in tools) {
    console.error(tools.missing)
    return 2
  }
  const ticks = clockTicksPerSecond()
  const startedAt = new Date().toISOString()
  const sections: string[] = []
  if (scenarios.includes('offload')) {
    console.log(
      `offload: /plaintext at ${rate} req/s while scrypt is asked for at ${hashRate} req/s, inline or on the pool (server on CPU ${SERVER_CPU}, both generators on CPU ${tools.wrkCpu})`,
    )
    const { rows, columns } = await offload(tools.wrkCpu, durationSec, repeat, rate, hashRate)
    console.log(`\n${textTable(columns, rows)}\n`)
    sections.push(`## offload: /plaintext at ${rate} req/s while scrypt runs at ${hashRate} req/s`, '', markdownTable(columns, rows), '')
  }
  if (scenarios.includes('cgi')) {
    console.log(`cgi: a trivial shell script, ${connections} connections (server on CPU ${SERVER_CPU}, generator on CPU ${tools.wrkCpu})`)
    const { rows, columns, notes } = await cgi(tools.wrkCpu, durationSec, repeat, connections, ticks)
    console.log(`\n${textTable(columns, rows)}`)
    for (const note of notes) console.log(`  ${note}`)
    console.log('')
    sections.push(`## cgi: a trivial shell script, ${connections} connections`, '', markdownTable(columns, rows), '', ...notes.map((note) => `- ${note}`), '')
  }
  const machine = machineFacts()
  const markdown = [
    `# logic: thread pool offload and CGI (${startedAt})`,
    '',
    `Servers pinned to CPU ${SERVER_CPU} (their threads and CGI children with them), petrel bench on CPU ${tools.wrkCpu}; ${durationSec} s runs${repeat > 1 ? `, medians of ${repeat}` : ''}. ` +
      'Latencies are open-model (counted from when each request was due).',
    '',
    `- CPU: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs; kernel ${machine.kernel}`,
    `- petrel revision: ${tools.petrelRevision}; node ${machine.harnessNode}`,
    '',
    ...sections,
  ].join('\n')
  const written = writeResultFiles('logic', startedAt, markdown, { suite: 'logic', startedAt, machine, durationSec, repeat, rate, hashRate, connections })
  console.log(`wrote ${written.join(', ')}`)
  return 0
}

export const logicSuite: Suite = {
  name: 'logic',
  summary: 'thread pool vs inline CPU work (p99 of /plaintext), and CGI req/s vs nginx + fcgiwrap',
  flags: FLAGS,
  passThrough: false,
  run,
}
