// One chat room over several processes: `--workers N` (a master's directory and relay) and
// `--redis` (instances sharing a real redis-server, started here). What each client reads.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { ChatCluster } from '../src/apps/chat/cluster.ts'
import { ChatRoom } from '../src/apps/chat/room.ts'
import { RedisHub } from '../src/apps/chat/redis-hub.ts'
import { createClient } from 'redis'
import { socketCount } from './helpers/sockets.ts'
import { connectLines, type LineClient } from './helpers/lines.ts'
import { startRedis } from './helpers/redis.ts'
import net from 'node:net'
import { freePort } from './helpers/tcp.ts'

async function joinAll(port: number, count: number, t: TestContext): Promise<LineClient[]> {
  const clients: LineClient[] = []
  t.after(() => {
    for (const c of clients) c.socket.destroy()
  })
  for (let i = 0; i < count; i++) {
    const client = await connectLines(port)
    clients.push(client)
    await client.until(/^\* welcome, you are guest\d+;/)
  }
  await Promise.all(clients.map((c) => c.drain()))
  return clients
}

async function cluster(t: TestContext, maxUsers = 100): Promise<ChatCluster> {
  const c = new ChatCluster({ workers: 2, settings: { host: '127.0.0.1', port: 0, maxUsers }, log: () => {} })
  await c.start()
  t.after(() => c.stop())
  return c
}

describe('--workers: one room over worker processes', () => {
  test('broadcast, nick clash, /who and /msg reach clients on every worker', async (t) => {
    const room = await cluster(t)
    const baseline = room.pids.map(socketCount)
    // Connect until the kernel has put clients on both workers (SO_REUSEPORT hashes each connection).
    let clients: LineClient[] = []
    for (let n = 4; ; n += 4) {
      clients = await joinAll(room.port, 4, t).then((more) => [...clients, ...more])
      const held = room.pids.map((pid, i) => socketCount(pid) - baseline[i]!)
      if (held.every((h) => h > 0)) break
      assert.ok(n < 40, `all ${n} clients landed on one worker`)
    }
    // The first clients also saw the later ones join.
    await Promise.all(clients.map((c) => c.drain()))
    const [ann, other, ...rest] = clients as [LineClient, LineClient, ...LineClient[]]
    ann.say('/nick ann')
    assert.equal(await ann.line(), '* you are now ann')
    for (const c of [other, ...rest]) assert.match(await c.line(), /^\* guest\d+ is now ann$/)
    other.say('/nick ann')
    assert.equal(await other.line(), '! ann is taken')
    // The master's directory tells nicknames apart without regard to case.
    other.say('/nick ANN')
    assert.equal(await other.line(), '! ANN is taken')
    ann.say('hello, everyone')
    for (const c of [other, ...rest]) assert.equal(await c.line(), 'ann: hello, everyone')
    for (const c of clients) assert.deepEqual(await c.drain(50), [])
    other.say('/who')
    const who = await other.line()
    assert.match(who, new RegExp(`^\\* ${clients.length} here: ann, guest`))
    for (const c of rest) {
      c.say('/msg ann psst')
      assert.match(await ann.line(), /^guest\d+ \(private\): psst$/)
    }
    assert.deepEqual(await other.drain(50), [], 'a private message reaches nobody else')
  })

  test('--max-users counts the whole room; a worker that dies is replaced and its members leave', async (t) => {
    const room = await cluster(t, 6)
    const pids = room.pids
    const baseline = pids.map(socketCount)
    const clients = await joinAll(room.port, 6, t)
    const extra = await connectLines(room.port)
    assert.equal(await extra.line(), '! the room is full (6 users); try again later')
    await new Promise((r) => setTimeout(r, 100))
    // The worker holding the most clients (at least 3 of 6) dies, so the test always has leavers to see.
    const held = pids.map((pid, i) => socketCount(pid) - baseline[i]!)
    const busiest = held.indexOf(Math.max(...held))
    const victim = pids[busiest]!
    const onVictim = held[busiest]!
    process.kill(victim, 'SIGKILL')
    const survivors: LineClient[] = []
    for (const c of clients) {
      const lines = await c.drain(300)
      if (!c.closed) survivors.push(c)
      if (!c.closed) assert.equal(lines.filter((l) => /^\* guest\d+ left$/.test(l)).length, onVictim, lines.join('\n'))
    }
    assert.equal(survivors.length, 6 - onVictim)
    const deadline = Date.now() + 5000
    while (room.pids.length < 2 || room.pids.includes(victim)) {
      assert.ok(Date.now() < deadline, 'a new worker started')
      await new Promise((r) => setTimeout(r, 20))
    }
    // Seats freed by the dead worker can be taken again, whichever worker the newcomer lands on.
    if (onVictim > 0) {
      const newcomer = await connectLines(room.port)
      t.after(() => newcomer.socket.destroy())
      assert.match(await newcomer.line(), /^\* welcome, you are guest\d+;/)
    }
  })
})

