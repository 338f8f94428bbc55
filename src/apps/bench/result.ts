// What a run measured: per event loop (LoopResult, which crosses from worker threads as is), and
// merged (BenchResult, which is also the shape `petrel bench --json` prints).

import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'

/** Kinds of failed requests, in the order of LoopResult.errors. */
export const ERROR_KINDS = ['connect', 'read', 'write', 'timeout', 'parse'] as const
export type ErrorKind = (typeof ERROR_KINDS)[number]
export const E_CONNECT = 0
export const E_READ = 1
export const E_WRITE = 2
export const E_TIMEOUT = 3
export const E_PARSE = 4

/** Latencies are recorded in ns, up to an hour; HDR histogram with 3 significant digits. */
const LATENCY_HIGHEST_NS = 3_600_000_000_000

export function newLatencyHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: LATENCY_HIGHEST_NS, figures: 3 })
}

/** Record one latency given in ms, clamped into the histogram's range. */
export function recordLatency(histogram: RecordableHistogram, ms: number): void {
  const ns = Math.round(ms * 1e6)
  histogram.record(ns < 1 ? 1 : ns > LATENCY_HIGHEST_NS ? LATENCY_HIGHEST_NS : ns)
}

export interface LoopResult {
  requests: number
  bytes: number
  /** Length of the measured window, warm-up excluded. */
  elapsedMs: number
  /** [status code, count] for each status seen. */
  status: Array<[number, number]>
  /** Failed requests by kind, indexed like ERROR_KINDS. */
  errors: number[]
  /** Responses completed in each second of the window. */
  timeline: number[]
  histogram: RecordableHistogram
  /** The first error's reason, for the report: "parse: malformed status line". */
  firstError: string | null
  /** https: TLS handshakes completed in the window, and how many of them resumed a session; null for http. */
  tls: { handshakes: number; resumed: number } | null
}

export interface LatencySummary {
  p50: number
  p75: number
  p90: number
  p99: number
  p999: number
  p9999: number
  max: number
  min: number
  mean: number
  stdev: number
}

/** The merged outcome of a run; printed as is by --json. Latencies in ms. */
export interface BenchResult {
  requests: number
  duration_s: number
  rps: number
  bytes: number
  bytes_per_s: number
  latency_ms: LatencySummary
  status: Record<string, number>
  errors: Record<ErrorKind, number>
  /** Responses completed in each second. */
  timeline: number[]
  first_error: string | null
  /** https only (null for http): TLS handshakes completed, per second, and how many resumed a session. */
  tls: TlsSummary | null
}

export interface TlsSummary {
  handshakes: number
  handshakes_per_s: number
  resumed: number
}

export function mergeResults(loops: readonly LoopResult[]): BenchResult {
  const histogram = newLatencyHistogram()
  let requests = 0
  let bytes = 0
  let elapsedMs = 0
  const status = new Map<number, number>()
  const errors = ERROR_KINDS.map(() => 0)
  const timeline: number[] = []
  let firstError: string | null = null
  let tls: { handshakes: number; resumed: number } | null = null
  for (const loop of loops) {
    if (loop.tls !== null) {
      tls ??= { handshakes: 0, resumed: 0 }
      tls.handshakes += loop.tls.handshakes
      tls.resumed += loop.tls.resumed
    }
    histogram.add(loop.histogram)
    requests += loop.requests
    bytes += loop.bytes
    elapsedMs = Math.max(elapsedMs, loop.elapsedMs)
    for (const [code, count] of loop.status) status.set(code, (status.get(code) ?? 0) + count)
    loop.errors.forEach((count, kind) => (errors[kind]! += count))
    loop.timeline.forEach((count, second) => (timeline[second] = (timeline[second] ?? 0) + count))
    firstError ??= loop.firstError
  }
  const seconds = elapsedMs / 1000
  return {
    requests,
    duration_s: round(seconds, 3),
    rps: seconds > 0 ? round(requests / seconds, 1) : 0,
    bytes,
    bytes_per_s: seconds > 0 ? Math.round(bytes / seconds) : 0,
    latency_ms: summarize(histogram),
    status: Object.fromEntries([...status].sort((a, b) => a[0] - b[0]).map(([code, count]) => [String(code), count])),
    errors: Object.fromEntries(ERROR_KINDS.map((kind, i) => [kind, errors[i]!])) as Record<ErrorKind, number>,
    timeline: Array.from(timeline, (count) => count ?? 0),
    first_error: firstError,
    tls: tls === null ? null : { handshakes: tls.handshakes, handshakes_per_s: seconds > 0 ? round(tls.handshakes / seconds, 1) : 0, resumed: tls.resumed },
  }
}

function summarize(h: RecordableHistogram): LatencySummary {
  const ms = (ns: number): number => round(ns / 1e6, 3)
  if (h.count === 0) return { p50: 0, p75: 0, p90: 0, p99: 0, p999: 0, p9999: 0, max: 0, min: 0, mean: 0, stdev: 0 }
  return {
    p50: ms(h.percentile(50)),
    p75: ms(h.percentile(75)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    p9999: ms(h.percentile(99.99)),
    max: ms(h.max),
    min: ms(h.min),
    mean: ms(h.mean),
    stdev: ms(h.stddev),
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
