// HTTP/2 at the frame level against a second implementation: the Python `h2` library (Debian
// python3-h2) as the client, in test/fixtures/h2-client.py, on cleartext with prior knowledge and
// on TLS with ALPN h2. Each case is what curl does not do: a 16-byte stream window, a window
// raised by SETTINGS mid-response, DATA frames bounded by SETTINGS_MAX_FRAME_SIZE, a padded
// upload across many DATA frames, request trailers, 50 streams at once, a reset mid-response
// (and a handler that writes on after it), and GOAWAY with streams in flight. The script prints
// what h2's state machine reported (ResponseReceived, DataReceived, StreamEnded,
// RemoteSettingsChanged, ConnectionTerminated…) as JSON, and the assertions are on that. h2 closes
// its state machine on GOAWAY, so what follows a GOAWAY is read by the script frame by frame.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import type { HttpServer, Response } from '../src/index.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { serve } from './helpers/serve.ts'
import { makeTestCa, type IssuedCertificate, type TestCa } from './helpers/tls.ts'

const CLIENT = fileURLToPath(new URL('./fixtures/h2-client.py', import.meta.url))
// Debian's python3, where python3-h2 is installed (the python3 first on PATH may be another one).
const PYTHON = '/usr/bin/python3'
const BIG = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => i % 251))
const BIG_SHA = createHash('sha256').update(BIG).digest('hex')
const STREAMS = 50
const H2_NO_ERROR = 0
/** Writes in a row that a handler may be told to go on with (16 KiB each): far beyond any window. */
const SPIN = 10_000

let dir: string
let ca: TestCa
let leaf: IssuedCertificate

before(() => {
  requireDebianPackage('python3')
  requireDebianPackage('python3-h2')
  dir = mkdtempSync(path.join(tmpdir(), 'petrel-h2-python-'))
  ca = makeTestCa(path.join(dir, 'ca'))
  leaf = ca.issue(['localhost', '127.0.0.1'])
})
after(() => rmSync(dir, { recursive: true, force: true }))

interface StreamSummary {
  id: number
  status: number | null
  headers: Record<string, string>
  length: number
  sha256: string
  frames: number
  maxFrame: number
  frameSizes: number[]
  padding: number
  trailers: Record<string, string> | null
  ended: boolean
  reset: number | null
  resetSent: boolean
  windowUpdates: number
  body?: string
}

interface ClientState {
  alpn: string | null
  firstEvent: string | null
  settings: Record<string, number> | null
  settingsFrames: number
  settingsAcked: boolean
  pings: string[]
  connectionWindowUpdates: number[]
  terminated: { errorCode: number; errorName: string | null; lastStreamId: number; additionalData: string } | null
  eof: boolean
  afterGoaway: Array<{ type: string; stream: number; flags: string[]; length: number }>
  events: Record<string, number>
  streams: Record<string, StreamSummary>
  [more: string]: unknown
}

interface ClientFailure {
  error: string
  trace: string
  state: unknown
}

type Transport = 'cleartext' | 'tls'

/** A promise resolved after `ms`, whose timer does not keep the process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** Routes every case uses; what the handlers saw is kept for the assertions. */
interface Seen {
  /** How the /forever handlers' writing ended (the stream was reset): the error they got. */
  foreverEnded: string[]
  /** Release the /slow handlers (the goaway case); how many finished. */
  releaseSlow: () => void
  slowDone: number
  /** Release the /late handler; how its writing after that ended, and whether it saw the response closed. */
  releaseLate: () => void
  lateEnded: string[]
  lateClosed: boolean | null
}

