// The cost of Petrel's own work per request, without the kernel: a real HttpServer and
// Connection, fed by a stand-in socket that hands over one request per read and takes every
// write. Run: node bench/request-path.ts [--requests N] [--depth D]
//
// Beside `npm run bench -- http` (which measures everything, kernel included), this isolates
// the part Petrel controls, so a change to the hot path can be measured before and after.
// --metrics counts as `petrel serve --admin` does (monitor/metrics.ts).

import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { createServer } from '../src/index.ts'
import { Connection } from '../src/server/connection.ts'
import { HttpMetrics } from '../src/monitor/metrics.ts'

/** Enough of net.Socket for Connection: writes are counted, never queued. */
class NullSocket extends EventEmitter {
  writableLength = 0
  writableNeedDrain = false
  bytesWritten = 0
  writes = 0
  remoteAddress = '127.0.0.1'
  remotePort = 40000
  write(data: string | Buffer): boolean {
    this.writes++
    this.bytesWritten += data.length
    return true
  }
  cork(): void {}
  uncork(): void {}
  pause(): this {
    return this
  }
  resume(): this {
    return this
  }
  end(): this {
    return this
  }
  destroy(): this {
    return this
  }
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

const requests = flag('requests', 2_000_000)
const depth = flag('depth', 1)
// One connection carries every request, so the per-connection request cap is lifted.
const metrics = process.argv.includes('--metrics') ? new HttpMetrics() : undefined
const server = createServer({ limits: { maxRequestsPerConnection: Number.MAX_SAFE_INTEGER }, ...(metrics === undefined ? {} : { metrics }) })
server.get('/plaintext', (_req, res) => {
  res.setHeader('Content-Type', 'text/plain')
  res.end('Hello, World!')
})
server.get('/json', (_req, res) => res.json({ message: 'Hello, World!' }))

// wrk's request, as it sends it.
const one = 'GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n'
const socket = new NullSocket()
const conn = new Connection(server, socket as unknown as Socket)
if (!conn.open) throw new Error('connection closed at start')
const reads = Math.ceil(requests / depth)

function run(count: number): number {
  const start = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    // Node gives every read a fresh buffer; so does this loop.
    socket.emit('data', Buffer.from(one.repeat(depth), 'latin1'))
  }
  return Number(process.hrtime.bigint() - start)
}

/** What making the read buffers costs, to subtract: Node allocates them too, outside Petrel. */
function measureBufferFrom(count: number): number {
  const text = one.repeat(depth)
  let bytes = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < count; i++) bytes += Buffer.from(text, 'latin1').length
  if (bytes === 0) throw new Error('unreachable')
  return Number(process.hrtime.bigint() - start)
}

run(Math.min(reads, 200_000)) // warm up: let V8 optimize the path
const before = socket.writes
const baseline = measureBufferFrom(reads)
const ns = run(reads)
const writes = socket.writes - before
if (writes !== reads) throw new Error(`expected one write per read, got ${writes} for ${reads}: requests were not answered`)
console.log(
  `request path${metrics === undefined ? '' : ' (metrics on)'}: ${((ns - baseline) / (reads * depth)).toFixed(0)} ns/request (read buffers excluded) over ${reads * depth} requests (depth ${depth}, ${(writes / reads).toFixed(2)} writes per read)`,
)
server.scheduler.close()
metrics?.close()
