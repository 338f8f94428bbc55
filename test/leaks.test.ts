// Clients that vanish at every stage of every kind of exchange Petrel's programs hold — keep-alive
// requests, bodies streamed in and out, server-sent events, CGI, proxied requests, tunnels (an
// Upgrade through the reverse proxy, a CONNECT through the forward proxy), the chat room and
// inetd's TCP services — leave nothing behind: once they are gone, each program's open
// descriptors, child processes and CLOSE-WAIT sockets are back where they were before.

import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { tcpStates } from '../src/monitor/system.ts'
import { freePort } from './helpers/tcp.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
/** Short, so that lingering connections end within the test. */
const LINGER = '300ms'
/** How long a program may take to free what a vanished client held. */
const SETTLE_MS = 8000

/** A process and its descendants (CGI spawner, scripts, programs). */
function processTree(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = []
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`)
    } catch {
      continue
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').trim().split(/\s+/)) if (child !== '') out.push(Number(child))
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return out
}

interface Holdings {
  processes: number
  fds: number
  closeWait: number
  /** Sockets by listening port (or "other") and state, for the failure message. */
  sockets: Record<string, Record<string, number>>
}

/** What a program holds now: its processes, their descriptors, and their sockets in CLOSE-WAIT. */
function holdings(pid: number): Holdings {
  const pids = processTree(pid)
  let fds = 0
  for (const p of pids) {
    try {
      fds += readdirSync(`/proc/${p}/fd`).length
    } catch {
      // Gone meanwhile.
    }
  }
  const sockets = tcpStates(pids)
  let closeWait = 0
  for (const byState of Object.values(sockets)) closeWait += byState['CLOSE_WAIT'] ?? 0
  return { processes: pids.length, fds, closeWait, sockets }
}

/** Wait until the program holds no more than `baseline` (and no CLOSE-WAIT socket); returns what it holds then. */
async function settle(pid: number, baseline: Holdings): Promise<Holdings> {
  const deadline = performance.now() + SETTLE_MS
  let now = holdings(pid)
  while ((now.fds > baseline.fds || now.processes > baseline.processes || now.closeWait > 0) && performance.now() < deadline) {
    await sleep(50)
    now = holdings(pid)
  }
  return now
}

function assertBack(now: Holdings, baseline: Holdings, what: string): void {
  assert.equal(now.closeWait, 0, `${what}: sockets left in CLOSE-WAIT (by listening port: ${JSON.stringify(now.sockets)})`)
  assert.ok(now.processes <= baseline.processes, `${what}: ${now.processes} processes, ${baseline.processes} before`)
  assert.ok(now.fds <= baseline.fds, `${what}: ${now.fds} descriptors open, ${baseline.fds} before`)
}

/** Start `petrel ARGS…` and wait for `ready` on its stdout or stderr. */
async function startPetrel(t: TestContext, args: string[], ready: RegExp, cwd?: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  let output = ''
  const seen = new Promise<void>((resolve, reject) => {
    const look = (chunk: Buffer): void => {
      output += chunk.toString()
      if (ready.test(output)) resolve()
    }
    child.stdout!.on('data', look)
    child.stderr!.on('data', look)
    child.once('exit', (code) => reject(new Error(`petrel ${args.join(' ')} exited with ${code}: ${output}`)))
  })
  await seen
  return { child, output: () => output }
}

/**
 * How a client leaves: its process closes the socket (FIN, or RST when what it was sent is
 * unread, as the kernel decides), it resets the connection, or it closes only its sending side
 * and goes on reading (FIN) — a client that is still there and must not be cut from what it reads.
 */
type Leave = 'close' | 'reset' | 'half-close'

function leave(socket: net.Socket, how: Leave): void {
  if (how === 'close') socket.destroy()
  else if (how === 'reset') socket.resetAndDestroy()
  else socket.end()
}

/** Connect, send `first` (if any), wait until `receivedEnough` holds for what came back (or a moment), then leave. */
async function vanish(
  port: number,
  how: Leave,
  first: string | Buffer | null,
  receivedEnough: ((got: string) => boolean) | null,
  then?: (socket: net.Socket) => Promise<void>,
): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  let got = ''
  const enough = new Promise<void>((resolve) => {
    if (receivedEnough === null) return resolve()
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1')
      if (receivedEnough(got)) resolve()
    })
  })
  if (first !== null) socket.write(first)
  await Promise.race([enough, sleep(3000)])
  if (then !== undefined) await then(socket)
  else if (receivedEnough === null) await sleep(30)
  // A client that leaves stops reading first, so that a streamed answer backs up on the server's
  // side; one that half-closes reads on (and drops what it reads).
  if (how !== 'half-close') socket.pause()
  leave(socket, how)
}

const HOW: Leave[] = ['close', 'reset', 'half-close']

function sh(dir: string, name: string, body: string): void {
  const file = path.join(dir, name)
  writeFileSync(file, `#!/bin/sh\n${body}\n`)
  chmodSync(file, 0o755)
}