async function start(t: TestContext, transport: Transport): Promise<{ server: HttpServer; port: number; seen: Seen }> {
  let releaseSlow!: () => void
  const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve))
  let releaseLate!: () => void
  const lateGate = new Promise<void>((resolve) => (releaseLate = resolve))
  const seen: Seen = { foreverEnded: [], releaseSlow, slowDone: 0, lateEnded: [], lateClosed: null, releaseLate }
  let arrived = 0
  let openBarrier!: () => void
  const barrier = new Promise<void>((resolve) => (openBarrier = resolve))
  const tls = transport === 'tls' ? { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) } : undefined
  const { server, port } = await serve(t, { http2: true, tls }, (s) => {
    s.get('/hello', (req, res) => {
      res.setHeader('Content-Type', 'text/plain')
      res.end(`hello over HTTP/${req.httpVersion}`)
    })
    s.get('/big', (_req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream')
      res.end(BIG)
    })
    s.get('/forever', async (_req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream')
      await writeForever(res, 'f', seen.foreverEnded)
    })
    // The same loop, entered only after the stream was reset while the handler waited on lateGate.
    s.get('/late', async (_req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream')
      res.write('first\n')
      await lateGate
      seen.lateClosed = res.closed
      await writeForever(res, 'l', seen.lateEnded)
    })
    s.post('/upload', async (req, res) => {
      const body = await req.body()
      res.json({ length: body.length, sha256: createHash('sha256').update(body).digest('hex') })
    })
    s.post('/trailers', async (req, res) => {
      const body = await req.body()
      res.json({ body: body.toString(), trailers: req.trailers })
    })
    // Answers only once STREAMS requests wait together (after 5 s without them, saying so).
    s.get('/barrier', async (req, res) => {
      const i = Number(req.query.get('i'))
      if (++arrived === STREAMS) openBarrier()
      const together = await Promise.race([barrier.then(() => true), delay(5000).then(() => false)])
      res.json({ i, together, arrived, port: req.remotePort })
    })
    s.get('/slow', async (req, res) => {
      res.setHeader('Content-Type', 'text/plain')
      res.write(`first ${req.query.get('i')}\n`)
      await slowGate
      res.end(`last ${req.query.get('i')}\n`)
      seen.slowDone++
    })
  })
  return { server, port, seen }
}

/**
 * Run one case of the Python client against `port`; `onPhase` is called (and awaited) for each
 * phase line. Resolves with the client's final state; rejects with its error and state.
 */
async function runClient(
  t: TestContext,
  name: string,
  port: number,
  transport: Transport,
  onPhase?: (phase: Record<string, unknown>) => Promise<void> | void,
  timeoutMs = 90_000,
): Promise<ClientState> {
  const args = [CLIENT, name, String(port), ...(transport === 'tls' ? [ca.caCert] : [])]
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  let result: ClientState | null = null
  let failure: ClientFailure | null = null
  const phases: Array<Promise<void>> = []
  for await (const line of createInterface({ input: child.stdout! })) {
    const message = JSON.parse(line) as Record<string, unknown>
    if ('result' in message) result = message.result as ClientState
    else if ('error' in message) failure = message as unknown as ClientFailure
    else if ('phase' in message && onPhase !== undefined) phases.push(Promise.resolve(onPhase(message)))
  }
  const code = await exited
  clearTimeout(timer)
  await Promise.all(phases)
  if (result === null || code !== 0)
    throw new Error(
      `h2-client.py ${name} (${transport}) failed (exit ${code}): ${failure?.error ?? 'no result'}\n${failure?.trace ?? ''}${stderr}\nstate: ${JSON.stringify(failure?.state ?? result)}`,
    )
  return result
}

const stream = (state: ClientState, id: number): StreamSummary => {
  const s = state.streams[String(id)]
  assert.ok(s !== undefined, `stream ${id} in ${JSON.stringify(Object.keys(state.streams))}`)
  return s
}

