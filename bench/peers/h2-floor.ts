// Peer: the floor under every HTTP/2 server built on Node's sockets, Petrel included — what
// net-floor.ts and tls-floor.ts are for HTTP/1.1. It is not an HTTP/2 server: it does the least
// of the protocol a load generator accepts, on a node:net server (prior knowledge) or a node:tls
// server (ALPN h2):
// - the client's preface is skipped, not checked; an empty SETTINGS is sent at once (the
//   server's preface: every setting at its default) and each SETTINGS of the client is ACKed;
// - each HEADERS frame with END_STREAM (or its last CONTINUATION) is a whole request: it is
//   answered with a canned response, HEADERS then DATA, pre-encoded once a second (the Date) with
//   its stream id written in. Nothing is decoded: no HPACK, no routing, every request gets the
//   same answer (FILE's bytes when given, else "Hello, World!"); the header block is literals
//   without indexing, so no dynamic table is kept either;
// - flow control only as far as a response needs: the client's connection window (WINDOW_UPDATE
//   on stream 0) is counted and an answer that does not fit waits for more; a stream window
//   (SETTINGS_INITIAL_WINDOW_SIZE) smaller than the body is not handled: the connection is
//   closed, loudly (h2load asks for 2^30 - 1). DATA from the client is given back with
//   WINDOW_UPDATEs for the connection and the stream;
// - every other frame (PING, PRIORITY, RST_STREAM, GOAWAY, stream WINDOW_UPDATEs) is ignored.
// All the frames one read calls for leave in one write (a writev when a large body is shared).
// What it costs per request is what Node, OpenSSL and the kernel cost to move HTTP/2 frames; a
// target below it cannot be met by any program on this runtime.
// Usage: node bench/peers/h2-floor.ts PORT [--tls-cert CERT --tls-key KEY] [--file FILE]

import { Buffer } from 'node:buffer'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, file: { type: 'string' } },
})
const port = Number(positionals[0])
const certFile = values['tls-cert']
const keyFile = values['tls-key']
if (!Number.isInteger(port) || port <= 0 || (certFile === undefined) !== (keyFile === undefined)) {
  throw new Error('usage: h2-floor.ts PORT [--tls-cert CERT --tls-key KEY] [--file FILE]')
}

const PREFACE_BYTES = 24
const HEADER = 9
const DATA = 0x0
const HEADERS = 0x1
const SETTINGS = 0x4
const WINDOW_UPDATE = 0x8
const CONTINUATION = 0x9
const END_STREAM = 0x1
const ACK = 0x1
const END_HEADERS = 0x4
/** The frame size every peer accepts (SETTINGS_MAX_FRAME_SIZE's least value): bodies go out in pieces of this. */
const MAX_FRAME = 16_384
const DEFAULT_WINDOW = 65_535

function frameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out[at] = length >>> 16
  out[at + 1] = (length >>> 8) & 0xff
  out[at + 2] = length & 0xff
  out[at + 3] = type
  out[at + 4] = flags
  out.writeUInt32BE(streamId, at + 5)
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length)
  frameHeader(out, 0, payload.length, type, flags, streamId)
  payload.copy(out, HEADER)
  return out
}

const EMPTY_SETTINGS = frame(SETTINGS, 0, 0, Buffer.alloc(0))
const SETTINGS_ACK = frame(SETTINGS, ACK, 0, Buffer.alloc(0))

const body = values.file === undefined ? Buffer.from('Hello, World!', 'latin1') : readFileSync(values.file)
const contentType = values.file === undefined ? 'text/plain' : 'application/octet-stream'

/**
 * A literal header field without indexing (RFC 7541 §6.2.2) whose name is static-table entry
 * `nameIndex` (≥ 15 here: 0000 1111 then the rest), the value as a plain string of < 127 bytes.
 */
function literal(nameIndex: number, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x0f, nameIndex - 15, value.length]), Buffer.from(value, 'latin1')])
}

/** :status 200 (static entry 8), content-type (31), date (33), content-length (28). */
function headerBlock(date: string): Buffer {
  return Buffer.concat([Buffer.from([0x88]), literal(31, contentType), literal(33, date), literal(28, String(body.length))])
}

/**
 * The canned answer: its HEADERS frame and the headers of its DATA frames in `heads` (stream ids
 * to be written in at `idOffsets`), the body's pieces in `pieces`. A small body is copied into
 * `heads` whole (`inline`): one buffer per answer. A large one is shared: `heads` holds the
 * HEADERS frame and then one 9-byte header per DATA frame, and the write interleaves them.
 */
interface Answer {
  heads: Buffer
  idOffsets: number[]
  inline: boolean
  /** Where the HEADERS frame ends in `heads` (the first DATA header follows). */
  headersEnd: number
  pieces: Buffer[]
}

function buildAnswer(date: string): Answer {
  const block = headerBlock(date)
  const pieces: Buffer[] = []
  for (let at = 0; at < body.length; at += MAX_FRAME) pieces.push(body.subarray(at, Math.min(body.length, at + MAX_FRAME)))
  if (pieces.length === 0) pieces.push(Buffer.alloc(0))
  const inline = body.length <= MAX_FRAME
  const headersEnd = HEADER + block.length
  const heads = Buffer.allocUnsafe(headersEnd + pieces.length * HEADER + (inline ? body.length : 0))
  frameHeader(heads, 0, block.length, HEADERS, END_HEADERS, 0)
  block.copy(heads, HEADER)
  const idOffsets = [5]
  let at = headersEnd
  pieces.forEach((piece, i) => {
    frameHeader(heads, at, piece.length, DATA, i === pieces.length - 1 ? END_STREAM : 0, 0)
    idOffsets.push(at + 5)
    at += HEADER
    if (inline) {
      piece.copy(heads, at)
      at += piece.length
    }
  })
  return { heads, idOffsets, inline, headersEnd, pieces }
}

