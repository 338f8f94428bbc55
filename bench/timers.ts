// Micro-benchmark of Petrel's timers against Node's, for N connections (default 100k), in the
// manner of libuv's benchmark-million-timers: each phase of a timeout's life is timed apart.
//
//   arm      give every connection a 5 s timeout (timer objects allocated here, as in real use)
//   re-arm   activity on every connection, 10 rounds: push the timeout 5 s past "now"
//   expire   let N timeouts fire and run their callbacks
//   cancel   disarm N armed timeouts (connections closing before their timeout)
//
// Implementations:
//   Petrel wheel    TimingWheel; re-arm is a field write (`timer.deadline = now + ms`). The wheel
//                   re-files a pushed timer when its old slot comes up, so that work is moved,
//                   not removed: the re-arm row includes the ticks that re-file all N timers once.
//   Petrel heap     TimerHeap, as if used for connection timeouts; re-arm is cancel + schedule.
//   Node setTimeout one Timeout per connection; re-arm is `timeout.refresh()`, which is what
//                   node:net does on socket activity.
//   net.Socket      `socket.setTimeout(ms)` on unconnected sockets. node:http calls it twice per
//                   keep-alive request (the idle timeout after the response, 0 when the next
//                   request arrives); each call clears the socket's Timeout and inserts it again
//                   (Node 26 reuses the object, so this costs list work, not allocation).
//
// Petrel's structures run on a fake clock moved in 25 ms ticks, the way the Scheduler drives
// them; Node's timers run on the real event loop, so their expiry row is the wall time from the
// end of arming (timeouts of 1 ms, all due at once) to the last callback.
//
// Run: `npx node bench/timers.ts [--connections N] [--runs N]`. Each cell is the median of the
// runs; the machine is shared and noisy, so read ratios, not nanoseconds.

import { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { cpus } from 'node:os'
import { TimerHeap, TimingWheel, WheelTimer } from '../src/core/timers/index.ts'
import type { HeapTimer } from '../src/core/timers/index.ts'
import { defineFlags, formatFlagHelp, parseSuiteFlags, UsageError } from './lib/flags.ts'
import { median } from './lib/stats.ts'
import { textTable } from './lib/table.ts'

const FLAGS = defineFlags([
  { name: 'connections', type: 'integer', valueName: 'N', min: 1_000, default: 100000, description: 'timers per phase (one per simulated connection)' },
  { name: 'runs', type: 'integer', valueName: 'N', min: 1, default: 7, description: 'measured runs per implementation; cells are medians' },
  { name: 'help', type: 'boolean', description: 'print this help' },
])

const TIMEOUT_MS = 5_000
const TICK_MS = 25
const REARM_ROUNDS = 10
/** Connections are spread over one second of arrivals, so their deadlines spread over 40 ticks. */
const ARRIVAL_SPAN_MS = 1_000
/** Activity rounds are this far apart on the fake clock. */
const ROUND_GAP_MS = 100
/** Fake-clock origin; any positive value works. */
const START_MS = 1_000_000

const PHASES = ['arm', 're-arm', 'expire', 'cancel'] as const
type Phase = (typeof PHASES)[number]

interface RunResult {
  /** Nanoseconds per operation for each phase. */
  nsPerOp: Record<Phase, number>
  /** Extra rows that explain a phase (e.g. Petrel's re-arm without its deferred re-file). */
  extra: Record<string, number>
  /** Heap bytes held per armed timer, measured after the arm phase. */
  bytesPerTimer: number
}

interface Implementation {
  readonly name: string
  run(connections: number): Promise<RunResult>
}

// The GC is exposed so that heap use can be measured after a full collection and so that one
// implementation's garbage is collected before the next is timed.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapUsedAfterGc(): number {
  gc()
  return process.memoryUsage().heapUsed
}

function elapsedNs(startMs: number, ops: number): number {
  return ((performance.now() - startMs) * 1e6) / ops
}

/** Deadline of connection `i` of `n` arriving over ARRIVAL_SPAN_MS from `startMs`. */
function arrivalDeadline(startMs: number, i: number, n: number): number {
  return startMs + (i * ARRIVAL_SPAN_MS) / n + TIMEOUT_MS
}

/** Move a fake-clock structure from `fromMs` to `toMs` in scheduler-sized ticks. */
function tickThrough(fromMs: number, toMs: number, advance: (nowMs: number) => void): void {
  for (let now = fromMs + TICK_MS; now < toMs + TICK_MS; now += TICK_MS) advance(now)
}

interface Connection {
  readonly id: number
  closed: boolean
}

function makeConnections(n: number): Connection[] {
  const connections: Connection[] = []
  for (let i = 0; i < n; i++) connections.push({ id: i, closed: false })
  return connections
}

