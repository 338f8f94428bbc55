// The ws suite's load generator: one Node process (pinned to its CPU by the harness) speaking
// just enough WebSocket over raw TCP to cost little per message — the handshake, pre-built
// masked frames, one write per read batching every frame that read calls for, and a reader of
// the server's frames that looks at headers only (bench/ws/frames.ts). Every socket reads into
// one shared buffer (net's `onread`), so a read allocates nothing.
//
// Modes:
//   echo     --connections N --depth D --size B: each connection keeps D text messages of B
//            bytes in flight (each one the server echoes is replaced at once); messages/s and
//            the round trip of each message (from the write that sent it to the read that
//            brought its echo).
//   fanout   --subscribers N --rate R --size B: N connections on /sub, one on /pub sending R
//            text messages a second whose payload starts with the send time (µs, this
//            process's clock); deliveries/s read by all subscribers, and the delivery latency
//            seen by one subscriber in --probe-every.
//   memory   --base N --idle M: N connections held, the server's RSS read; M more held, RSS
//            read again after --settle seconds.
//
// Prints one JSON object on stdout. The server's CPU time (user + system, with its children)
// is read from /proc at the edges of the measured window, for --cpu-pids.
// Usage: node bench/ws/generator.ts --port P --mode echo|fanout|memory [flags]

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { clockTicksPerSecond, processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { FrameCounter, handshakeRequest, maskedFrame, PEEK_BYTES } from './frames.ts'
import { processTreeRssKb } from './memory.ts'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    mode: { type: 'string', default: 'echo' },
    connections: { type: 'string', default: '100' },
    depth: { type: 'string', default: '1' },
    size: { type: 'string', default: '32' },
    subscribers: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '100' },
    'probe-every': { type: 'string', default: '10' },
    base: { type: 'string', default: '100' },
    idle: { type: 'string', default: '10000' },
    settle: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'cpu-pids': { type: 'string', default: '' },
  },
})
const host = values.host!
const port = Number(values.port)
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required')
const durationMs = Number(values.duration) * 1000
const warmupMs = Number(values.warmup) * 1000
const cpuPids = values['cpu-pids']!.split(',')
  .filter((pid) => pid !== '')
  .map(Number)
const serverTicks = (): number => cpuPids.reduce((sum, pid) => sum + processTreeCpuTicks(pid), 0)
const serverRssKb = (): number => cpuPids.reduce((sum, pid) => sum + processTreeRssKb(pid), 0)

/** Every socket reads into this one buffer: the callback runs before the next read. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')
/** Handshakes in flight at once while connecting. */
const CONNECT_BATCH = 250
/** A handshake not answered in this long fails the run. */
const CONNECT_TIMEOUT_MS = 15_000

let refused = 0
let disconnected = 0
let measuring = false

/** An open WebSocket of the generator's: what to do with the server's frames and when it opened. */
interface Client {
  readonly socket: net.Socket
  readonly counter: FrameCounter
}

/**
 * Opens a WebSocket on `path`. Resolves once the 101 is read; bytes after it, and every read
 * from then on, go to `counter` and `onFrames` (the number of whole data frames in the read).
 */
