// `petrel top [ADMIN_URL]`: the dashboard's figures in the terminal, refreshed every second —
// the server's rates and latency, its processes, and the machine as mpstat, vmstat, ifstat and
// netstat would show it. Reads /api/snapshot of a server started with --admin.

import type { Tick } from '../monitor/board.ts'
import { parseArgs, formatFlags, UsageError, type FlagSpec } from './args.ts'

export const TOP_DEFAULT_URL = 'http://127.0.0.1:8081'

export const TOP_FLAGS: FlagSpec[] = [
  { name: 'interval', short: 'n', type: 'duration', valueName: 'TIME', min: 100, bareUnit: 's', description: 'refresh period (default 1s)' },
  { name: 'once', type: 'boolean', description: 'print one frame and exit (1 if the server cannot be reached)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
]

const TOP_USAGE = `Usage: petrel top [ADMIN_URL] [flags]

The figures of a server started with --admin, in the terminal, refreshed every second:
requests/s, latency, connections, CPU and memory per process, and the machine (CPU per core,
memory and run queue, interfaces, this server's TCP sockets by state, open descriptors).
ADMIN_URL defaults to ${TOP_DEFAULT_URL} (what \`npm start\` opens). Ctrl-C quits.

Flags:
${formatFlags(TOP_FLAGS)}`

export async function topCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, TOP_FLAGS, 'top')
  if (flags.has('help')) {
    console.log(TOP_USAGE)
    return 0
  }
  if (positionals.length > 1) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel top\` takes one ADMIN_URL, got ${positionals.length}`)
  let base: URL
  try {
    base = new URL(positionals[0] ?? TOP_DEFAULT_URL)
    if (base.protocol !== 'http:') throw new Error('not http')
  } catch {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `${JSON.stringify(positionals[0])} is not an http:// URL; give the --admin address of a server, e.g. ${TOP_DEFAULT_URL}`)
  }
  const url = new URL('/api/snapshot', base)
  const intervalMs = (flags.get('interval') as number | undefined) ?? 1000
  const tty = process.stdout.isTTY === true
  for (;;) {
    let frame: string
    let ok = true
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(2000, intervalMs)) })
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      frame = renderTop((await response.json()) as Tick, base.origin)
    } catch (err) {
      ok = false
      frame = `petrel top: cannot read ${url.href}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}\n(is the server running with --admin ${base.host}?)\n`
    }
    process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`)
    if (flags.has('once')) return ok ? 0 : 1
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

const n = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-')
const mb = (bytes: number): string => n(bytes / 1048576, 1)
/** A latency, or - for a second in which no response ended. */
const ms = (value: number | null): string => (value === null ? '-' : `${n(value, 2)} ms`)
const rate = (bytesPerS: number): string => (bytesPerS >= 1048576 ? `${n(bytesPerS / 1048576, 1)} MB/s` : `${n(bytesPerS / 1024, 1)} KB/s`)

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(head), ...rows.map(line)].join('\n')
}

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}

/** One screen of `petrel top`. */
export function renderTop(tick: Tick, origin: string): string {
  const { totals: t, rates: r, system: s } = tick
  const oldest = Math.min(...tick.processes.map((p) => p.startedAtMs))
  const out: string[] = [
    `petrel top — ${origin}  ${new Date(tick.atMs).toISOString().slice(11, 19)} UTC  up ${uptime(tick.atMs - oldest)}  ${t.processes} process${t.processes === 1 ? '' : 'es'}`,
    '',
    `requests/s ${n(r.requestsPerS)}   latency p50 ${ms(r.latencyMs.p50)}  p90 ${ms(r.latencyMs.p90)}  p99 ${ms(r.latencyMs.p99)}   ` +
      `2xx ${n(r.responsesPerS[1]!)}/s  3xx ${n(r.responsesPerS[2]!)}/s  4xx ${n(r.responsesPerS[3]!)}/s  5xx ${n(r.responsesPerS[4]!)}/s`,
    `connections ${n(t.connections.active)} (${n(t.connections.idle)} idle)   accepted ${n(t.connections.accepted)}  rejected ${n(t.connections.rejected)}   ` +
      `in ${rate(r.bytesInPerS)}  out ${rate(r.bytesOutPerS)}   requests ${n(t.requests)}`,
    `server CPU ${n(r.cpuPct)}%   RSS ${mb(t.memory.rss)} MB  heap ${mb(t.memory.heapUsed)} MB   loop p99 ${n(t.eventLoop.delayP99Ms, 2)} ms  busy ${n(t.eventLoop.utilization * 100)}%   timers ${n(t.timers)}  fds ${n(t.fds)}`,
    '',
    table(['WORKER', 'PID', 'REQ/S', 'CPU', 'RSS MB', 'HEAP MB', 'CONNS', 'IDLE', 'LOOP P99', 'BUSY', 'TIMERS', 'FDS', 'UP'], tick.processes.map((p) => [
      p.worker === null ? 'single' : String(p.worker), String(p.pid), n(p.requestsPerS), `${n(p.cpuPct)}%`, mb(p.memory.rss), mb(p.memory.heapUsed),
      n(p.connections.active), n(p.connections.idle), n(p.eventLoop.delayP99Ms, 2), `${n(p.eventLoop.utilization * 100)}%`, n(p.timers), n(p.fds), uptime(p.atMs - p.startedAtMs),
    ])),
    '',
    table(['CPU (mpstat)', 'USER', 'SYS', 'IOWAIT', 'IDLE'], s.cpus.map((c) => [c.name === 'cpu' ? 'all' : c.name, `${n(c.userPct, 1)}%`, `${n(c.systemPct, 1)}%`, `${n(c.iowaitPct, 1)}%`, `${n(c.idlePct, 1)}%`])),
    '',
    `memory (vmstat)  total ${n(s.memory.totalKb / 1024)} MB  available ${n(s.memory.availableKb / 1024)} MB  swap used ${n((s.memory.swapTotalKb - s.memory.swapFreeKb) / 1024)} MB   ` +
      `load ${s.load.map((l) => n(l, 2)).join(' ')}   r ${s.running}  b ${s.blocked}   cs/s ${n(s.contextSwitchesPerS)}  in/s ${n(s.interruptsPerS)}  forks/s ${n(s.forksPerS)}`,
    '',
    table(['INTERFACE (ifstat)', 'RX', 'TX', 'RX PKT/S', 'TX PKT/S'], s.interfaces.map((i) => [i.name, rate(i.rxBytesPerS), rate(i.txBytesPerS), n(i.rxPacketsPerS), n(i.txPacketsPerS)])),
    '',
    table(['TCP (netstat)', 'STATE', 'SOCKETS'], Object.entries(s.tcp).flatMap(([port, states]) => Object.entries(states).map(([state, count]) => [port === 'other' ? 'other' : `:${port}`, state, n(count)]))),
    '',
    `open descriptors (lsof)  ${s.fds.map((f) => `pid ${f.pid}: ${n(f.open)}`).join('   ')}`,
  ]
  return out.join('\n') + '\n'
}
