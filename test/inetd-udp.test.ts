// `petrel inetd`'s UDP services against forged and hostile datagrams: no loop between services
// (a datagram from a port of this server's UDP services, or from a port below 1024, is dropped),
// no crash on a forged source port 0, answers per client address limited, drops logged in a
// bounded way. The forged datagrams come from a raw socket (python3, as root); the unprivileged
// tests use what any user can do: a client bound on a loopback address at a service's port.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { chargenDatagram, chargenLine } from '../src/apps/inetd/services.ts'
import { parseInetdConfig } from '../src/apps/inetd/config.ts'
import { spawnInetd, startOnFreeOffset } from './helpers/inetd.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const SPOOF = fileURLToPath(new URL('./helpers/udp-spoof.py', import.meta.url))
const NOT_ROOT = process.getuid?.() !== 0 && 'raw sockets and ports below 1024 need root'
const ECHO = 7
const CHARGEN = 19
const DAYTIME = 13

/** A UDP socket bound where asked, keeping every datagram it receives. */
class Client {
  readonly socket: dgram.Socket
  readonly received: Buffer[] = []

  private constructor(socket: dgram.Socket) {
    this.socket = socket
    socket.on('message', (message: Buffer) => this.received.push(message))
  }

  static async bind(address = '127.0.0.1', port = 0): Promise<Client> {
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, address, () => resolve())
    })
    return new Client(socket)
  }

  send(port: number, data: string | Buffer): void {
    this.socket.send(data, port, '127.0.0.1')
  }

  /** Send and wait for the next datagram (a server that died or dropped it fails the test, not hangs it). */
  async ask(port: number, data: string | Buffer, timeoutMs = 5000): Promise<Buffer> {
    const signal = AbortSignal.timeout(timeoutMs)
    const answer = once(this.socket, 'message', { signal })
    this.send(port, data)
    try {
      return (await answer)[0] as Buffer
    } catch {
      throw new Error(`no answer from port ${port} within ${timeoutMs} ms`)
    }
  }

  close(): void {
    this.socket.close()
  }
}

let probes = 0

/**
 * Two round trips to a service (echo, daytime…), each from a loopback address of its own (so a
 * rate limit on the service does not stop them). The service reads its datagrams in order, so
 * once these are answered, every datagram sent to it before has been dealt with, and an answer
 * to one of them would already be in its client's socket: a "no answer" seen after a probe is
 * final, without waiting on a timer.
 */
async function probe(port: number): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const client = await Client.bind(`127.0.1.${(probes++ % 250) + 1}`)
    try {
      await client.ask(port, 'probe')
    } finally {
      client.close()
    }
  }
}

/** Sends a datagram with a forged source from a raw socket; returns the datagrams seen for each watched port during the window. */
async function forge(from: [string, number], to: [string, number], payload: string, windowMs: number, watch: number[]): Promise<Record<string, number>> {
  requireDebianPackage('python3')
  const args = [SPOOF, from[0], String(from[1]), to[0], String(to[1]), Buffer.from(payload).toString('hex'), String(windowMs), ...watch.map(String)]
  // Asynchronous: the server under test runs in this process and must go on serving meanwhile.
  const { stdout } = await promisify(execFile)('python3', args, { encoding: 'utf8' })
  return (JSON.parse(stdout) as { seen: Record<string, number> }).seen
}

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

test("a forged datagram from echo's own port, or from chargen's, to echo starts no loop", { skip: NOT_ROOT }, async () => {
  const lines: string[] = []
  const { inetd, offset } = await startOnFreeOffset({ services: ['echo', 'chargen'], log: (line) => lines.push(line) })
  try {
    const [echo, chargen] = [offset + ECHO, offset + CHARGEN]
    for (const from of [echo, chargen]) {
      const seen = await forge(['127.0.0.1', from], ['127.0.0.1', echo], 'loop?', 500, [echo, chargen])
      assert.deepEqual(seen, { [echo]: 1, [chargen]: 0 }, `from port ${from}: the forged datagram, and no answer`)
    }
    assert.equal(
      lines[0],
      `udp echo from 127.0.0.1:${echo}: dropped, its source port is that of echo on this server (an answer would start a loop); further drops are summed up every 10 s`,
    )
    await probe(echo)
  } finally {
    await inetd.close()
  }
})