function openWebSocket(path: string, counter: FrameCounter, onFrames: (frames: number) => void): Promise<Client> {
  return new Promise((resolve, reject) => {
    let head: Buffer | null = Buffer.alloc(0)
    let opened = false
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no 101 on ${path} within ${CONNECT_TIMEOUT_MS / 1000} s`))
    }, CONNECT_TIMEOUT_MS)
    const socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (length: number, buffer: Uint8Array): boolean => {
          const bytes = buffer as Buffer
          if (head === null) {
            const frames = counter.read(bytes, 0, length)
            if (frames > 0) onFrames(frames)
            return true
          }
          const all = Buffer.concat([head, bytes.subarray(0, length)])
          const end = all.indexOf(HEAD_END)
          if (end === -1) {
            head = all
            return true
          }
          head = null
          clearTimeout(timer)
          if (!all.toString('latin1', 0, 13).startsWith('HTTP/1.1 101 ')) {
            refused++
            socket.destroy()
            reject(new Error(`no 101: ${all.toString('latin1', 0, Math.min(end, 80)).split('\r\n')[0]}`))
            return false
          }
          opened = true
          resolve({ socket, counter })
          const frames = counter.read(all, end + 4, all.length)
          if (frames > 0) onFrames(frames)
          return true
        },
      },
    })
    socket.on('connect', () => socket.write(handshakeRequest(host, port, path)))
    socket.on('error', (error) => {
      clearTimeout(timer)
      if (!opened) reject(error)
    })
    socket.on('close', () => {
      if (opened) disconnected++
    })
  })
}

/** Opens `count` WebSockets, CONNECT_BATCH at a time; `make(i)` gives each its reader and handler. */
async function openMany(count: number, path: string, make: (index: number) => [FrameCounter, (frames: number) => void]): Promise<Client[]> {
  const clients: Client[] = []
  for (let i = 0; i < count; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, count - i) }, (_, k) => {
      const [counter, onFrames] = make(i + k)
      return openWebSocket(path, counter, onFrames)
    })
    clients.push(...(await Promise.all(batch)))
  }
  return clients
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function latencySummary(histogram: RecordableHistogram): Record<string, number> {
  const ms = (micros: number): number => Math.round(micros) / 1000
  return {
    samples: histogram.count,
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
    p999: ms(histogram.percentile(99.9)),
    max: ms(histogram.max),
  }
}

/** Runs the measured window: the server's CPU time and this process's around `durationMs`. */
async function measuredWindow(): Promise<{ elapsedS: number; serverCpuUs: number; generatorCpuUs: number }> {
  measuring = true
  const cpuBefore = process.cpuUsage()
  const serverBefore = serverTicks()
  const started = performance.now()
  await sleep(durationMs)
  measuring = false
  const serverCpuUs = ((serverTicks() - serverBefore) / clockTicksPerSecond()) * 1e6
  const elapsedS = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  return { elapsedS, serverCpuUs, generatorCpuUs: cpu.user + cpu.system }
}

function cpuFigures(window: { elapsedS: number; serverCpuUs: number; generatorCpuUs: number }, messages: number): Record<string, number | null> {
  const wallUs = window.elapsedS * 1e6
  return {
    serverCpuUsPerMessage: cpuPids.length === 0 || messages === 0 ? null : window.serverCpuUs / messages,
    serverCpuPct: cpuPids.length === 0 ? null : (window.serverCpuUs / wallUs) * 100,
    generatorCpuUsPerMessage: messages === 0 ? null : window.generatorCpuUs / messages,
    generatorCpuPct: (window.generatorCpuUs / wallUs) * 100,
  }
}

async function echo(): Promise<object> {
  const connections = Number(values.connections)
  const depth = Number(values.depth)
  const size = Number(values.size)
  const frame = maskedFrame(1, Buffer.alloc(size, 'a'))
  const batch = Buffer.concat(Array.from({ length: depth }, () => frame))
  const latency = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 })
  let received = 0
  const sockets: net.Socket[] = []
  // Per connection, the send time of each message in flight, oldest first (a ring of `depth`).
  const sentAt = Array.from({ length: connections }, () => new Float64Array(depth))
  const oldest = new Uint32Array(connections)
  const clients = await openMany(connections, '/echo', (index) => [
    new FrameCounter(),
    (frames) => {
      const now = performance.now()
      const ring = sentAt[index]!
      let at = oldest[index]!
      for (let k = 0; k < frames; k++) {
        if (measuring) latency.record(Math.max(1, Math.round((now - ring[at]!) * 1000)))
        // The message that replaces it is sent now, into the same slot.
        ring[at] = now
        at = at + 1 === depth ? 0 : at + 1
      }
      oldest[index] = at
      if (measuring) received += frames
      const socket = sockets[index]!
      socket.write(frames === depth ? batch : batch.subarray(0, frames * frame.length))
    },
  ])
  for (const client of clients) sockets.push(client.socket)
  const now = performance.now()
  for (let i = 0; i < connections; i++) {
    sentAt[i]!.fill(now)
    sockets[i]!.write(batch)
  }
  await sleep(warmupMs)
  const disconnectedBefore = disconnected
  const window = await measuredWindow()
  for (const socket of sockets) socket.destroy()
  return {
    mode: 'echo',
    connections,
    depth,
    size,
    refused,
    disconnected: disconnected - disconnectedBefore,
    durationS: window.elapsedS,
    messages: received,
    messagesPerSec: received / window.elapsedS,
    latencyMs: latencySummary(latency),
    ...cpuFigures(window, received),
  }
}

async function fanout(): Promise<object> {
  const subscribers = Number(values.subscribers)
  const rate = Number(values.rate)
  const size = Number(values.size)
  const probeEvery = Number(values['probe-every'])
  if (size < PEEK_BYTES) throw new Error(`--size is at least ${PEEK_BYTES} (the timestamp)`)
  const latency = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 })
  let delivered = 0
  const connectStarted = performance.now()
  await openMany(subscribers, '/sub', (index) => {
    const probe = index % probeEvery === 0
    const counter = new FrameCounter(
      probe
        ? (payload) => {
            if (!measuring) return
            // The payload starts with the send time in µs, 15 digits and a space.
            let micros = 0
            for (let i = 0; i < PEEK_BYTES - 1; i++) micros = micros * 10 + (payload[i]! - 48)
            latency.record(Math.max(1, Math.round(performance.now() * 1000 - micros)))
          }
        : null,
    )
    return [
      counter,
      (frames) => {
        if (measuring) delivered += frames
      },
    ]
  })
  const connectS = (performance.now() - connectStarted) / 1000
  const publisher = await openWebSocket('/pub', new FrameCounter(), () => {})
  const filler = 'x'.repeat(size - PEEK_BYTES)
  let published = 0
  const startedAt = performance.now()
  const publish = (): void => {
    const due = Math.floor(((performance.now() - startedAt) * rate) / 1000) - published
    if (due <= 0 || publisher.socket.destroyed) return
    const frames: Buffer[] = []
    const micros = Math.round(performance.now() * 1000)
    for (let k = 0; k < due; k++) frames.push(maskedFrame(1, Buffer.from(`${String(micros).padStart(PEEK_BYTES - 1, '0')} ${filler}`, 'latin1')))
    publisher.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames))
    published += due
  }
  const timer = setInterval(publish, Math.max(1, Math.floor(1000 / rate / 2)))
  await sleep(warmupMs)
  const publishedBefore = published
  const disconnectedBefore = disconnected
  const window = await measuredWindow()
  const publishedInWindow = published - publishedBefore
  clearInterval(timer)
  return {
    mode: 'fanout',
    subscribers,
    rate,
    size,
    connectS,
    refused,
    disconnected: disconnected - disconnectedBefore,
    durationS: window.elapsedS,
    published: publishedInWindow,
    deliveries: delivered,
    deliveriesPerSec: delivered / window.elapsedS,
    offeredPerSec: (publishedInWindow * subscribers) / window.elapsedS,
    latencyMs: latencySummary(latency),
    ...cpuFigures(window, delivered),
  }
}

async function memory(): Promise<object> {
  const base = Number(values.base)
  const idle = Number(values.idle)
  const settleMs = Number(values.settle) * 1000
  const none = (): [FrameCounter, (frames: number) => void] => [new FrameCounter(), () => {}]
  await openMany(base, '/echo', none)
  await sleep(settleMs)
  const rssBeforeKb = serverRssKb()
  const started = performance.now()
  await openMany(idle, '/echo', none)
  const connectS = (performance.now() - started) / 1000
  await sleep(settleMs)
  const rssAfterKb = serverRssKb()
  return {
    mode: 'memory',
    base,
    idle,
    connectS,
    refused,
    disconnected,
    rssBeforeKb,
    rssAfterKb,
    bytesPerConnection: ((rssAfterKb - rssBeforeKb) * 1024) / idle,
  }
}

const mode = values.mode
const result = mode === 'echo' ? await echo() : mode === 'fanout' ? await fanout() : mode === 'memory' ? await memory() : undefined
if (result === undefined) throw new Error(`--mode is echo, fanout or memory, not ${mode}`)
console.log(JSON.stringify(result))
process.exit(0)
