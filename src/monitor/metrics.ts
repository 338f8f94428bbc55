// What one server process counts about itself (book ch. 17: the figures netstat, vmstat and
// friends give, from the inside). The hot path pays a few field increments per request and two
// clock reads per socket read: the server counts each response's status as it ends, times the
// responses of one read together, and adds read sizes to `bytesIn`; everything else — connections by phase, bytes written, memory, event-loop delay, timers — is read once per
// snapshot (a second), not counted as it happens.

import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks'
import { readdirSync } from 'node:fs'
import type { MetricsSink } from '../server/metrics-sink.ts'

/**
 * Upper bounds of the latency buckets, in seconds: a factor of √2 from 25 µs to about 46 s, so
 * a percentile read from the buckets is within 19% of the truth (half a bucket). Prometheus
 * gets them as `le` buckets; the dashboard interpolates percentiles from their deltas.
 */
export const LATENCY_BOUNDS_S: readonly number[] = Array.from({ length: 42 }, (_, i) => 25e-6 * Math.SQRT2 ** i)

/** Latency in units of the first bound (25 µs) per millisecond. */
const UNITS_PER_MS = 40

/** The event-loop delay sampler's period. */
const LOOP_RESOLUTION_MS = 10
/** Event-loop figures are taken over windows of at least this long. */
const MIN_LOOP_WINDOW_MS = 900

/** Status classes counted: index = status / 100 - 1 (1xx … 5xx). */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

export class HttpMetrics implements MetricsSink {
  /** Request bytes read (every chunk, as it arrives). */
  bytesIn = 0
  /** Bytes written on connections already closed (open ones are read at snapshot time). */
  bytesOutClosed = 0
  readonly responses = [0, 0, 0, 0, 0]
  /** Latency bucket counts, one per bound plus +Inf. */
  readonly latency = new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0)
  latencySumS = 0
  private readonly loopDelay: ReturnType<typeof monitorEventLoopDelay>
  private lastElu: EventLoopUtilization
  private lastLoop: ProcessSnapshot['eventLoop'] = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0 }
  private lastLoopAt = 0

  constructor() {
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
    this.loopDelay.enable()
    this.lastElu = performance.eventLoopUtilization()
  }

  /** A response ended: its status and how long since its request's head arrived. */
  observe(status: number, ms: number): void {
    this.count(status)
    this.time(ms, 1)
  }

  /** A response's status, its time recorded apart (see Connection: one clock read per read). */
  count(status: number): void {
    const cls = ((status / 100) | 0) - 1
    if (cls >= 0 && cls < 5) this.responses[cls]!++
  }

  /** `n` responses that each took `ms`. */
  time(ms: number, n: number): void {
    this.latencySumS += (ms / 1000) * n
    // Bucket i holds (bound[i-1], bound[i]]; bound[i] = √2^i in units of 25 µs. With
    // e = floor(log2 q), bound[2e] = 2^e ≤ q < bound[2e+2]: one comparison decides, no logarithm.
    const q = ms * UNITS_PER_MS
    let i = 0
    if (q > 1) {
      const e = 31 - Math.clz32(q)
      const base = 2 ** e
      i = q === base ? 2 * e : q <= base * Math.SQRT2 ? 2 * e + 1 : 2 * e + 2
    }
    this.latency[i < this.latency.length ? i : this.latency.length - 1]! += n
  }

  /**
   * Event-loop delay percentiles and utilization over the last window of about a second. A
   * second call within the window (a /metrics scrape just after a tick) gets the same figures
   * rather than a window too short to mean anything.
   */
  takeLoop(): ProcessSnapshot['eventLoop'] {
    const now = performance.now()
    if (now - this.lastLoopAt < MIN_LOOP_WINDOW_MS) return this.lastLoop
    this.lastLoopAt = now
    const elu = performance.eventLoopUtilization(this.lastElu)
    this.lastElu = performance.eventLoopUtilization()
    const d = this.loopDelay
    // The histogram records the time between its timer's runs: the delay is what exceeds the period.
    const delay = (ns: number): number => (d.count === 0 ? 0 : Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS))
    this.lastLoop = { delayP50Ms: delay(d.percentile(50)), delayP99Ms: delay(d.percentile(99)), delayMaxMs: delay(d.max), utilization: elu.utilization }
    d.reset()
    return this.lastLoop
  }

  close(): void {
    this.loopDelay.disable()
  }
}

