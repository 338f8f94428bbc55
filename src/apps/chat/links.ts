// How the room reaches one client: a TCP socket (nc, telnet: lines ended by CRLF), or a WebSocket
// (the chat page: one text message per line). The room encodes each line once, as `line\r\n`;
// a WebSocket client gets it as a text frame built once from those bytes and shared by every
// WebSocket reader of the line (a WeakMap from the encoded line to its frame).

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { frame, Opcode } from '../../protocol/websocket/frames.ts'
import type { WebSocket } from '../../server/websocket.ts'

export interface Link {
  /** Lines this turn produced, each encoded `line\r\n` (`bytes` in all), to leave together. */
  write(lines: readonly Buffer[], bytes: number): void
  /** Bytes queued for the client and not yet written. */
  readonly queued: number
  /** Close once `lastLine` (encoded) is out; a client that does not go is cut after `graceMs`. */
  end(lastLine: Buffer | null, graceMs: number): void
  destroy(): void
  /** Stop reading the client until resume() (the room waits for its hub). */
  pause(): void
  resume(): void
}

export class TcpLink implements Link {
  readonly socket: Socket

  constructor(socket: Socket) {
    this.socket = socket
  }

  write(lines: readonly Buffer[], bytes: number): void {
    this.socket.write(lines.length === 1 ? lines[0]! : Buffer.concat(lines, bytes))
  }

  get queued(): number {
    return this.socket.writableLength
  }

  end(lastLine: Buffer | null, graceMs: number): void {
    const socket = this.socket
    if (lastLine === null) socket.end()
    else socket.end(lastLine)
    // Read (and drop) up to the client's FIN, so the socket closes instead of idling half-open;
    // one that never sends it is cut after the grace period.
    socket.resume()
    socket.setTimeout(graceMs, () => socket.destroy())
  }

  destroy(): void {
    this.socket.destroy()
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }
}

/** An encoded line's text frame, made once however many WebSocket readers the line has. */
const frames = new WeakMap<Buffer, Buffer>()

function textFrame(line: Buffer): Buffer {
  let bytes = frames.get(line)
  if (bytes === undefined) {
    // The frame's payload is the line without its CRLF: a message is a line.
    bytes = frame(Opcode.TEXT, line.subarray(0, line.length - 2))
    frames.set(line, bytes)
  }
  return bytes
}

export class WsLink implements Link {
  readonly ws: WebSocket<unknown>

  constructor(ws: WebSocket<unknown>) {
    this.ws = ws
  }

  write(lines: readonly Buffer[]): void {
    const socket = this.ws.socket
    socket.cork()
    for (const line of lines) this.ws.writeFrame(textFrame(line))
    socket.uncork()
  }

  get queued(): number {
    return this.ws.bufferedAmount
  }

  end(lastLine: Buffer | null): void {
    // The close handshake has its own timeout (the route's closeTimeoutMs).
    if (lastLine !== null) this.ws.writeFrame(textFrame(lastLine))
    this.ws.close(1000, '')
  }

  destroy(): void {
    this.ws.end()
  }

  pause(): void {
    this.ws.pause()
  }

  resume(): void {
    this.ws.resume()
  }
}
