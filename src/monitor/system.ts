// The machine around the server, read from /proc the way the book's ch. 17 tools read it:
// CPU per core (mpstat: /proc/stat), memory and the run queue (vmstat: /proc/meminfo,
// /proc/loadavg, /proc/stat), bytes and packets per interface (ifstat: /proc/net/dev), this
// server's TCP sockets by state (netstat: /proc/net/tcp and tcp6, matched to the server's socket
// inodes and listening ports), and open descriptors per process (lsof: /proc/PID/fd).
//
// Rates need two readings: a sampler keeps the previous one and reports the change per second.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { openFds } from './metrics.ts'

export interface CpuUsage {
  name: string
  userPct: number
  systemPct: number
  iowaitPct: number
  idlePct: number
}

export interface SystemSnapshot {
  /** `cpu` (all) first, then cpu0, cpu1, … */
  cpus: CpuUsage[]
  memory: { totalKb: number; availableKb: number; freeKb: number; buffersKb: number; cachedKb: number; swapTotalKb: number; swapFreeKb: number }
  load: [number, number, number]
  /** Runnable and blocked processes (vmstat's r and b). */
  running: number
  blocked: number
  contextSwitchesPerS: number
  interruptsPerS: number
  forksPerS: number
  interfaces: Array<{ name: string; rxBytesPerS: number; txBytesPerS: number; rxPacketsPerS: number; txPacketsPerS: number }>
  /** This server's TCP sockets: by local listening port (or "other"), then by state. */
  tcp: Record<string, Record<string, number>>
  fds: Array<{ pid: number; open: number }>
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/**
 * CPU time per core from /proc/stat (mpstat's source), as percentages of the time since the
 * previous reading; `cpu` (all) first. Zero on the first reading.
 */
export class CpuMeter {
  private last: Map<string, number[]> | null = null

  sample(stat: string = read('/proc/stat')): CpuUsage[] {
    const now = new Map<string, number[]>()
    for (const line of stat.split('\n')) {
      if (!line.startsWith('cpu')) continue
      const parts = line.split(/\s+/)
      now.set(parts[0]!, parts.slice(1, 9).map(Number))
    }
    const before = this.last
    this.last = now
    const cpus: CpuUsage[] = []
    for (const [name, times] of now) {
      const then = before?.get(name)
      // user nice system idle iowait irq softirq steal
      const d = times.map((v, i) => v - (then?.[i] ?? 0))
      const total = d.slice(0, 8).reduce((a, b) => a + b, 0)
      const pct = (n: number): number => (then === undefined || total <= 0 ? 0 : (n / total) * 100)
      cpus.push({ name, userPct: pct(d[0]! + d[1]!), systemPct: pct(d[2]! + d[5]! + d[6]!), iowaitPct: pct(d[4]!), idlePct: pct(d[3]!) })
    }
    return cpus
  }
}

/** User + system time of the whole machine, % of one core summed over cores (two busy cores: 200). */
export function machineBusyPct(cpus: readonly CpuUsage[]): number {
  const all = cpus[0]
  if (all === undefined) return 0
  return (all.userPct + all.systemPct) * Math.max(1, cpus.length - 1)
}

interface Raw {
  atMs: number
  stat: string
  ctxt: number
  intr: number
  forks: number
  net: Map<string, number[]>
}

export class SystemSampler {
  private last: Raw | null = null
  private readonly cpu = new CpuMeter()

  /** When the last sample was taken (0: never): its rates cover the time since the one before. */
  get lastSampleAtMs(): number {
    return this.last?.atMs ?? 0
  }