/** The upstream for the reverse and forward proxies: slow heads, endless bodies, an Upgrade that echoes. */
async function startUpstream(t: TestContext): Promise<number> {
  const server = http.createServer((req, res) => {
    if (req.url === '/api/stream') {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      const every = setInterval(() => res.write('tick\n'), 20)
      res.on('close', () => clearInterval(every))
      return
    }
    if (req.url === '/api/wait') {
      const later = setTimeout(() => res.end('late\n'), 2000)
      res.on('close', () => clearTimeout(later))
      return
    }
    req.resume()
    res.end('ok\n')
  })
  server.on('upgrade', (_req, socket: net.Socket) => {
    socket.on('error', () => {})
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.pipe(socket)
  })
  server.on('connection', (s: net.Socket) => s.on('error', () => {}))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return (server.address() as net.AddressInfo).port
}

const GET = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`

test('petrel serve: clients vanishing at every stage of keep-alive, streamed, SSE, CGI, proxied and upgraded exchanges leave no descriptor, process or CLOSE-WAIT behind', async (t) => {
  const dir = path.join(os.tmpdir(), `petrel-leaks-${process.pid}-${Date.now()}`)
  const root = path.join(dir, 'root')
  const cgi = path.join(dir, 'cgi')
  mkdirSync(root, { recursive: true })
  mkdirSync(cgi)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(root, 'index.html'), '<p>hello</p>\n')
  writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 0x61))
  // Endless output, a script that is slow to answer at all, and one that echoes its body.
  sh(cgi, 'stream.sh', "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nwhile :; do echo tick; sleep 0.02; done")
  sh(cgi, 'late.sh', "sleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nlate\\n'")
  sh(cgi, 'cat.sh', "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat")
  const upstream = await startUpstream(t)
  const adminPort = await freePort()
  const { child, output } = await startPetrel(
    t,
    [
      'serve',
      root,
      '--port',
      '0',
      '--cgi-bin',
      cgi,
      '--proxy',
      `/api/=http://127.0.0.1:${upstream}`,
      '--proxy-keepalive',
      '1',
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--linger-timeout',
      LINGER,
    ],
    /admin .* on http:\/\//,
    dir,
  )
  const port = Number(/on http:\/\/127\.0\.0\.1:(\d+)\//.exec(output())![1])
  const pid = child.pid!

  // Warm up what is made on first use (the CGI spawner, an upstream connection, the admin's ticks).
  for (const target of ['/index.html', '/cgi-bin/cat.sh', '/api/ok']) {
    const r = await fetch(`http://127.0.0.1:${port}${target}`)
    await r.arrayBuffer()
  }
  await (await fetch(`http://127.0.0.1:${adminPort}/api/snapshot`)).arrayBuffer()
  await sleep(300)
  const baseline = holdings(pid)

  const isStreaming = (got: string): boolean => got.includes('tick')
  const hasHead = (got: string): boolean => got.includes('\r\n\r\n')
  const clients: Array<Promise<void>> = []
  for (const how of HOW) {
    // Keep-alive exchanges: before a byte, mid-head, after a response (idle), mid-response (a large file, unread).
    clients.push(vanish(port, how, null, null))
    clients.push(vanish(port, how, 'GET /index.html HTTP/1.1\r\nHo', null))
    clients.push(vanish(port, how, GET('/index.html'), hasHead))
    clients.push(vanish(port, how, GET('/big.bin'), hasHead))
    // A body streamed in: mid-body, and while the echo of it streams back.
    clients.push(vanish(port, how, 'POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nabc', null))
    clients.push(vanish(port, how, 'POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n', hasHead))
    // Server-sent events (the dashboard's stream).
    clients.push(vanish(adminPort, how, GET('/events'), (got) => got.includes('data:')))
    // CGI: an endless script mid-output, and a script that has not answered yet.
    clients.push(vanish(port, how, GET('/cgi-bin/stream.sh'), isStreaming))
    clients.push(vanish(port, how, GET('/cgi-bin/late.sh'), null, () => sleep(200)))
    // Proxied: an endless upstream body, and an upstream that has not answered yet.
    clients.push(vanish(port, how, GET('/api/stream'), isStreaming))
    clients.push(vanish(port, how, GET('/api/wait'), null, () => sleep(200)))
    // Upgraded through the reverse proxy: a tunnel with bytes in flight.
    clients.push(
      vanish(port, how, GET('/api/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'), hasHead, async (s) => {
        s.write('hello through the tunnel')
        await sleep(50)
      }),
    )
  }
  await Promise.all(clients)
  assertBack(await settle(pid, baseline), baseline, 'petrel serve')
  // And it still serves.
  assert.equal((await fetch(`http://127.0.0.1:${port}/index.html`)).status, 200)
})

