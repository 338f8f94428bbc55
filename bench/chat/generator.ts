// The chat suite's load: N clients in one room, each sending one message per interval, spread
// evenly over it (client i sends at i/N of the interval, then every interval). Every line a
// client receives is counted; probe clients (one in `probeEvery`) also parse each message and
// record its delivery latency — from the moment its sender wrote it to the moment the probe read
// it, on one clock, since senders and readers are this process — into an HDR histogram.
//
// Prints one JSON object on stdout. Usage:
//   node bench/chat/generator.ts --port P [--clients 1000] [--interval-ms 1000] [--duration 10]
//     [--warmup 2] [--probe-every 10] [--cpu-pids PID,…]

import net from 'node:net'
import { createHistogram } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { clockTicksPerSecond, processTreeCpuTicks, processTreePeakRssKb } from '../lib/proc-cpu.ts'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    clients: { type: 'string', default: '1000' },
    'interval-ms': { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'probe-every': { type: 'string', default: '10' },
    /** Server processes (with their children) whose CPU time over the measured window is reported. */
    'cpu-pids': { type: 'string', default: '' },
  },
})
const host = values.host!
const port = Number(values.port)
const clientCount = Number(values.clients)
const intervalMs = Number(values['interval-ms'])
const durationMs = Number(values.duration) * 1000
const warmupMs = Number(values.warmup) * 1000
const probeEvery = Number(values['probe-every'])
const cpuPids = values['cpu-pids']!.split(',')
  .filter((pid) => pid !== '')
  .map(Number)
const serverTicks = (): number => cpuPids.reduce((sum, pid) => sum + processTreeCpuTicks(pid), 0)
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required')

const LF = 10
/** A message line as the room relays it: `guestN: m SEQ MICROS`. */
const MARK = Buffer.from(': m ')

const latency = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 })
let measuring = false
let delivered = 0
let sent = 0
let disconnected = 0
let refused = 0

class ChatClient {
  readonly socket: net.Socket
  readonly probe: boolean
  /** Bytes of a line cut by a read (probes only). */
  partial: Buffer | null = null
  welcomed = false
  seq = 0

  constructor(socket: net.Socket, probe: boolean) {
    this.socket = socket
    this.probe = probe
  }
}

function onData(client: ChatClient, chunk: Buffer): void {
  if (!client.welcomed) {
    // The first line is the welcome (or a refusal); the rest of this chunk is ordinary traffic.
    const text = chunk.toString('latin1', 0, Math.min(chunk.length, 64))
    if (text.startsWith('!')) refused++
    client.welcomed = true
  }
  if (!client.probe) {
    if (!measuring) return
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) delivered++
    return
  }
  const now = performance.now()
  let bytes = chunk
  if (client.partial !== null) {
    bytes = Buffer.concat([client.partial, chunk])
    client.partial = null
  }
  let start = 0
  for (let lf = bytes.indexOf(LF); lf >= 0; lf = bytes.indexOf(LF, start)) {
    if (measuring) {
      delivered++
      const mark = bytes.indexOf(MARK, start)
      if (mark >= 0 && mark < lf) {
        const space = bytes.indexOf(32, mark + MARK.length)
        const micros = Number(bytes.toString('latin1', space + 1, lf - 1))
        if (Number.isFinite(micros)) latency.record(Math.max(1, Math.round(now * 1000 - micros)))
      }
    }
    start = lf + 1
  }
  if (start < bytes.length) client.partial = bytes.subarray(start)
}

async function connectAll(): Promise<ChatClient[]> {
  const clients: ChatClient[] = []
  // Joins in batches, so the listen backlog and the room's join notices stay sane.
  const BATCH = 50
  for (let i = 0; i < clientCount; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, clientCount - i) }, (_, k) => {
        const socket = net.connect(port, host)
        socket.setNoDelay(true)
        const client = new ChatClient(socket, (i + k) % probeEvery === 0)
        socket.on('data', (chunk: Buffer) => onData(client, chunk))
        socket.on('error', () => {})
        socket.on('close', () => disconnected++)
        return new Promise<ChatClient>((resolve, reject) => {
          socket.once('connect', () => resolve(client))
          socket.once('error', reject)
        })
      }),
    )
    clients.push(...batch)
  }
  return clients
}

function send(client: ChatClient): void {
  if (client.socket.destroyed) return
  client.socket.write(`m ${++client.seq} ${(performance.now() * 1000).toFixed(0)}\n`)
  sent++
}

const joinStarted = performance.now()
const clients = await connectAll()
// Let the join notices (N² lines in all) drain before the clock starts.
await new Promise((r) => setTimeout(r, 1000))
const joinMs = performance.now() - joinStarted - 1000

// Each client's first message at i/N of the interval, then every interval.
const timers: NodeJS.Timeout[] = []
clients.forEach((client, i) => {
  timers.push(
    setTimeout(
      () => {
        send(client)
        timers.push(setInterval(() => send(client), intervalMs))
      },
      (i * intervalMs) / clientCount,
    ),
  )
})
await new Promise((r) => setTimeout(r, warmupMs))
measuring = true
const sentBefore = sent
const disconnectedBefore = disconnected
const cpuBefore = process.cpuUsage()
const serverBefore = serverTicks()
const started = performance.now()
await new Promise((r) => setTimeout(r, durationMs))
measuring = false
const serverCpuUs = ((serverTicks() - serverBefore) / clockTicksPerSecond()) * 1e6
const serverPeakRssMb = cpuPids.reduce((sum, pid) => sum + processTreePeakRssKb(pid), 0) / 1024
const elapsedS = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
for (const timer of timers) clearTimeout(timer)
const sentInWindow = sent - sentBefore
for (const client of clients) client.socket.destroy()

const ms = (micros: number): number => Math.round(micros) / 1000
console.log(
  JSON.stringify({
    clients: clientCount,
    joinMs: Math.round(joinMs),
    refused,
    durationS: elapsedS,
    sentPerSec: sentInWindow / elapsedS,
    fanoutPerSec: delivered / elapsedS,
    expectedFanoutPerSec: (sentInWindow / elapsedS) * (clientCount - 1),
    disconnected: disconnected - disconnectedBefore,
    latencyMs: {
      samples: latency.count,
      p50: ms(latency.percentile(50)),
      p90: ms(latency.percentile(90)),
      p99: ms(latency.percentile(99)),
      p999: ms(latency.percentile(99.9)),
      max: ms(latency.max),
    },
    serverCpuUsPerDelivery: cpuPids.length === 0 || delivered === 0 ? null : serverCpuUs / delivered,
    serverCpuPct: cpuPids.length === 0 ? null : (serverCpuUs / 1000 / (elapsedS * 1000)) * 100,
    serverPeakRssMb: cpuPids.length === 0 ? null : serverPeakRssMb,
    generatorCpuPct: ((cpu.user + cpu.system) / 1000 / (elapsedS * 1000)) * 100,
  }),
)
process.exit(0)
