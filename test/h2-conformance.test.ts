// HTTP/2 conformance, modelled on h2spec (github.com/summerwind/h2spec, the `http2`, `hpack` and
// `generic` groups): one test per h2spec case, named by its id (`http2/5.1.1/1`, `hpack/6.1/1`,
// `generic/3.2/2`), sending the frames h2spec sends, byte for byte where h2spec writes raw bytes,
// over cleartext TCP with prior knowledge (the preface, then SETTINGS) to createServer({ http2: true }).
//
// What each case accepts is h2spec's (spec/verifier.go):
// - a connection error: GOAWAY with one of the codes, or the connection closed;
// - a stream error: RST_STREAM or GOAWAY with one of the codes, or the connection closed (an
//   RST_STREAM with another code is passed over, as h2spec does);
// - "accepted" cases: the response HEADERS on the stream (or the PING ACK, the SETTINGS ACK, a DATA
//   frame of the length the windows allow);
// - every wait ends after 2 s without a frame (h2spec's --timeout), and a timeout fails.
// The client behaves as h2spec's: its SETTINGS carry INITIAL_WINDOW_SIZE 65535, the handshake waits
// for the server's SETTINGS and the ACK of its own (acknowledging the server's), and DATA received is
// given back with WINDOW_UPDATE once a window reaches 0. Header fields are h2spec's CommonHeaders
// (GET, http, /, 127.0.0.1:port) and DummyHeaders (x-dummyN of 4000 'x', h2spec's --max-header-length).
//
// Where this suite is stricter than h2spec, or departs from it:
// - a GOAWAY with a code other than the ones expected fails at once (h2spec reads on, and then
//   passes on the close that follows it, so a server that names the wrong error passes there);
// - where h2spec only waits for a HEADERS frame on the stream, the response must also decode and
//   say `:status 200` (the request was read as sent);
// - the strict-mode case (h2spec -S) http2/5.4.1/2 is included;
// - http2/3.5/2 (an invalid preface): this port serves HTTP/1.1 too, and the first read decides
//   (bytes that do not begin "PRI" are HTTP/1.1), so h2spec's bytes
//   "INVALID CONNECTION PREFACE" are an HTTP/1.1 request: the case accepts an HTTP/1.1 4xx answer
//   before the close, or GOAWAY PROTOCOL_ERROR; and a second connection sends a preface that
//   begins as HTTP/2's and then goes wrong, which must be a connection error of type PROTOCOL_ERROR.
// - the cases that need GET / to have a body (h2spec measures it first and skips when it is
//   empty) measure it the same way and assert it instead of skipping: GET / is the large response,
//   100,000 bytes, more than one 65,535-byte window (POST / reads its body and answers 200).
//
// Omitted: none of the `http2`, `hpack` or `generic` cases (95 + 8 + 44 = 147 tests below, ids and
// descriptions as h2spec prints them; h2spec's `client` group tests clients, not servers). The case
// h2spec skips unless the server announces SETTINGS_MAX_CONCURRENT_STREAMS (5.1.2/1) asserts that
// it does.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { once } from 'node:events'
import net from 'node:net'
import { createServer, type HttpServer } from '../src/index.ts'
import { Flag, frame, FrameReader, FrameType, H2Error, PREFACE, Setting, settingsFrame } from '../src/protocol/http2/frames.ts'
import { HpackDecoder, HpackEncoder, HpackError } from '../src/protocol/http2/hpack.ts'

/** h2spec's defaults: --timeout 2 (seconds, per read), --max-header-length 4000. */
const TIMEOUT_MS = 2000
const MAX_HEADER_LEN = 4000
const DEFAULT_WINDOW = 65_535
const DEFAULT_FRAME_SIZE = 16_384
const PATH = '/'
/** GET / answers this: more than one initial window, so flow control has work to do. */
const BODY = Buffer.alloc(100_000, 'petrel h2 conformance\n')

let server: HttpServer
let port: number
const errors: Error[] = []
const sockets = new Set<net.Socket>()

before(async () => {
  server = createServer({ http2: true, onError: (err) => errors.push(err) })
  server.get(PATH, (_req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    res.end(BODY)
  })
  server.post(PATH, async (req, res) => {
    let body: Buffer
    try {
      body = await req.body()
    } catch {
      // The stream was reset while its body came (the cases that reset on purpose).
      return
    }
    res.json({ received: body.length })
  })
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port
})

after(async () => {
  for (const socket of sockets) socket.destroy()
  await server.close({ destroy: true })
})

// ---- frames as h2spec writes them (golang.org/x/net/http2's Framer with AllowIllegalWrites) ----

type Fields = Array<[string, string]>

interface Priority {
  dep: number
  exclusive: boolean
  weight: number
}

const raw = (bytes: string): Buffer => Buffer.from(bytes, 'latin1')

function priorityFields(p: Priority): Buffer {
  const out = Buffer.alloc(5)
  out.writeUInt32BE(((p.exclusive ? 0x8000_0000 : 0) | p.dep) >>> 0, 0)
  out[4] = p.weight
  return out
}

/** HEADERS: PADDED when padLength is set, PRIORITY when the priority is not all zero (as the Framer decides). */
function headers(streamId: number, block: Buffer, o: { endStream: boolean; endHeaders: boolean; padLength?: number; priority?: Priority }): Buffer {
  const pad = o.padLength ?? 0
  const prio = o.priority !== undefined && (o.priority.dep !== 0 || o.priority.exclusive || o.priority.weight !== 0) ? o.priority : null
  const flags = (o.endStream ? Flag.END_STREAM : 0) | (o.endHeaders ? Flag.END_HEADERS : 0) | (pad > 0 ? Flag.PADDED : 0) | (prio !== null ? Flag.PRIORITY : 0)
  const parts: Buffer[] = []
  if (pad > 0) parts.push(Buffer.from([pad]))
  if (prio !== null) parts.push(priorityFields(prio))
  parts.push(block, Buffer.alloc(pad))
  return frame(FrameType.HEADERS, flags, streamId, Buffer.concat(parts))
}

const continuation = (streamId: number, endHeaders: boolean, block: Buffer): Buffer =>
  frame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, streamId, block)

const data = (streamId: number, endStream: boolean, payload: string | Buffer): Buffer =>
  frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload)

const dataPadded = (streamId: number, endStream: boolean, payload: string, pad: Buffer): Buffer =>
  frame(
    FrameType.DATA,
    (endStream ? Flag.END_STREAM : 0) | Flag.PADDED,
    streamId,
    Buffer.concat([Buffer.from([pad.length]), Buffer.from(payload, 'latin1'), pad]),
  )

const priority = (streamId: number, p: Priority): Buffer => frame(FrameType.PRIORITY, 0, streamId, priorityFields(p))

function u32(...values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 4)
  values.forEach((v, i) => out.writeUInt32BE(v >>> 0, i * 4))
  return out
}

const rstStream = (streamId: number, code: number): Buffer => frame(FrameType.RST_STREAM, 0, streamId, u32(code))
const windowUpdate = (streamId: number, increment: number): Buffer => frame(FrameType.WINDOW_UPDATE, 0, streamId, u32(increment))
const goaway = (lastStreamId: number, code: number, debug: string): Buffer =>
  frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(lastStreamId, code), Buffer.from(debug, 'latin1')]))
const settings = (...pairs: Array<[number, number]>): Buffer => settingsFrame(pairs)
const settingsAck = (): Buffer => frame(FrameType.SETTINGS, Flag.ACK, 0)

function pingData(text: string): Buffer {
  const out = Buffer.alloc(8)
  out.write(text, 'latin1')
  return out
}
const ping = (ack: boolean, payload: Buffer): Buffer => frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload)
const pushPromise = (streamId: number, promisedId: number, block: Buffer): Buffer =>
  frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, streamId, Buffer.concat([u32(promisedId), block]))

