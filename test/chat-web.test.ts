// The chat room for browsers (`petrel chat --http-port`, apps/chat/web.ts): Chromium on the chat
// page and an nc-style TCP client in one room, with the same commands; a WebSocket client that
// never reads is cut by the room's slow-reader rule, as a TCP one is; with 2 workers, and with 2
// instances over a real redis-server, a line from a browser-side client reaches every other member
// exactly once.

import { test, describe, before, after } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import WsClient from 'ws'
import type { Browser } from 'playwright-core'
import { ChatCluster } from '../src/apps/chat/cluster.ts'
import { ChatRoom } from '../src/apps/chat/room.ts'
import { RedisHub } from '../src/apps/chat/redis-hub.ts'
import { ChatWeb } from '../src/apps/chat/web.ts'
import { launchChromium } from './helpers/chromium.ts'
import { connectLines, type LineClient } from './helpers/lines.ts'
import { startRedis } from './helpers/redis.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

/** A WebSocket member of the room: its lines as they come. */
class WsMember {
  readonly ws: WsClient
  readonly lines: string[] = []
  private waiters: Array<() => void> = []

  constructor(url: string) {
    this.ws = new WsClient(url)
    this.ws.on('message', (data) => {
      this.lines.push(String(data))
      for (const w of this.waiters.splice(0)) w()
    })
  }

  /** Wait for a line matching `pattern` (taking the lines before it); fails after `ms`. */
  async until(pattern: RegExp, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms
    for (;;) {
      const at = this.lines.findIndex((l) => pattern.test(l))
      if (at >= 0) return this.lines.splice(0, at + 1).at(-1)!
      if (Date.now() > deadline) assert.fail(`no line like ${pattern} within ${ms} ms; got ${JSON.stringify(this.lines)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }
}

async function singleRoom(t: TestContext, maxOutgoingBytes?: number): Promise<{ tcp: number; http: number }> {
  const room = new ChatRoom({ maxOutgoingBytes })
  const web = new ChatWeb(room, maxOutgoingBytes ?? 256 * 1024)
  const tcp = (await room.listen('127.0.0.1', 0)).port
  const http = (await web.listen('127.0.0.1', 0, false)).port
  t.after(async () => {
    await web.close()
    await room.close()
  })
  return { tcp, http }
}

describe('the chat page', () => {
  let browser: Browser | undefined
  before(async () => {
    browser = await launchChromium()
  })
  after(() => browser?.close())

  test('Chromium on the page and an nc client are in one room: lines both ways, /nick and /who', async (t) => {
    const { tcp, http } = await singleRoom(t)
    const page = await browser!.newPage()
    t.after(() => page.close())
    await page.goto(`http://127.0.0.1:${http}/`)
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'connected')
    await page.waitForFunction(() => /welcome, you are guest\d+/.test(document.getElementById('log')!.textContent ?? ''))
    const nc: LineClient = await connectLines(tcp)
    t.after(() => nc.socket.destroy())
    await nc.until(/^\* welcome, you are guest\d+;/)
    const say = async (line: string) => {
      await page.fill('#line', line)
      await page.press('#line', 'Enter')
    }
    await say('/nick browser')
    await page.waitForFunction(() => (document.getElementById('log')!.textContent ?? '').includes('* you are now browser'))
    assert.match(await nc.until(/is now browser$/), /^\* guest\d+ is now browser$/)
    await say('hello from Chromium')
    assert.equal(await nc.until(/hello/), 'browser: hello from Chromium')
    nc.say('hello from nc')
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => /^guest\d+: hello from nc$/.test(li.textContent ?? '')))
    await say('/who')
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => /^\* 2 here: browser, guest\d+$/.test(li.textContent ?? '')))
    const notices = await page.$$eval('#log li.notice', (items) => items.length)
    assert.ok(notices >= 3, 'the room’s own lines are shown as notices')
  })
})