test('petrel proxy: clients vanishing before, during and after CONNECT tunnels and relayed requests leave nothing behind', async (t) => {
  const upstream = await startUpstream(t)
  const port = await freePort()
  const { child } = await startPetrel(t, ['proxy', '--port', String(port), '--allow', `127.0.0.1:${upstream}`], /listening|proxy on|127\.0\.0\.1/)
  const pid = child.pid!
  const warm = await fetch(`http://127.0.0.1:${port}/`).catch(() => null)
  await warm?.arrayBuffer()
  await sleep(200)
  const baseline = holdings(pid)
  const target = `127.0.0.1:${upstream}`
  const clients: Array<Promise<void>> = []
  for (const how of HOW) {
    clients.push(vanish(port, how, `CONNECT ${target} HTTP/1.1\r\nHo`, null))
    clients.push(
      vanish(port, how, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`, hasHeadOf, async (s) => {
        // Through the tunnel: a request whose answer streams without end.
        s.write(GET('/api/stream'))
        await sleep(100)
      }),
    )
    clients.push(vanish(port, how, GET(`http://${target}/api/stream`), (got) => got.includes('tick')))
    clients.push(vanish(port, how, GET(`http://${target}/api/wait`), null, () => sleep(200)))
  }
  await Promise.all(clients)
  assertBack(await settle(pid, baseline), baseline, 'petrel proxy')
})

function hasHeadOf(got: string): boolean {
  return got.includes('\r\n\r\n')
}

test('petrel chat and petrel inetd: clients vanishing mid-line, mid-stream and idle leave nothing behind', async (t) => {
  const chatPort = await freePort()
  const chat = await startPetrel(t, ['chat', '--port', String(chatPort)], /listening|chat/)
  // inetd's services sit at their standard ports plus an offset: pick one whose five ports are free.
  let offset = 0
  for (let tries = 0; tries < 20 && offset === 0; tries++) {
    const base = 20000 + Math.floor(Math.random() * 30000)
    const ports = [7, 9, 13, 19, 37].map((p) => base + p)
    const free = await Promise.all(ports.map(isFree))
    if (free.every(Boolean)) offset = base
  }
  assert.notEqual(offset, 0, 'no free inetd port range found')
  const inetd = await startPetrel(t, ['inetd', '--port-offset', String(offset)], /echo/)
  await sleep(200)
  const chatBaseline = holdings(chat.child.pid!)
  const inetdBaseline = holdings(inetd.child.pid!)
  const clients: Array<Promise<void>> = []
  for (const how of HOW) {
    clients.push(vanish(chatPort, how, null, null))
    clients.push(vanish(chatPort, how, '/nick leaver\nhalf a li', null))
    clients.push(vanish(chatPort, how, '/nick idle\n', (got) => got.length > 0))
    clients.push(vanish(offset + 19, how, null, (got) => got.length > 10_000)) // chargen streams without end
    clients.push(vanish(offset + 7, how, 'echo me', (got) => got.includes('echo me')))
    clients.push(vanish(offset + 9, how, 'discard me', null))
  }
  await Promise.all(clients)
  assertBack(await settle(chat.child.pid!, chatBaseline), chatBaseline, 'petrel chat')
  assertBack(await settle(inetd.child.pid!, inetdBaseline), inetdBaseline, 'petrel inetd')
})

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}
