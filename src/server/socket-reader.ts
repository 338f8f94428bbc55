// Reading a socket without the Readable stream's buffering and events.
//
// net.Socket hands every read to its own `push(chunk)` — the Readable implementer's contract —
// and the Readable then buffers the chunk, tracks flowing state and emits 'data'. Measured on
// this project's hardware (bare servers, interleaved runs), that costs about 0.6 µs per read,
// close to Petrel's whole parse-route-respond path. Overriding `push` on the socket instance
// delivers each chunk straight to the connection. The chunk is the one Node would have given
// to a 'data' listener, a stable view of exactly the bytes read; end of stream (`push(null)`)
// still goes to the Readable, so 'end', 'error' and 'close' behave as before.
//
// Pausing uses the same contract: `push` returning false makes Node stop reading the handle
// (at most one more chunk arrives, and the connection keeps it), and `_read()` starts it again.
//
// An earlier attempt intercepted the TCP handle's `onread` and corrupted large bodies: its
// ArrayBuffer is a shared slab whose offset and length only Node's internal state knows. This
// seam is the documented one, and it is still limited to the Node majors it was verified on.
// `PETREL_READ_PATH=stream` forces plain 'data' events (the test suite runs both).

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'

const VERIFIED_MAJORS = new Set([24, 25, 26])
const forcedStream = process.env.PETREL_READ_PATH === 'stream'
const majorVersion = Number(process.versions.node.split('.')[0])

/** Pause and resume reading of a socket whose chunks go straight to a callback. */
export interface SocketReader {
  pause(): void
  resume(): void
  /** Give the socket back to plain Readable behaviour ('data' events), paused. */
  release(): void
}

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean

/**
 * Deliver each read of `socket` to `onBytes`, or return null when that is not possible here
 * (the caller then listens for 'data').
 */
export function readDirectly(socket: Socket, onBytes: (chunk: Buffer) => void): SocketReader | null {
  const readable = socket as unknown as { push: Push; _read: (size: number) => void }
  if (forcedStream || !VERIFIED_MAJORS.has(majorVersion) || typeof readable.push !== 'function' || typeof readable._read !== 'function') return null
  const readablePush = readable.push
  let paused = false
  readable.push = function push(this: Socket, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (!Buffer.isBuffer(chunk)) return readablePush.call(this, chunk, encoding)
    onBytes(chunk)
    return !paused
  }
  // Flowing mode without a 'data' listener, so that the end of the stream is emitted as 'end'.
  socket.resume()
  return {
    pause() {
      paused = true
    },
    resume() {
      if (!paused) return
      paused = false
      if (!socket.destroyed) readable._read(0)
    },
    release() {
      // The Readable's own push again, written over the instance's (a delete would turn every
      // handed-over socket — each WebSocket, each cleartext HTTP/2 connection — into a slow
      // dictionary-mode object, 1.6 KB larger).
      readable.push = readablePush
      socket.pause()
      // The Readable still counts the last read as under way (its push never saw it end), so its
      // resume() would not read again: start the handle here; chunks wait in the Readable's buffer.
      if (paused && !socket.destroyed) {
        paused = false
        readable._read(0)
      }
    },
  }
}

/** Reasons to stop reading the socket; reading resumes when none is left. */
export const Pause = {
  /** A pipelined request waits for the response before it. */
  PIPELINE: 1,
  /** The socket's write buffer is over limits.writeHighWaterMark: the client is behind. */
  WRITE: 2,
  /** A request body stream's consumer is behind. */
  BODY: 4,
} as const
export type Pause = (typeof Pause)[keyof typeof Pause]

/**
 * A connection's reading of its socket — straight from push() when possible, else 'data' events —
 * stopped while any Pause reason holds: each reason is a bit, so a reason that ends does not
 * resume reading that another still holds back.
 */
export class ReadGate {
  private readonly socket: Socket
  private readonly onBytes: (chunk: Buffer) => void
  /** Null: the socket is read through 'data' events. */
  private readonly reader: SocketReader | null
  private reasons = 0

  constructor(socket: Socket, onBytes: (chunk: Buffer) => void) {
    this.socket = socket
    this.onBytes = onBytes
    this.reader = readDirectly(socket, onBytes)
    if (this.reader === null) socket.on('data', onBytes)
  }

  pausedFor(reason: Pause): boolean {
    return (this.reasons & reason) !== 0
  }

  pause(reason: Pause): void {
    if (this.reasons === 0) this.stop()
    this.reasons |= reason
  }

  /** `reason` ends; reading starts again when it was the last one, unless the socket is no longer `open`. */
  unpause(reason: Pause, open: boolean): void {
    if ((this.reasons & reason) === 0) return
    this.reasons &= ~reason
    if (this.reasons === 0 && open) this.start()
  }

  /** Drop every reason and read. */
  resumeAll(): void {
    this.reasons = 0
    this.start()
  }

  /** Stop handing chunks over: the socket goes back to plain Readable behaviour (see SocketReader.release()). */
  release(): void {
    if (this.reader !== null) this.reader.release()
    else this.socket.off('data', this.onBytes)
  }

  private stop(): void {
    if (this.reader !== null) this.reader.pause()
    else this.socket.pause()
  }

  private start(): void {
    if (this.reader !== null) this.reader.resume()
    else this.socket.resume()
  }
}