describe('--redis: instances share a room through Redis', () => {
  let url = ''
  let stopRedis = async (): Promise<void> => {}
  before(async () => {
    const redis = await startRedis()
    url = redis.url
    stopRedis = redis.stop
  })
  after(() => stopRedis())

  async function instance(t: TestContext, room: string, maxUsers = 100, heartbeatMs?: number): Promise<{ port: number; chat: ChatRoom }> {
    const hub = await RedisHub.connect(url, { room, maxUsers, ...(heartbeatMs === undefined ? {} : { heartbeatMs }) })
    const chat = new ChatRoom({ hub, maxUsers })
    const { port } = await chat.listen('127.0.0.1', 0)
    t.after(() => chat.close())
    return { port, chat }
  }

  test('broadcast, private message, nick clash, /who and --max-users across two instances', async (t) => {
    const room = `t${process.pid}a`
    const [one, two] = [await instance(t, room, 3), await instance(t, room, 3)]
    const [a] = await joinAll(one.port, 1, t)
    const [b, c] = await joinAll(two.port, 2, t)
    assert.match((await a!.drain()).join('\n'), /^\* guest\d+ joined\n\* guest\d+ joined$/)
    const full = await connectLines(one.port)
    assert.equal(await full.line(), '! the room is full (3 users); try again later')
    b!.say('/nick bob')
    assert.equal(await b!.line(), '* you are now bob')
    assert.match(await a!.line(), /^\* guest\d+ is now bob$/)
    a!.say('/nick bob')
    assert.equal(await a!.line(), '! bob is taken')
    a!.say('/nick BoB')
    assert.equal(await a!.line(), '! BoB is taken', 'Redis tells nicknames apart without regard to case')
    a!.say('/nick ann')
    assert.equal(await a!.line(), '* you are now ann')
    assert.match(await b!.line(), /is now ann$/)
    assert.match(await c!.line(), /is now bob$/)
    assert.match(await c!.line(), /is now ann$/)
    a!.say('hi from the first instance')
    assert.equal(await b!.line(), 'ann: hi from the first instance')
    assert.equal(await c!.line(), 'ann: hi from the first instance')
    a!.say('/msg BOB just you')
    assert.equal(await b!.line(), 'ann (private): just you')
    assert.deepEqual(await c!.drain(100), [])
    c!.say('/who')
    assert.match(await c!.line(), /^\* 3 here: ann, bob, guest\d+$/)
    a!.say('/msg nobody hi')
    assert.equal(await a!.line(), '! nobody called nobody is here')
    b!.say('/quit')
    assert.equal(await b!.line(), '* bye')
    assert.equal(await a!.line(), '* bob left')
  })

  test('members of an instance that died without leaving are swept, and the room is told', async (t) => {
    const room = `t${process.pid}b`
    const redis = await createClient({ url }).connect()
    t.after(() => redis.destroy())
    const { port } = await instance(t, room, 100, 50)
    const [a] = await joinAll(port, 1, t)
    await redis.sendCommand(['HSET', `petrel:chat:${room}:nicks`, 'ghost', 'a-node-that-died Ghost'])
    assert.equal(await a!.until(/Ghost/), '* Ghost left')
    a!.say('/who')
    assert.match(await a!.line(), /^\* 1 here: guest\d+$/)
  })

  test('an event of another shape published on the room channel is dropped: nobody gets it, nobody crashes', async (t) => {
    const room = `t${process.pid}c`
    const redis = await createClient({ url }).connect()
    t.after(() => redis.destroy())
    const { port } = await instance(t, room)
    const [a, b] = await joinAll(port, 2, t)
    await a!.drain()
    for (const e of [{ line: 'x', except: 5 }, { line: 'x', to: ['b'] }, { line: 7 }, 'just a string', null]) {
      await redis.sendCommand(['PUBLISH', `petrel:chat:${room}:events`, JSON.stringify({ n: 'someone', e })])
    }
    await redis.sendCommand(['PUBLISH', `petrel:chat:${room}:events`, JSON.stringify({ n: 'someone', e: { line: 'a real one' } })])
    assert.equal(await a!.line(), 'a real one', 'the room still works, and only the well-formed event arrived')
    assert.equal(await b!.line(), 'a real one')
  })

  test('a well-formed event published on the room channel by someone else is cleaned like a typed line (no CR, LF, ESC or C1) and bounded', async (t) => {
    const room = `t${process.pid}d`
    const redis = await createClient({ url }).connect()
    t.after(() => redis.destroy())
    const { port } = await instance(t, room)
    const [a] = await joinAll(port, 1, t)
    await a!.drain()
    const publish = (line: string): Promise<unknown> =>
      redis.sendCommand(['PUBLISH', `petrel:chat:${room}:events`, JSON.stringify({ n: 'someone', e: { line } })])
    await publish(`eve: hi\r\n* admin: forged\x1b[2J\u009b31m`)
    assert.equal(await a!.line(), 'eve: hi* admin: forged[2J31m')
    await publish(`eve: ${'x'.repeat(64 * 1024)}`)
    await publish('after the long one')
    assert.equal(await a!.line(), 'after the long one', 'the over-long event was dropped, and nobody was cut for it')
  })

  test('a node whose link to Redis stalls past the heartbeat TTL (no disconnect) is swept by the others, and claims its members back once Redis answers', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    // A link that holds its bytes for a while (a partition without a reset).
    const sockets: net.Socket[] = []
    const link = net.createServer((c) => {
      const r = net.connect(own.port, '127.0.0.1')
      sockets.push(c, r)
      c.pipe(r).pipe(c)
      c.on('error', () => r.destroy())
      r.on('error', () => c.destroy())
    })
    await new Promise<void>((resolve) => link.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      for (const socket of sockets) socket.destroy()
      link.close()
    })
    const timing = { room: 'stall', heartbeatMs: 300, heartbeatTtlMs: 1200, commandTimeoutMs: 600 }
    const hub = await RedisHub.connect(`redis://127.0.0.1:${(link.address() as net.AddressInfo).port}`, timing)
    t.after(() => hub.close())
    const other = await RedisHub.connect(own.url, timing)
    t.after(() => other.close())
    const nick = (await hub.join())!
    for (const socket of sockets) socket.pause()
    const deadline = Date.now() + 10_000
    while ((await other.who()).includes(nick)) {
      assert.ok(Date.now() < deadline, 'never swept')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    for (const socket of sockets) socket.resume()
    while (!(await other.who()).includes(nick)) {
      assert.ok(Date.now() < deadline + 10_000, `${nick} was not claimed back after the stall`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const guest = (await other.join())!
    assert.equal(await other.rename(guest, nick), false, `${nick} is held again: nobody else takes it`)
  })

  test('a leave lost in an outage (Redis kept its data, the link was cut) is given back on reconnect: the seat and the nickname are free again', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    // A link to Redis that can be cut while Redis itself keeps running with its data.
    const linkPort = await freePort()
    const sockets = new Set<net.Socket>()
    let link: net.Server | null = null
    const up = async (): Promise<void> => {
      link = net.createServer((c) => {
        const r = net.connect(own.port, '127.0.0.1')
        sockets.add(c).add(r)
        c.pipe(r).pipe(c)
        for (const [a, b] of [
          [c, r],
          [r, c],
        ] as const) {
          a.on('error', () => b.destroy())
          a.on('close', () => b.destroy())
        }
      })
      await new Promise<void>((resolve) => link!.listen(linkPort, '127.0.0.1', resolve))
    }
    const down = (): void => {
      link?.close()
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    }
    t.after(down)
    await up()
    const hub = await RedisHub.connect(`redis://127.0.0.1:${linkPort}`, { room: 'ghost', maxUsers: 2, reconnectMs: 50, maxReconnectMs: 200 })
    t.after(() => hub.close())
    const other = await RedisHub.connect(own.url, { room: 'ghost', maxUsers: 2 })
    t.after(() => other.close())
    const nick = (await hub.join())!
    down()
    await new Promise((resolve) => setTimeout(resolve, 300))
    hub.leave(nick)
    await up()
    const deadline = Date.now() + 10_000
    while ((await other.who()).includes(nick)) {
      assert.ok(Date.now() < deadline, `${nick} still holds a seat after the outage`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const first = (await other.join())!
    assert.equal(await other.rename(first, nick), true, 'the nickname is free again')
    assert.notEqual(await other.join(), null, 'both seats of the room are free for this node')
  })

  test('Redis goes away: local clients still talk, directory commands say so; when it is back the node claims its members again', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    const hub = await RedisHub.connect(own.url, { room: 'outage' })
    const chat = new ChatRoom({ hub })
    const { port } = await chat.listen('127.0.0.1', 0)
    t.after(() => chat.close())
    const [a, b] = await joinAll(port, 2, t)
    await own.stop()
    a!.say('/nick ann')
    assert.match(await a!.line(), /^! the room is unavailable \(.*\); try again$/)
    a!.say('still here')
    assert.match(await b!.line(), /^guest\d+: still here$/)
    // Nothing is queued for the other nodes while Redis is down: the sender is told its line stayed here.
    assert.equal(await a!.line(), '! the rest of the room is unreachable: only the people on this node got that line')
    // The same port, an empty Redis: the node reconnects and claims its two members again.
    const again = await startRedis(own.port)
    t.after(() => again.stop())
    const deadline = Date.now() + 10_000
    for (;;) {
      a!.say('/who')
      const line = await a!.line()
      if (/^\* 2 here: guest\d+, guest\d+$/.test(line)) break
      assert.ok(Date.now() < deadline, `not back: ${line}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    a!.say('/nick ann')
    assert.equal(await a!.line(), '* you are now ann')
  })

  test('a Redis that stops answering: a directory command fails after commandTimeoutMs; once it answers again, so does the room', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    const log: string[] = []
    const hub = await RedisHub.connect(own.url, { room: 'silent', commandTimeoutMs: 300, heartbeatMs: 200, log: (line) => log.push(line) })
    const chat = new ChatRoom({ hub })
    const { port } = await chat.listen('127.0.0.1', 0)
    t.after(() => chat.close())
    const [a, b] = await joinAll(port, 2, t)
    await a!.drain()
    const NOTICE = '! the rest of the room is unreachable: only the people on this node got that line'
    // A stopped process keeps its connections open and reads nothing: a network that drops packets.
    process.kill(own.process.pid!, 'SIGSTOP')
    try {
      a!.say('/who')
      assert.match(await a!.line(), /^! the room is unavailable \(.*timed out after 300ms.*\); try again$/)
      for (let i = 0; i < 5; i++) {
        a!.say(`local line ${i}`)
        assert.match(await b!.line(), new RegExp(`^guest\\d+: local line ${i}$`))
      }
      // Once a publish has timed out, the sender learns its lines stay on this node.
      const deadline = Date.now() + 5000
      while (!(await a!.drain(400)).includes(NOTICE)) {
        assert.ok(Date.now() < deadline, 'the sender was never told')
        a!.say('anyone out there?')
      }
      assert.equal(log.filter((line) => line.includes('not logged until a heartbeat')).length, 1, log.join('\n'))
    } finally {
      process.kill(own.process.pid!, 'SIGCONT')
    }
    // The late reply to the command that timed out is not taken for the next command's.
    a!.say('/who')
    assert.match(await a!.until(/^\*/), /^\* 2 here: guest\d+, guest\d+$/)
    const deadline = Date.now() + 5000
    while (!log.some((line) => line.endsWith(': answering again'))) {
      assert.ok(Date.now() < deadline, log.join('\n'))
      await new Promise((r) => setTimeout(r, 50))
    }
    await Promise.all([a!.drain(), b!.drain()])
    a!.say('heard everywhere again')
    assert.match(await b!.line(), /: heard everywhere again$/)
    assert.deepEqual(await a!.drain(), [], 'and no notice')
  })

  test('maxQueuedCommands: past it, a command to a Redis that does not answer fails at once', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    const hub = await RedisHub.connect(own.url, { room: 'full', maxQueuedCommands: 1, commandTimeoutMs: 4000 })
    const chat = new ChatRoom({ hub })
    const { port } = await chat.listen('127.0.0.1', 0)
    t.after(() => chat.close())
    // One join at a time: a join's '* … joined' publish holds the one place until Redis answers it,
    // and a second join meanwhile would find the queue full. A /who that goes through finds it empty.
    const queueEmpty = async (): Promise<void> => {
      for (;;) {
        try {
          await hub.who()
          return
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
    }
    const [a] = await joinAll(port, 1, t)
    await queueEmpty()
    const [b] = await joinAll(port, 1, t)
    await queueEmpty()
    await a!.drain()
    process.kill(own.process.pid!, 'SIGSTOP')
    try {
      // The line's publish takes the one place; /who finds none and is answered before any timeout.
      a!.say('taking the place')
      assert.match(await b!.line(), /: taking the place$/)
      a!.say('/who')
      assert.equal(await a!.line(), '! the room is unavailable (The queue is full); try again')
    } finally {
      process.kill(own.process.pid!, 'SIGCONT')
    }
  })

  test('redis-server killed and restarted mid-conversation: the nodes reconnect, resubscribe and every line arrives; nicknames stay unique without regard to case', async (t) => {
    const first = await startRedis()
    let current = first
    t.after(() => current.stop())
    const room = `t${process.pid}r`
    const nodes: ChatRoom[] = []
    t.after(() => Promise.all(nodes.map((n) => n.close())))
    const ports: number[] = []
    for (let i = 0; i < 2; i++) {
      // A short backoff cap so the test does not wait out the default's 5 s between attempts.
      const hub = await RedisHub.connect(first.url, { room, reconnectMs: 50, maxReconnectMs: 200 })
      const chat = new ChatRoom({ hub })
      nodes.push(chat)
      ports.push((await chat.listen('127.0.0.1', 0)).port)
    }
    const [ann] = await joinAll(ports[0]!, 1, t)
    const [bob, carl] = await joinAll(ports[1]!, 2, t)
    assert.equal((await ann!.drain()).filter((l) => l.endsWith(' joined')).length, 2)
    ann!.say('/nick Ann')
    assert.equal(await ann!.line(), '* you are now Ann')
    bob!.say('/nick bob')
    assert.equal(await bob!.until(/^\* you are/), '* you are now bob')
    await Promise.all([ann, bob, carl].map((c) => c!.drain()))
    ann!.say('before the crash')
    assert.equal(await bob!.line(), 'Ann: before the crash')
    assert.equal(await carl!.line(), 'Ann: before the crash')

    // SIGKILL: no goodbye on any connection, and the new redis-server on the same port is empty.
    first.process.kill('SIGKILL')
    await once(first.process, 'exit')
    current = await startRedis(first.port)

    // Each side speaks until the other hears it: both nodes have reconnected and subscribed again.
    const deadline = Date.now() + 15_000
    for (const [from, to] of [
      [ann!, bob!],
      [bob!, ann!],
    ] as const) {
      for (let probe = 0; ; probe++) {
        from.say(`probe ${probe}`)
        const heard = await to.drain(200)
        if (heard.some((line) => line.endsWith(`: probe ${probe}`))) break
        assert.ok(Date.now() < deadline, 'the nodes did not find the restarted redis-server')
      }
    }
    await Promise.all([ann, bob, carl].map((c) => c!.drain()))

    // Every line arrives, in order, both ways.
    const count = 50
    for (let i = 0; i < count; i++) ann!.say(`from ann ${i}`)
    for (let i = 0; i < count; i++) bob!.say(`from bob ${i}`)
    const expected = (who: string): string[] => Array.from({ length: count }, (_, i) => `${who}: from ${who.toLowerCase()} ${i}`)
    assert.deepEqual(
      (await bob!.drain(300)).filter((l) => l.startsWith('Ann:')),
      expected('Ann'),
    )
    assert.deepEqual(
      (await ann!.drain(300)).filter((l) => l.startsWith('bob:')),
      expected('bob'),
    )
    assert.deepEqual(await carl!.drain(100).then((lines) => lines.length), 2 * count)

    // The empty Redis learned who is in the room (each node claimed its members again), and the
    // scripts run there though it never saw them (EVALSHA, then EVAL on NOSCRIPT).
    carl!.say('/nick ANN')
    assert.equal(await carl!.line(), '! ANN is taken')
    carl!.say('/nick BOB')
    assert.equal(await carl!.line(), '! BOB is taken')
    const [dave] = await joinAll(ports[0]!, 1, t)
    dave!.say('/who')
    assert.match(await dave!.line(), /^\* 4 here: Ann, bob, guest\d+, guest\d+$/)
  })

  test('petrel chat --redis-reconnect-max caps the reconnect backoff: stopped during a long outage, the room exits within about that long', async (t) => {
    const own = await startRedis()
    t.after(() => own.stop())
    const child = spawn(process.execPath, ['bin/petrel.js', 'chat', '--port', '0', '--redis', own.url, '--redis-reconnect-max', '200ms'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let log = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (text: string) => (log += text))
    const deadline = Date.now() + 15_000
    while (!/room open on/.test(log)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, log)
      await new Promise((r) => setTimeout(r, 20))
    }
    await own.stop()
    // With the default cap (5 s) the backoff would now be waiting 3.2 s or 5 s between attempts,
    // and node-redis's wait cannot be cancelled; capped at 200 ms, it never waits longer.
    await new Promise((r) => setTimeout(r, 6_500))
    const stoppedAt = Date.now()
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    assert.equal(code, 0, log)
    assert.ok(Date.now() - stoppedAt < 2_000, `exited ${Date.now() - stoppedAt} ms after SIGTERM`)
    assert.match(log, /connection lost/)
  })

  test('petrel chat --workers 2 --redis: the CLI rooms join an instance started apart; SIGTERM stops every process', async (t) => {
    const room = `t${process.pid}c`
    const { port: apart } = await instance(t, room)
    const child = spawn(process.execPath, ['bin/petrel.js', 'chat', '--port', '0', '--workers', '2', '--redis', url, '--room', room], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let log = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (text: string) => (log += text))
    const deadline = Date.now() + 15_000
    while (!/room open on 127\.0\.0\.1:(\d+) with 2 workers/.test(log)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, log)
      await new Promise((r) => setTimeout(r, 20))
    }
    const port = Number(/room open on 127\.0\.0\.1:(\d+)/.exec(log)![1])
    const workers = [...log.matchAll(/worker \d \(pid (\d+)\)/g)].map((m) => Number(m[1]))
    const [here] = await joinAll(apart, 1, t)
    const [there] = await joinAll(port, 1, t)
    await here!.until(/joined$/)
    there!.say('across the processes')
    assert.match(await here!.line(), /^guest\d+: across the processes$/)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    assert.equal(code, 0)
    assert.match(await here!.until(/left$/), /^\* guest\d+ left$/)
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`)
  })
})