/** The traffic figures a process and the sum of all of them share; counters are totals. */
export interface TrafficFigures {
  /**
   * `http2`: of the open connections, those speaking HTTP/2, and `streams` their open streams;
   * `websockets`: those upgraded to WebSocket;
   * `tlsHandshakes`: TLS handshakes completed (HTTPS), `tlsResumed` of them resumed a session.
   */
  connections: {
    active: number
    idle: number
    http2: number
    streams: number
    websockets: number
    accepted: number
    rejected: number
    tlsHandshakes: number
    tlsResumed: number
  }
  requests: number
  /** Responses by status class, 1xx … 5xx. */
  responses: number[]
  bytesIn: number
  bytesOut: number
  latency: { counts: number[]; sumS: number }
  timers: number
  fds: number
}

/** One process's figures at one moment: counters are totals since it started. */
export interface ProcessSnapshot extends TrafficFigures {
  pid: number
  /** Worker index under a master; null for a single process. */
  worker: number | null
  atMs: number
  startedAtMs: number
  eventLoop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number; utilization: number }
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number }
  cpu: { userUs: number; systemUs: number }
}

/** What a snapshot reads from the server: kept to an interface so this module needs no server import. */
export interface MetricsSource {
  readonly stats: { accepted: number; rejected: number; requests: number; tlsHandshakes: number; tlsResumed: number }
  /** Connections open now, how many of them wait between requests, speak HTTP/2 (and their open streams), are WebSockets. */
  connectionCounts(): { active: number; idle: number; http2: number; streams: number; websockets: number; bytesOut: number }
  timersArmed(): number
}

const STARTED_AT_MS = Date.now()

/**
 * What a snapshot asks the system for — /proc/self/fd (about 10 ms with 10,000 descriptors open)
 * and the memory — taken at most once per MIN_LOOP_WINDOW_MS: a worker reports several times a
 * second, and gauges need not be fresher than once a second. Counters (bytes written on open
 * connections among them) are read every time.
 */
interface Gauges {
  atMs: number
  memory: NodeJS.MemoryUsage
  fds: number
}

const gaugesOf = new WeakMap<MetricsSource, Gauges>()

function gauges(source: MetricsSource, now: number): Gauges {
  const last = gaugesOf.get(source)
  if (last !== undefined && now - last.atMs < MIN_LOOP_WINDOW_MS) return last
  const fresh: Gauges = { atMs: now, memory: process.memoryUsage(), fds: openFds(process.pid) }
  gaugesOf.set(source, fresh)
  return fresh
}

export function takeSnapshot(metrics: HttpMetrics, source: MetricsSource, worker: number | null): ProcessSnapshot {
  const now = Date.now()
  const { memory, fds } = gauges(source, now)
  const counts = source.connectionCounts()
  const cpu = process.cpuUsage()
  return {
    pid: process.pid,
    worker,
    atMs: now,
    startedAtMs: STARTED_AT_MS,
    connections: {
      active: counts.active,
      idle: counts.idle,
      http2: counts.http2,
      streams: counts.streams,
      websockets: counts.websockets,
      accepted: source.stats.accepted,
      rejected: source.stats.rejected,
      tlsHandshakes: source.stats.tlsHandshakes,
      tlsResumed: source.stats.tlsResumed,
    },
    requests: source.stats.requests,
    responses: [...metrics.responses],
    bytesIn: metrics.bytesIn,
    bytesOut: metrics.bytesOutClosed + counts.bytesOut,
    latency: { counts: [...metrics.latency], sumS: metrics.latencySumS },
    eventLoop: metrics.takeLoop(),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
    cpu: { userUs: cpu.user, systemUs: cpu.system },
    timers: source.timersArmed(),
    fds,
  }
}

/** Open file descriptors of a process (like `ls /proc/PID/fd | wc -l`); 0 when unreadable. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return 0
  }
}

/**
 * A percentile (0–100) from bucket counts, interpolated inside the bucket it falls in; in ms.
 * Counts are usually the difference of two snapshots: the last second's requests. Null when
 * there are none: a second without responses has no latency, which is not a latency of 0.
 */
export function percentileMs(counts: readonly number[], p: number): number | null {
  let total = 0
  for (const c of counts) total += c
  if (total === 0) return null
  const rank = (p / 100) * total
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!
    if (c > 0 && seen + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_S[i - 1]!
      const upper = i < LATENCY_BOUNDS_S.length ? LATENCY_BOUNDS_S[i]! : lower * 2
      return (lower + ((rank - seen) / c) * (upper - lower)) * 1000
    }
    seen += c
  }
  return LATENCY_BOUNDS_S.at(-1)! * 1000
}
