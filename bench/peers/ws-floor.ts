// Peer of the ws suite: the floor under every WebSocket server on Node's `net.Socket`, Petrel
// and `ws` included. It is not a WebSocket server: it answers the handshake (the accept key
// computed, nothing checked), then reads each client frame's header just enough to find where
// it ends — no validation of anything, no UTF-8 check, no message object, no timer — and
// answers an /echo message with a pre-built unmasked text frame of the same length (so the
// bytes back are not the bytes sent), the echoes one read calls for in one write. /sub joins a
// set; a /pub message is unmasked and framed once, and the frames one read brings are written
// to every member of the set in a loop, one write each. A close frame ends the connection. What it costs per message is what Node, libuv and the kernel cost for the reads
// and writes; a target below it cannot be met by any program on this runtime.
// Usage: node bench/peers/ws-floor.ts PORT   (or PORT=… in the environment)

import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import net from 'node:net'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: ws-floor.ts PORT')

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')
const KEY_FIELD = 'sec-websocket-key:'

/** An unmasked frame header for a payload of `length` bytes (FIN set). */
function header(opcode: number, length: number): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, length])
  if (length < 65536) {
    const bytes = Buffer.from([0x80 | opcode, 126, 0, 0])
    bytes.writeUInt16BE(length, 2)
    return bytes
  }
  const bytes = Buffer.alloc(10)
  bytes[0] = 0x80 | opcode
  bytes[1] = 127
  bytes.writeBigUInt64BE(BigInt(length), 2)
  return bytes
}

/** `count` echo frames of `length` bytes each, in one Buffer, built once per (length, count). */
const echoes = new Map<number, Buffer>()
function echoFrames(length: number, count: number): Buffer {
  const key = length * 4096 + count
  let bytes = echoes.get(key)
  if (bytes === undefined) {
    const one = Buffer.concat([header(1, length), Buffer.alloc(length, 'x')])
    bytes = Buffer.concat(Array.from({ length: count }, () => one))
    if (count < 4096) echoes.set(key, bytes)
  }
  return bytes
}

const room = new Set<net.Socket>()

const Route = { ECHO: 0, SUB: 1, PUB: 2 } as const
type Route = (typeof Route)[keyof typeof Route]

class Conn {
  route: Route = Route.ECHO
  /** Before the handshake: the bytes of an unfinished request head. */
  pending: Buffer | null = Buffer.alloc(0)
  /** Bytes of a frame header cut by a read. */
  partialHeader: Buffer | null = null
  /** Payload bytes still to come of the current frame. */
  remaining = 0
  opcode = 0
  length = 0
  /** /pub: the current frame's payload, unmasked as it arrives; its mask and how far it is. */
  payload: Buffer | null = null
  mask = Buffer.alloc(4)
  filled = 0
  readonly socket: net.Socket
  constructor(socket: net.Socket) {
    this.socket = socket
  }
}

function handshake(conn: Conn, chunk: Buffer): Buffer | null {
  const bytes = conn.pending!.length === 0 ? chunk : Buffer.concat([conn.pending!, chunk])
  const end = bytes.indexOf(HEAD_END)
  if (end === -1) {
    conn.pending = bytes
    return null
  }
  conn.pending = null
  const head = bytes.toString('latin1', 0, end)
  const path = head.slice(4, head.indexOf(' ', 4))
  conn.route = path === '/sub' ? Route.SUB : path === '/pub' ? Route.PUB : Route.ECHO
  const at = head.toLowerCase().indexOf(KEY_FIELD)
  const key = at === -1 ? '' : head.slice(at + KEY_FIELD.length, head.indexOf('\r\n', at)).trim()
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64')
  conn.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`, 'latin1')
  if (conn.route === Route.SUB) {
    room.add(conn.socket)
    conn.socket.once('close', () => room.delete(conn.socket))
  }
  return bytes.subarray(end + 4)
}

/** Echo frames owed for the read being handled: how many, of which payload length (one write at its end). */
let echoCount = 0
let echoLength = -1

/** Frames published by the read being handled: one write of all of them to each subscriber at its end. */
let published: Buffer[] = []

function flushEchoes(conn: Conn): void {
  if (echoCount > 0) conn.socket.write(echoFrames(echoLength, echoCount))
  echoCount = 0
}

function flushPublished(): void {
  if (published.length === 0) return
  const frames = Buffer.concat(published)
  published = []
  for (const socket of room) socket.write(frames)
}

/** A whole frame has been read: what it asks of the floor. Returns false to stop reading. */
function frameDone(conn: Conn): boolean {
  if (conn.opcode === 8) {
    conn.socket.destroy()
    return false
  }
  if (conn.route === Route.ECHO && (conn.opcode === 1 || conn.opcode === 2)) {
    if (echoLength !== conn.length) flushEchoes(conn)
    echoLength = conn.length
    echoCount++
  }
  if (conn.route === Route.PUB && conn.payload !== null && (conn.opcode === 1 || conn.opcode === 2)) {
    published.push(header(conn.opcode, conn.length), conn.payload)
  }
  conn.payload = null
  return true
}

function readFrames(conn: Conn, chunk: Buffer): void {
  let bytes = chunk
  if (conn.partialHeader !== null) {
    bytes = Buffer.concat([conn.partialHeader, chunk])
    conn.partialHeader = null
  }
  let at = 0
  echoCount = 0
  while (at < bytes.length) {
    if (conn.remaining > 0) {
      const take = Math.min(conn.remaining, bytes.length - at)
      if (conn.payload !== null) {
        for (let i = 0; i < take; i++) conn.payload[conn.filled + i] = bytes[at + i]! ^ conn.mask[(conn.filled + i) & 3]!
        conn.filled += take
      }
      at += take
      conn.remaining -= take
      if (conn.remaining === 0 && !frameDone(conn)) return
      continue
    }
    // A header: 2 bytes, the extended length, the 4-byte mask.
    if (bytes.length - at < 2) break
    const length7 = bytes[at + 1]! & 127
    const size = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + 4
    if (bytes.length - at < size) break
    const length = length7 === 126 ? bytes.readUInt16BE(at + 2) : length7 === 127 ? Number(bytes.readBigUInt64BE(at + 2)) : length7
    conn.opcode = bytes[at]! & 15
    conn.length = length
    if (conn.route === Route.PUB) {
      conn.payload = Buffer.allocUnsafe(length)
      bytes.copy(conn.mask, 0, at + size - 4, at + size)
      conn.filled = 0
    }
    at += size
    conn.remaining = length
    if (length === 0 && !frameDone(conn)) return
  }
  if (at < bytes.length) conn.partialHeader = Buffer.from(bytes.subarray(at))
  flushEchoes(conn)
  flushPublished()
}

const server = net.createServer({ noDelay: true }, (socket) => {
  const conn = new Conn(socket)
  socket.on('data', (chunk: Buffer) => {
    if (conn.pending !== null) {
      const rest = handshake(conn, chunk)
      if (rest === null || rest.length === 0) return
      chunk = rest
    }
    readFrames(conn, chunk)
  })
  socket.on('error', () => socket.destroy())
})

server.listen({ port, host: '127.0.0.1', backlog: 4096 })
