// The figures of every server process in one place: the latest snapshot of each (a worker sends
// one a second; a single process takes its own), totals across them, and per-second rates.
// Counters stay monotonic across worker restarts: a worker that exits leaves its last counters
// in `retired`, so a total never goes backwards and Prometheus's rate() sees no false reset.
//
// Rates are counts over time: what each process counted between the snapshots that reached the
// board since its last second(), over the time since then. Every request is counted in exactly one
// second — a burst is never dropped nor counted twice, so the history's points add up to the
// totals — and a process's counts before its first report belong to the second that report
// reaches. A master's clock and its workers' report timers drift apart, so a worker reports
// REPORTS_PER_SECOND times a second: a second that catches one report fewer or more is off by a
// fraction of a report, not by a whole one (a false zero, then a double second).

import { LATENCY_BOUNDS_S, percentileMs, type ProcessSnapshot, type TrafficFigures } from './metrics.ts'
import type { SystemSnapshot } from './system.ts'
import type { HistoryPoint } from './history.ts'

/** How often a worker sends its snapshot to the master (see the comment above). */
export const REPORTS_PER_SECOND = 4

/** Counters summed over processes, and gauges summed (or the worst of) over the live ones. */
export interface Totals extends TrafficFigures {
  atMs: number
  processes: number
  cpuUs: number
  memory: { rss: number; heapUsed: number }
  /** The worst process's event-loop delay p99 and the mean utilization. */
  eventLoop: { delayP99Ms: number; utilization: number }
}

/** The last second: each live process's latest window, summed. */
export interface Rates {
  requestsPerS: number
  bytesInPerS: number
  bytesOutPerS: number
  /** Server CPU, % of one core (200% = two cores busy). */
  cpuPct: number
  /** null when no response ended in the window: there is no latency to speak of, not a latency of 0. */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null }
  responsesPerS: number[]
}

/** Totals and rates of one moment, and each process with its own rates. */
export interface Second {
  atMs: number
  totals: Totals
  rates: Rates
  processes: Array<ProcessSnapshot & { cpuPct: number; requestsPerS: number }>
}

/** What the dashboard, `petrel top` and /api/snapshot get each second. */
export interface Tick extends Second {
  system: SystemSnapshot
  /** This second as the dashboard's charts draw it (the same point the history keeps). */
  point: HistoryPoint
}

/** What one process counted between two of its snapshots (or several, one after the other). */
interface Window {
  requests: number
  bytesIn: number
  bytesOut: number
  cpuUs: number
  responses: number[]
  latencyCounts: number[]
}

type Counters = Pick<Totals, 'requests' | 'responses' | 'bytesIn' | 'bytesOut' | 'latency' | 'cpuUs'> & {
  accepted: number
  rejected: number
  tlsHandshakes: number
  tlsResumed: number
}

function zeroCounters(): Counters {
  return {
    requests: 0,
    responses: [0, 0, 0, 0, 0],
    bytesIn: 0,
    bytesOut: 0,
    latency: { counts: new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0), sumS: 0 },
    cpuUs: 0,
    accepted: 0,
    rejected: 0,
    tlsHandshakes: 0,
    tlsResumed: 0,
  }
}

function addCounters(into: Counters, s: ProcessSnapshot): void {
  into.requests += s.requests
  into.accepted += s.connections.accepted
  into.rejected += s.connections.rejected
  into.tlsHandshakes += s.connections.tlsHandshakes
  into.tlsResumed += s.connections.tlsResumed
  for (let i = 0; i < 5; i++) into.responses[i]! += s.responses[i]!
  into.bytesIn += s.bytesIn
  into.bytesOut += s.bytesOut
  for (let i = 0; i < into.latency.counts.length; i++) into.latency.counts[i]! += s.latency.counts[i] ?? 0
  into.latency.sumS += s.latency.sumS
  into.cpuUs += s.cpu.userUs + s.cpu.systemUs
}

export class MetricsBoard {
  private readonly live = new Map<string, ProcessSnapshot>()
  /** Per process: its latest snapshot taken into `counted`, and what it counted since the board's last second(). */
  private readonly windows = new Map<string, { base: ProcessSnapshot; counted: Window }>()
  private readonly retired = zeroCounters()
  /** What retired processes counted since the last second(): it still belongs to that second. */
  private retiredCounted: Window | null = null
  /** When second() last ran, on `clock`: the rates' time base. */
  private lastSecondAt = -1
  /** A monotonic clock in ms: a step of the wall clock must not turn a second into a spike. */
  private readonly clock: () => number

  constructor(clock: () => number = () => performance.now()) {
    this.clock = clock
  }

  /** A process's latest figures; `key` names it for as long as it lives ("w0", "self"). */
  update(key: string, snapshot: ProcessSnapshot): void {
    this.live.set(key, snapshot)
    const window = this.windows.get(key)
    if (window === undefined || window.base.pid !== snapshot.pid) {
      // A new process starts from zero: all it counted so far is new.
      this.windows.set(key, { base: snapshot, counted: windowBetween(null, snapshot) })
      return
    }
    window.counted = joinWindows(window.counted, windowBetween(window.base, snapshot))
    window.base = snapshot
  }