for (const transport of ['cleartext', 'tls'] as const) {
  test(`${transport}: the server's SETTINGS as h2 sees them (first frame, MAX_CONCURRENT_STREAMS 100, no push), ours acknowledged, PINGs answered, a GET`, async (t) => {
    const { port } = await start(t, transport)
    const r = await runClient(t, 'basics', port, transport)
    assert.equal(r.alpn, transport === 'tls' ? 'h2' : null)
    assert.equal(r.firstEvent, 'RemoteSettingsChanged', 'the server preface is a SETTINGS frame (§3.4)')
    assert.equal(r.settingsFrames, 1)
    const settings = r.settings!
    assert.equal(settings.MAX_CONCURRENT_STREAMS, 100)
    assert.ok(settings.ENABLE_PUSH === undefined || settings.ENABLE_PUSH === 0, `ENABLE_PUSH ${settings.ENABLE_PUSH} (a server may only send 0, §6.5.2)`)
    // The rest, where sent, hold the documented values (absent: the RFC's defaults, which are the same).
    assert.equal(settings.INITIAL_WINDOW_SIZE ?? 65_535, 65_535)
    assert.equal(settings.MAX_FRAME_SIZE ?? 16_384, 16_384)
    assert.equal(settings.HEADER_TABLE_SIZE ?? 4096, 4096)
    assert.equal(settings.MAX_HEADER_LIST_SIZE, 16 * 1024)
    assert.equal(r.settingsAcked, true, 'our SETTINGS acknowledged')
    assert.deepEqual(r.pings, ['petrel-1', 'petrel-2', 'petrel-3'], 'each PING answered with its opaque data, in order')
    // The connection window the server opens (1 MiB) besides the initial 65,535.
    assert.deepEqual(r.connectionWindowUpdates, [1024 * 1024 - 65_535])
    assert.equal(r.outboundConnectionWindow, 1024 * 1024)
    const hello = stream(r, 1)
    assert.equal(hello.status, 200)
    assert.equal(hello.body, 'hello over HTTP/2.0')
    assert.equal(hello.headers['content-type'], 'text/plain')
    assert.equal(hello.headers['content-length'], String('hello over HTTP/2.0'.length))
    assert.equal(hello.ended, true)
    assert.equal(hello.reset, null)
    assert.equal(r.terminated, null)
  })
}

/**
 * Written as handlers are: write until told to wait, then await drain(). Once the client resets
 * the stream, write() must say to wait or drain() must fail; a write() that keeps saying "go on"
 * would spin for ever without yielding, so more than SPIN writes in a row end the loop. How it
 * ended goes to `ended`.
 */
async function writeForever(res: Response, fill: string, ended: string[]): Promise<void> {
  const chunk = Buffer.alloc(16 * 1024, fill)
  let inRow = 0
  try {
    for (;;) {
      if (!res.write(chunk)) {
        inRow = 0
        await res.drain()
      } else if (++inRow > SPIN) {
        ended.push(`write() returned true ${SPIN} times in a row (closed: ${res.closed})`)
        return
      }
    }
  } catch (err) {
    ended.push((err as Error).message)
  }
}

test('a 16-byte stream window: 100 KiB arrive in DATA frames of at most 16 bytes, each after a WINDOW_UPDATE', async (t) => {
  const { port } = await start(t, 'cleartext')
  const r = await runClient(t, 'tiny-window', port, 'cleartext')
  const big = stream(r, 1)
  assert.equal(big.status, 200)
  assert.equal(big.headers['content-length'], String(BIG.length))
  assert.equal(big.length, BIG.length)
  assert.equal(big.sha256, BIG_SHA)
  assert.ok(big.maxFrame <= 16, `a DATA frame of ${big.maxFrame} bytes beyond the 16-byte window`)
  assert.ok(big.frames >= BIG.length / 16, `${big.frames} DATA frames`)
  assert.equal(big.ended, true)
  assert.equal(big.reset, null)
  assert.equal(r.terminated, null)
})

test('DATA frames bounded by SETTINGS_MAX_FRAME_SIZE (16,384) when the windows are wide, and full ones used', async (t) => {
  const { port } = await start(t, 'tls')
  const r = await runClient(t, 'frame-size', port, 'tls')
  const big = stream(r, 1)
  assert.equal(big.status, 200)
  assert.equal(big.sha256, BIG_SHA)
  assert.equal(big.maxFrame, 16_384, `frame sizes ${big.frameSizes}`)
  assert.ok(big.frames <= Math.ceil(BIG.length / 16_384) + 1, `${big.frames} DATA frames for ${BIG.length} bytes`)
  assert.equal(big.ended, true)
})

