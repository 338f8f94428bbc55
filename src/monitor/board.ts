// The figures of every server process in one place: the latest snapshot of each (a worker sends
// one a second; a single process takes its own), totals across them, and per-second rates from
// one total to the next. Counters stay monotonic across worker restarts: a worker that exits
// leaves its last counters in `retired`, so a total never goes backwards and Prometheus's rate()
// sees no false reset.

import { LATENCY_BOUNDS_S, percentileMs, type ProcessSnapshot, type TrafficFigures } from './metrics.ts'
import type { SystemSnapshot } from './system.ts'

/** Counters summed over processes, and gauges summed (or the worst of) over the live ones. */
export interface Totals extends TrafficFigures {
  atMs: number
  processes: number
  cpuUs: number
  memory: { rss: number; heapUsed: number }
  /** The worst process's event-loop delay p99 and the mean utilization. */
  eventLoop: { delayP99Ms: number; utilization: number }
}

/** The last second, from two totals. */
export interface Rates {
  seconds: number
  requestsPerS: number
  bytesInPerS: number
  bytesOutPerS: number
  /** Server CPU, % of one core (200% = two cores busy). */
  cpuPct: number
  latencyMs: { p50: number; p90: number; p99: number }
  responsesPerS: number[]
}

/** What the dashboard, `petrel top` and /api/snapshot get each second. */
export interface Tick {
  atMs: number
  totals: Totals
  rates: Rates
  processes: Array<ProcessSnapshot & { cpuPct: number; requestsPerS: number }>
  system: SystemSnapshot
}

type Counters = Pick<Totals, 'requests' | 'responses' | 'bytesIn' | 'bytesOut' | 'latency' | 'cpuUs'> & { accepted: number; rejected: number }

function zeroCounters(): Counters {
  return { requests: 0, responses: [0, 0, 0, 0, 0], bytesIn: 0, bytesOut: 0, latency: { counts: new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0), sumS: 0 }, cpuUs: 0, accepted: 0, rejected: 0 }
}

function addCounters(into: Counters, s: ProcessSnapshot): void {
  into.requests += s.requests
  into.accepted += s.connections.accepted
  into.rejected += s.connections.rejected
  for (let i = 0; i < 5; i++) into.responses[i]! += s.responses[i]!
  into.bytesIn += s.bytesIn
  into.bytesOut += s.bytesOut
  for (let i = 0; i < into.latency.counts.length; i++) into.latency.counts[i]! += s.latency.counts[i] ?? 0
  into.latency.sumS += s.latency.sumS
  into.cpuUs += s.cpu.userUs + s.cpu.systemUs
}

export class MetricsBoard {
  private readonly live = new Map<string, ProcessSnapshot>()
  /** The previous one of each process, for its own rates. */
  private readonly previous = new Map<string, ProcessSnapshot>()
  private readonly retired = zeroCounters()
  private lastTotals: Totals | null = null

  /** A process's latest figures; `key` names it for as long as it lives ("w0", "self"). */
  update(key: string, snapshot: ProcessSnapshot): void {
    const old = this.live.get(key)
    if (old !== undefined && old.pid === snapshot.pid) this.previous.set(key, old)
    else this.previous.delete(key)
    this.live.set(key, snapshot)
  }

  /** The process under `key` is gone: keep its counters, drop its gauges. */
  retire(key: string): void {
    const last = this.live.get(key)
    if (last === undefined) return
    addCounters(this.retired, last)
    this.live.delete(key)
    this.previous.delete(key)
  }

  processes(): ProcessSnapshot[] {
    return this.byWorker().map(([, s]) => s)
  }

  /** Live processes with their keys, the single process or worker 0 first. */
  private byWorker(): Array<[string, ProcessSnapshot]> {
    return [...this.live].sort(([, a], [, b]) => (a.worker ?? -1) - (b.worker ?? -1))
  }

  totals(): Totals {
    const r = this.retired
    const c: Counters = { ...r, responses: [...r.responses], latency: { counts: [...r.latency.counts], sumS: r.latency.sumS } }
    const t: Totals = {
      atMs: Date.now(),
      processes: this.live.size,
      connections: { active: 0, idle: 0, accepted: 0, rejected: 0 },
      requests: 0,
      responses: [],
      bytesIn: 0,
      bytesOut: 0,
      latency: c.latency,
      cpuUs: 0,
      memory: { rss: 0, heapUsed: 0 },
      eventLoop: { delayP99Ms: 0, utilization: 0 },
      timers: 0,
      fds: 0,
    }
    for (const s of this.live.values()) {
      addCounters(c, s)
      t.connections.active += s.connections.active
      t.connections.idle += s.connections.idle
      t.memory.rss += s.memory.rss
      t.memory.heapUsed += s.memory.heapUsed
      t.eventLoop.delayP99Ms = Math.max(t.eventLoop.delayP99Ms, s.eventLoop.delayP99Ms)
      t.eventLoop.utilization += s.eventLoop.utilization / this.live.size
      t.timers += s.timers
      t.fds += s.fds
    }
    t.connections.accepted = c.accepted
    t.connections.rejected = c.rejected
    t.requests = c.requests
    t.responses = c.responses
    t.bytesIn = c.bytesIn
    t.bytesOut = c.bytesOut
    t.cpuUs = c.cpuUs
    return t
  }

  /** Totals now, rates since the previous call, and each process with its own rates. */
  tick(system: SystemSnapshot): Tick {
    const totals = this.totals()
    const rates = ratesBetween(this.lastTotals, totals)
    this.lastTotals = totals
    const processes = this.byWorker().map(([key, s]) => {
      const before = this.previous.get(key)
      const seconds = before === undefined ? 0 : (s.atMs - before.atMs) / 1000
      return {
        ...s,
        cpuPct: seconds > 0 ? ((s.cpu.userUs + s.cpu.systemUs - before!.cpu.userUs - before!.cpu.systemUs) / 1e4) / seconds : 0,
        requestsPerS: seconds > 0 ? (s.requests - before!.requests) / seconds : 0,
      }
    })
    return { atMs: totals.atMs, totals, rates, processes, system }
  }

}

function ratesBetween(before: Totals | null, now: Totals): Rates {
  const seconds = before === null ? 0 : (now.atMs - before.atMs) / 1000
  if (before === null || seconds <= 0) {
    return { seconds: 0, requestsPerS: 0, bytesInPerS: 0, bytesOutPerS: 0, cpuPct: 0, latencyMs: { p50: 0, p90: 0, p99: 0 }, responsesPerS: [0, 0, 0, 0, 0] }
  }
  const window = now.latency.counts.map((c, i) => Math.max(0, c - (before.latency.counts[i] ?? 0)))
  const per = (a: number, b: number): number => Math.max(0, a - b) / seconds
  return {
    seconds,
    requestsPerS: per(now.requests, before.requests),
    bytesInPerS: per(now.bytesIn, before.bytesIn),
    bytesOutPerS: per(now.bytesOut, before.bytesOut),
    cpuPct: per(now.cpuUs, before.cpuUs) / 1e4,
    latencyMs: { p50: percentileMs(window, 50), p90: percentileMs(window, 90), p99: percentileMs(window, 99) },
    responsesPerS: now.responses.map((n, i) => per(n, before.responses[i] ?? 0)),
  }
}