  /** The process under `key` is gone: keep its counters, drop its gauges (what it counted since the last second is in its counters). */
  retire(key: string): void {
    const last = this.live.get(key)
    if (last === undefined) return
    addCounters(this.retired, last)
    const counted = this.windows.get(key)?.counted
    if (counted !== undefined) this.retiredCounted = this.retiredCounted === null ? counted : joinWindows(this.retiredCounted, counted)
    this.live.delete(key)
    this.windows.delete(key)
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
      connections: { active: 0, idle: 0, http2: 0, streams: 0, websockets: 0, accepted: 0, rejected: 0, tlsHandshakes: 0, tlsResumed: 0 },
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
      t.connections.http2 += s.connections.http2
      t.connections.streams += s.connections.streams
      t.connections.websockets += s.connections.websockets
      t.memory.rss += s.memory.rss
      t.memory.heapUsed += s.memory.heapUsed
      t.eventLoop.delayP99Ms = Math.max(t.eventLoop.delayP99Ms, s.eventLoop.delayP99Ms)
      t.eventLoop.utilization += s.eventLoop.utilization / this.live.size
      t.timers += s.timers
      t.fds += s.fds
    }
    t.connections.accepted = c.accepted
    t.connections.rejected = c.rejected
    t.connections.tlsHandshakes = c.tlsHandshakes
    t.connections.tlsResumed = c.tlsResumed
    t.requests = c.requests
    t.responses = c.responses
    t.bytesIn = c.bytesIn
    t.bytesOut = c.bytesOut
    t.cpuUs = c.cpuUs
    return t
  }

  /**
   * Totals now; each live process's rates — what it counted since the last call, over the time
   * since then — and their sum. Call it once a second: each call starts the next second's counts.
   */
  second(): Second {
    const totals = this.totals()
    const now = this.clock()
    const seconds = this.lastSecondAt < 0 ? 1 : Math.max(0.001, (now - this.lastSecondAt) / 1000)
    this.lastSecondAt = now
    const sum = { requestsPerS: 0, bytesInPerS: 0, bytesOutPerS: 0, cpuPct: 0, responsesPerS: [0, 0, 0, 0, 0] }
    const latencyCounts = new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0)
    const add = (w: Window): void => {
      sum.requestsPerS += w.requests / seconds
      sum.bytesInPerS += w.bytesIn / seconds
      sum.bytesOutPerS += w.bytesOut / seconds
      sum.cpuPct += w.cpuUs / 1e4 / seconds
      for (let i = 0; i < 5; i++) sum.responsesPerS[i]! += w.responses[i]! / seconds
      for (let i = 0; i < latencyCounts.length; i++) latencyCounts[i]! += w.latencyCounts[i]!
    }
    // Processes that left during this second (a replaced worker, a reloaded generation) still count in it.
    if (this.retiredCounted !== null) {
      add(this.retiredCounted)
      this.retiredCounted = null
    }
    const processes = this.byWorker().map(([key, s]) => {
      const entry = this.windows.get(key)
      if (entry === undefined) return { ...s, cpuPct: 0, requestsPerS: 0 }
      const w = entry.counted
      entry.counted = windowBetween(entry.base, entry.base)
      add(w)
      return { ...s, cpuPct: w.cpuUs / 1e4 / seconds, requestsPerS: w.requests / seconds }
    })
    const latencyMs = { p50: percentileMs(latencyCounts, 50), p90: percentileMs(latencyCounts, 90), p99: percentileMs(latencyCounts, 99) }
    return { atMs: totals.atMs, totals, rates: { ...sum, latencyMs }, processes }
  }
}

/** Two windows of one process, one after the other, as one. */
function joinWindows(a: Window, b: Window): Window {
  return {
    requests: a.requests + b.requests,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
    cpuUs: a.cpuUs + b.cpuUs,
    responses: a.responses.map((n, i) => n + b.responses[i]!),
    latencyCounts: a.latencyCounts.map((n, i) => n + b.latencyCounts[i]!),
  }
}

/** What a process counted from `before` (null: its start, when every counter was 0) to `now`. */
function windowBetween(before: ProcessSnapshot | null, now: ProcessSnapshot): Window {
  const grew = (a: number, b: number | undefined): number => Math.max(0, a - (b ?? 0))
  return {
    requests: grew(now.requests, before?.requests),
    bytesIn: grew(now.bytesIn, before?.bytesIn),
    bytesOut: grew(now.bytesOut, before?.bytesOut),
    cpuUs: grew(now.cpu.userUs + now.cpu.systemUs, before === null ? 0 : before.cpu.userUs + before.cpu.systemUs),
    responses: now.responses.map((n, i) => grew(n, before?.responses[i])),
    latencyCounts: now.latency.counts.map((n, i) => grew(n, before?.latency.counts[i])),
  }
}