test('petrel inetd outlives a forged source port 0 and does not answer a port below 1024', { skip: NOT_ROOT }, async () => {
  const { child, offset, log } = await spawnOnFreeOffset(['--services', 'echo,chargen'])
  try {
    const [echo, chargen] = [offset + ECHO, offset + CHARGEN]
    // Node's dgram refuses to send to port 0 by throwing: answering this datagram killed the process.
    assert.deepEqual(await forge(['127.0.0.1', 0], ['127.0.0.1', echo], 'port zero', 200, [echo]), { [echo]: 1 })
    // The system's echo (port 7) and our chargen would answer each other for ever.
    assert.deepEqual(await forge(['127.0.0.1', 7], ['127.0.0.1', chargen], '', 300, [7, chargen]), { 7: 0, [chargen]: 1 })
    const answered = await probe(echo).then(
      () => true,
      () => false,
    )
    assert.equal(child.exitCode, null, `petrel inetd died:\n${log()}`)
    assert.ok(answered, 'echo still answers')
    assert.match(
      log(),
      new RegExp(`udp echo from 127\\.0\\.0\\.1:0: dropped, its source port is below 1024, a system service's \\(an answer could start a loop\\)`),
    )
  } finally {
    child.kill('SIGTERM')
    if (child.exitCode === null) await once(child, 'exit')
  }
})

test('a client on a loopback address at the port of another UDP service gets no answer; others do', async () => {
  const lines: string[] = []
  const { inetd, offset } = await startOnFreeOffset({ services: ['echo', 'chargen', 'daytime'], log: (line) => lines.push(line) })
  // chargen listens on 127.0.0.1 only, so its port is free on 127.0.0.2: any user can bind there.
  const posing = await Client.bind('127.0.0.2', offset + CHARGEN)
  try {
    posing.send(offset + ECHO, 'who answers?')
    posing.send(offset + DAYTIME, '')
    await probe(offset + ECHO)
    await probe(offset + DAYTIME)
    assert.deepEqual(posing.received, [])
    assert.equal(
      lines[0],
      `udp echo from 127.0.0.2:${offset + CHARGEN}: dropped, its source port is that of chargen on this server (an answer would start a loop); further drops are summed up every 10 s`,
    )
  } finally {
    posing.close()
    await inetd.close()
  }
})

test('a client bound to a port below 1024 gets no answer', { skip: NOT_ROOT }, async () => {
  const { inetd, offset } = await startOnFreeOffset({ services: ['echo', 'daytime'] })
  let low: Client | null = null
  for (let port = 1023; low === null && port > 900; port--) low = await Client.bind('127.0.0.1', port).catch(() => null)
  try {
    assert.ok(low !== null, 'no free port below 1024')
    low.send(offset + DAYTIME, '')
    low.send(offset + ECHO, 'x')
    await probe(offset + DAYTIME)
    await probe(offset + ECHO)
    assert.deepEqual(low.received, [])
  } finally {
    low?.close()
    await inetd.close()
  }
})

test('udpRate: each client address gets that many answers a second; the datagrams beyond are dropped', async () => {
  let nowMs = 0
  const lines: string[] = []
  const { inetd, offset } = await startOnFreeOffset({ services: ['echo'], udpRate: 5, clock: () => nowMs, log: (line) => lines.push(line) })
  const [flooder, other] = [await Client.bind('127.0.0.1'), await Client.bind('127.0.0.2')]
  try {
    const echo = offset + ECHO
    for (let i = 0; i < 12; i++) flooder.send(echo, `ping ${i}`)
    // Another address has its own allowance.
    assert.equal((await other.ask(echo, 'mine')).toString(), 'mine')
    await probe(echo)
    assert.deepEqual(flooder.received.map(String), ['ping 0', 'ping 1', 'ping 2', 'ping 3', 'ping 4'])
    assert.equal(
      lines[0],
      `udp echo from 127.0.0.1:${flooder.socket.address().port}: dropped, over udp_rate (5 answers a second to one address); further drops are summed up every 10 s`,
    )
    nowMs += 1000
    assert.equal((await flooder.ask(echo, 'a second later')).toString(), 'a second later')
  } finally {
    flooder.close()
    other.close()
    await inetd.close()
  }
})