/** h2spec's CommonHeaders for cleartext: GET, http, the path, host:port. */
const commonHeaders = (): Fields => [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', PATH],
  [':authority', `127.0.0.1:${port}`],
]
const postHeaders = (): Fields => [[':method', 'POST'], ...commonHeaders().slice(1)]
/** h2spec's DummyHeaders: x-dummy0… with values of --max-header-length 'x'. */
const dummyHeaders = (n: number): Fields => Array.from({ length: n }, (_, i): [string, string] => [`x-dummy${i}`, 'x'.repeat(MAX_HEADER_LEN)])

// ---- the client ----

interface Frame {
  type: number
  flags: number
  streamId: number
  payload: Buffer
  /** A response head, decoded (HEADERS, with its CONTINUATIONs); null when it did not decode. */
  fields?: string[] | null
}

type Event = { kind: 'frame'; frame: Frame } | { kind: 'closed' } | { kind: 'timeout' } | { kind: 'error'; why: string }

const CODE_NAMES = new Map<number, string>(Object.entries(H2Error).map(([name, code]) => [code, name]))
const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, type]) => [type, name]))
const codeName = (code: number): string => CODE_NAMES.get(code) ?? `0x${code.toString(16)}`
const codeNames = (codes: number[]): string => codes.map(codeName).join(' or ')

function describeFrame(f: Frame): string {
  let detail = `stream ${f.streamId}, flags 0x${f.flags.toString(16)}, length ${f.payload.length}`
  if (f.type === FrameType.GOAWAY && f.payload.length >= 8) {
    detail += `, last ${f.payload.readUInt32BE(0) & 0x7fff_ffff}, ${codeName(f.payload.readUInt32BE(4))}`
    if (f.payload.length > 8) detail += ` "${f.payload.toString('latin1', 8)}"`
  }
  if (f.type === FrameType.RST_STREAM && f.payload.length === 4) detail += `, ${codeName(f.payload.readUInt32BE(0))}`
  if (f.fields != null) detail += `, :status ${statusOf(f)}`
  return `${TYPE_NAMES.get(f.type) ?? `type 0x${f.type.toString(16)}`}(${detail})`
}

function describeEvent(ev: Event): string {
  if (ev.kind === 'frame') return describeFrame(ev.frame)
  if (ev.kind === 'error') return `unreadable (${ev.why})`
  return ev.kind
}

function statusOf(f: Frame): string | undefined {
  const fields = f.fields
  if (fields == null) return undefined
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === ':status') return fields[i + 1]
  return undefined
}

/** One connection as h2spec's spec.Conn: frames in order, each wait bounded by TIMEOUT_MS. */
class Client {
  readonly socket: net.Socket
  readonly encoder = new HpackEncoder()
  readonly serverSettings = new Map<number, number>()
  /** Every byte received (for the invalid-preface case, which may be answered in HTTP/1.1). */
  readonly received: Buffer[] = []
  /** Every frame received, in order. */
  readonly frames: Frame[] = []
  /** Everything received, described, for failure messages. */
  private readonly log: string[] = []
  private readonly queue: Event[] = []
  private wake: (() => void) | null = null
  private gone = false
  /** As h2spec's conn.Closed: after a close, a timeout or unreadable bytes, every wait returns that. */
  private terminal: Event | null = null
  private readonly reader: FrameReader
  private readonly decoder = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 1 << 20 })
  private block: { frame: Frame; parts: Buffer[] } | null = null
  /** h2spec's WindowSize map: what the server may still send, per stream and for the connection (0). */
  private readonly windows = new Map<number, number>([[0, DEFAULT_WINDOW]])

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.reader = new FrameReader(
      {
        frame: (type, flags, streamId, payload, start, end) => {
          this.onFrame({ type, flags, streamId, payload: Buffer.from(payload.subarray(start, end)) })
          return true
        },
        framingError: (_code, why) => this.push({ kind: 'error', why }),
      },
      false,
    )
    // The client announces no SETTINGS_MAX_FRAME_SIZE: the server's frames must fit the default.
    this.reader.maxFrameSize = DEFAULT_FRAME_SIZE
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk)
      this.reader.push(chunk)
    })
    socket.on('error', () => {})
    socket.on('end', () => this.closed())
    socket.on('close', () => this.closed())
  }

  static async connect(): Promise<Client> {
    const socket = net.connect(port, '127.0.0.1')
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    await once(socket, 'connect')
    socket.setNoDelay(true)
    return new Client(socket)
  }

  send(...bufs: Buffer[]): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(Buffer.concat(bufs))
  }

  /** Encode with this connection's HPACK context (h2spec's conn.EncodeHeaders). */
  encode(fields: Fields): Buffer {
    return Buffer.from(this.encoder.encode(fields))
  }

  /** h2spec's Handshake: the preface and SETTINGS (INITIAL_WINDOW_SIZE 65535), then the server's SETTINGS (acknowledged) and the ACK of ours. */
  async handshake(): Promise<void> {
    this.send(PREFACE, settings([Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW]))
    let local = false
    let remote = false
    const deadline = performance.now() + TIMEOUT_MS
    while (!(local && remote)) {
      const ev = await this.take(deadline - performance.now())
      if (ev === null || ev.kind !== 'frame') this.fail(`the handshake did not complete: ${ev === null ? 'timeout' : describeEvent(ev)}`)
      if (ev.frame.type !== FrameType.SETTINGS) continue
      if (ev.frame.flags & Flag.ACK) local = true
      else {
        remote = true
        const p = ev.frame.payload
        for (let i = 0; i + 6 <= p.length; i += 6) this.serverSettings.set(p.readUInt16BE(i), p.readUInt32BE(i + 2))
        this.send(settingsAck())
      }
    }
  }

  /** h2spec's MaxFrameSize: the server's SETTINGS_MAX_FRAME_SIZE, or the default. */
  get maxFrameSize(): number {
    return this.serverSettings.get(Setting.MAX_FRAME_SIZE) ?? DEFAULT_FRAME_SIZE
  }

  /** h2spec's WaitEvent: the next frame, or the close, or a timeout after TIMEOUT_MS of silence. */
  async next(): Promise<Event> {
    if (this.terminal !== null) return this.terminal
    const ev = (await this.take(TIMEOUT_MS)) ?? { kind: 'timeout' as const }
    if (ev.kind !== 'frame') this.terminal = ev
    return ev
  }

  /** Resolves when the socket is closed (or after TIMEOUT_MS): whether it closed. */
  async waitClosed(): Promise<boolean> {
    const deadline = performance.now() + TIMEOUT_MS
    while (!this.gone) {
      const ev = await this.take(deadline - performance.now())
      if (ev === null) return false
    }
    return true
  }

  fail(message: string): never {
    assert.fail(`${message}\n    received: ${this.log.length === 0 ? 'nothing' : this.log.join(', ')}`)
  }

  private async take(ms: number): Promise<Event | null> {
    for (;;) {
      const ev = this.queue.shift()
      if (ev !== undefined) return ev
      if (ms <= 0) return null
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.wake = null
          resolve(false)
        }, ms)
        this.wake = () => {
          clearTimeout(timer)
          this.wake = null
          resolve(true)
        }
      })
      if (!woken) return null
    }
  }

  private push(ev: Event): void {
    this.log.push(describeEvent(ev))
    this.queue.push(ev)
    this.wake?.()
  }

  private closed(): void {
    if (this.gone) return
    this.gone = true
    this.push({ kind: 'closed' })
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.DATA) this.giveBack(f)
    if (f.type === FrameType.HEADERS) {
      let from = 0
      let to = f.payload.length
      if (f.flags & Flag.PADDED) {
        from = 1
        to -= f.payload[0] ?? 0
      }
      if (f.flags & Flag.PRIORITY) from += 5
      const fragment = f.payload.subarray(from, Math.max(from, to))
      if (f.flags & Flag.END_HEADERS) this.decode(f, [fragment])
      else this.block = { frame: f, parts: [fragment] }
    } else if (f.type === FrameType.CONTINUATION && this.block !== null) {
      this.block.parts.push(f.payload)
      if (f.flags & Flag.END_HEADERS) {
        const { frame: head, parts } = this.block
        this.block = null
        this.decode(head, parts)
      }
    }
    this.frames.push(f)
    this.push({ kind: 'frame', frame: f })
  }

  private decode(f: Frame, parts: Buffer[]): void {
    const block = Buffer.concat(parts)
    const fields: string[] = []
    const result = this.decoder.decode(block, 0, block.length, { field: (name, value) => fields.push(name, value) })
    f.fields = result === HpackError.NONE ? fields : null
  }

  /** h2spec's updateWindowSize: a window that reaches 0 is refilled to 65535 with WINDOW_UPDATE. */
  private giveBack(f: Frame): void {
    const length = f.payload.length
    for (const id of [f.streamId, 0]) {
      const left = (this.windows.get(id) ?? DEFAULT_WINDOW) - length
      if (left <= 0) {
        this.send(windowUpdate(id, DEFAULT_WINDOW - left))
        this.windows.set(id, DEFAULT_WINDOW)
      } else this.windows.set(id, left)
    }
  }
}

