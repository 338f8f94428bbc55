// The human-readable report of a `petrel bench` run, and its live progress line.

import type { BenchOptions } from './plan.ts'
import type { Progress } from './run.ts'
import { ERROR_KINDS, type BenchResult } from './result.ts'

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const rate = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 })

/** A latency given in ms, in the unit that suits it: 87µs, 1.25ms, 2.50s. */
export function formatLatency(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)}µs`
  if (ms < 1000) return `${ms.toFixed(2)}ms`
  return `${(ms / 1000).toFixed(2)}s`
}

/** Bytes in binary units: 512B, 12.3KiB, 4.50MiB, 1.20GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)}B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 2 : 1)}${units[unit]}`
}

export function describeRun(options: BenchOptions): string {
  const parts = [
    `${options.durationMs / 1000}s`,
    `${options.threads} thread${options.threads === 1 ? '' : 's'}`,
    `${options.connections} connection${options.connections === 1 ? '' : 's'}`,
    options.keepAlive ? 'keep-alive' : 'a new connection per request',
  ]
  if (options.pipelining > 1) parts.push(`pipelining ${options.pipelining}`)
  if (options.rate > 0) parts.push(`rate ${count.format(options.rate)} req/s`)
  if (options.warmupMs > 0) parts.push(`after ${options.warmupMs / 1000}s warm-up`)
  if (options.url.startsWith('https:')) {
    parts.push(options.tlsResume === false ? 'TLS without resumption' : 'TLS with resumption')
    if (options.insecure === true) parts.push('certificates not verified')
  }
  return `${options.method} ${options.url}\n  ${parts.join(', ')}`
}

export function formatReport(options: BenchOptions, result: BenchResult): string {
  const l = result.latency_ms
  const lines = [
    describeRun(options),
    '',
    `  requests   ${count.format(result.requests)} in ${result.duration_s.toFixed(2)}s, ${rate.format(result.rps)} req/s`,
    `  transfer   ${formatBytes(result.bytes)} read, ${formatBytes(result.bytes_per_s)}/s`,
    `  latency    mean ${formatLatency(l.mean)}, stdev ${formatLatency(l.stdev)}, min ${formatLatency(l.min)}, max ${formatLatency(l.max)}`,
    `             p50 ${formatLatency(l.p50)}  p75 ${formatLatency(l.p75)}  p90 ${formatLatency(l.p90)}  p99 ${formatLatency(l.p99)}  p99.9 ${formatLatency(l.p999)}  p99.99 ${formatLatency(l.p9999)}`,
  ]
  if (options.rate > 0) lines.push('             (from when each request was due: coordinated omission corrected)')
  if (result.tls !== null) {
    const t = result.tls
    const share = t.handshakes > 0 ? ` (${((100 * t.resumed) / t.handshakes).toFixed(1)}%)` : ''
    lines.push(`  tls        ${count.format(t.handshakes)} handshakes, ${rate.format(t.handshakes_per_s)}/s, ${count.format(t.resumed)} resumed${share}`)
  }
  const statuses = Object.entries(result.status)
  lines.push(`  status     ${statuses.length === 0 ? 'no responses' : statuses.map(([code, n]) => `${code}: ${count.format(n)}`).join(', ')}`)
  const failed = ERROR_KINDS.filter((kind) => result.errors[kind] > 0)
  lines.push(`  errors     ${failed.length === 0 ? 'none' : failed.map((kind) => `${kind} ${count.format(result.errors[kind])}`).join(', ')}`)
  if (result.first_error !== null) lines.push(`             first: ${result.first_error}`)
  lines.push(`  timeline   responses per second`)
  for (let i = 0; i < result.timeline.length; i += 10) {
    const row = result.timeline.slice(i, i + 10).map((n) => count.format(n).padStart(9))
    lines.push(`  ${`${i}s`.padStart(9)} ${row.join('')}`)
  }
  return lines.join('\n')
}

/** One line, rewritten in place once a second while the run goes on (only on a terminal). */
export function formatProgress(progress: Progress, last: Progress | null): string {
  if (!progress.measuring) return `  warming up… ${count.format(progress.requests)} requests`
  const since = last === null || !last.measuring ? null : last
  const current = since === null ? '' : `, ${count.format((progress.requests - since.requests) / (progress.elapsedS - since.elapsedS))} req/s now`
  const errors = progress.errors > 0 ? `, ${count.format(progress.errors)} failed` : ''
  return `  ${Math.max(0, Math.round(progress.elapsedS))}s: ${count.format(progress.requests)} requests${current}${errors}`
}
