// `petrel chat`'s room over raw TCP: what each client reads, line by line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { ChatRoom, type ChatOptions } from '../src/apps/chat/room.ts'
import { LineClient } from './helpers/lines.ts'

async function room(t: TestContext, options: ChatOptions = {}) {
  const chat = new ChatRoom(options)
  const { port } = await chat.listen('127.0.0.1', 0)
  const clients: LineClient[] = []
  t.after(async () => {
    for (const c of clients) c.socket.destroy()
    await chat.close()
  })
  const join = async (): Promise<LineClient> => {
    const socket = net.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    const client = new LineClient(socket)
    clients.push(client)
    return client
  }
  return { chat, join }
}

/** guest1 and guest2 in a room, past their welcome and join lines. */
async function joinTwo(t: TestContext): Promise<[LineClient, LineClient]> {
  const { join } = await room(t)
  const a = await join()
  await a.line()
  const b = await join()
  await b.line()
  await a.line()
  return [a, b]
}

test('join notices, broadcast to everyone else, /who, /nick and a clash, /msg, /quit', async (t) => {
  const { join } = await room(t)
  const a = await join()
  assert.match(await a.line(), /^\* welcome, you are guest1; commands: /)
  const b = await join()
  assert.match(await b.line(), /^\* welcome, you are guest2;/)
  assert.equal(await a.line(), '* guest2 joined')
  a.say('/nick ann')
  assert.equal(await a.line(), '* you are now ann')
  assert.equal(await b.line(), '* guest1 is now ann')
  b.say('/nick ann')
  assert.equal(await b.line(), '! ann is taken')
  b.say('/nick bob')
  assert.equal(await b.line(), '* you are now bob')
  assert.equal(await a.line(), '* guest2 is now bob')
  a.say('hello, room\r')
  assert.equal(await b.line(), 'ann: hello, room')
  b.say('/who')
  assert.equal(await b.line(), '* 2 here: ann, bob')
  b.say('/msg ann just you')
  assert.equal(await a.line(), 'bob (private): just you')
  b.say('/msg carol hi')
  assert.equal(await b.line(), '! nobody called carol is here')
  b.say('/dance')
  assert.match(await b.line(), /^! unknown command \/dance; commands: /)
  b.say('/quit')
  assert.equal(await b.line(), '* bye')
  assert.equal(await a.line(), '* bob left')
})

test("terminal controls are removed from relayed lines (TAB stays), so nobody forges lines on another's screen", async (t) => {
  const [a, b] = await joinTwo(t)
  // CR rewinds the reader's line, ESC sequences erase or recolour it, BEL rings; C1 CSI and NUL too.
  a.socket.write('evil\r* guest2 left\x1b[2K\x07\x00 tab\there \u009b31m\x7f!\r\n')
  // The reader's client splits on CRLF only: any other control would still be in the line.
  const line = await b.line()
  assert.equal(line, 'guest1: evil* guest2 left[2K tab\there 31m!')
  a.say('/msg guest2 \x1b]0;owned\x07private')
  assert.equal(await b.line(), 'guest1 (private): ]0;ownedprivate')
  a.say('\x1b\x07')
  assert.deepEqual(await b.drain(100), [], 'a line of controls only is not sent')
})

test('nicknames are unique without regard to case; a holder may change its own spelling', async (t) => {
  const [a, b] = await joinTwo(t)
  a.say('/nick bob')
  assert.equal(await a.line(), '* you are now bob')
  assert.equal(await b.line(), '* guest1 is now bob')
  b.say('/nick BOB')
  assert.equal(await b.line(), '! BOB is taken')
  b.say('/nick Bob')
  assert.equal(await b.line(), '! Bob is taken')
  a.say('/nick Bob')
  assert.equal(await a.line(), '* you are now Bob')
  assert.equal(await b.line(), '* bob is now Bob')
  b.say('/msg BOB hi')
  assert.equal(await a.line(), 'guest2 (private): hi')
  a.say('/nick GUEST2')
  assert.equal(await a.line(), '! GUEST2 is taken')
  b.say('/who')
  assert.equal(await b.line(), '* 2 here: Bob, guest2')
})

test('a line over the limit gets an error line and is not sent; the next line is', async (t) => {
  const { join } = await room(t, { maxLineBytes: 50 })
  const a = await join()
  await a.line()
  const b = await join()
  await b.line()
  await a.line()
  a.socket.write('x'.repeat(200))
  a.socket.write('y'.repeat(200) + '\nshort\n')
  assert.equal(await a.line(), '! line too long (over 50 bytes); not sent')
  assert.equal(await b.line(), 'guest1: short')
})

test('a full room refuses politely', async (t) => {
  const { join } = await room(t, { maxUsers: 1 })
  const a = await join()
  await a.line()
  const b = await join()
  assert.equal(await b.line(), '! the room is full (1 users); try again later')
})

test('a client that stops reading is cut off; the others go on', async (t) => {
  const { chat, join } = await room(t, { maxOutgoingBytes: 64 * 1024 })
  const talker = await join()
  await talker.line()
  const listener = await join()
  await listener.line()
  await talker.line()
  const sleeper = await join()
  sleeper.socket.pause()
  await talker.line()
  await listener.line()
  const text = 'z'.repeat(900)
  // Kernel buffers on both sides take a few MB first; then the server-side queue grows past the limit.
  for (let i = 0; i < 40_000 && chat.users === 3; i++) {
    talker.say(text)
    await new Promise((r) => setImmediate(r))
  }
  assert.equal(chat.users, 2, 'the sleeper was disconnected')
  let line = await listener.line()
  while (line.startsWith('guest1: ')) line = await listener.line()
  assert.match(line, /^\* guest3 was disconnected: not reading/)
})

test('petrel chat connect relays stdin to the room and the room to stdout', async (t) => {
  const { join, chat } = await room(t)
  const watcher = await join()
  await watcher.line()
  const port = (chat.server.address() as net.AddressInfo).port
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['bin/petrel.js', 'chat', 'connect', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c))
  assert.equal(await watcher.line(), '* guest2 joined')
  child.stdin.write('/nick cli\nfrom the terminal\n')
  assert.equal(await watcher.line(), '* guest2 is now cli')
  assert.equal(await watcher.line(), 'cli: from the terminal')
  child.stdin.end('/quit\n')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
  assert.match(out, /^\* welcome, you are guest2;[^\n]*\r\n\* you are now cli\r\n\* bye\r\n$/)
})

test('a client turned away that never closes does not hold up close()', async () => {
  const chat = new ChatRoom({ maxUsers: 1 })
  const { port } = await chat.listen('127.0.0.1', 0)
  const first = net.connect(port, '127.0.0.1')
  first.on('error', () => {})
  await once(first, 'data')
  // allowHalfOpen: this client reads the refusal but never sends its FIN.
  const stubborn = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  stubborn.on('error', () => {})
  await once(stubborn, 'data')
  const started = Date.now()
  await chat.close()
  assert.ok(Date.now() - started < 1000, `close() took ${Date.now() - started} ms`)
  first.destroy()
  stubborn.destroy()
})
