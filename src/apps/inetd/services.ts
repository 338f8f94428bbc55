// The small services every inetd carries (RFC 862, 863, 864, 867, 868), on TCP and on UDP.
// Each is a pure answer to a connection or a datagram; the super-server (inetd.ts) binds them.

import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'

export const SERVICE_NAMES = ['echo', 'discard', 'chargen', 'daytime', 'time'] as const
export type ServiceName = (typeof SERVICE_NAMES)[number]

/** The standard port of each service. */
export const STANDARD_PORTS: Record<ServiceName, number> = { echo: 7, discard: 9, chargen: 19, daytime: 13, time: 37 }

/** Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (Unix's). */
const EPOCH_1900_OFFSET = 2_208_988_800

/** RFC 868: the time as 32 bits, seconds since 1900, big-endian. The field wraps in 2036, as the RFC's does. */
export function timeBytes(nowMs: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE((Math.floor(nowMs / 1000) + EPOCH_1900_OFFSET) % 2 ** 32)
  return bytes
}

/** RFC 867 leaves the format free; this is the one most daytime servers send. */
export function daytimeText(nowMs: number): string {
  const d = new Date(nowMs)
  const weekday = d.toLocaleString('en-US', { weekday: 'long', timeZone: 'UTC' })
  const month = d.toLocaleString('en-US', { month: 'long', timeZone: 'UTC' })
  const time = d.toISOString().slice(11, 19)
  return `${weekday}, ${month} ${d.getUTCDate()}, ${d.getUTCFullYear()} ${time}-UTC\r\n`
}

/** The printing characters, ' ' to '~', as BSD inetd's ring (isprint()); RFC 864's sample starts one later. */
const CHARGEN_CHARS = Buffer.from(Array.from({ length: 95 }, (_, i) => 32 + i))
const CHARGEN_LINE = 72

/** Chargen line `n` (from 0): 72 characters starting one further along the ring each line, then CRLF. */
export function chargenLine(n: number): Buffer {
  const line = Buffer.alloc(CHARGEN_LINE + 2)
  const start = n % CHARGEN_CHARS.length
  for (let i = 0; i < CHARGEN_LINE; i++) line[i] = CHARGEN_CHARS[(start + i) % CHARGEN_CHARS.length]!
  line[CHARGEN_LINE] = 0x0d
  line[CHARGEN_LINE + 1] = 0x0a
  return line
}

/** One full period of the chargen stream (95 lines): written over and over with backpressure. */
const CHARGEN_PERIOD = Buffer.concat(Array.from({ length: CHARGEN_CHARS.length }, (_, n) => chargenLine(n)))

/** RFC 864 over UDP: "a random number (between 0 and 512) of characters". */
export const CHARGEN_DATAGRAM_MAX_BYTES = 512
/**
 * What chargen answers a datagram with by default: one line. A datagram can carry no bytes at all,
 * so whatever chargen sends is all gain to someone who forges the source address to aim the
 * answers at a victim; one line is the least that still shows the stream.
 */
export const CHARGEN_DATAGRAM_BYTES = CHARGEN_LINE + 2

/** The first `size` characters of the stream (at most 512, as RFC 864 says): a datagram's answer. */
export function chargenDatagram(size: number): Buffer {
  return CHARGEN_PERIOD.subarray(0, Math.min(size, CHARGEN_DATAGRAM_MAX_BYTES))
}

/** Serve one TCP connection. `now` is injectable for tests. */
export function serveTcp(name: ServiceName, socket: Socket, now: () => number = Date.now): void {
  switch (name) {
    case 'echo':
      // pipe() pauses reading while the client does not read what it sent: memory stays bounded.
      socket.pipe(socket)
      return
    case 'discard':
      socket.resume()
      return
    case 'chargen': {
      socket.resume()
      const fill = (): void => {
        while (!socket.destroyed && socket.write(CHARGEN_PERIOD)) {
          // Keep the socket's buffer just full: write until it says stop, then wait for drain.
        }
      }
      socket.on('drain', fill)
      fill()
      return
    }
    case 'daytime':
      socket.resume()
      socket.end(daytimeText(now()))
      return
    case 'time':
      socket.resume()
      socket.end(timeBytes(now()))
  }
}

/**
 * The answer to one UDP datagram, or null for none. Its size is bounded: echo's is the datagram
 * (never more than came in), chargen's `chargenBytes`, daytime's and time's a few bytes.
 */
export function answerUdp(
  name: ServiceName,
  datagram: Buffer,
  now: () => number = Date.now,
  chargenBytes: number = CHARGEN_DATAGRAM_BYTES,
): Buffer | string | null {
  switch (name) {
    case 'echo':
      return datagram
    case 'discard':
      return null
    case 'chargen':
      // The RFC: a random number of characters; a stable length lets clients check it.
      return chargenDatagram(chargenBytes)
    case 'daytime':
      return daytimeText(now())
    case 'time':
      return timeBytes(now())
  }
}