test('udp_rate from the configuration file; a reload changes it for the running service', async () => {
  let nowMs = 0
  const servicesAt = (rate: number) => (offset: number) =>
    parseInetdConfig(`service echo\n{\n  protocol = udp\n  udp_rate = ${rate}\n}\n`, 'inetd.conf', {
      bind: '127.0.0.1',
      portOffset: offset,
      instances: 8,
      onlyFrom: null,
      idleTimeoutMs: 60_000,
      udpRate: 20,
    })
  const { inetd, offset } = await startOnFreeOffset({ clock: () => nowMs }, servicesAt(1))
  const client = await Client.bind()
  try {
    const echo = offset + ECHO
    for (const text of ['a', 'b', 'c']) client.send(echo, text)
    await probe(echo)
    assert.deepEqual(client.received.map(String), ['a'])
    assert.deepEqual(await inetd.apply(servicesAt(3)(offset)), { added: 0, kept: 1, removed: 0 })
    // Same window: one answer was counted, the new limit allows two more.
    for (const text of ['d', 'e', 'f']) client.send(echo, text)
    await probe(echo)
    assert.deepEqual(client.received.map(String), ['a', 'd', 'e'])
  } finally {
    client.close()
    await inetd.close()
  }
})

test('a flood of dropped datagrams is logged as one line, then one summary per interval', async () => {
  let nowMs = 0
  const lines: string[] = []
  const { inetd, offset } = await startOnFreeOffset({
    services: ['echo', 'chargen'],
    dropLogIntervalMs: 50,
    clock: () => nowMs,
    log: (line) => lines.push(line),
  })
  const posing = await Client.bind('127.0.0.2', offset + CHARGEN)
  try {
    const echo = offset + ECHO
    // (100 datagrams fit the socket's receive buffer while this process, the server's too, is busy sending.)
    for (let i = 0; i < 100; i++) posing.send(echo, 'flood')
    await probe(echo)
    assert.equal(lines.length, 1, lines.join('\n'))
    nowMs += 50
    await waitFor(() => lines.length === 2)
    assert.equal(lines[1], 'udp: in the last 0.05 s, dropped 99 datagrams: 99 from our own service ports (loops)')
    // An interval without drops ends the spell: the next drop is logged at once again. The
    // scheduler's Node timer for the next interval was set (50 ms) before the summary was logged,
    // so it fires before this test's longer one, which was set after.
    nowMs += 50
    await new Promise((r) => setTimeout(r, 120))
    posing.send(echo, 'again')
    await probe(echo)
    assert.equal(lines.length, 3)
    assert.match(lines[2]!, /^udp echo from 127\.0\.0\.2:\d+: dropped, its source port is that of chargen/)
  } finally {
    posing.close()
    await inetd.close()
  }
})

test('chargen answers a datagram, empty or not, with udpChargenBytes characters (default one line)', async () => {
  for (const [bytes, expected] of [
    [undefined, chargenLine(0)],
    [16, chargenDatagram(16)],
    [0, Buffer.alloc(0)],
  ] as const) {
    const { inetd, offset } = await startOnFreeOffset({ services: ['echo', 'chargen'], udpChargenBytes: bytes })
    const client = await Client.bind()
    try {
      assert.deepEqual(await client.ask(offset + CHARGEN, ''), expected)
      assert.deepEqual(await client.ask(offset + CHARGEN, 'x'.repeat(1000)), expected)
    } finally {
      client.close()
      await inetd.close()
    }
  }
})

/** `petrel inetd` on a free port offset, ready. */
async function spawnOnFreeOffset(args: string[]): Promise<ReturnType<typeof spawnInetd> & { offset: number }> {
  for (let attempt = 0; ; attempt++) {
    // Below the ephemeral range (32768 and up): a client's port elsewhere on the machine cannot take it.
    const offset = 10_000 + Math.floor(Math.random() * 20_000)
    const { child, log } = spawnInetd(['--port-offset', String(offset), ...args])
    await waitFor(() => log().includes('ready') || child.exitCode !== null, 10_000)
    if (child.exitCode === null) return { child, log, offset }
    if (attempt > 10) throw new Error(`petrel inetd did not start: ${log()}`)
  }
}
