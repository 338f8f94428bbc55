// `petrel inetd`'s built-in services, with raw TCP and UDP clients: the bytes of each RFC, the
// instances limit and the idle timeout.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { allowList, startInetd, type Inetd } from '../src/apps/inetd/inetd.ts'
import { chargenLine, daytimeText, timeBytes } from '../src/apps/inetd/services.ts'
import { startOnFreeOffset } from './helpers/inetd.ts'

const FIXED_NOW = Date.UTC(2026, 10, 26, 17, 30, 5)
let inetd: Inetd
let offset = 0

before(async () => {
  ;({ inetd, offset } = await startOnFreeOffset({ instances: 2, idleTimeoutMs: 300, now: () => FIXED_NOW }))
})

after(() => inetd.close())

/** Connect, send `input` (then half-close), and read until the server closes or `limit` bytes came. */
async function tcp(port: number, input: Buffer | string | null, limit = Infinity): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  let length = 0
  const done = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= limit) {
        socket.destroy()
        resolve()
      }
    })
    socket.on('close', () => resolve())
    socket.on('error', () => resolve())
  })
  if (input !== null) socket.end(input)
  await done
  return Buffer.concat(chunks)
}

async function udp(port: number, datagram: Buffer | string, expectAnswer = true): Promise<Buffer | null> {
  const socket = dgram.createSocket('udp4')
  try {
    socket.send(datagram, port, '127.0.0.1')
    const answer = new Promise<Buffer>((resolve) => socket.once('message', (message: Buffer) => resolve(message)))
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), expectAnswer ? 2000 : 200))
    return await Promise.race([answer, timeout])
  } finally {
    socket.close()
  }
}

describe('TCP', () => {
  test('echo (RFC 862) sends back every byte, a large input included', async () => {
    const input = Buffer.alloc(1_000_000, 'abcdefgh')
    assert.ok((await tcp(offset + 7, input)).equals(input))
  })

  test('discard (RFC 863) answers nothing', async () => {
    assert.equal((await tcp(offset + 9, 'thrown away\n')).length, 0)
  })

  test('chargen (RFC 864) streams the rotating 72-character lines', async () => {
    const received = await tcp(offset + 19, null, 74 * 200)
    assert.ok(received.length >= 74 * 200)
    for (let n = 0; n < 200; n++) assert.ok(received.subarray(n * 74, n * 74 + 74).equals(chargenLine(n)), `line ${n}`)
    assert.equal(chargenLine(0).toString('latin1'), ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_\`abcdefg\r\n`)
    assert.equal(chargenLine(95).toString(), chargenLine(0).toString(), 'a period of 95 lines')
  })

  test('daytime (RFC 867) sends the date as text and closes', async () => {
    assert.equal((await tcp(offset + 13, null)).toString(), 'Thursday, November 26, 2026 17:30:05-UTC\r\n')
    assert.equal(daytimeText(FIXED_NOW), 'Thursday, November 26, 2026 17:30:05-UTC\r\n')
  })

  test('time (RFC 868) sends seconds since 1900 as 32 bits big-endian and closes', async () => {
    const bytes = await tcp(offset + 37, null)
    assert.equal(bytes.length, 4)
    assert.equal(bytes.readUInt32BE(), FIXED_NOW / 1000 + 2_208_988_800)
    assert.ok(timeBytes(FIXED_NOW).equals(bytes))
  })
})

describe('UDP on the same ports', () => {
  test('echo returns the datagram', async () => {
    assert.equal((await udp(offset + 7, 'ping'))?.toString(), 'ping')
  })
  test('discard answers nothing', async () => {
    assert.equal(await udp(offset + 9, 'x', false), null)
  })
  test('chargen answers a line of the stream', async () => {
    assert.ok((await udp(offset + 19, ''))?.equals(chargenLine(0)))
  })
  test('daytime and time answer as on TCP', async () => {
    assert.equal((await udp(offset + 13, ''))?.toString(), daytimeText(FIXED_NOW))
    assert.ok((await udp(offset + 37, ''))?.equals(timeBytes(FIXED_NOW)))
  })
})

describe('limits', () => {
  test('instances: a connection beyond the limit is closed at once; the others keep working', async () => {
    const held = await Promise.all(
      [0, 1].map(async () => {
        const socket = net.connect(offset + 9, '127.0.0.1')
        await once(socket, 'connect')
        return socket
      }),
    )
    await new Promise((r) => setTimeout(r, 50))
    const refused = net.connect(offset + 9, '127.0.0.1')
    refused.on('error', () => {})
    await once(refused, 'close')
    // A different service has its own count.
    assert.equal((await tcp(offset + 7, 'still here')).toString(), 'still here')
    for (const socket of held) socket.destroy()
  })

  test('only_from: a client outside the list is refused on TCP and ignored on UDP', async () => {
    const { inetd: fenced, offset: fencedOffset } = await startOnFreeOffset({ services: ['echo'], onlyFrom: ['10.0.0.0/8', '::1'] })
    try {
      assert.equal((await tcp(fencedOffset + 7, 'let me in')).length, 0)
      assert.equal(await udp(fencedOffset + 7, 'ping', false), null)
    } finally {
      await fenced.close()
    }
    const open = await startInetd({ portOffset: fencedOffset, services: ['echo'], onlyFrom: ['127.0.0.0/8'] })
    try {
      assert.equal((await tcp(fencedOffset + 7, 'let me in')).toString(), 'let me in')
    } finally {
      await open.close()
    }
    assert.throws(() => allowList(['10.0.0.0/33']), /"10\.0\.0\.0\/33" is not an address or CIDR block/)
  })

  test('a TCP connection idle past the timeout is closed; activity keeps it open', async () => {
    const socket = net.connect(offset + 7, '127.0.0.1')
    await once(socket, 'connect')
    socket.on('data', () => {})
    const opened = performance.now()
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150))
      socket.write('keep me\n')
    }
    assert.equal(socket.destroyed, false, 'open after 600 ms of activity every 150 ms')
    await once(socket, 'close')
    const lifetime = performance.now() - opened
    assert.ok(lifetime >= 850 && lifetime < 2000, `closed ${Math.round(lifetime)} ms after opening`)
  })
})
