// A raw HTTP/2 client for tests, over cleartext with prior knowledge: it sends what a test
// writes (frames from src/protocol/http2/frames.ts, requests with its own HPACK encoder), keeps
// every frame the server sends in order with header blocks decoded, acknowledges the server's
// SETTINGS, and waits for what a test expects.

import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import net from 'node:net'
import { Flag, frame, FrameReader, FrameType, headersFrames, PREFACE, settingsFrame } from '../../src/protocol/http2/frames.ts'
import { HpackDecoder, HpackEncoder } from '../../src/protocol/http2/hpack.ts'

export interface Got {
  type: number
  flags: number
  streamId: number
  payload: Buffer
  fields?: Array<[string, string]>
}

/** A raw HTTP/2 client: frames in order, header blocks decoded, the server's SETTINGS acknowledged. */
export class H2Client {
  readonly socket: net.Socket
  readonly frames: Got[] = []
  closedAt = 0
  readonly openedAt = performance.now()
  private readonly encoder = new HpackEncoder()
  private readonly decoder = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 1 << 20 })
  private readonly reader: FrameReader
  private waiters: Array<() => void> = []

  constructor(port: number, settings: Array<[number, number]> = []) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('error', () => {})
    this.reader = new FrameReader(
      {
        frame: (type, flags, streamId, payload, start, end) => {
          const got: Got = { type, flags, streamId, payload: Buffer.from(payload.subarray(start, end)) }
          if (type === FrameType.HEADERS) {
            const fields: Array<[string, string]> = []
            this.decoder.decode(got.payload, 0, got.payload.length, { field: (n, v) => fields.push([n, v]) })
            got.fields = fields
          }
          if (type === FrameType.SETTINGS && !(flags & Flag.ACK)) this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0))
          this.frames.push(got)
          return true
        },
        framingError: () => {},
      },
      false,
    )
    this.socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk)
      this.wake()
    })
    this.socket.on('close', () => {
      this.closedAt = performance.now()
      this.wake()
    })
    this.socket.write(Buffer.concat([PREFACE, settingsFrame(settings)]))
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  request(streamId: number, method: string, path: string, endStream: boolean): void {
    const block = this.encoder.encode([
      [':method', method],
      [':scheme', 'http'],
      [':path', path],
      [':authority', 'localhost'],
    ])
    this.socket.write(headersFrames(streamId, block, endStream, 16_384))
  }

  /** Raw bytes (frames) as they are; false when the socket is behind. */
  send(...bytes: Buffer[]): boolean {
    return this.socket.write(bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes))
  }

  /** A header block from this client's HPACK encoder (its dynamic table stays in step with what it sends). */
  encode(fields: Array<[string, string]>): Buffer {
    return this.encoder.encode(fields)
  }

  data(streamId: number, text: string, endStream: boolean): void {
    this.socket.write(frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, Buffer.from(text)))
  }

  /** Wait until `pred` holds over the frames (or the socket closed and it still does not: fail). */
  async until(pred: (frames: Got[]) => boolean, what: string, ms = 3000): Promise<void> {
    const deadline = performance.now() + ms
    while (!pred(this.frames)) {
      if (this.closedAt > 0) assert.fail(`closed before ${what}; frames: ${this.describe()}`)
      const left = deadline - performance.now()
      if (left <= 0) assert.fail(`no ${what} within ${ms} ms; frames: ${this.describe()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  async closed(ms = 3000): Promise<number> {
    const deadline = performance.now() + ms
    while (this.closedAt === 0) {
      if (performance.now() > deadline) assert.fail(`not closed within ${ms} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.closedAt
  }

  on(streamId: number): Got[] {
    return this.frames.filter((f) => f.streamId === streamId)
  }

  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.streamId}/${f.flags}`).join(' ')
  }
}

export const status = (frames: Got[]): string | undefined => frames.find((f) => f.fields !== undefined)?.fields?.find(([n]) => n === ':status')?.[1]
export const body = (frames: Got[]): string => Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString('latin1')
export const ended = (frames: Got[]): boolean =>
  frames.some((f) => (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && (f.flags & Flag.END_STREAM) !== 0)
export const reset = (frames: Got[]): number | undefined => frames.find((f) => f.type === FrameType.RST_STREAM)?.payload.readUInt32BE(0)