// ---- h2spec's verifiers (spec/verifier.go) ----

/** A connection error: GOAWAY with one of the codes, or the connection closed. */
async function verifyConnectionError(c: Client, ...codes: number[]): Promise<void> {
  const expected = `GOAWAY (${codeNames(codes)}) or the connection closed`
  for (;;) {
    const ev = await c.next()
    if (ev.kind === 'closed') return
    if (ev.kind !== 'frame') c.fail(`expected ${expected}; got ${describeEvent(ev)}`)
    if (ev.frame.type === FrameType.GOAWAY) {
      if (codes.includes(goawayCode(ev.frame))) return
      c.fail(`expected ${expected}; got ${describeFrame(ev.frame)}`)
    }
  }
}

/** A stream error: RST_STREAM or GOAWAY with one of the codes, or the connection closed. */
async function verifyStreamError(c: Client, ...codes: number[]): Promise<void> {
  const expected = `RST_STREAM or GOAWAY (${codeNames(codes)}) or the connection closed`
  for (;;) {
    const ev = await c.next()
    if (ev.kind === 'closed') return
    if (ev.kind !== 'frame') c.fail(`expected ${expected}; got ${describeEvent(ev)}`)
    if (ev.frame.type === FrameType.RST_STREAM && codes.includes(ev.frame.payload.readUInt32BE(0))) return
    if (ev.frame.type === FrameType.GOAWAY) {
      if (codes.includes(goawayCode(ev.frame))) return
      c.fail(`expected ${expected}; got ${describeFrame(ev.frame)}`)
    }
  }
}

const goawayCode = (f: Frame): number => (f.payload.length >= 8 ? f.payload.readUInt32BE(4) : -1)

/** The connection closed (what comes before it does not matter). */
async function verifyConnectionClose(c: Client): Promise<void> {
  for (;;) {
    const ev = await c.next()
    if (ev.kind === 'closed') return
    if (ev.kind !== 'frame') c.fail(`expected the connection closed; got ${describeEvent(ev)}`)
  }
}

/** The stream ended: DATA or HEADERS with END_STREAM, or RST_STREAM NO_ERROR. */
async function verifyStreamClose(c: Client): Promise<void> {
  for (;;) {
    const ev = await c.next()
    if (ev.kind !== 'frame') c.fail(`expected the stream closed (END_STREAM, or RST_STREAM NO_ERROR); got ${describeEvent(ev)}`)
    const f = ev.frame
    if ((f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & Flag.END_STREAM) return
    if (f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) === H2Error.NO_ERROR) return
  }
}

/** h2spec's WaitEventByType: the first frame of the type (others passed over). */
async function waitFrame(c: Client, type: number): Promise<Frame> {
  for (;;) {
    const ev = await c.next()
    if (ev.kind !== 'frame') c.fail(`expected a ${TYPE_NAMES.get(type)} frame; got ${describeEvent(ev)}`)
    if (ev.frame.type === type) return ev.frame
  }
}

/** The response's HEADERS on the stream; stricter than h2spec, it must decode and say 200. */
async function verifyHeadersFrame(c: Client, streamId: number): Promise<void> {
  const f = await waitFrame(c, FrameType.HEADERS)
  if (f.streamId !== streamId) c.fail(`expected HEADERS on stream ${streamId}; got ${describeFrame(f)}`)
  if (statusOf(f) !== '200')
    c.fail(`expected the response :status 200; got ${f.fields === null ? 'a block that does not decode' : `fields ${JSON.stringify(f.fields)}`}`)
}

async function verifySettingsFrameWithAck(c: Client): Promise<void> {
  const f = await waitFrame(c, FrameType.SETTINGS)
  if (!(f.flags & Flag.ACK)) c.fail(`expected SETTINGS with ACK; got ${describeFrame(f)}`)
}

async function verifyPingFrameWithAck(c: Client, payload: Buffer): Promise<void> {
  const f = await waitFrame(c, FrameType.PING)
  if (!(f.flags & Flag.ACK) || !f.payload.equals(payload))
    c.fail(`expected PING with ACK and ${JSON.stringify(payload.toString('latin1'))}; got ${describeFrame(f)}`)
}

async function verifyPingFrameOrConnectionClose(c: Client, payload: Buffer): Promise<void> {
  for (;;) {
    const ev = await c.next()
    if (ev.kind === 'closed') return
    if (ev.kind !== 'frame') c.fail(`expected PING with ACK, or the connection closed; got ${describeEvent(ev)}`)
    if (ev.frame.type === FrameType.PING && ev.frame.flags & Flag.ACK && ev.frame.payload.equals(payload)) return
  }
}

/** A DATA frame of exactly `length` bytes comes first (the flow-control cases). */
async function verifyDataLength(c: Client, streamId: number, length: number): Promise<void> {
  const f = await waitFrame(c, FrameType.DATA)
  if (f.payload.length !== length || f.streamId !== streamId) c.fail(`expected DATA of ${length} bytes on stream ${streamId}; got ${describeFrame(f)}`)
}

