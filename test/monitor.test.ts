// Monitoring: what /metrics, /api/snapshot and `petrel top` say matches what the test did —
// requests sent, statuses, connections held open (as TCP sockets by state) — for one process
// and for a master with workers; the admin routes are not on the public port; a dashboard that
// connects late gets the seconds before it first, with no latency (not 0) where nothing ended.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { startServe, type Serving } from '../src/apps/serve/serve.ts'
import { HttpMetrics, LATENCY_BOUNDS_S, percentileMs, takeSnapshot, type ProcessSnapshot } from '../src/monitor/metrics.ts'
import { MetricsBoard, type Tick } from '../src/monitor/board.ts'
import { HistoryRing, type HistoryPoint } from '../src/monitor/history.ts'
import { prometheusText } from '../src/monitor/prometheus.ts'
import { tcpStates } from '../src/monitor/system.ts'

/** Metric samples of a Prometheus text body: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

async function get(url: string): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(url)
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') }
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await read()
    if (ok(value) || Date.now() > deadline) return value
    await new Promise((r) => setTimeout(r, 100))
  }
}

function snapshot(pid: number, worker: number, requests: number, latency: number[], atMs = Date.now()): ProcessSnapshot {
  return {
    pid,
    worker,
    atMs,
    startedAtMs: atMs - 1000,
    connections: { active: 1, idle: 1, http2: 0, streams: 0, websockets: 0, accepted: requests, rejected: 0, tlsHandshakes: 0, tlsResumed: 0 },
    requests,
    responses: [0, requests, 0, 0, 0],
    bytesIn: requests * 10,
    bytesOut: requests * 20,
    latency: { counts: latency, sumS: 0.001 * requests },
    eventLoop: { delayP50Ms: 0, delayP99Ms: 1, delayMaxMs: 2, utilization: 0.5 },
    memory: { rss: 1e8, heapUsed: 1e7, heapTotal: 2e7, external: 0 },
    cpu: { userUs: requests, systemUs: 0 },
    timers: 1,
    fds: 20,
  }
}

describe('counting', () => {
  test('latency buckets are √2 apart; percentiles come back within a bucket', () => {
    const m = new HttpMetrics()
    try {
      for (let i = 0; i < 1000; i++) m.observe(200, 1 + (i % 10) / 10) // 1.0 … 1.9 ms
      m.observe(404, 0.001)
      m.observe(503, 70_000)
      assert.deepEqual(m.responses, [0, 1000, 0, 1, 1])
      assert.equal(m.latency[0], 1, 'at or under 25 µs: the first bucket')
      assert.equal(m.latency.at(-1), 1, 'over the last bound: +Inf')
      const p50 = percentileMs(m.latency, 50)!
      assert.ok(p50 > 1.0 && p50 < 1.9 * Math.SQRT2, `p50 ${p50}`)
      assert.equal(LATENCY_BOUNDS_S.length + 1, m.latency.length)
      assert.ok(Math.abs(LATENCY_BOUNDS_S[2]! - 50e-6) < 1e-12)
    } finally {
      m.close()
    }
  })

  test('totals sum the workers; a worker that exits keeps its counters in the totals', () => {
    const board = new MetricsBoard()
    const counts = new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0)
    counts[10] = 5
    board.update('1', snapshot(1, 0, 100, counts))
    board.update('2', snapshot(2, 1, 50, counts))
    assert.equal(board.totals().requests, 150)
    board.retire('1')
    board.update('3', snapshot(3, 0, 7, counts))
    const totals = board.totals()
    assert.equal(totals.requests, 157, 'the retired worker still counts')
    assert.equal(totals.latency.counts[10], 15)
    assert.equal(totals.connections.active, 2, 'gauges: live workers only')
    const text = prometheusText(totals, board.processes())
    const s = samples(text)
    assert.equal(s.get('petrel_requests_total'), 157)
    assert.equal(s.get('petrel_request_duration_seconds_bucket{le="+Inf"}'), 15)
    assert.equal(s.get('petrel_request_duration_seconds_count'), 15)
    assert.equal(s.get('petrel_process_resident_memory_bytes{worker="0"}'), 1e8)
    assert.match(text, /^# TYPE petrel_request_duration_seconds histogram$/m)
    // Buckets are cumulative and never decrease.
    const buckets = [...s].filter(([k]) => k.startsWith('petrel_request_duration_seconds_bucket')).map(([, v]) => v)
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!)
  })
})

describe('rates and history', () => {
  const buckets = (at: number, n: number): number[] => {
    const counts = new Array<number>(LATENCY_BOUNDS_S.length + 1).fill(0)
    counts[at] = n
    return counts
  }

  test('rates count what each process reported since the last second, over that time; a second without responses has no latency (null), not 0', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 })
    const board = new MetricsBoard(() => Date.now())
    board.update('a', snapshot(1, 0, 0, buckets(10, 0)))
    board.second()
    t.mock.timers.tick(1000)
    // Worker 0 reports twice in this second (its timer and the board's drift apart), worker 1 once;
    // worker 1's first report counts from its start.
    board.update('a', snapshot(1, 0, 100, buckets(10, 100)))
    board.update('a', snapshot(1, 0, 130, buckets(10, 130)))
    board.update('b', snapshot(2, 1, 50, buckets(10, 50)))
    let second = board.second()
    assert.equal(second.totals.requests, 180)
    assert.equal(Math.round(second.rates.requestsPerS), 180)
    assert.deepEqual(
      second.processes.map((p) => Math.round(p.requestsPerS)),
      [130, 50],
    )
    assert.ok(second.rates.latencyMs.p50 !== null && second.rates.latencyMs.p50 > 0)
    // Half a second later: only what came since, over half a second.
    t.mock.timers.tick(500)
    board.update('a', snapshot(1, 0, 140, buckets(10, 140)))
    second = board.second()
    assert.deepEqual(
      second.processes.map((p) => Math.round(p.requestsPerS)),
      [20, 0],
    )
    // A second with nothing at all (or no report: a worker that stopped reporting): rates 0, latency null.
    t.mock.timers.tick(1000)
    board.update('a', snapshot(1, 0, 140, buckets(10, 140)))
    second = board.second()
    assert.equal(second.rates.requestsPerS, 0)
    assert.deepEqual(second.rates.latencyMs, { p50: null, p90: null, p99: null })
    assert.equal(second.totals.requests, 190, 'the totals keep everything')
  })

  test('every request is counted in exactly one second: the seconds add up to the totals, however reports and seconds interleave', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 2_000_000 })
    const board = new MetricsBoard(() => Date.now())
    let a = 0
    let b = 0
    let counted = 0
    let totalAtLastSecond = 0
    // Two workers, four reports a second each at their own phase; the board's seconds at another.
    // Halfway, worker b is replaced (a crash, a reload): what it counted in its last second stays.
    let bPid = 2
    for (let ms = 50; ms <= 10_000; ms += 50) {
      t.mock.timers.tick(50)
      if (ms % 250 === 0) a += 7
      if (ms % 150 === 0) b += 3
      if (ms % 250 === 100) board.update('a', snapshot(1, 0, a, buckets(10, a)))
      if (ms % 250 === 200) board.update('b', snapshot(bPid, 1, b, buckets(10, b)))
      if (ms === 5_300) {
        board.retire('b')
        bPid = 3
        b = 0
      }
      if (ms % 1000 === 950) {
        const second = board.second()
        // Every second is one second long (the board takes its first as one too).
        counted += second.rates.requestsPerS
        totalAtLastSecond = second.totals.requests
      }
    }
    assert.ok(totalAtLastSecond > 300)
    assert.equal(Math.round(counted), totalAtLastSecond)
  })

  test('a worker reporting four times a second reads /proc/self/fd once a second, and its counters every time', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 3_000_000 })
    const metrics = new HttpMetrics()
    t.after(() => metrics.close())
    const source = {
      stats: { accepted: 0, rejected: 0, requests: 0, tlsHandshakes: 0, tlsResumed: 0 },
      connectionCounts: () => ({ active: 1, idle: 0, http2: 0, streams: 0, websockets: 0, bytesOut: 0 }),
      timersArmed: () => 0,
    }
    const fdsSeen: number[] = []
    const held: number[] = []
    t.after(() => held.forEach((fd) => closeSync(fd)))
    for (let i = 0; i < 8; i++) {
      source.stats.requests = i
      const snapshot = takeSnapshot(metrics, source, 0)
      assert.equal(snapshot.requests, i, 'counters are always fresh')
      fdsSeen.push(snapshot.fds)
      // A descriptor more each time: a fresh reading would see it.
      held.push(openSync('/dev/null', 'r'))
      t.mock.timers.tick(250)
    }
    assert.equal(new Set(fdsSeen).size, 2, `eight reports over two seconds read /proc/self/fd twice: ${fdsSeen.join(' ')}`)
  })

  test('the history ring keeps the newest points, oldest first, and no more', () => {
    const ring = new HistoryRing<number>(3)
    for (let i = 1; i <= 7; i++) ring.push(i)
    assert.deepEqual(ring.toArray(), [5, 6, 7])
    assert.equal(ring.size, 3)
    assert.throws(() => new HistoryRing(0), /capacity/)
  })
})

/** The events of an SSE stream until `enough` says stop: [event name, parsed data]. */
async function readEvents(url: string, enough: (events: Array<[string, unknown]>) => boolean): Promise<Array<[string, unknown]>> {
  const controller = new AbortController()
  const response = await fetch(url, { signal: controller.signal })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const events: Array<[string, unknown]> = []
  let buffer = ''
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data !== undefined) events.push([name, JSON.parse(data)])
      }
    }
  } finally {
    controller.abort()
  }
  return events
}