  /** The machine now, with rates since the previous call (zero on the first). `pids`: the server's processes. */
  sample(pids: readonly number[]): SystemSnapshot {
    const raw = readRaw()
    const before = this.last
    this.last = raw
    const seconds = before === null ? 0 : (raw.atMs - before.atMs) / 1000
    const per = (now: number, then: number | undefined): number => (seconds > 0 && then !== undefined ? Math.max(0, now - then) / seconds : 0)
    const field = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(raw.stat)?.[1] ?? 0)
    const cpus = this.cpu.sample(raw.stat)
    const meminfo = read('/proc/meminfo')
    const mem = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? 0)
    const loadavg = read('/proc/loadavg').split(' ')
    const interfaces = [...raw.net].map(([name, now]) => {
      const then = before?.net.get(name)
      return {
        name,
        rxBytesPerS: per(now[0]!, then?.[0]),
        rxPacketsPerS: per(now[1]!, then?.[1]),
        txBytesPerS: per(now[8]!, then?.[8]),
        txPacketsPerS: per(now[9]!, then?.[9]),
      }
    })
    return {
      cpus,
      memory: {
        totalKb: mem('MemTotal'),
        availableKb: mem('MemAvailable'),
        freeKb: mem('MemFree'),
        buffersKb: mem('Buffers'),
        cachedKb: mem('Cached'),
        swapTotalKb: mem('SwapTotal'),
        swapFreeKb: mem('SwapFree'),
      },
      load: [Number(loadavg[0] ?? 0), Number(loadavg[1] ?? 0), Number(loadavg[2] ?? 0)],
      running: field('procs_running'),
      blocked: field('procs_blocked'),
      contextSwitchesPerS: per(raw.ctxt, before?.ctxt),
      interruptsPerS: per(raw.intr, before?.intr),
      forksPerS: per(raw.forks, before?.forks),
      interfaces,
      tcp: tcpStates(pids),
      fds: pids.map((pid) => ({ pid, open: openFds(pid) })),
    }
  }
}

function readRaw(): Raw {
  const stat = read('/proc/stat')
  let ctxt = 0
  let intr = 0
  let forks = 0
  for (const line of stat.split('\n')) {
    if (line.startsWith('ctxt ')) ctxt = Number(line.slice(5))
    else if (line.startsWith('intr ')) intr = Number(line.slice(5, line.indexOf(' ', 5) > 0 ? line.indexOf(' ', 5) : undefined))
    else if (line.startsWith('processes ')) forks = Number(line.slice(10))
  }
  const net = new Map<string, number[]>()
  // Inter-|   Receive: bytes packets errs drop fifo frame compressed multicast | Transmit: bytes packets …
  for (const line of read('/proc/net/dev').split('\n').slice(2)) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    net.set(
      line.slice(0, colon).trim(),
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .map(Number),
    )
  }
  return { atMs: Date.now(), stat, ctxt, intr, forks, net }
}

/** Socket inodes a process holds (`socket:[N]` links in /proc/PID/fd). */
function socketInodes(pid: number, into: Set<string>): void {
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (link.startsWith('socket:[')) into.add(link.slice(8, -1))
    } catch {
      // Closed meanwhile.
    }
  }
}

/**
 * The server's TCP sockets by local listening port and state, as `netstat -tanp` would list
 * them: sockets whose inode one of `pids` holds, plus sockets on the server's listening ports
 * that no process holds any more (TIME_WAIT and the like, which netstat shows without a pid).
 */
export function tcpStates(pids: readonly number[]): Record<string, Record<string, number>> {
  const inodes = new Set<string>()
  for (const pid of pids) socketInodes(pid, inodes)
  const rows: Array<{ port: number; state: string; inode: string }> = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of read(file).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10) continue
      rows.push({ port: parseInt(f[1]!.slice(f[1]!.lastIndexOf(':') + 1), 16), state: TCP_STATES[f[3]!] ?? f[3]!, inode: f[9]! })
    }
  }
  const listening = new Set(rows.filter((r) => r.state === 'LISTEN' && inodes.has(r.inode)).map((r) => r.port))
  const out: Record<string, Record<string, number>> = {}
  for (const r of rows) {
    const ours = inodes.has(r.inode) || (r.inode === '0' && listening.has(r.port))
    if (!ours) continue
    const key = listening.has(r.port) ? String(r.port) : 'other'
    const byState = (out[key] ??= {})
    byState[r.state] = (byState[r.state] ?? 0) + 1
  }
  return out
}