// The measured loops live in small functions of their own: V8 optimizes a function after a few
// calls, whereas a loop inside a long function called once per run would start every run in the
// interpreter and only be switched to optimized code part-way through.
//
// The arrays these loops index (timers, connections, sockets) all hold n entries, made before
// the loop runs; the `!` on `connections[i]!` and the like says so where the index is needed.

function armWheel(wheel: TimingWheel<Connection>, timers: WheelTimer<Connection>[], connections: Connection[]): void {
  const n = timers.length
  for (let i = 0; i < n; i++) {
    const timer = new WheelTimer(connections[i]!)
    wheel.arm(timer, arrivalDeadline(START_MS, i, n))
    timers[i] = timer
  }
}

function rearmWheel(wheel: TimingWheel<Connection>, timers: WheelTimer<Connection>[]): void {
  const n = timers.length
  for (let i = 0; i < n; i++) wheel.arm(timers[i]!, arrivalDeadline(START_MS, i, n))
}

function pushDeadlines(timers: WheelTimer<Connection>[], deadline: number): void {
  for (const timer of timers) timer.deadline = deadline
}

function cancelWheel(wheel: TimingWheel<Connection>, timers: WheelTimer<Connection>[]): void {
  for (const timer of timers) wheel.cancel(timer)
}

function scheduleHeap(heap: TimerHeap, timers: HeapTimer[], connections: Connection[], onExpire: (connection: Connection) => void): void {
  const n = timers.length
  for (let i = 0; i < n; i++) timers[i] = heap.schedule(arrivalDeadline(START_MS, i, n), onExpire, connections[i]!)
}

function rescheduleHeap(heap: TimerHeap, timers: HeapTimer[], connections: Connection[], onExpire: (connection: Connection) => void, deadline: number): void {
  for (let i = 0; i < timers.length; i++) {
    heap.cancel(timers[i]!)
    timers[i] = heap.schedule(deadline, onExpire, connections[i]!)
  }
}

function cancelHeap(heap: TimerHeap, timers: HeapTimer[]): void {
  for (const timer of timers) heap.cancel(timer)
}

function armNodeTimers(timers: NodeJS.Timeout[], callback: () => void, ms: number): void {
  for (let i = 0; i < timers.length; i++) timers[i] = setTimeout(callback, ms)
}

function refreshNodeTimers(timers: NodeJS.Timeout[]): void {
  for (const timer of timers) timer.refresh()
}

function clearNodeTimers(timers: NodeJS.Timeout[]): void {
  for (const timer of timers) clearTimeout(timer)
}

function setSocketTimeouts(sockets: Socket[], n: number, ms: number): void {
  for (let i = 0; i < n; i++) sockets[i]!.setTimeout(ms)
}

const petrelWheel: Implementation = {
  name: 'Petrel wheel',
  async run(n) {
    const connections = makeConnections(n)
    let expired = 0
    const onExpire = (connection: Connection): void => {
      connection.closed = true
      expired++
    }
    const nsPerOp = {} as Record<Phase, number>
    const extra: Record<string, number> = {}

    let wheel = new TimingWheel<Connection>({ tickMs: TICK_MS, now: START_MS, onExpire })
    const timers: WheelTimer<Connection>[] = new Array(n)
    const heapBefore = heapUsedAfterGc()
    let start = performance.now()
    armWheel(wheel, timers, connections)
    nsPerOp.arm = elapsedNs(start, n)
    const bytesPerTimer = (heapUsedAfterGc() - heapBefore) / n

    // Activity rounds: the field write only. Then the ticks that carry the clock past the old
    // deadlines, where the wheel re-files every pushed timer once and fires none.
    start = performance.now()
    let now = START_MS + ARRIVAL_SPAN_MS
    for (let round = 0; round < REARM_ROUNDS; round++) {
      now += ROUND_GAP_MS
      pushDeadlines(timers, now + TIMEOUT_MS)
    }
    const writesMs = performance.now() - start
    tickThrough(START_MS, START_MS + ARRIVAL_SPAN_MS + TIMEOUT_MS, (t) => wheel.advance(t))
    nsPerOp['re-arm'] = elapsedNs(start, n * REARM_ROUNDS)
    extra['re-arm: field writes alone'] = (writesMs * 1e6) / (n * REARM_ROUNDS)
    if (expired !== 0 || wheel.size !== n) throw new Error('Petrel wheel: a pushed timer fired')

    start = performance.now()
    cancelWheel(wheel, timers)
    nsPerOp.cancel = elapsedNs(start, n)
    if (wheel.size !== 0) throw new Error('Petrel wheel: cancel left timers armed')

    // The expiry set reuses the timers, as a connection reuses its own: this arm allocates nothing.
    wheel = new TimingWheel<Connection>({ tickMs: TICK_MS, now: START_MS, onExpire })
    start = performance.now()
    rearmWheel(wheel, timers)
    extra['arm: timer reused, no allocation'] = elapsedNs(start, n)
    start = performance.now()
    tickThrough(START_MS, START_MS + ARRIVAL_SPAN_MS + TIMEOUT_MS, (t) => wheel.advance(t))
    nsPerOp.expire = elapsedNs(start, n)
    if (expired !== n) throw new Error(`Petrel wheel: ${expired} of ${n} timers fired`)

    return { nsPerOp, extra, bytesPerTimer }
  },
}

