// `petrel bench` against local servers with scripted answers. A scripted server answers each
// connection's first requests from a script and then goes silent, so the run ends with nothing
// left in flight that could still be answered: the tallies of requests, bytes and statuses must
// then be exact, whatever the run's duration and however the answers were split on the wire.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { runBench } from '../src/apps/bench/run.ts'
import type { BenchOptions } from '../src/apps/bench/plan.ts'
import type { BenchResult } from '../src/apps/bench/result.ts'
import { BENCH_OPTIONS, benchCli } from './helpers/bench.ts'

interface Script {
  /** Answers for the requests of connection `index` (counted from 0 in accept order), in order. */
  answers(index: number): Buffer[]
  /** Cut each answer into pieces of this many bytes, written on separate turns of the loop. */
  pieceBytes?: number
  /** After the last answer: 'silent' keeps the connection open, 'close' ends it, 'reset' resets it. */
  after?: 'silent' | 'close' | 'reset'
  /** Hold the answer to request `request` (from 0) of connection `connection` back this many ms. */
  delayMs?: (connection: number, request: number) => number
}

interface Scripted {
  url: string
  /** Connections accepted and requests received so far. */
  stats: { connections: number; requests: number; requestBytes: Buffer[] }
}

/** A server on 127.0.0.1 that hands each connection to `onSocket` and destroys what is left open after the test. */
async function rawServer(
  t: TestContext,
  onSocket: (socket: net.Socket) => void,
  path = '/',
): Promise<{ url: string; accepted: () => number; open: () => number }> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onSocket(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}${path}`, accepted: () => accepted, open: () => sockets.size }
}

async function scriptedServer(t: TestContext, script: Script, path = '/'): Promise<Scripted> {
  const stats = { connections: 0, requests: 0, requestBytes: [] as Buffer[] }
  const server = await rawServer(
    t,
    (socket) => {
      const connection = stats.connections++
      const answers = script.answers(connection)
      let next = 0
      let tail = ''
      let queue = Promise.resolve()
      socket.on('data', (chunk: Buffer) => {
        stats.requestBytes.push(chunk)
        const text = tail + chunk.toString('latin1')
        let count = text.split('\r\n\r\n').length - 1
        tail = text.slice(-3)
        stats.requests += count
        while (count-- > 0) {
          const request = next++
          const answer = answers[request]
          const last = next === answers.length
          if (answer === undefined) continue
          const delay = script.delayMs?.(connection, request) ?? 0
          if (delay > 0) queue = queue.then(() => new Promise((resolve) => setTimeout(resolve, delay)))
          queue = queue
            .then(() => writeInPieces(socket, answer, script.pieceBytes))
            .then(() => {
              if (!last || socket.destroyed) return
              if (script.after === 'close') socket.end()
              if (script.after === 'reset') socket.resetAndDestroy()
            })
        }
      })
    },
    path,
  )
  return { url: server.url, stats }
}

async function writeInPieces(socket: net.Socket, bytes: Buffer, pieceBytes = bytes.length): Promise<void> {
  for (let at = 0; at < bytes.length && !socket.destroyed; at += pieceBytes) {
    socket.write(bytes.subarray(at, at + pieceBytes))
    if (at + pieceBytes < bytes.length) await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

function bench(url: string, options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  return runBench({ ...BENCH_OPTIONS, url, ...options })
}

const noErrors = { connect: 0, read: 0, write: 0, timeout: 0, parse: 0 }
const b = (text: string): Buffer => Buffer.from(text, 'latin1')
const sum = (answers: Buffer[]): number => answers.reduce((n, a) => n + a.length, 0)

const MIXED = [
  b('HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!'),
  b('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\n'),
  b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'),
  b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  b('HTTP/1.1 204 No Content\r\nServer: scripted\r\n\r\n'),
  b(`HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n${'x'.repeat(70000)}`),
]

describe('exact tallies against scripted answers', () => {
  test('Content-Length, chunked, 1xx, 204 and a body larger than a read', async (t) => {
    const server = await scriptedServer(t, { answers: () => MIXED })
    const result = await bench(server.url)
    assert.equal(result.requests, 2 * MIXED.length)
    assert.equal(result.bytes, 2 * sum(MIXED))
    assert.deepEqual(result.status, { '200': 6, '201': 2, '204': 2, '404': 2 })
    assert.deepEqual(result.errors, noErrors)
    assert.equal(
      result.timeline.reduce((n, c) => n + c, 0),
      result.requests,
    )
  })

  test('answers dribbled out a few bytes at a time', async (t) => {
    const server = await scriptedServer(t, { answers: () => MIXED.slice(0, 5), pieceBytes: 7 })
    const result = await bench(server.url)
    assert.equal(result.requests, 10)
    assert.equal(result.bytes, 2 * sum(MIXED.slice(0, 5)))
    assert.deepEqual(result.errors, noErrors)
  })

  test('pipelined: answers are matched to requests in order, batch after batch', async (t) => {
    const answers = Array.from({ length: 12 }, (_, i) => b(`HTTP/1.1 ${200 + (i % 3)} X\r\nContent-Length: ${i}\r\n\r\n${'y'.repeat(i)}`))
    const server = await scriptedServer(t, { answers: () => answers, pieceBytes: 5 })
    const result = await bench(server.url, { pipelining: 4 })
    assert.equal(result.requests, 24)
    assert.deepEqual(result.status, { '200': 8, '201': 8, '202': 8 })
    assert.equal(result.bytes, 2 * sum(answers))
    assert.equal(server.stats.requests, 32, 'three answered batches of four per connection, and a fourth')
    assert.deepEqual(result.errors, noErrors)
  })

  test('threads: the merged totals and histogram are exact', async (t) => {
    const server = await scriptedServer(t, { answers: () => MIXED.slice(0, 3) })
    const result = await bench(server.url, { connections: 4, threads: 2 })
    assert.equal(result.requests, 12)
    assert.equal(result.bytes, 4 * sum(MIXED.slice(0, 3)))
    assert.deepEqual(result.status, { '200': 4, '201': 4, '404': 4 })
    assert.ok(result.latency_ms.max > 0 && result.latency_ms.p50 <= result.latency_ms.max)
  })

  test('close-delimited bodies: each ends with its connection, and the next connection goes on', async (t) => {
    const answer = b('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close')
    // The first five connections get an answer ended by closing; later ones get nothing.
    const server = await scriptedServer(t, { answers: (i) => (i < 5 ? [answer] : []), after: 'close' })
    const result = await bench(server.url, { connections: 1 })
    assert.equal(result.requests, 5)
    assert.equal(result.bytes, 5 * answer.length)
    assert.deepEqual(result.errors, noErrors)
    assert.equal(server.stats.connections, 6)
  })

  test('Connection: close ends the connection without counting the pipelined rest as errors', async (t) => {
    const answers = [b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), b('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')]
    const server = await scriptedServer(t, { answers: (i) => (i < 3 ? answers : []), after: 'close' })
    const result = await bench(server.url, { connections: 1, pipelining: 4 })
    assert.equal(result.requests, 6)
    assert.deepEqual(result.errors, noErrors)
  })

  test('reset mid-response: the answered requests count, the cut one is a read error', async (t) => {
    const whole = b('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfour')
    const cut = b('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part')
    const server = await scriptedServer(t, { answers: (i) => (i < 3 ? [whole, cut] : []), after: 'reset' })
    const result = await bench(server.url, { connections: 1 })
    assert.equal(result.requests, 3)
    assert.equal(result.errors.read, 3)
    assert.equal(result.bytes, 3 * (whole.length + cut.length))
    assert.match(result.first_error ?? '', /^read: /)
  })

  test('a response that cannot be parsed is a parse error, and the connection is replaced', async (t) => {
    const server = await scriptedServer(t, { answers: (i) => (i < 2 ? [b('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx'), b('NOT HTTP\r\n\r\n')] : []) })
    const result = await bench(server.url, { connections: 1 })
    assert.equal(result.requests, 2)
    assert.equal(result.errors.parse, 2)
    assert.equal(result.first_error, 'parse: malformed status line')
  })

  test('a slow server: requests unanswered past --timeout fail as timeouts', async (t) => {
    const server = await scriptedServer(t, { answers: () => [] })
    const result = await bench(server.url, { connections: 2, timeoutMs: 150, durationMs: 800 })
    assert.equal(result.requests, 0)
    // Each connection times out every 150-200 ms (the sweep runs every timeout/4).
    assert.ok(result.errors.timeout >= 4 && result.errors.timeout <= 12, `timeouts: ${result.errors.timeout}`)
  })

  test('a refused port: connect errors, no requests', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const { port } = probe.address() as net.AddressInfo
    probe.close()
    await once(probe, 'close')
    const result = await bench(`http://127.0.0.1:${port}/`, { durationMs: 300 })
    assert.equal(result.requests, 0)
    assert.ok(result.errors.connect > 0)
  })

  test('--no-keepalive: one connection per request, the server closes each', async (t) => {
    const answer = b('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok')
    const server = await scriptedServer(t, { answers: (i) => (i < 20 ? [answer] : []), after: 'close' })
    const result = await bench(server.url, { connections: 2, keepAlive: false })
    assert.equal(result.requests, 20)
    assert.deepEqual(result.errors, noErrors)
    assert.equal(server.stats.connections, 22)
    const first = Buffer.concat(server.stats.requestBytes).toString('latin1')
    assert.match(first, /^GET \/ HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nConnection: close\r\n\r\n/)
  })

  test('--warmup: what is answered during the warm-up is not counted', async (t) => {
    const answer = b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    // Each connection gets five answers at once and then nothing: all of them during the warm-up.
    const server = await scriptedServer(t, { answers: () => [answer, answer, answer, answer, answer] })
    const result = await bench(server.url, { warmupMs: 400, durationMs: 300 })
    assert.equal(server.stats.requests, 12, 'five answered requests and a sixth per connection')
    assert.equal(result.requests, 0)
    assert.equal(result.bytes, 0)
    assert.deepEqual(result.errors, noErrors)
    assert.equal(result.duration_s > 0.29 && result.duration_s < 0.4, true, `window ${result.duration_s} s`)
  })

  test('HEAD: answers carry no body whatever Content-Length says', async (t) => {
    const answer = b('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n')
    const server = await scriptedServer(t, { answers: () => [answer, answer, answer] })
    const result = await bench(server.url, { method: 'HEAD', connections: 1 })
    assert.equal(result.requests, 3)
    assert.deepEqual(result.errors, noErrors)
  })

  test('method, headers and body go out exactly as asked', async (t) => {
    const server = await scriptedServer(t, { answers: () => [b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')] }, '/api/x?q=1')
    await bench(server.url, { connections: 1, method: 'PUT', headers: ['X-Token: abc', 'Content-Type: application/json'], body: b('{"a":1}') })
    const sent = Buffer.concat(server.stats.requestBytes).toString('latin1')
    // The answered request, then the next one, which is never answered.
    assert.match(
      sent,
      /^(PUT \/api\/x\?q=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nX-Token: abc\r\nContent-Type: application\/json\r\nContent-Length: 7\r\n\r\n\{"a":1\}){2}$/,
    )
  })
})

describe('connections that end oddly', () => {
  test('an unsolicited close-delimited answer on an idle connection: no request lost, one new connection, nothing left open', async (t) => {
    const server = await rawServer(t, (socket) => {
      let answered = false
      socket.on('data', () => {
        if (answered) return
        answered = true
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
        setTimeout(() => socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'), 100)
      })
    })
    const result = await bench(server.url, { connections: 1, rate: 1, durationMs: 600 })
    assert.equal(result.requests, 1)
    assert.equal(result.errors.parse, 0, 'no request was lost')
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(server.open(), 0, 'every socket of the run is closed')
    assert.equal(server.accepted(), 2)
  })

  test('a server that announces a close and keeps the connection open is replaced after --timeout', async (t) => {
    const server = await rawServer(t, (socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'))
    })
    const result = await bench(server.url, { connections: 1, pipelining: 4, timeoutMs: 100, durationMs: 700 })
    assert.ok(result.requests >= 3, `${result.requests} requests`)
    assert.deepEqual(result.errors, noErrors, 'the requests behind the close are not errors')
    assert.ok(server.accepted() >= 3)
  })

  test('a server that accepts and closes at once is not hammered: reconnects wait 10 ms', async (t) => {
    const server = await rawServer(t, (socket) => socket.end())
    const result = await bench(server.url, { connections: 4, durationMs: 500 })
    assert.equal(result.requests, 0)
    // At most one attempt per connection per 10 ms (about 200 here); without the pause, thousands.
    assert.ok(server.accepted() <= 260, `${server.accepted()} connections accepted in 0.5 s`)
  })

  test('--rate: --timeout runs from when a request was written, not from when it was due', async (t) => {
    // Every answer takes 40 ms; at 100 req/s one connection falls ever further behind its
    // schedule, but no single request waits anywhere near the 500 ms timeout once written.
    const server = await rawServer(t, (socket) => {
      socket.on('data', (chunk: Buffer) => {
        const n = chunk.toString('latin1').split('\r\n\r\n').length - 1
        for (let i = 0; i < n; i++) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 40 * (i + 1))
      })
    })
    const result = await bench(server.url, { connections: 1, rate: 100, timeoutMs: 500, durationMs: 2000 })
    assert.equal(result.errors.timeout, 0)
    assert.equal(server.accepted(), 1)
    assert.ok(result.latency_ms.max > 500, 'the latency still shows the backlog (coordinated omission corrected)')
  })
})

describe('--rate', () => {
  test('holds the asked rate within 5% over 5 s', async (t) => {
    const answer = b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    const server = await scriptedServer(t, { answers: () => Array.from({ length: 100_000 }, () => answer) })
    const result = await bench(server.url, { connections: 4, rate: 200, durationMs: 5000 })
    assert.ok(Math.abs(result.requests - 1000) <= 50, `${result.requests} requests in 5 s at 200/s`)
    for (const second of result.timeline) assert.ok(Math.abs(second - 200) <= 20, `timeline ${result.timeline}`)
    // Well below capacity, latency is the service time: far below the 20 ms between requests.
    assert.ok(result.latency_ms.p50 < 5, `p50 ${result.latency_ms.p50} ms`)
  })

  test('a stalled server is charged for the requests that queued behind the stall', async (t) => {
    // One connection at 100 req/s; the answer to request 20 (due at 200 ms) is held back 300 ms.
    const answer = b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    const server = await scriptedServer(t, {
      answers: () => Array.from({ length: 100_000 }, () => answer),
      delayMs: (_connection, request) => (request === 20 ? 300 : 0),
    })
    const result = await bench(server.url, { connections: 1, rate: 100, durationMs: 1500 })
    // The ~30 requests due during the stall go out late and count from when they were due
    // (latencies of 300 ms down to 10 ms): a fifth of the run, so p90 is far above the service time.
    // Counting from when they were sent would show a single slow request and a p90 under 5 ms.
    assert.ok(Math.abs(result.requests - 150) <= 8, `${result.requests} requests`)
    assert.ok(result.latency_ms.max >= 290, `max ${result.latency_ms.max} ms`)
    assert.ok(result.latency_ms.p90 >= 50, `p90 ${result.latency_ms.p90} ms`)
    assert.ok(result.latency_ms.p50 < 5, `p50 ${result.latency_ms.p50} ms`)
  })
})

describe('petrel bench on the command line', () => {
  for (const [args, message] of [
    [[], /^petrel: missing URL: petrel bench \[flags\] URL\n$/],
    [['not a url'], /^petrel: not a URL: "not a url"; give one such as http:\/\/127\.0\.0\.1:8080\/\n$/],
    [['ftp://example.com/'], /^petrel: unsupported scheme ftp: in ftp:\/\/example\.com\/; petrel bench speaks http:\/\/ and https:\/\/\n$/],
    [['-c', '0', 'http://127.0.0.1:1/'], /^petrel: bad value for --connections: "0"; expected at least 1\n$/],
    [
      ['-d', 'soon', 'http://127.0.0.1:1/'],
      /^petrel: bad value for --duration: "soon"; expected a duration such as 500ms, 5s or 1m \(a bare number means seconds\)\n$/,
    ],
    [['--no-keepalive', '-p', '4', 'http://127.0.0.1:1/'], /^petrel: --pipelining needs keep-alive; drop --no-keepalive or --pipelining\n$/],
    [['-H', 'no colon', 'http://127.0.0.1:1/'], /^petrel: bad value for --header: "no colon"; expected "Name: value"\n$/],
    [['--body-file', '/nonexistent/file', 'http://127.0.0.1:1/'], /^petrel: bad value for --body-file: cannot read \/nonexistent\/file \(ENOENT\)\n$/],
    [['--frobnicate', 'http://127.0.0.1:1/'], /^petrel: unknown flag --frobnicate for `petrel bench`; run `petrel bench --help` for the flags it takes\n$/],
  ] as const) {
    test(`one-line error and exit 2: ${args.join(' ') || '(no arguments)'}`, async () => {
      const r = await benchCli([...args])
      assert.equal(r.code, 2)
      assert.match(r.stderr, message)
      assert.equal(r.stdout, '')
    })
  }

  test('--json prints one object with the documented fields; exit 0', async (t) => {
    const server = await scriptedServer(t, { answers: () => [b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')] })
    const r = await benchCli(['-c', '3', '-d', '300ms', '--json', '--expect-status', '200', server.url])
    assert.equal(r.code, 0, r.stderr)
    const result = JSON.parse(r.stdout) as BenchResult
    assert.equal(result.requests, 3)
    assert.deepEqual(Object.keys(result.latency_ms).sort(), ['max', 'mean', 'min', 'p50', 'p75', 'p90', 'p99', 'p999', 'p9999', 'stdev'])
    assert.deepEqual(result.status, { '200': 3 })
    assert.deepEqual(result.errors, noErrors)
    for (const key of ['duration_s', 'rps', 'bytes_per_s', 'timeline'] as const) assert.ok(key in result, key)
  })

  test('the text report names the numbers; no progress line when stdout is not a terminal', async (t) => {
    const server = await scriptedServer(t, { answers: () => [b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')] })
    const r = await benchCli(['-c', '2', '-d', '300ms', server.url])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^GET http:\/\/127\.0\.0\.1:\d+\/\n  0\.3s, 1 thread, 2 connections, keep-alive\n\n  requests   2 in 0\.3\d+s, /)
    assert.match(r.stdout, /\n  status     404: 2\n  errors     none\n/)
    assert.match(r.stdout, /\n             p50 [\d.]+(µs|ms)  p75 [\d.]+(µs|ms)  p90 /)
    assert.doesNotMatch(r.stdout, /\r/)
  })

  test('--expect-status not met: exit 1', async (t) => {
    const server = await scriptedServer(t, { answers: () => [b('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')] })
    const r = await benchCli(['-c', '1', '-d', '200ms', '--expect-status', '200', server.url])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^petrel bench: not every request got status 200\n$/)
  })

  test('every request failed: exit 1', async () => {
    const r = await benchCli(['-c', '1', '-d', '200ms', 'http://127.0.0.1:1/'])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /errors     connect \d+/)
    assert.match(r.stderr, /^petrel bench: every request failed\n$/)
  })
})