describe('one process with --admin', () => {
  test('/metrics counts the requests sent; admin routes are not on the public port; TCP states match the connections held', async (t) => {
    const serving: Serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    const pub = `http://127.0.0.1:${serving.address.port}`
    const admin = `http://127.0.0.1:${serving.admin!.address.port}`
    for (let i = 0; i < 25; i++) assert.equal((await get(`${pub}/plaintext`)).status, 200)
    assert.equal((await get(`${pub}/metrics`)).status, 404, 'no /metrics on the public listener')
    assert.equal((await get(`${pub}/api/snapshot`)).status, 404)
    const metrics = await get(`${admin}/metrics`)
    assert.equal(metrics.type, 'text/plain; version=0.0.4; charset=utf-8')
    const s = samples(metrics.text)
    assert.equal(s.get('petrel_requests_total'), 27)
    assert.equal(s.get('petrel_responses_total{code="2xx"}'), 25)
    assert.equal(s.get('petrel_responses_total{code="4xx"}'), 2)
    assert.equal(s.get('petrel_request_duration_seconds_count'), 27)
    assert.ok(s.get('petrel_received_bytes_total')! > 27 * 30)
    assert.ok(s.get('petrel_sent_bytes_total')! > 25 * 100)

    // Hold connections open; netstat's view of the server's port must show exactly them.
    const held: net.Socket[] = []
    t.after(() => held.forEach((socket) => socket.destroy()))
    for (let i = 0; i < 7; i++) {
      const socket = net.connect(serving.address.port, '127.0.0.1')
      await once(socket, 'connect')
      held.push(socket)
    }
    const port = String(serving.address.port)
    const tick = await eventually(
      async () => JSON.parse((await get(`${admin}/api/snapshot`)).text) as Tick,
      (tick) => tick.system.tcp[port]?.ESTABLISHED === 7 && tick.totals.connections.active === 7,
    )
    assert.equal(tick.system.tcp[port]?.ESTABLISHED, 7)
    assert.equal(tick.system.tcp[port]?.LISTEN, 1)
    assert.equal(tick.totals.connections.active, 7)
    assert.equal(tcpStates([process.pid])[port]?.ESTABLISHED, 7)
    assert.ok(tick.system.cpus.length >= 2 && tick.system.cpus[0]!.name === 'cpu')
    assert.ok(tick.system.memory.totalKb > 0)
    assert.ok(tick.system.interfaces.some((i) => i.name === 'lo'))
    assert.deepEqual(
      tick.system.fds.map((f) => f.pid),
      [process.pid],
    )

    // petrel top, one frame, on a screen large enough for every section.
    const top = spawn(process.execPath, ['bin/petrel.js', 'top', admin, '--once'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, COLUMNS: '200', LINES: '100' },
    })
    let out = ''
    top.stdout.setEncoding('utf8')
    top.stdout.on('data', (text: string) => (out += text))
    const [code] = await once(top, 'exit')
    assert.equal(code, 0)
    assert.match(out, /^requests\/s \d/)
    assert.match(out, /^petrel top  127\.0\.0\.1:\d+ /m)
    assert.match(out, new RegExp(`single\\s+${process.pid}\\s`))
    assert.match(out, new RegExp(`:${port}\\s+ESTABLISHED\\s+7`))
    assert.match(out, /CPU \(mpstat\)/)
  })

  test('/events streams the history, then a tick a second', async (t) => {
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    const started = Date.now()
    const events = await readEvents(`http://127.0.0.1:${serving.admin!.address.port}/events`, (e) => e.length >= 4)
    const elapsed = Date.now() - started
    assert.equal(events[0]![0], 'history')
    assert.deepEqual(
      events.slice(1).map(([name]) => name),
      ['message', 'message', 'message'],
    )
    const ticks = events.slice(1).map(([, data]) => data as Tick)
    assert.ok(elapsed >= 1500 && elapsed < 4000, `three ticks in ${elapsed} ms`)
    assert.ok(ticks[2]!.atMs > ticks[1]!.atMs && ticks[1]!.atMs > ticks[0]!.atMs)
    assert.equal(ticks[2]!.point.atMs, ticks[2]!.atMs, 'each tick carries its point of the history')
  })

  test('a dashboard that connects after some seconds of traffic gets those seconds first; seconds without responses have no latency', {
    timeout: 30_000,
  }, async (t) => {
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    const pub = `http://127.0.0.1:${serving.address.port}`
    await new Promise((r) => setTimeout(r, 2200))
    // Two seconds of traffic, then quiet.
    const until = Date.now() + 2000
    let sent = 0
    while (Date.now() < until) {
      await (await fetch(`${pub}/plaintext`)).text()
      sent++
    }
    await new Promise((r) => setTimeout(r, 2200))
    const [event] = (await readEvents(`http://127.0.0.1:${serving.admin!.address.port}/events`, (e) => e.length >= 1)) as Array<
      [string, { points: HistoryPoint[] }]
    >
    assert.ok(event !== undefined, 'an event')
    const [name, data] = event
    assert.equal(name, 'history')
    const points = data.points
    assert.ok(points.length >= 6, `${points.length} points after about six seconds`)
    for (let i = 1; i < points.length; i++) assert.ok(points[i]!.atMs > points[i - 1]!.atMs, 'oldest first')
    const busy = points.filter((p) => p.requestsPerS > 0)
    const quiet = points.filter((p) => p.requestsPerS === 0)
    assert.ok(busy.length >= 1, 'the seconds of traffic are there')
    assert.ok(Math.abs(busy.reduce((sum, p) => sum + p.requestsPerS, 0) - sent) < sent * 0.5 + 5, `about ${sent} requests over the busy seconds`)
    for (const p of busy) assert.ok(p.latencyP50Ms !== null && p.latencyP50Ms > 0 && p.latencyP99Ms !== null, 'a latency where responses ended')
    assert.ok(quiet.length >= 2, 'quiet seconds before and after')
    for (const p of quiet) assert.deepEqual([p.latencyP50Ms, p.latencyP90Ms, p.latencyP99Ms], [null, null, null], 'no latency where nothing ended')
    assert.ok(points.every((p) => p.rssBytes > 0 && p.heapUsedBytes > 0))
  })

  test('petrel top without a server says so and exits 1', async () => {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    await new Promise((resolve) => server.close(resolve))
    const top = spawn(process.execPath, ['bin/petrel.js', 'top', `http://127.0.0.1:${port}`, '--once'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    top.stderr.on('data', (chunk: Buffer) => (err += chunk))
    const [code] = await once(top, 'exit')
    assert.equal(code, 1)
    assert.match(err, /^petrel top: cannot read http:\/\/127\.0\.0\.1:\d+\/api\/snapshot: connect ECONNREFUSED [^\n]*\n$/)
  })
})

test("master and workers: the master's /metrics sums what every worker counted", async (t) => {
  const args = ['bin/petrel.js', 'serve', '--port', '0', '--admin', '127.0.0.1:0', '--workers', '2', ...(process.getuid?.() === 0 ? ['--user', 'root'] : [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (text: string) => (log += text))
  child.stderr.on('data', (text: string) => (log += text))
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const found = await eventually(
    async () => log,
    (text) => /serving http:\/\/127\.0\.0\.1:\d+/.test(text) && /admin .* on http:\/\/127\.0\.0\.1:\d+/.test(text),
    15_000,
  )
  const pub = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(found)![1]
  const admin = /admin .* on (http:\/\/127\.0\.0\.1:\d+)/.exec(found)![1]
  // New connections each time, so both workers get some (reusePort hashes connections).
  for (let i = 0; i < 40; i++) {
    const response = await fetch(`${pub}/json`, { headers: { connection: 'close' } })
    assert.equal(response.status, 200)
    await response.text()
  }
  const s = await eventually(
    async () => samples((await get(`${admin}/metrics`)).text),
    (s) => s.get('petrel_requests_total') === 40,
  )
  assert.equal(s.get('petrel_requests_total'), 40)
  assert.equal(s.get('petrel_responses_total{code="2xx"}'), 40)
  assert.ok(s.has('petrel_process_resident_memory_bytes{worker="0"}') && s.has('petrel_process_resident_memory_bytes{worker="1"}'), 'a series per worker')
  // The master keeps the history: a dashboard opened now sees the seconds of those requests.
  await new Promise((r) => setTimeout(r, 1500))
  const [event] = (await readEvents(`${admin}/events`, (e) => e.length >= 1)) as Array<[string, { points: HistoryPoint[] }]>
  assert.ok(event !== undefined, 'an event')
  const [name, data] = event
  assert.equal(name, 'history')
  const seen = data.points.reduce((sum, p) => sum + p.requestsPerS, 0)
  assert.ok(seen > 20, `the history holds the requests sent (${seen.toFixed(1)} over its seconds)`)
  assert.ok(data.points.some((p) => p.requestsPerS > 0 && p.latencyP50Ms !== null))
})
