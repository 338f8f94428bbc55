// Runs h2load (Debian's nghttp2-client) pinned to one CPU for a fixed time and reads its summary.
// The warm-up is h2load's own (--warm-up-time): the same connections are opened, warmed and then
// measured, so the measured period holds no handshakes and no connection setup (node:http2 leaves a
// new connection waiting up to 2 s for its first answer at 100 connections), and h2load prints a
// line as its measured period starts and ends, at which the caller reads the server's CPU time.
// h2load has no machine-readable output, so the summary lines are parsed, and every one the
// checks need must be there. A run is an error, never a number, when anything went wrong:
// a failed, errored or timed-out request, a status other than 2xx, no request answered, another
// application protocol than the one asked for (h2load falls back to HTTP/1.1 when ALPN gives it,
// so a server that does not offer h2 would otherwise be measured on HTTP/1.1), or a connection
// that stalled (in timing mode h2load counts a connection whose streams are never answered as
// nothing at all, neither done nor failed: only its own rate, 0, shows it).

import { startTracked, stopTracked } from '../lib/children.ts'

export type H2Protocol = 'h2' | 'http/1.1'

export interface H2loadRun {
  readonly h2loadPath: string
  readonly cpu: number
  readonly url: string
  readonly connections: number
  /** -m: concurrent streams per connection (HTTP/2), or requests pipelined per connection (--h1). */
  readonly streams: number
  readonly durationSec: number
  /** h2load's --warm-up-time: the connections' first seconds, not measured; 0 for none. */
  readonly warmupSec: number
  readonly protocol: H2Protocol
}

/** Called as h2load's measured period starts and as it ends (its own lines say when). */
export interface MeasuredPeriod {
  start(): void
  end(): void
  /**
   * h2load has stopped its clients but not exited: h2load 1.52 with --h1 (pipelining, over TLS
   * and cleartext) sometimes reconnects its clients after stopping them, over and over (4 runs in
   * 27 against Petrel over TLS), until the server goes away; it then prints its summary, whose
   * counts end with the measured period. The caller stops the server.
   */
  stuck(): void
}

export interface H2loadResult {
  /** The measured period, as h2load counted it: requests done ÷ its req/s. */
  readonly durationSec: number
  readonly started: number
  readonly done: number
  readonly succeeded: number
  /** "h2" or "h2c" for HTTP/2 (TLS or cleartext), "http/1.1" for --h1. */
  readonly applicationProtocol: string
  readonly bytes: { readonly total: number; readonly headers: number; readonly data: number }
  /** h2load's header compression figure: 1 − header bytes on the wire ÷ decoded header bytes, in %. */
  readonly headerSavingsPercent: number
  /** h2load's "time for request" mean, in ms (it gives no percentiles). */
  readonly requestMeanMs: number
  /** Requests per second of the slowest, fastest and average connection. */
  readonly perConnection: { readonly min: number; readonly max: number; readonly mean: number }
}

/** How long past its duration h2load may take to finish (connecting 100 clients over TLS, ending them). */
const OVERDUE_SEC = 15

/** Below this share of the mean, a connection's rate means it stalled (0 when it was never answered). */
const STALLED_SHARE = 0.1

export function h2loadArgs(run: H2loadRun): string[] {
  const secure = run.url.startsWith('https:')
  // --npn-list=h2: ALPN offers h2 alone, so a server without it fails the handshake instead of
  // being measured on HTTP/1.1. Cleartext HTTP/2 is h2load's default (prior knowledge, no Upgrade).
  const protocol = run.protocol === 'http/1.1' ? ['--h1'] : secure ? ['--npn-list=h2'] : []
  return [
    // One thread: h2load has one core, and more threads would only contend for it.
    '-t',
    '1',
    '-c',
    String(run.connections),
    '-m',
    String(run.streams),
    '-D',
    String(run.durationSec),
    ...(run.warmupSec > 0 ? [`--warm-up-time=${run.warmupSec}`] : []),
    ...protocol,
    run.url,
  ]
}

/** The lines h2load prints, flushed at once, as its measured period starts and ends (one thread). */
const MAIN_STARTED = 'Main benchmark duration is started'
const MAIN_OVER = 'Main benchmark duration is over'
const CLIENTS_STOPPED = 'Stopped all clients'
/** How long h2load may take from stopping its clients to exiting before it counts as stuck. */
const STUCK_MS = 3000

/**
 * Runs h2load, calling `period` as its measured period starts and ends, and returns its summary,
 * or throws saying what went wrong.
 */