// The Date of the answer, refreshed once a second as Petrel and nginx do.
let answer = buildAnswer(new Date().toUTCString())
setInterval(() => {
  answer = buildAnswer(new Date().toUTCString())
}, 1000).unref()

/** Appends the answers to `ids` to `out`: inline ones in one buffer, shared bodies as pieces. */
function answersTo(ids: readonly number[], out: Buffer[]): void {
  const { heads, idOffsets } = answer
  if (answer.inline) {
    const all = Buffer.allocUnsafe(heads.length * ids.length)
    for (let i = 0; i < ids.length; i++) {
      const base = i * heads.length
      heads.copy(all, base)
      for (const offset of idOffsets) all.writeUInt32BE(ids[i]!, base + offset)
    }
    out.push(all)
    return
  }
  for (const id of ids) {
    const own = Buffer.allocUnsafe(heads.length)
    heads.copy(own)
    for (const offset of idOffsets) own.writeUInt32BE(id, offset)
    out.push(own.subarray(0, answer.headersEnd + HEADER))
    answer.pieces.forEach((piece, i) => {
      if (i > 0) out.push(own.subarray(answer.headersEnd + i * HEADER, answer.headersEnd + (i + 1) * HEADER))
      out.push(piece)
    })
  }
}

function windowUpdate(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER + 4)
  frameHeader(out, 0, 4, WINDOW_UPDATE, 0, streamId)
  out.writeUInt32BE(increment, HEADER)
  return out
}

function serve(socket: net.Socket): void {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  socket.write(EMPTY_SETTINGS)
  let prefaceLeft = PREFACE_BYTES
  /** The bytes of a frame split across reads. */
  let rest: Buffer | null = null
  /** The client's connection window for our DATA, and the window each new stream starts with. */
  let connectionWindow = DEFAULT_WINDOW
  let streamWindow = DEFAULT_WINDOW
  /** Requests whose answer did not fit the connection window, in order. */
  const waiting: number[] = []
  /** A request (END_STREAM on its HEADERS) whose header block goes on in CONTINUATION frames. */
  let continuing = 0

  socket.on('data', (chunk: Buffer) => {
    let buf = chunk
    if (rest !== null) {
      buf = Buffer.concat([rest, chunk])
      rest = null
    }
    let p = 0
    if (prefaceLeft > 0) {
      p = Math.min(prefaceLeft, buf.length)
      prefaceLeft -= p
    }
    const out: Buffer[] = []
    while (buf.length - p >= HEADER) {
      const length = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!
      if (buf.length - p - HEADER < length) break
      const type = buf[p + 3]!
      const flags = buf[p + 4]!
      const streamId = buf.readUInt32BE(p + 5) & 0x7fffffff
      const at = p + HEADER
      p = at + length
      if (type === HEADERS) {
        if ((flags & END_STREAM) === 0) continue
        if ((flags & END_HEADERS) !== 0) waiting.push(streamId)
        else continuing = streamId
      } else if (type === CONTINUATION) {
        if ((flags & END_HEADERS) !== 0 && continuing === streamId) {
          waiting.push(streamId)
          continuing = 0
        }
      } else if (type === SETTINGS) {
        if ((flags & ACK) !== 0) continue
        for (let q = at; q + 6 <= p; q += 6) {
          // SETTINGS_INITIAL_WINDOW_SIZE (0x4): the window every stream of ours starts with.
          if (buf.readUInt16BE(q) === 0x4) streamWindow = buf.readUInt32BE(q + 2)
        }
        out.push(SETTINGS_ACK)
      } else if (type === WINDOW_UPDATE) {
        if (streamId === 0) connectionWindow += buf.readUInt32BE(at) & 0x7fffffff
      } else if (type === DATA && length > 0) {
        out.push(windowUpdate(0, length), windowUpdate(streamId, length))
      }
    }
    if (p < buf.length) rest = buf.subarray(p)
    if (waiting.length > 0) {
      if (streamWindow < body.length) {
        console.error(`h2-floor: the client's stream window (${streamWindow}) is smaller than the body (${body.length}); this floor cannot split an answer`)
        socket.destroy()
        return
      }
      // As many answers as the connection window takes; the rest wait for a WINDOW_UPDATE.
      const fit = body.length === 0 ? waiting.length : Math.min(waiting.length, Math.floor(connectionWindow / body.length))
      if (fit > 0) {
        answersTo(fit === waiting.length ? waiting : waiting.slice(0, fit), out)
        connectionWindow -= fit * body.length
        waiting.splice(0, fit)
      }
    }
    if (out.length === 1) socket.write(out[0]!)
    else if (out.length > 1) {
      socket.cork()
      for (const piece of out) socket.write(piece)
      socket.uncork()
    }
  })
}

const server =
  certFile === undefined
    ? net.createServer(serve)
    : tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile!), ALPNProtocols: ['h2'] }, serve).on('tlsClientError', () => {})

server.listen(port, '127.0.0.1')