test('a stream window held closed stops the response; SETTINGS_INITIAL_WINDOW_SIZE raised mid-response starts it again (§6.9.2)', async (t) => {
  const { port } = await start(t, 'cleartext')
  const r = await runClient(t, 'window-by-settings', port, 'cleartext')
  const big = stream(r, 1)
  // The window was given back until 64 bytes had arrived: at most one more window (16) came.
  assert.ok((r.stalledAt as number) >= 64 && (r.stalledAt as number) <= 80, `stalled at ${r.stalledAt} bytes`)
  assert.equal(big.length, BIG.length)
  assert.equal(big.sha256, BIG_SHA)
  assert.equal(big.ended, true)
  assert.equal(r.terminated, null)
})

test('a request body of 180,000 bytes in 120 padded DATA frames reaches the handler whole, the padding not in it', async (t) => {
  const { port } = await start(t, 'cleartext')
  const r = await runClient(t, 'padded-upload', port, 'cleartext')
  const sent = r.sent as { length: number; sha256: string; frames: number; padding: number }
  const up = stream(r, 1)
  assert.equal(up.status, 200, up.body ?? '')
  assert.deepEqual(JSON.parse(up.body!), { length: sent.length, sha256: sent.sha256 })
  // 180,000 bytes and ~15 KB of padding are more than one 65,535-byte stream window: the
  // server gave it back as the handler read (WINDOW_UPDATEs on the stream).
  assert.ok(sent.length + sent.padding > 65_535)
  assert.ok(up.windowUpdates >= 2, `${up.windowUpdates} WINDOW_UPDATEs on the stream`)
  assert.equal(up.ended, true)
  assert.equal(r.terminated, null)
})

test('request trailers after a body in two DATA frames reach the handler (req.trailers); a request without them gets none', async (t) => {
  const { port } = await start(t, 'tls')
  const r = await runClient(t, 'trailers', port, 'tls')
  const withTrailers = stream(r, 1)
  assert.equal(withTrailers.status, 200, withTrailers.body ?? '')
  assert.deepEqual(JSON.parse(withTrailers.body!), { body: 'hello world', trailers: { 'x-checksum': 'abc123', 'x-count': '2' } })
  const without = stream(r, 3)
  assert.equal(without.status, 200, without.body ?? '')
  assert.deepEqual(JSON.parse(without.body!), { body: 'no trailers', trailers: {} })
  assert.equal(r.terminated, null)
})

test(`${STREAMS} concurrent streams on one connection, every one answered while all ${STREAMS} were open`, async (t) => {
  const { port } = await start(t, 'cleartext')
  const r = await runClient(t, 'concurrent', port, 'cleartext')
  const ids = r.order as number[]
  assert.deepEqual(
    ids,
    Array.from({ length: STREAMS }, (_, i) => 2 * i + 1),
  )
  const ports = new Set<number>()
  for (const [i, id] of ids.entries()) {
    const s = stream(r, id)
    assert.equal(s.reset, null, `stream ${id} reset with ${s.reset}`)
    assert.equal(s.status, 200, `stream ${id}`)
    assert.equal(s.ended, true, `stream ${id}`)
    const answer = JSON.parse(s.body!) as { i: number; together: boolean; arrived: number; port: number }
    assert.equal(answer.i, i, `stream ${id} answered for request ${i}`)
    assert.equal(answer.together, true, `stream ${id}: only ${answer.arrived} of ${STREAMS} handlers had started after 5 s`)
    ports.add(answer.port)
  }
  assert.equal(ports.size, 1, 'every request from the one connection')
  assert.equal(r.terminated, null)
})

