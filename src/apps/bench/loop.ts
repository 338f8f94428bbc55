// One event loop's share of a `petrel bench` run: its connections, counters, clock and schedule.
// With --threads N there are N of these, one per worker thread, merged at the end.
//
// The hot path is BenchConnection.onRead → ResponseParser → record(): no allocation per request.
// The request bytes are built once; every connection of the loop reads into one shared buffer
// (each read is parsed before the next one can happen); latencies go into Node's native HDR
// histogram, which worker threads can post back as is.

import { Buffer } from 'node:buffer'
import type { RecordableHistogram } from 'node:perf_hooks'
import tls from 'node:tls'
import { BenchConnection } from './connection.ts'
import type { LoopPlan } from './plan.ts'
import { ERROR_KINDS, newLatencyHistogram, recordLatency, type LoopResult } from './result.ts'

/** Size of the read buffer shared by a loop's connections. */
export const READ_BUFFER_BYTES = 64 * 1024
/** Slots of the status tally: status codes are three digits, 100–599 (the parser refuses others). */
const STATUS_SLOTS = 600

/** Progress published to the main thread: [requests, failed requests, measuring (0/1)]. */
export const PROGRESS_SLOTS = 3

export class LoadLoop {
  readonly plan: LoopPlan
  readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES)
  /** Closed model: `pipelining` copies of the request, written at once. */
  readonly batch: Buffer
  /** Open model: one request. */
  readonly single: Buffer
  /** Open model: ms between two requests of one connection; 0 in the closed model. */
  readonly intervalMs: number
  running = false
  bytes = 0
  /** https: the trust store and settings every connection of the loop shares, built once. */
  readonly secureContext: tls.SecureContext | null

  private readonly histogram: RecordableHistogram = newLatencyHistogram()
  private requests = 0
  private handshakes = 0
  private resumed = 0
  private readonly statusCounts = new Float64Array(STATUS_SLOTS)
  private readonly errors = new Float64Array(ERROR_KINDS.length)
  private readonly timeline: Float64Array
  private firstError: string | null = null
  /** Start of the measured window (after warm-up), performance.now() ms. */
  private measuredFrom = 0
  private readonly connections: BenchConnection[] = []
  /** Open model: connections waiting for their next request to be due, as a binary min-heap on nextDue. */
  private readonly due: BenchConnection[] = []
  private dueTimer: NodeJS.Timeout | null = null
  private dueTimerAt = Infinity
  private readonly progress: Float64Array

  constructor(plan: LoopPlan, progress: Float64Array = new Float64Array(PROGRESS_SLOTS)) {
    this.plan = plan
    this.single = Buffer.from(plan.request)
    this.batch = Buffer.concat(Array.from({ length: plan.pipelining }, () => this.single))
    this.intervalMs = plan.rate > 0 ? (1000 * plan.connections) / plan.rate : 0
    this.timeline = new Float64Array(Math.max(1, Math.ceil(plan.durationMs / 1000)))
    this.progress = progress
    this.secureContext = plan.tls === null ? null : trustStore(plan.tls.extraCa)
  }

  /** Run for warm-up + duration and resolve with what the measured window saw. */
  run(): Promise<LoopResult> {
    const plan = this.plan
    return new Promise((resolve) => {
      this.running = true
      const t0 = performance.now()
      // Open model: connection i's first request is due i/rate s after the start, so the loop's
      // sends are spread evenly from the first second instead of arriving in bursts.
      const spacing = plan.rate > 0 ? 1000 / plan.rate : 0
      for (let i = 0; i < plan.connections; i++) {
        const connection = new BenchConnection(this, t0 + i * spacing)
        this.connections.push(connection)
        if (plan.rate > 0 && !plan.keepAlive) connection.pump(t0)
        else connection.connect(t0)
      }
      const sweepMs = Math.min(250, Math.max(10, plan.timeoutMs / 4))
      const sweeper = setInterval(() => this.sweep(), sweepMs)
      const measure = (): void => {
        this.resetCounters()
        this.progress[0] = 0
        this.progress[1] = 0
        this.progress[2] = 1
        setTimeout(() => {
          clearInterval(sweeper)
          resolve(this.finish())
        }, plan.durationMs)
      }
      if (plan.warmupMs > 0) setTimeout(measure, plan.warmupMs)
      else measure()
    })
  }

  /** Count a completed response. */
  record(now: number, start: number, status: number): void {
    this.requests++
    // The response parser passes 100–599 only, all below STATUS_SLOTS.
    this.statusCounts[status]!++
    recordLatency(this.histogram, now - start)
    const second = ((now - this.measuredFrom) / 1000) | 0
    // The index is clamped to the timeline, which has at least one slot.
    this.timeline[second < this.timeline.length ? second : this.timeline.length - 1]!++
  }

  /** Count a completed TLS handshake, and whether it resumed a session. */
  countHandshake(resumed: boolean): void {
    this.handshakes++
    if (resumed) this.resumed++
  }

  /** Count `count` failed requests of one kind. */
  countError(kind: number, count: number, reason: string): void {
    // `kind` is one of the E_* constants, the indexes of ERROR_KINDS.
    this.errors[kind]! += count
    this.firstError ??= `${ERROR_KINDS[kind]}: ${reason}`
  }

  /** Open model: wake `connection` when its next request is due. */
  waitUntilDue(connection: BenchConnection): void {
    if (connection.dueIndex === -1) {
      connection.dueIndex = this.due.length
      this.due.push(connection)
      this.siftUp(connection.dueIndex)
    }
    const earliest = this.due[0]!.nextDue
    if (earliest < this.dueTimerAt) {
      if (this.dueTimer !== null) clearTimeout(this.dueTimer)
      this.dueTimerAt = earliest
      this.dueTimer = setTimeout(() => this.runDue(), Math.max(0, Math.round(earliest - performance.now())))
    }
  }

  private runDue(): void {
    this.dueTimer = null
    this.dueTimerAt = Infinity
    if (!this.running) return
    const now = performance.now()
    const due = this.due
    while (due.length > 0 && due[0]!.nextDue <= now + 0.5) {
      const connection = this.popDue()
      connection.pump(now)
    }
    if (due.length > 0) this.waitUntilDue(due[0]!)
  }

  /** Take `connection` out of the due queue: it is about to send, and its due time will move. */
  leaveDueQueue(connection: BenchConnection): void {
    const index = connection.dueIndex
    if (index === -1) return
    const due = this.due
    const last = due.pop()!
    connection.dueIndex = -1
    if (last === connection) return
    due[index] = last
    last.dueIndex = index
    this.siftDown(index)
    this.siftUp(last.dueIndex)
  }

  private popDue(): BenchConnection {
    const due = this.due
    const top = due[0]!
    const last = due.pop()!
    top.dueIndex = -1
    if (last !== top) {
      due[0] = last
      last.dueIndex = 0
      this.siftDown(0)
    }
    return top
  }

  private siftUp(index: number): void {
    const due = this.due
    const item = due[index]!
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (due[parent]!.nextDue <= item.nextDue) break
      due[index] = due[parent]!
      due[index]!.dueIndex = index
      index = parent
    }
    due[index] = item
    item.dueIndex = index
  }

  private siftDown(index: number): void {
    const due = this.due
    const item = due[index]!
    const n = due.length
    for (;;) {
      let child = 2 * index + 1
      if (child >= n) break
      if (child + 1 < n && due[child + 1]!.nextDue < due[child]!.nextDue) child++
      if (due[child]!.nextDue >= item.nextDue) break
      due[index] = due[child]!
      due[index]!.dueIndex = index
      index = child
    }
    due[index] = item
    item.dueIndex = index
  }

  /** Drop connections whose oldest request (or connect) has waited longer than --timeout. */
  private sweep(): void {
    const now = performance.now()
    const limit = this.plan.timeoutMs
    for (const connection of this.connections) connection.checkTimeout(now, limit)
    this.progress[0] = this.requests
    this.progress[1] = this.errors.reduce((sum, n) => sum + n, 0)
  }

  private resetCounters(): void {
    this.measuredFrom = performance.now()
    this.histogram.reset()
    this.requests = 0
    this.handshakes = 0
    this.resumed = 0
    this.bytes = 0
    this.statusCounts.fill(0)
    this.errors.fill(0)
    this.timeline.fill(0)
    this.firstError = null
  }

  private finish(): LoopResult {
    const elapsedMs = performance.now() - this.measuredFrom
    this.running = false
    if (this.dueTimer !== null) clearTimeout(this.dueTimer)
    this.dueTimer = null
    for (const connection of this.connections) connection.close()
    const status: Array<[number, number]> = []
    this.statusCounts.forEach((count, code) => {
      if (count > 0) status.push([code, count])
    })
    this.progress[0] = this.requests
    return {
      requests: this.requests,
      bytes: this.bytes,
      elapsedMs,
      status,
      errors: Array.from(this.errors),
      timeline: Array.from(this.timeline),
      histogram: this.histogram,
      firstError: this.firstError,
      tls: this.secureContext === null ? null : { handshakes: this.handshakes, resumed: this.resumed },
    }
  }
}

/**
 * The certificates a https run trusts: Node's default store (its bundled Mozilla roots and
 * NODE_EXTRA_CA_CERTS), the system's (/etc/ssl/certs), and the --ca file's.
 */
function trustStore(extraCa: string | null): tls.SecureContext {
  const ca = [...tls.getCACertificates('default'), ...tls.getCACertificates('system')]
  if (extraCa !== null) ca.push(extraCa)
  return tls.createSecureContext({ ca })
}