/** h2spec's ServerDataLength: the body of GET / on a connection of its own (its precondition for the flow-control cases). */
async function serverDataLength(): Promise<number> {
  const c: Client = await Client.connect()
  try {
    await c.handshake()
    c.send(headers(1, c.encode(commonHeaders()), { endStream: true, endHeaders: true }))
    let length = 0
    for (;;) {
      const ev = await c.next()
      if (ev.kind !== 'frame') c.fail(`GET ${PATH} did not complete: ${describeEvent(ev)}`)
      const f = ev.frame
      if (f.type === FrameType.DATA) length += f.payload.length
      if ((f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & Flag.END_STREAM) return length
    }
  } finally {
    c.socket.destroy()
  }
}

/** One h2spec case on a connection of its own (not yet handshaken: the case does it, as in h2spec). */
function h2spec(id: string, desc: string, body: (c: Client) => Promise<void>): void {
  test(`${id}: ${desc}`, async () => {
    const c = await Client.connect()
    try {
      await body(c)
    } finally {
      c.socket.destroy()
    }
  })
}

const CANCEL = H2Error.CANCEL
const { PROTOCOL_ERROR, FRAME_SIZE_ERROR, STREAM_CLOSED, COMPRESSION_ERROR, FLOW_CONTROL_ERROR, REFUSED_STREAM } = H2Error
const ZERO8 = Buffer.alloc(8)
const H2SPEC8 = pingData('h2spec')
const PRIORITY_255: Priority = { dep: 0, exclusive: false, weight: 255 }
/** An unknown frame type (0x16) with 8 bytes, on stream 0, as h2spec writes it. */
const UNKNOWN_FRAME = raw('\x00\x00\x08\x16\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00')

/** A request head and the frames after it, for the many cases that open stream 1 first. */
function open(c: Client, fields: Fields, endStream: boolean, endHeaders = true): Buffer {
  return headers(1, c.encode(fields), { endStream, endHeaders })
}

// =====================================================================================
// http2: Hypertext Transfer Protocol Version 2 (HTTP/2)
// =====================================================================================

describe('h2spec http2', { concurrency: true }, () => {
  // ---- 3.5. HTTP/2 Connection Preface ----

  h2spec('http2/3.5/1', 'Sends client connection preface', async (c) => {
    c.send(PREFACE, settings([Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW]))
    const ev = await c.next()
    if (ev.kind !== 'frame' || ev.frame.type !== FrameType.SETTINGS || ev.frame.flags & Flag.ACK)
      c.fail(`expected the server's SETTINGS (flags 0x0) first; got ${describeEvent(ev)}`)
  })

  h2spec('http2/3.5/2', 'Sends invalid connection preface', async (c) => {
    // h2spec's bytes: not "PRI…", so on this shared port an HTTP/1.1 request; either way the connection ends.
    c.send(raw('INVALID CONNECTION PREFACE\r\n\r\n'))
    if (!(await c.waitClosed())) c.fail('expected the connection closed after an invalid preface')
    const text = Buffer.concat(c.received).toString('latin1')
    const http1Refusal = /^HTTP\/1\.1 4\d\d /.test(text)
    const goawayProtocol = c.frames.some((f) => f.type === FrameType.GOAWAY && goawayCode(f) === PROTOCOL_ERROR)
    assert.ok(http1Refusal || goawayProtocol, `expected an HTTP/1.1 4xx or GOAWAY PROTOCOL_ERROR before the close; got ${JSON.stringify(text.slice(0, 80))}`)
    // A preface that starts as HTTP/2's and then goes wrong is HTTP/2's to refuse (§3.4).
    const h2: Client = await Client.connect()
    try {
      h2.send(raw('PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n'))
      await verifyConnectionError(h2, PROTOCOL_ERROR)
    } finally {
      h2.socket.destroy()
    }
  })

  // ---- 4.1. Frame Format ----

  h2spec('http2/4.1/1', 'Sends a frame with unknown type', async (c) => {
    await c.handshake()
    c.send(UNKNOWN_FRAME, ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  h2spec('http2/4.1/2', 'Sends a frame with undefined flag', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x06\x16\x00\x00\x00\x00'), ZERO8)
    await waitFrame(c, FrameType.PING)
  })

  h2spec('http2/4.1/3', 'Sends a frame with reserved field bit', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x06\x16\x80\x00\x00\x00'), ZERO8)
    await waitFrame(c, FrameType.PING)
  })

  // ---- 4.2. Frame Size ----

  h2spec('http2/4.2/1', 'Sends a DATA frame with 2^14 octets in length', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, true, 'x'.repeat(c.maxFrameSize)))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('http2/4.2/2', 'Sends a large size DATA frame that exceeds the SETTINGS_MAX_FRAME_SIZE', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, true, 'x'.repeat(c.maxFrameSize + 1)))
    await verifyStreamError(c, FRAME_SIZE_ERROR)
  })

  h2spec('http2/4.2/3', 'Sends a large size HEADERS frame that exceeds the SETTINGS_MAX_FRAME_SIZE', async (c) => {
    await c.handshake()
    const block = c.encode([...commonHeaders(), ...dummyHeaders(5)])
    assert.ok(block.length > c.maxFrameSize, `the header block (${block.length} bytes) must exceed one frame`)
    c.send(headers(1, block, { endStream: true, endHeaders: true }))
    await verifyConnectionError(c, FRAME_SIZE_ERROR)
  })

  // ---- 4.3. Header Compression and Decompression ----

  h2spec('http2/4.3/1', 'Sends invalid header block fragment', async (c) => {
    await c.handshake()
    // A literal with incremental indexing and no name or value after it.
    c.send(raw('\x00\x00\x01\x01\x05\x00\x00\x00\x01\x40'))
    await verifyConnectionError(c, COMPRESSION_ERROR)
  })

  h2spec('http2/4.3/2', 'Sends a PRIORITY frame while sending the header blocks', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false, false), priority(1, PRIORITY_255), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/4.3/3', 'Sends a HEADERS frame to another stream while sending the header blocks', async (c) => {
    await c.handshake()
    c.send(
      open(c, commonHeaders(), false, false),
      headers(3, c.encode(commonHeaders()), { endStream: true, endHeaders: true }),
      continuation(1, true, c.encode(dummyHeaders(1))),
    )
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 5.1. Stream States ----

  h2spec('http2/5.1/1', 'idle: Sends a DATA frame', async (c) => {
    await c.handshake()
    c.send(data(1, true, 'test'))
    await verifyStreamError(c, PROTOCOL_ERROR, STREAM_CLOSED)
  })

  h2spec('http2/5.1/2', 'idle: Sends a RST_STREAM frame', async (c) => {
    await c.handshake()
    c.send(rstStream(1, CANCEL))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1/3', 'idle: Sends a WINDOW_UPDATE frame', async (c) => {
    await c.handshake()
    c.send(windowUpdate(1, 100))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1/4', 'idle: Sends a CONTINUATION frame', async (c) => {
    await c.handshake()
    c.send(continuation(1, true, c.encode(commonHeaders())))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1/5', 'half closed (remote): Sends a DATA frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), data(1, true, 'test'))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/6', 'half closed (remote): Sends a HEADERS frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), open(c, commonHeaders(), true))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/7', 'half closed (remote): Sends a CONTINUATION frame', async (c) => {
    await c.handshake()
    const block = c.encode(commonHeaders())
    c.send(headers(1, block, { endStream: true, endHeaders: true }), continuation(1, true, block))
    await verifyStreamError(c, STREAM_CLOSED, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1/8', 'closed: Sends a DATA frame after sending RST_STREAM frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), rstStream(1, CANCEL), data(1, true, 'test'))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/9', 'closed: Sends a HEADERS frame after sending RST_STREAM frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), rstStream(1, CANCEL), open(c, commonHeaders(), true))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/10', 'closed: Sends a CONTINUATION frame after sending RST_STREAM frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), rstStream(1, CANCEL), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyStreamError(c, STREAM_CLOSED, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1/11', 'closed: Sends a DATA frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true))
    await verifyStreamClose(c)
    c.send(data(1, true, 'test'))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/12', 'closed: Sends a HEADERS frame', async (c) => {
    await c.handshake()
    const request = open(c, commonHeaders(), true)
    c.send(request)
    await verifyStreamClose(c)
    // h2spec sends the same frame again.
    c.send(request)
    await verifyConnectionError(c, STREAM_CLOSED)
  })

  h2spec('http2/5.1/13', 'closed: Sends a CONTINUATION frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true))
    await verifyStreamClose(c)
    c.send(continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, STREAM_CLOSED, PROTOCOL_ERROR)
  })

  // ---- 5.1.1. Stream Identifiers ----

  h2spec('http2/5.1.1/1', 'Sends even-numbered stream identifier', async (c) => {
    await c.handshake()
    c.send(headers(2, c.encode(commonHeaders()), { endStream: true, endHeaders: true }))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/5.1.1/2', 'Sends stream identifier that is numerically smaller than previous', async (c) => {
    await c.handshake()
    c.send(
      headers(5, c.encode(commonHeaders()), { endStream: true, endHeaders: true }),
      headers(3, c.encode(commonHeaders()), { endStream: true, endHeaders: true }),
    )
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 5.1.2. Stream Concurrency ----

  h2spec('http2/5.1.2/1', 'Sends HEADERS frames that causes their advertised concurrent stream limit to be exceeded', async (c) => {
    await c.handshake()
    const maxStreams = c.serverSettings.get(Setting.MAX_CONCURRENT_STREAMS)
    assert.ok(maxStreams !== undefined, 'the server announces SETTINGS_MAX_CONCURRENT_STREAMS (h2spec skips the case otherwise)')
    // A zero window keeps every response from ending, so each stream stays open.
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 0]))
    const block = c.encode(commonHeaders())
    const frames: Buffer[] = []
    for (let i = 0, id = 1; i <= maxStreams; i++, id += 2) frames.push(headers(id, block, { endStream: true, endHeaders: true }))
    c.send(...frames)
    await verifyStreamError(c, PROTOCOL_ERROR, REFUSED_STREAM)
  })

  // ---- 5.3.1. Stream Dependencies ----

  h2spec('http2/5.3.1/1', 'Sends HEADERS frame that depends on itself', async (c) => {
    await c.handshake()
    c.send(headers(1, c.encode(commonHeaders()), { endStream: true, endHeaders: true, priority: { dep: 1, exclusive: false, weight: 255 } }))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/5.3.1/2', 'Sends PRIORITY frame that depend on itself', async (c) => {
    await c.handshake()
    c.send(priority(1, { dep: 1, exclusive: false, weight: 255 }))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  // ---- 5.4.1. Connection Error Handling ----

  h2spec('http2/5.4.1/1', 'Sends an invalid PING frame for connection close', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x06\x00\x00\x00\x00\x03'), ZERO8)
    await verifyConnectionClose(c)
  })

  h2spec('http2/5.4.1/2', 'Sends an invalid PING frame to receive GOAWAY frame (strict)', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x06\x00\x00\x00\x00\x03'), ZERO8)
    await waitFrame(c, FrameType.GOAWAY)
  })

  // ---- 5.5. Extending HTTP/2 ----

  h2spec('http2/5.5/1', 'Sends an unknown extension frame', async (c) => {
    await c.handshake()
    c.send(UNKNOWN_FRAME, ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  h2spec('http2/5.5/2', 'Sends an unknown extension frame in the middle of a header block', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true, false), UNKNOWN_FRAME)
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 6.1. DATA ----

  h2spec('http2/6.1/1', 'Sends a DATA frame with 0x0 stream identifier', async (c) => {
    await c.handshake()
    c.send(data(0, true, 'test'))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.1/2', 'Sends a DATA frame on the stream that is not in "open" or "half-closed (local)" state', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), true), data(1, true, 'test'))
    await verifyStreamError(c, STREAM_CLOSED)
  })

  h2spec('http2/6.1/3', 'Sends a DATA frame with invalid pad length', async (c) => {
    await c.handshake()
    c.send(open(c, [...postHeaders(), ['content-length', '4']], false))
    // Length 5, PADDED | END_STREAM, a pad length of 6.
    c.send(raw('\x00\x00\x05\x00\x09\x00\x00\x00\x01'), raw('\x06\x54\x65\x73\x74'))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 6.2. HEADERS ----

  h2spec('http2/6.2/1', 'Sends a HEADERS frame without the END_HEADERS flag, and a PRIORITY frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false, false), priority(1, PRIORITY_255), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.2/2', 'Sends a HEADERS frame to another stream while sending a HEADERS frame', async (c) => {
    await c.handshake()
    c.send(
      open(c, commonHeaders(), false, false),
      headers(3, c.encode(commonHeaders()), { endStream: true, endHeaders: true }),
      continuation(1, true, c.encode(dummyHeaders(1))),
    )
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.2/3', 'Sends a HEADERS frame with 0x0 stream identifier', async (c) => {
    await c.handshake()
    c.send(headers(0, c.encode(commonHeaders()), { endStream: true, endHeaders: true }))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.2/4', 'Sends a HEADERS frame with invalid pad length', async (c) => {
    await c.handshake()
    const block = c.encode(commonHeaders())
    // PADDED | END_HEADERS | END_STREAM; the pad length is one more than the frame holds.
    const head = raw('\x00\x00\x00\x01\x0d\x00\x00\x00\x01')
    head[2] = block.length + 1
    c.send(head, Buffer.from([block.length + 2]), block)
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  // ---- 6.3. PRIORITY ----

  h2spec('http2/6.3/1', 'Sends a PRIORITY frame with 0x0 stream identifier', async (c) => {
    await c.handshake()
    c.send(priority(0, PRIORITY_255))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.3/2', 'Sends a PRIORITY frame with a length other than 5 octets', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), raw('\x00\x00\x04\x02\x00\x00\x00\x00\x01'), raw('\x80\x00\x00\x01'))
    await verifyStreamError(c, FRAME_SIZE_ERROR)
  })

  // ---- 6.4. RST_STREAM ----

  h2spec('http2/6.4/1', 'Sends a RST_STREAM frame with 0x0 stream identifier', async (c) => {
    await c.handshake()
    c.send(rstStream(0, CANCEL))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.4/2', 'Sends a RST_STREAM frame on a idle stream', async (c) => {
    await c.handshake()
    c.send(rstStream(1, CANCEL))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.4/3', 'Sends a RST_STREAM frame with a length other than 4 octets', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), raw('\x00\x00\x03\x03\x00\x00\x00\x00\x01'), raw('\x00\x00\x00'))
    await verifyStreamError(c, FRAME_SIZE_ERROR)
  })

  // ---- 6.5. SETTINGS ----

  h2spec('http2/6.5/1', 'Sends a SETTINGS frame with ACK flag and payload', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x01\x04\x01\x00\x00\x00\x00'), raw('\x00'))
    await verifyConnectionError(c, FRAME_SIZE_ERROR)
  })

  h2spec('http2/6.5/2', 'Sends a SETTINGS frame with a stream identifier other than 0x0', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x06\x04\x00\x00\x00\x00\x01'), raw('\x00\x03\x00\x00\x00\x64'))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.5/3', 'Sends a SETTINGS frame with a length other than a multiple of 6 octets', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x03\x04\x00\x00\x00\x00\x00'), raw('\x00\x03\x00'))
    await verifyStreamError(c, PROTOCOL_ERROR, FRAME_SIZE_ERROR)
  })

  // ---- 6.5.2. Defined SETTINGS Parameters ----

  h2spec('http2/6.5.2/1', 'SETTINGS_ENABLE_PUSH (0x2): Sends the value other than 0 or 1', async (c) => {
    await c.handshake()
    c.send(settings([Setting.ENABLE_PUSH, 2]))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.5.2/2', 'SETTINGS_INITIAL_WINDOW_SIZE (0x4): Sends the value above the maximum flow control window size', async (c) => {
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 2_147_483_648]))
    await verifyConnectionError(c, FLOW_CONTROL_ERROR)
  })

  h2spec('http2/6.5.2/3', 'SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value below the initial value', async (c) => {
    await c.handshake()
    c.send(settings([Setting.MAX_FRAME_SIZE, 16_383]))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.5.2/4', 'SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value above the maximum allowed frame size', async (c) => {
    await c.handshake()
    c.send(settings([Setting.MAX_FRAME_SIZE, 16_777_216]))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.5.2/5', 'Sends a SETTINGS frame with unknown identifier', async (c) => {
    await c.handshake()
    c.send(settings([0xff, 1]), ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  // ---- 6.5.3. Settings Synchronization ----

  h2spec('http2/6.5.3/1', 'Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE', async (c) => {
    assert.ok((await serverDataLength()) >= 1, 'GET / has a body')
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 100], [Setting.INITIAL_WINDOW_SIZE, 1]))
    await verifySettingsFrameWithAck(c)
    c.send(open(c, commonHeaders(), true))
    await verifyDataLength(c, 1, 1)
  })

  h2spec('http2/6.5.3/2', 'Sends a SETTINGS frame without ACK flag', async (c) => {
    await c.handshake()
    c.send(settings([Setting.ENABLE_PUSH, 0]))
    await verifySettingsFrameWithAck(c)
  })

  // ---- 6.7. PING ----

  h2spec('http2/6.7/1', 'Sends a PING frame', async (c) => {
    await c.handshake()
    c.send(ping(false, H2SPEC8))
    await verifyPingFrameWithAck(c, H2SPEC8)
  })

  h2spec('http2/6.7/2', 'Sends a PING frame with ACK', async (c) => {
    await c.handshake()
    c.send(ping(true, pingData('invalid')), ping(false, H2SPEC8))
    await verifyPingFrameWithAck(c, H2SPEC8)
  })

  h2spec('http2/6.7/3', 'Sends a PING frame with a stream identifier field value other than 0x0', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x06\x00\x00\x00\x00\x01'), ZERO8)
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.7/4', 'Sends a PING frame with a length field value other than 8', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x06\x06\x00\x00\x00\x00\x00'), raw('\x00\x00\x00\x00\x00\x00'))
    await verifyConnectionError(c, FRAME_SIZE_ERROR)
  })

  // ---- 6.8. GOAWAY ----

  h2spec('http2/6.8/1', 'Sends a GOAWAY frame with a stream identifier other than 0x0', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x08\x07\x00\x00\x00\x00\x01'), ZERO8)
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 6.9. WINDOW_UPDATE ----

  h2spec('http2/6.9/1', 'Sends a WINDOW_UPDATE frame with a flow control window increment of 0', async (c) => {
    await c.handshake()
    c.send(windowUpdate(0, 0))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.9/2', 'Sends a WINDOW_UPDATE frame with a flow control window increment of 0 on a stream', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), windowUpdate(1, 0))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.9/3', 'Sends a WINDOW_UPDATE frame with a length other than 4 octets', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x03\x08\x00\x00\x00\x00\x00'), raw('\x00\x00\x01'))
    await verifyConnectionError(c, FRAME_SIZE_ERROR)
  })

  // ---- 6.9.1. The Flow-Control Window ----

  h2spec('http2/6.9.1/1', 'Sends SETTINGS frame to set the initial window size to 1 and sends HEADERS frame', async (c) => {
    assert.ok((await serverDataLength()) >= 1, 'GET / has a body')
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 1]))
    await verifySettingsFrameWithAck(c)
    c.send(open(c, commonHeaders(), true))
    await verifyDataLength(c, 1, 1)
  })

  h2spec('http2/6.9.1/2', 'Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1', async (c) => {
    await c.handshake()
    c.send(windowUpdate(0, 2_147_483_647), windowUpdate(0, 2_147_483_647))
    const f = await waitFrame(c, FrameType.GOAWAY)
    if (goawayCode(f) !== FLOW_CONTROL_ERROR) c.fail(`expected GOAWAY FLOW_CONTROL_ERROR; got ${describeFrame(f)}`)
  })

  h2spec('http2/6.9.1/3', 'Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), windowUpdate(1, 2_147_483_647), windowUpdate(1, 2_147_483_647))
    const f = await waitFrame(c, FrameType.RST_STREAM)
    if (f.streamId !== 1 || f.payload.readUInt32BE(0) !== FLOW_CONTROL_ERROR)
      c.fail(`expected RST_STREAM FLOW_CONTROL_ERROR on stream 1; got ${describeFrame(f)}`)
  })

  // ---- 6.9.2. Initial Flow-Control Window Size ----

  h2spec('http2/6.9.2/1', 'Changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS frame', async (c) => {
    assert.ok((await serverDataLength()) >= 1, 'GET / has a body')
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 0]))
    await verifySettingsFrameWithAck(c)
    c.send(open(c, commonHeaders(), true), settings([Setting.INITIAL_WINDOW_SIZE, 1]))
    await verifyDataLength(c, 1, 1)
  })

  h2spec('http2/6.9.2/2', 'Sends a SETTINGS frame for window size to be negative', async (c) => {
    assert.ok((await serverDataLength()) >= 5, 'GET / has a body of 5 bytes or more')
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 3]))
    await verifySettingsFrameWithAck(c)
    c.send(open(c, commonHeaders(), true))
    await waitFrame(c, FrameType.DATA)
    // 3 bytes sent of a window now 2: the stream's window is -1; 2 more make it 1.
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 2]))
    await verifySettingsFrameWithAck(c)
    c.send(windowUpdate(1, 2))
    await verifyDataLength(c, 1, 1)
  })

  h2spec('http2/6.9.2/3', 'Sends a SETTINGS_INITIAL_WINDOW_SIZE settings with an exceeded maximum window size value', async (c) => {
    await c.handshake()
    c.send(raw('\x00\x00\x06\x04\x00\x00\x00\x00\x00'), raw('\x00\x04\x80\x00\x00\x00'))
    await verifyConnectionError(c, FLOW_CONTROL_ERROR)
  })

  // ---- 6.10. CONTINUATION ----

  h2spec('http2/6.10/1', 'Sends multiple CONTINUATION frames preceded by a HEADERS frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true, false), continuation(1, false, c.encode(dummyHeaders(1))), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('http2/6.10/2', 'Sends a CONTINUATION frame followed by any frame other than CONTINUATION', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false, false), continuation(1, false, c.encode(dummyHeaders(1))), data(1, true, 'test'))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.10/3', 'Sends a CONTINUATION frame with 0x0 stream identifier', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true, false), continuation(0, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.10/4', 'Sends a CONTINUATION frame preceded by a HEADERS frame with END_HEADERS flag', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.10/5', 'Sends a CONTINUATION frame preceded by a CONTINUATION frame with END_HEADERS flag', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true, false), continuation(1, true, c.encode(dummyHeaders(1))), continuation(1, true, c.encode(dummyHeaders(1))))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/6.10/6', 'Sends a CONTINUATION frame preceded by a DATA frame', async (c) => {
    await c.handshake()
    c.send(
      open(c, postHeaders(), false, false),
      data(1, true, 'test'),
      continuation(1, false, c.encode(dummyHeaders(1))),
      continuation(0, true, c.encode(dummyHeaders(1))),
    )
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })

  // ---- 7. Error Codes ----

  h2spec('http2/7/1', 'Sends a GOAWAY frame with unknown error code', async (c) => {
    await c.handshake()
    c.send(goaway(0, 0xff, ''), ping(false, H2SPEC8))
    await verifyPingFrameOrConnectionClose(c, H2SPEC8)
  })

  h2spec('http2/7/2', 'Sends a RST_STREAM frame with unknown error code', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), rstStream(1, 0xff), ping(false, ZERO8))
    await verifyPingFrameOrConnectionClose(c, ZERO8)
  })

  // ---- 8.1. HTTP Request/Response Exchange ----

  h2spec('http2/8.1/1', 'Sends a second HEADERS frame without the END_STREAM flag', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, false, 'test'), open(c, [['x-test', 'ok']], false))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  // ---- 8.1.2. HTTP Header Fields ----

  h2spec('http2/8.1.2/1', 'Sends a HEADERS frame that contains the header field name in uppercase letters', async (c) => {
    await c.handshake()
    c.send(open(c, [...commonHeaders(), ['X-TEST', 'ok']], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  // ---- 8.1.2.1. Pseudo-Header Fields ----

  h2spec('http2/8.1.2.1/1', 'Sends a HEADERS frame that contains a unknown pseudo-header field', async (c) => {
    await c.handshake()
    c.send(open(c, [...commonHeaders(), [':test', 'ok']], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.1/2', 'Sends a HEADERS frame that contains the pseudo-header field defined for response', async (c) => {
    await c.handshake()
    c.send(open(c, [...commonHeaders(), [':status', '200']], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.1/3', 'Sends a HEADERS frame that contains a pseudo-header field as trailers', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, false, 'test'), open(c, [[':method', 'POST']], false))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec(
    'http2/8.1.2.1/4',
    'Sends a HEADERS frame that contains a pseudo-header field that appears in a header block after a regular header field',
    async (c) => {
      await c.handshake()
      c.send(open(c, [['x-test', 'ok'], ...commonHeaders()], true))
      await verifyStreamError(c, PROTOCOL_ERROR)
    },
  )

  // ---- 8.1.2.2. Connection-Specific Header Fields ----

  h2spec('http2/8.1.2.2/1', 'Sends a HEADERS frame that contains the connection-specific header field', async (c) => {
    await c.handshake()
    c.send(open(c, [...commonHeaders(), ['connection', 'keep-alive']], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.2/2', 'Sends a HEADERS frame that contains the TE header field with any value other than "trailers"', async (c) => {
    await c.handshake()
    c.send(open(c, [...commonHeaders(), ['trailers', 'test'], ['te', 'trailers, deflate']], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  // ---- 8.1.2.3. Request Pseudo-Header Fields ----

  const pseudo = (name: string): [string, string] => commonHeaders().find(([n]) => n === name)!

  h2spec('http2/8.1.2.3/1', 'Sends a HEADERS frame with empty ":path" pseudo-header field', async (c) => {
    await c.handshake()
    c.send(open(c, [pseudo(':method'), pseudo(':scheme'), [':path', ''], pseudo(':authority')], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.3/2', 'Sends a HEADERS frame that omits ":method" pseudo-header field', async (c) => {
    await c.handshake()
    // h2spec drops :method and then slices once more, so :scheme goes too: it sends :path and :authority.
    c.send(open(c, [pseudo(':path'), pseudo(':authority')], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.3/3', 'Sends a HEADERS frame that omits ":scheme" pseudo-header field', async (c) => {
    await c.handshake()
    c.send(open(c, [pseudo(':method'), pseudo(':path'), pseudo(':authority')], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec('http2/8.1.2.3/4', 'Sends a HEADERS frame that omits ":path" pseudo-header field', async (c) => {
    await c.handshake()
    c.send(open(c, [pseudo(':method'), pseudo(':scheme'), pseudo(':authority')], true))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  for (const name of [':method', ':scheme', ':path']) {
    const seq = { ':method': 5, ':scheme': 6, ':path': 7 }[name]
    h2spec(`http2/8.1.2.3/${seq}`, `Sends a HEADERS frame with duplicated "${name}" pseudo-header field`, async (c) => {
      await c.handshake()
      c.send(open(c, [...commonHeaders(), pseudo(name)], true))
      await verifyStreamError(c, PROTOCOL_ERROR)
    })
  }

  // ---- 8.1.2.6. Malformed Requests and Responses ----

  h2spec('http2/8.1.2.6/1', 'Sends a HEADERS frame with the "content-length" header field which does not equal the DATA frame payload length', async (c) => {
    await c.handshake()
    c.send(open(c, [...postHeaders(), ['content-length', '1']], false), data(1, true, 'test'))
    await verifyStreamError(c, PROTOCOL_ERROR)
  })

  h2spec(
    'http2/8.1.2.6/2',
    'Sends a HEADERS frame with the "content-length" header field which does not equal the sum of the multiple DATA frames payload length',
    async (c) => {
      await c.handshake()
      c.send(open(c, [...postHeaders(), ['content-length', '1']], false), data(1, false, 'test'), data(1, true, 'test'))
      await verifyStreamError(c, PROTOCOL_ERROR)
    },
  )

  // ---- 8.2. Server Push ----

  h2spec('http2/8.2/1', 'Sends a PUSH_PROMISE frame', async (c) => {
    await c.handshake()
    c.send(pushPromise(1, 3, c.encode(commonHeaders())))
    await verifyConnectionError(c, PROTOCOL_ERROR)
  })
})

// =====================================================================================
// hpack: HPACK: Header Compression for HTTP/2
// =====================================================================================

/** The common header block with raw HPACK bytes after it (or before, for table size updates). */
function hpackCase(id: string, desc: string, bytes: string, where: 'after' | 'before' = 'after'): void {
  h2spec(id, desc, async (c) => {
    await c.handshake()
    const common = c.encode(commonHeaders())
    const block = where === 'after' ? Buffer.concat([common, raw(bytes)]) : Buffer.concat([raw(bytes), common])
    c.send(headers(1, block, { endStream: true, endHeaders: true }))
    await verifyConnectionError(c, COMPRESSION_ERROR)
  })
}

describe('h2spec hpack', { concurrency: true }, () => {
  hpackCase('hpack/2.3.3/1', 'Sends a indexed header field representation with invalid index', '\xC6')
  hpackCase('hpack/2.3.3/2', 'Sends a literal header field representation with invalid index', '\x7F\x07\x00')
  hpackCase('hpack/4.2/1', 'Sends a dynamic table size update at the end of header block', '\x21')
  hpackCase(
    'hpack/5.2/1',
    'Sends a Huffman-encoded string literal representation with padding longer than 7 bits',
    '\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff',
  )
  hpackCase('hpack/5.2/2', 'Sends a Huffman-encoded string literal representation padded by zero', '\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90')
  hpackCase(
    'hpack/5.2/3',
    'Sends a Huffman-encoded string literal representation containing the EOS symbol',
    '\x00\x85\xf2\xb2\x4a\x84\xff\x87\x49\x51\xff\xff\xff\xfa\x7f',
  )
  hpackCase('hpack/6.1/1', 'Sends a indexed header field representation with index 0', '\x80')

  h2spec('hpack/6.3/1', 'Sends a dynamic table size update larger than the value of SETTINGS_HEADER_TABLE_SIZE', async (c) => {
    await c.handshake()
    // A size update (001xxxxx, 5-bit prefix) one past what the server announced.
    let size = (c.serverSettings.get(Setting.HEADER_TABLE_SIZE) ?? 4096) + 1
    const update: number[] = []
    if (size < 31) update.push(0x20 | size)
    else {
      update.push(0x20 | 31)
      for (size -= 31; size >= 128; size = Math.floor(size / 128)) update.push(0x80 | (size & 0x7f))
      update.push(size)
    }
    c.send(headers(1, Buffer.concat([Buffer.from(update), c.encode(commonHeaders())]), { endStream: true, endHeaders: true }))
    await verifyConnectionError(c, COMPRESSION_ERROR)
  })
})

// =====================================================================================
// generic: Generic tests for HTTP/2 server
// =====================================================================================

/** The common header block with raw HPACK bytes after it; the request must be answered. */
function genericHpackCase(id: string, desc: string, bytes: string, where: 'after' | 'before' = 'after'): void {
  h2spec(id, desc, async (c) => {
    await c.handshake()
    const common = c.encode(commonHeaders())
    const block = where === 'after' ? Buffer.concat([common, raw(bytes)]) : Buffer.concat([raw(bytes), common])
    c.send(headers(1, block, { endStream: true, endHeaders: true }))
    await verifyHeadersFrame(c, 1)
  })
}

describe('h2spec generic', { concurrency: true }, () => {
  // ---- 1. Starting HTTP/2 ----

  h2spec('generic/1/1', 'Sends a client connection preface', async (c) => {
    c.send(PREFACE, settings([Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW]))
    const ev = await c.next()
    if (ev.kind !== 'frame' || ev.frame.type !== FrameType.SETTINGS || ev.frame.flags & Flag.ACK)
      c.fail(`expected the server's SETTINGS (flags 0x0) first; got ${describeEvent(ev)}`)
  })

  // ---- 2. Streams and Multiplexing ----

  h2spec('generic/2/1', 'Sends a PRIORITY frame on idle stream', async (c) => {
    await c.handshake()
    c.send(priority(1, PRIORITY_255), ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  h2spec('generic/2/2', 'Sends a WINDOW_UPDATE frame on half-closed (remote) stream', async (c) => {
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 0]), open(c, commonHeaders(), true), windowUpdate(1, 1))
    await waitFrame(c, FrameType.DATA)
  })

  h2spec('generic/2/3', 'Sends a PRIORITY frame on half-closed (remote) stream', async (c) => {
    await c.handshake()
    c.send(settings([Setting.INITIAL_WINDOW_SIZE, 0]), open(c, commonHeaders(), true), priority(1, PRIORITY_255), windowUpdate(1, 1))
    await waitFrame(c, FrameType.DATA)
  })

  h2spec('generic/2/4', 'Sends a RST_STREAM frame on half-closed (remote) stream', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), rstStream(1, CANCEL), ping(false, ZERO8))
    await verifyPingFrameOrConnectionClose(c, ZERO8)
  })

  h2spec('generic/2/5', 'Sends a PRIORITY frame on closed stream', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true))
    await verifyStreamClose(c)
    c.send(priority(1, PRIORITY_255), ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  // ---- 3.1. DATA ----

  h2spec('generic/3.1/1', 'Sends a DATA frame', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, true, 'test'))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/3.1/2', 'Sends multiple DATA frames', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, false, 'test'), data(1, true, 'test'))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/3.1/3', 'Sends a DATA frame with padding', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), dataPadded(1, true, 'test', Buffer.alloc(5)))
    await verifyHeadersFrame(c, 1)
  })

  // ---- 3.2. HEADERS ----

  h2spec('generic/3.2/1', 'Sends a HEADERS frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/3.2/2', 'Sends a HEADERS frame with padding', async (c) => {
    await c.handshake()
    c.send(headers(1, c.encode(commonHeaders()), { endStream: true, endHeaders: true, padLength: 8 }))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/3.2/3', 'Sends a HEADERS frame with priority', async (c) => {
    await c.handshake()
    c.send(headers(1, c.encode(commonHeaders()), { endStream: true, endHeaders: true, priority: PRIORITY_255 }))
    await verifyHeadersFrame(c, 1)
  })

  // ---- 3.3. PRIORITY ----

  const priorityThenRequest: Array<[number, string, number, Priority]> = [
    [1, 'Sends a PRIORITY frame with priority 1', 1, { dep: 0, exclusive: false, weight: 0 }],
    [2, 'Sends a PRIORITY frame with priority 256', 1, PRIORITY_255],
    [3, 'Sends a PRIORITY frame with stream dependency', 3, { dep: 1, exclusive: false, weight: 0 }],
    [4, 'Sends a PRIORITY frame with exclusive', 1, { dep: 0, exclusive: true, weight: 0 }],
    [5, 'Sends a PRIORITY frame for an idle stream, then send a HEADER frame for a lower stream ID', 3, PRIORITY_255],
  ]
  for (const [seq, desc, on, p] of priorityThenRequest) {
    h2spec(`generic/3.3/${seq}`, desc, async (c) => {
      await c.handshake()
      c.send(priority(on, p), open(c, commonHeaders(), true))
      await verifyHeadersFrame(c, 1)
    })
  }

  // ---- 3.4. RST_STREAM ----

  h2spec('generic/3.4/1', 'Sends a RST_STREAM frame', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), false), rstStream(1, CANCEL), ping(false, ZERO8))
    await verifyPingFrameOrConnectionClose(c, ZERO8)
  })

  // ---- 3.5. SETTINGS ----

  h2spec('generic/3.5/1', 'Sends a SETTINGS frame', async (c) => {
    await c.handshake()
    c.send(
      settings(
        [Setting.HEADER_TABLE_SIZE, 4096],
        [Setting.ENABLE_PUSH, 1],
        [Setting.MAX_CONCURRENT_STREAMS, 100],
        [Setting.INITIAL_WINDOW_SIZE, 65_535],
        [Setting.MAX_FRAME_SIZE, 16_384],
        [Setting.MAX_HEADER_LIST_SIZE, 100],
      ),
    )
    await verifySettingsFrameWithAck(c)
  })

  // ---- 3.7. PING ----

  h2spec('generic/3.7/1', 'Sends a PING frame', async (c) => {
    await c.handshake()
    c.send(ping(false, H2SPEC8))
    await verifyPingFrameWithAck(c, H2SPEC8)
  })

  // ---- 3.8. GOAWAY ----

  h2spec('generic/3.8/1', 'Sends a GOAWAY frame', async (c) => {
    await c.handshake()
    c.send(goaway(0, H2Error.NO_ERROR, 'h2spec'), ping(false, H2SPEC8))
    await verifyPingFrameOrConnectionClose(c, H2SPEC8)
  })

  // ---- 3.9. WINDOW_UPDATE ----

  h2spec('generic/3.9/1', 'Sends a WINDOW_UPDATE frame with stream ID 0', async (c) => {
    await c.handshake()
    c.send(windowUpdate(0, 1), ping(false, ZERO8))
    await verifyPingFrameWithAck(c, ZERO8)
  })

  h2spec('generic/3.9/2', 'Sends a WINDOW_UPDATE frame with stream ID 1', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true), windowUpdate(1, 1))
    await verifyHeadersFrame(c, 1)
  })

  // ---- 3.10. CONTINUATION ----

  h2spec('generic/3.10/1', 'Sends a CONTINUATION frame', async (c) => {
    await c.handshake()
    const block = c.encode(commonHeaders())
    c.send(headers(1, block.subarray(0, 5), { endStream: true, endHeaders: false }), continuation(1, true, block.subarray(5)))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/3.10/2', 'Sends multiple CONTINUATION frames', async (c) => {
    await c.handshake()
    const block = c.encode(commonHeaders())
    assert.ok(block.length > 10)
    c.send(
      headers(1, block.subarray(0, 5), { endStream: true, endHeaders: false }),
      continuation(1, false, block.subarray(5, 10)),
      continuation(1, true, block.subarray(10)),
    )
    await verifyHeadersFrame(c, 1)
  })

  // ---- 4. HTTP Message Exchanges ----

  h2spec('generic/4/1', 'Sends a GET request', async (c) => {
    await c.handshake()
    c.send(open(c, commonHeaders(), true))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/4/2', 'Sends a HEAD request', async (c) => {
    await c.handshake()
    c.send(open(c, [[':method', 'HEAD'], ...commonHeaders().slice(1)], true))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/4/3', 'Sends a POST request', async (c) => {
    await c.handshake()
    c.send(open(c, postHeaders(), false), data(1, true, 'test'))
    await verifyHeadersFrame(c, 1)
  })

  h2spec('generic/4/4', 'Sends a POST request with trailers', async (c) => {
    await c.handshake()
    c.send(open(c, [...postHeaders(), ['trailer', 'x-test']], false), data(1, false, 'test'), open(c, [['x-test', 'ok']], true))
    await verifyHeadersFrame(c, 1)
  })

  // ---- 5. HPACK ----

  // The bytes and the names are h2spec's (some names do not match their bytes: 5/2 and 5/3 are
  // swapped, 5/12 sends 5/13's Huffman bytes); the server must answer each.
  genericHpackCase('generic/5/1', 'Sends a indexed header field representation', '\xba')
  genericHpackCase(
    'generic/5/2',
    'Sends a literal header field with incremental indexing - indexed name',
    '\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4',
  )
  genericHpackCase(
    'generic/5/3',
    'Sends a literal header field with incremental indexing - indexed name (with Huffman coding)',
    '\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63',
  )
  genericHpackCase(
    'generic/5/4',
    'Sends a literal header field with incremental indexing - new name',
    '\x40\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63',
  )
  genericHpackCase(
    'generic/5/5',
    'Sends a literal header field with incremental indexing - new name (with Huffman coding)',
    '\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4',
  )
  genericHpackCase(
    'generic/5/6',
    'Sends a literal header field without indexing - indexed name',
    '\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63',
  )
  genericHpackCase(
    'generic/5/7',
    'Sends a literal header field without indexing - indexed name (with Huffman coding)',
    '\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4',
  )
  genericHpackCase('generic/5/8', 'Sends a literal header field without indexing - new name', '\x00\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63')
  genericHpackCase(
    'generic/5/9',
    'Sends a literal header field without indexing - new name (huffman encoded)',
    '\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4',
  )
  genericHpackCase(
    'generic/5/10',
    'Sends a literal header field never indexed - indexed name',
    '\x10\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63',
  )
  genericHpackCase(
    'generic/5/11',
    'Sends a literal header field never indexed - indexed name (huffman encoded)',
    '\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4',
  )
  genericHpackCase('generic/5/12', 'Sends a literal header field never indexed - new name', '\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4')
  genericHpackCase(
    'generic/5/13',
    'Sends a literal header field never indexed - new name (huffman encoded)',
    '\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4',
  )

  h2spec('generic/5/14', 'Sends a dynamic table size update', async (c) => {
    await c.handshake()
    // The encoder's table shrinks to 128: its next block begins with a size update of 128.
    c.encoder.setCapacity(128)
    const block = c.encode(commonHeaders())
    assert.equal(block[0], 0x3f, 'the block begins with a dynamic table size update')
    c.send(headers(1, block, { endStream: true, endHeaders: true }))
    await verifyHeadersFrame(c, 1)
  })

  // Two size updates, 128 then 4096, before the fields.
  genericHpackCase('generic/5/15', 'Sends multiple dynamic table size update', '\x3f\x61\x3f\xe1\x1f', 'before')
})

test('the server reported no errors through all of the above', () => {
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  )
})