const petrelHeap: Implementation = {
  name: 'Petrel heap',
  async run(n) {
    const connections = makeConnections(n)
    let expired = 0
    const onExpire = (connection: Connection): void => {
      connection.closed = true
      expired++
    }
    const nsPerOp = {} as Record<Phase, number>

    let heap = new TimerHeap()
    const timers: HeapTimer[] = new Array(n)
    const heapBefore = heapUsedAfterGc()
    let start = performance.now()
    scheduleHeap(heap, timers, connections, onExpire)
    nsPerOp.arm = elapsedNs(start, n)
    const bytesPerTimer = (heapUsedAfterGc() - heapBefore) / n

    start = performance.now()
    let now = START_MS + ARRIVAL_SPAN_MS
    for (let round = 0; round < REARM_ROUNDS; round++) {
      now += ROUND_GAP_MS
      rescheduleHeap(heap, timers, connections, onExpire, now + TIMEOUT_MS)
    }
    nsPerOp['re-arm'] = elapsedNs(start, n * REARM_ROUNDS)

    start = performance.now()
    cancelHeap(heap, timers)
    nsPerOp.cancel = elapsedNs(start, n)
    if (heap.size !== 0) throw new Error('Petrel heap: cancel left timers scheduled')

    heap = new TimerHeap()
    scheduleHeap(heap, timers, connections, onExpire)
    start = performance.now()
    tickThrough(START_MS, START_MS + ARRIVAL_SPAN_MS + TIMEOUT_MS, (t) => heap.runExpired(t))
    nsPerOp.expire = elapsedNs(start, n)
    if (expired !== n) throw new Error(`Petrel heap: ${expired} of ${n} timers fired`)

    return { nsPerOp, extra: {}, bytesPerTimer }
  },
}

/** Resolves when `expected` callbacks have counted themselves through the returned function. */
function countdown(expected: number): { hit: () => void; done: Promise<number> } {
  let count = 0
  let resolve!: (atMs: number) => void
  const done = new Promise<number>((r) => {
    resolve = r
  })
  return {
    hit: () => {
      if (++count === expected) resolve(performance.now())
    },
    done,
  }
}

const nodeSetTimeout: Implementation = {
  name: 'Node setTimeout',
  async run(n) {
    const nsPerOp = {} as Record<Phase, number>
    const onTimeout = (): void => {
      throw new Error('Node setTimeout: a 5 s timeout fired during the benchmark')
    }
    const timers: NodeJS.Timeout[] = new Array(n)
    const heapBefore = heapUsedAfterGc()
    let start = performance.now()
    armNodeTimers(timers, onTimeout, TIMEOUT_MS)
    nsPerOp.arm = elapsedNs(start, n)
    const bytesPerTimer = (heapUsedAfterGc() - heapBefore) / n

    start = performance.now()
    for (let round = 0; round < REARM_ROUNDS; round++) refreshNodeTimers(timers)
    nsPerOp['re-arm'] = elapsedNs(start, n * REARM_ROUNDS)

    start = performance.now()
    clearNodeTimers(timers)
    nsPerOp.cancel = elapsedNs(start, n)

    const expiry = countdown(n)
    armNodeTimers(timers, expiry.hit, 1)
    start = performance.now()
    nsPerOp.expire = (((await expiry.done) - start) * 1e6) / n

    return { nsPerOp, extra: {}, bytesPerTimer }
  },
}

const netSocket: Implementation = {
  name: 'net.Socket',
  async run(n) {
    // Fresh unconnected sockets each run, made before the clock starts: the first setTimeout()
    // on a new socket is the one that allocates its Timeout, as on a new connection.
    const sockets: Socket[] = []
    for (let i = 0; i < n; i++) sockets.push(new Socket())
    const nsPerOp = {} as Record<Phase, number>
    const heapBefore = heapUsedAfterGc()
    let start = performance.now()
    setSocketTimeouts(sockets, n, TIMEOUT_MS)
    nsPerOp.arm = elapsedNs(start, n)
    const bytesPerTimer = (heapUsedAfterGc() - heapBefore) / n

    start = performance.now()
    for (let round = 0; round < REARM_ROUNDS; round++) setSocketTimeouts(sockets, n, TIMEOUT_MS)
    nsPerOp['re-arm'] = elapsedNs(start, n * REARM_ROUNDS)

    start = performance.now()
    setSocketTimeouts(sockets, n, 0)
    nsPerOp.cancel = elapsedNs(start, n)

    const expiry = countdown(n)
    for (let i = 0; i < n; i++) sockets[i]!.once('timeout', expiry.hit)
    // Socket timeouts are unref()ed; this keeps the event loop alive until they have all fired.
    const keepAlive = setInterval(() => {}, 1_000)
    setSocketTimeouts(sockets, n, 1)
    start = performance.now()
    nsPerOp.expire = (((await expiry.done) - start) * 1e6) / n
    clearInterval(keepAlive)
    setSocketTimeouts(sockets, n, 0)

    return { nsPerOp, extra: {}, bytesPerTimer }
  },
}