test('a stream the client resets (CANCEL) mid-response: its handler stops, a 100 KiB response beside it and a later stream complete', async (t) => {
  const { port, seen } = await start(t, 'cleartext')
  const r = await runClient(t, 'reset', port, 'cleartext')
  const endless = stream(r, 1)
  assert.equal(endless.status, 200)
  assert.ok((r.endlessAtReset as number) >= 32_768)
  assert.equal(endless.resetSent, true)
  assert.equal(endless.ended, false)
  const big = stream(r, 3)
  assert.equal(big.status, 200)
  assert.equal(big.sha256, BIG_SHA)
  assert.equal(big.ended, true)
  assert.equal(big.reset, null)
  const later = stream(r, 5)
  assert.equal(later.status, 200)
  assert.equal(later.body, 'hello over HTTP/2.0')
  assert.equal(r.terminated, null, `the connection went on: ${JSON.stringify(r.terminated)}`)
  assert.ok(r.pings.includes('after-rs'))
  // The handler's writes stop once the reset is read (its drain() or write() fails).
  const deadline = Date.now() + 5000
  while (seen.foreverEnded.length === 0 && Date.now() < deadline) await sleep(20)
  assert.equal(seen.foreverEnded.length, 1, 'the /forever handler learnt its stream was reset')
  assert.doesNotMatch(seen.foreverEnded[0]!, /in a row/, 'write() after the reset asks the handler to wait, or drain() fails')
})

test('a handler that writes after its stream was reset is told to stop (write() false or drain() failing), as on HTTP/1.1, not told to go on', async (t) => {
  const { port, seen } = await start(t, 'cleartext')
  const r = await runClient(t, 'reset-then-write', port, 'cleartext', (phase) => {
    if (phase.phase === 'reset') seen.releaseLate()
  })
  const late = stream(r, 1)
  assert.equal(late.status, 200)
  assert.equal(late.body, 'first\n')
  assert.equal(late.resetSent, true)
  assert.equal(late.ended, false)
  assert.equal(stream(r, 3).body, 'hello over HTTP/2.0', 'the connection went on')
  assert.equal(r.terminated, null)
  const deadline = Date.now() + 5000
  while (seen.lateEnded.length === 0 && Date.now() < deadline) await sleep(20)
  assert.equal(seen.lateClosed, true, 'res.closed once the client reset the stream')
  assert.equal(seen.lateEnded.length, 1, 'the /late handler stopped writing')
  assert.doesNotMatch(seen.lateEnded[0]!, /in a row/, 'write() after the reset asks the handler to wait, or drain() fails')
})

test('server.close() with two streams in flight: GOAWAY (NO_ERROR, last stream 3), both streams finish, then the connection closes', async (t) => {
  const { server, port, seen } = await start(t, 'tls')
  let closing: Promise<void> | null = null
  let goaway: Record<string, unknown> | null = null
  const r = await runClient(t, 'goaway', port, 'tls', async (phase) => {
    if (phase.phase === 'streaming') closing = server.close()
    else if (phase.phase === 'goaway') {
      goaway = phase
      // Only now may the handlers finish: the streams are in flight when GOAWAY is sent.
      seen.releaseSlow()
    }
  })
  assert.ok(closing !== null, 'server.close() was called')
  await closing
  assert.ok(goaway !== null)
  assert.deepEqual((goaway as { ended: boolean[] }).ended, [false, false], 'neither stream had ended when GOAWAY came')
  assert.deepEqual(r.terminated, { errorCode: H2_NO_ERROR, errorName: 'NO_ERROR', lastStreamId: 3, additionalData: '' })
  for (const [id, i] of [
    [1, 1],
    [3, 2],
  ] as const) {
    const s = stream(r, id)
    assert.equal(s.status, 200)
    assert.equal(s.body, `first ${i}\nlast ${i}\n`, `stream ${id} completed after GOAWAY`)
    assert.equal(s.ended, true)
  }
  assert.equal(seen.slowDone, 2)
  // After GOAWAY only the two streams' DATA came (no new HEADERS, no second GOAWAY with an error), then the end.
  assert.ok(
    r.afterGoaway.every((f) => f.type === 'DataFrame' && (f.stream === 1 || f.stream === 3)),
    JSON.stringify(r.afterGoaway),
  )
  assert.equal(r.eof, true, 'the server closed the connection once the streams were done')
})
