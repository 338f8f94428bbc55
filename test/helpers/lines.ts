// A client of a line protocol (the chat room) over raw TCP: lines as the server sent them,
// CRLF removed, awaited one at a time with a deadline.

import net from 'node:net'
import { once } from 'node:events'

export class LineClient {
  readonly socket: net.Socket
  private buffered = ''
  private lines: string[] = []
  private waiters: Array<() => void> = []
  closed = false

  constructor(socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (text: string) => {
      this.buffered += text
      let lf: number
      while ((lf = this.buffered.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, lf))
        this.buffered = this.buffered.slice(lf + 2)
      }
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  async line(): Promise<string> {
    const deadline = Date.now() + 5000
    while (this.lines.length === 0) {
      if (this.closed || Date.now() > deadline) throw new Error(`no line (closed: ${this.closed})`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
    return this.lines.shift()!
  }

  /** Lines until one matches `pattern` (skipping the others); returns the match. */
  async until(pattern: RegExp): Promise<string> {
    for (;;) {
      const line = await this.line()
      if (pattern.test(line)) return line
    }
  }

  /** Every line that arrives until none has for `quietMs`. */
  async drain(quietMs = 150): Promise<string[]> {
    const seen: string[] = []
    for (;;) {
      if (this.lines.length > 0) {
        seen.push(...this.lines.splice(0))
        continue
      }
      const before = seen.length
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, quietMs)
      })
      if (this.lines.length === 0 && seen.length === before) return seen
    }
  }

  say(text: string): void {
    this.socket.write(`${text}\n`)
  }
}

/** Connect to 127.0.0.1:`port`. */
export async function connectLines(port: number): Promise<LineClient> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  return new LineClient(socket)
}