test('a WebSocket member that never reads is cut by the room’s slow-reader rule; the others are told', async (t) => {
  const { http } = await singleRoom(t, 4096)
  const reader = new WsMember(`ws://127.0.0.1:${http}/ws`)
  t.after(() => reader.ws.terminate())
  await reader.until(/^\* welcome/)
  // A raw WebSocket that does its handshake, then reads nothing.
  const mute = net.connect(http, '127.0.0.1')
  mute.on('error', () => {})
  t.after(() => mute.destroy())
  mute.write(
    'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  )
  mute.pause()
  const joined = await reader.until(/^\* guest\d+ joined$/)
  const muteNick = /^\* (guest\d+) joined$/.exec(joined)![1]!
  // The reader talks until the mute one's queue is over the room's limit (the socket's buffers fill first).
  const line = 'x'.repeat(1000)
  for (let i = 0; i < 2000 && !reader.lines.some((l) => l.includes('not reading')); i++) {
    reader.ws.send(line)
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  assert.match(await reader.until(/not reading/, 5000), new RegExp(`^\\* ${muteNick} was disconnected: not reading \\(over 4096 bytes waiting\\)$`))
})

test('petrel chat --http-port --workers 2: members on the page side and on TCP, on either worker, each get a line once', async () => {
  const child = spawn(process.execPath, [BIN, 'chat', '--port', '0', '--http-port', '0', '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (d) => (log += d))
  try {
    const deadline = Date.now() + 15_000
    while (!/chat page on/.test(log)) {
      assert.ok(Date.now() < deadline, `not started: ${log}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const tcp = Number(/room open on [^:]+:(\d+)/.exec(log)![1])
    const http = Number(/chat page on http:\/\/[^:]+:(\d+)/.exec(log)![1])
    const members = await Promise.all(Array.from({ length: 6 }, () => new WsMember(`ws://127.0.0.1:${http}/ws`)))
    for (const m of members) await m.until(/^\* welcome/)
    const nc = await connectLines(tcp)
    await nc.until(/^\* welcome/)
    // Every member has seen the later ones join; then one line from the first.
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const m of members) m.lines.length = 0
    members[0]!.ws.send('one line for all')
    for (const m of members.slice(1)) assert.match(await m.until(/one line for all/), /^guest\d+: one line for all$/)
    assert.match(await nc.until(/one line for all/), /^guest\d+: one line for all$/)
    await new Promise((resolve) => setTimeout(resolve, 200))
    for (const m of members) assert.equal(m.lines.filter((l) => l.includes('one line for all')).length, 0, 'no second copy')
    assert.deepEqual(
      members[0]!.lines.filter((l) => l.includes('one line')),
      [],
      'not back to its sender',
    )
    for (const m of members) m.ws.terminate()
    nc.socket.destroy()
  } finally {
    child.kill('SIGTERM')
    await once(child, 'exit')
  }
})

test('two instances over a real redis-server: a WebSocket member of one and a TCP member of the other get each other’s lines once', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const room = `web${process.pid}`
  const open = async () => {
    const hub = await RedisHub.connect(redis.url, { room, maxUsers: 10 })
    const chat = new ChatRoom({ hub })
    const web = new ChatWeb(chat, 256 * 1024)
    const tcp = (await chat.listen('127.0.0.1', 0)).port
    const http = (await web.listen('127.0.0.1', 0, false)).port
    t.after(async () => {
      await web.close()
      await chat.close()
    })
    return { tcp, http }
  }
  const one = await open()
  const two = await open()
  const browserSide = new WsMember(`ws://127.0.0.1:${one.http}/ws`)
  t.after(() => browserSide.ws.terminate())
  await browserSide.until(/^\* welcome/)
  const nc = await connectLines(two.tcp)
  t.after(() => nc.socket.destroy())
  await nc.until(/^\* welcome/)
  await browserSide.until(/joined$/)
  browserSide.ws.send('across machines')
  assert.match(await nc.until(/across machines/), /^guest\d+: across machines$/)
  nc.say('and back')
  assert.match(await browserSide.until(/and back/), /^guest\d+: and back$/)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(await nc.drain(50), [], 'once')
  assert.deepEqual(
    browserSide.lines.filter((l) => l.includes('and back')),
    [],
    'once',
  )
})