export async function runH2load(run: H2loadRun, period: MeasuredPeriod): Promise<H2loadResult> {
  const h2load = startTracked('taskset', ['-c', String(run.cpu), run.h2loadPath, ...h2loadArgs(run)], {}, false, true)
  let partial = ''
  let marks = 0
  let stuck: NodeJS.Timeout | undefined
  // Buffers, not setEncoding: the tracker keeps the same chunks as Buffers.
  h2load.child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('latin1')).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.startsWith(MAIN_STARTED) && marks === 0) {
        marks = 1
        period.start()
      } else if (line.startsWith(MAIN_OVER) && marks === 1) {
        marks = 2
        period.end()
      } else if (line.startsWith(CLIENTS_STOPPED) && stuck === undefined) {
        stuck = setTimeout(() => period.stuck(), STUCK_MS)
      }
    }
  })
  // h2load ends its clients when the duration is over; one that is still running well after that
  // waits on a connection that will not finish, and is stopped (the run then fails).
  let overdue = false
  const watchdog = setTimeout(
    () => {
      overdue = true
      void stopTracked(h2load)
    },
    (run.warmupSec + run.durationSec + OVERDUE_SEC) * 1000,
  )
  const exit = await h2load.exited
  clearTimeout(watchdog)
  clearTimeout(stuck)
  if (overdue) {
    const last = h2load.outputTail().trim().split('\n').at(-1) ?? ''
    throw new Error(
      `h2load did not finish within ${OVERDUE_SEC} s of its ${run.warmupSec + run.durationSec} s and was stopped (its last line: ${JSON.stringify(last)})`,
    )
  }
  const summary = parseSummary(h2load.stdout())
  if (exit !== '0' || summary === undefined) {
    const tail = h2load.outputTail().trim().split('\n').slice(-3).join(' | ')
    throw new Error(`h2load (exit ${exit}) printed no summary: ${tail}`)
  }
  if (marks !== 2) throw new Error(`h2load printed no "${marks === 0 ? MAIN_STARTED : MAIN_OVER}" line: its measured period is unknown`)
  return checkSummary(summary, run)
}

/** A duration as h2load prints it: "1.71ms", "186us", "2.00s". */
function milliseconds(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text)
  if (match === null) return Number.NaN
  const value = Number(match[1])
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : value * 1000
}

/** All h2load says about a run, its failure counts included. */
export interface H2loadSummary extends H2loadResult {
  readonly failed: number
  readonly errored: number
  readonly timeout: number
  readonly notOk: number
}

/** h2load's summary lines, read; undefined when one the checks need is missing. */
export function parseSummary(output: string): H2loadSummary | undefined {
  const finished = /^finished in \S+, ([\d.]+) req\/s, /m.exec(output)
  const requests = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout$/m.exec(output)
  const status = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx$/m.exec(output)
  const traffic = /^traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers \(space savings ([\d.-]+)%\), \S+ \((\d+)\) data$/m.exec(output)
  const request = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(output)
  const perConnection = /^req\/s\s+:\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/m.exec(output)
  if (finished === null || requests === null || status === null || traffic === null || request === null || perConnection === null) return undefined
  const n = (match: RegExpExecArray, i: number): number => Number(match[i])
  return {
    // "finished in" counts the warm-up too; its req/s is over the measured period alone.
    durationSec: Number(finished[1]) > 0 ? n(requests, 3) / Number(finished[1]) : 0,
    started: n(requests, 2),
    done: n(requests, 3),
    succeeded: n(requests, 4),
    failed: n(requests, 5),
    errored: n(requests, 6),
    timeout: n(requests, 7),
    notOk: n(status, 2) + n(status, 3) + n(status, 4),
    applicationProtocol: /^Application protocol: (\S+)$/m.exec(output)?.[1] ?? 'none',
    bytes: { total: n(traffic, 1), headers: n(traffic, 2), data: n(traffic, 4) },
    headerSavingsPercent: n(traffic, 3),
    requestMeanMs: milliseconds(request[3]!),
    perConnection: { min: n(perConnection, 1), max: n(perConnection, 2), mean: n(perConnection, 3) },
  }
}

/** The summary, if nothing in it says the run went wrong; otherwise throws an Error saying what did. */
export function checkSummary(summary: H2loadSummary, run: Pick<H2loadRun, 'connections' | 'protocol'>): H2loadResult {
  const problems: string[] = []
  if (summary.failed > 0 || summary.errored > 0 || summary.timeout > 0)
    problems.push(`${summary.failed} failed (${summary.errored} errored, ${summary.timeout} timed out) of ${summary.done + summary.failed}`)
  if (summary.notOk > 0) problems.push(`${summary.notOk} answers not 2xx`)
  if (summary.done === 0) problems.push(`no request answered (${summary.started} started)`)
  const expected = run.protocol === 'http/1.1' ? ['http/1.1'] : ['h2', 'h2c']
  if (!expected.includes(summary.applicationProtocol)) problems.push(`application protocol ${summary.applicationProtocol}, expected ${expected.join(' or ')}`)
  if (summary.done > 0 && summary.perConnection.min < STALLED_SHARE * summary.perConnection.mean) {
    problems.push(
      `a connection stalled: the slowest of ${run.connections} answered ${summary.perConnection.min.toFixed(0)} req/s, the mean ${summary.perConnection.mean.toFixed(0)}`,
    )
  }
  if (problems.length > 0) throw new Error(`h2load: ${problems.join('; ')}`)
  const { failed: _failed, errored: _errored, timeout: _timeout, notOk: _notOk, ...result } = summary
  return result
}