const IMPLEMENTATIONS: readonly Implementation[] = [petrelWheel, petrelHeap, nodeSetTimeout, netSocket]

function formatNs(ns: number): string {
  return ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)
}

function formatRatio(ratio: number): string {
  return ratio >= 10 ? `${ratio.toFixed(0)}×` : `${ratio.toFixed(1)}×`
}

async function main(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'bench/timers.ts', 'npx node')
  if (flags.has('help')) {
    console.log(`usage: npx node bench/timers.ts [flags]\n${formatFlagHelp(FLAGS)}`)
    return 0
  }
  const connections = flags.get('connections')
  const runs = flags.get('runs')

  console.log(`Petrel timers vs Node timers: ${connections} connections, ${TIMEOUT_MS} ms timeouts, ${REARM_ROUNDS} re-arm rounds, median of ${runs} runs`)
  console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}\n`)

  // Untimed passes, one of them full size, let the JIT compile every path and let the heap grow
  // to its working size before anything is measured.
  for (const implementation of IMPLEMENTATIONS) {
    await implementation.run(Math.min(connections, 10_000))
    await implementation.run(connections)
  }

  const results = new Map<Implementation, RunResult[]>()
  for (const implementation of IMPLEMENTATIONS) results.set(implementation, [])
  const startedMs = performance.now()
  for (let run = 0; run < runs; run++) {
    // Interleave the implementations so that a noisy minute on the machine hits them all.
    for (const implementation of IMPLEMENTATIONS) {
      gc()
      ;(results.get(implementation) as RunResult[]).push(await implementation.run(connections))
    }
  }

  const samples = (implementation: Implementation, pick: (result: RunResult) => number): number[] => (results.get(implementation) as RunResult[]).map(pick)
  const rows: string[][] = []
  const row = (phase: string, name: string, values: number[], ops: number, baseline: number): void => {
    const ns = median(values)
    rows.push([phase, name, ((ns * ops) / 1e6).toFixed(2), formatNs(ns), formatNs(Math.min(...values)), formatRatio(ns / baseline)])
  }
  for (const phase of PHASES) {
    const baseline = median(samples(petrelWheel, (result) => result.nsPerOp[phase]))
    const ops = phase === 're-arm' ? connections * REARM_ROUNDS : connections
    for (const implementation of IMPLEMENTATIONS) {
      row(
        phase,
        implementation.name,
        samples(implementation, (result) => result.nsPerOp[phase]),
        ops,
        baseline,
      )
      // Every run of an implementation reports the same extra labels; the first run names them.
      for (const label of Object.keys(results.get(implementation)?.[0]?.extra ?? {})) {
        if (!label.startsWith(`${phase}:`)) continue
        const name = `${implementation.name} (${label.slice(phase.length + 1).trim()})`
        row(
          '',
          name,
          samples(implementation, (result) => result.extra[label] ?? Number.NaN),
          ops,
          baseline,
        )
      }
    }
  }
  console.log(
    textTable(
      [
        { title: 'operation', alignRight: false },
        { title: 'implementation', alignRight: false },
        { title: 'total ms', alignRight: true },
        { title: 'ns/op', alignRight: true },
        { title: 'best', alignRight: true },
        { title: 'vs Petrel wheel', alignRight: true },
      ],
      rows,
    ),
  )
  console.log('\ntotal ms and ns/op are medians over the runs, best is the fastest run; the ratio compares medians.')

  console.log('\nHeap held per armed timer, after a full GC (the connection or socket itself not counted):\n')
  console.log(
    textTable(
      [
        { title: 'implementation', alignRight: false },
        { title: 'bytes/timer', alignRight: true },
      ],
      IMPLEMENTATIONS.map((implementation) => [implementation.name, median(samples(implementation, (result) => result.bytesPerTimer)).toFixed(0)]),
    ),
  )
  console.log(`\nMeasured in ${((performance.now() - startedMs) / 1000).toFixed(1)} s.`)
  return 0
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(error.message)
  process.exitCode = 2
}
