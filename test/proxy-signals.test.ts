// `petrel proxy` takes signals as events, as `petrel serve` does: HUP and USR1 log a line and the
// proxy keeps serving (by default they would kill it), QUIT stops it gracefully — no new clients,
// but an open CONNECT tunnel keeps working until it ends or --shutdown-timeout cuts it — and TERM
// stops it at once.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { spawn, type ChildProcess } from 'node:child_process'
import { waitFor } from './helpers/petrel.ts'

interface Started {
  child: ChildProcess
  port: number
  stderr: () => string
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

async function echoServer(t: TestContext): Promise<number> {
  const server = net.createServer((socket) => socket.pipe(socket))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.close()
  })
  return (server.address() as net.AddressInfo).port
}

async function startProxy(t: TestContext, echoPort: number, args: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, ['bin/petrel.js', 'proxy', '--port', '0', '--allow', `127.0.0.1:${echoPort}`, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let text = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => (text += chunk))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${text}`)), 20_000)
    const look = (): void => {
      const m = /listening on [^\s]+:(\d+) /.exec(text)
      if (m === null) return
      clearTimeout(timer)
      child.stderr!.off('data', look)
      resolve(Number(m[1]))
    }
    child.stderr!.on('data', look)
  })
  return { child, port, stderr: () => text, exited }
}

/** A CONNECT tunnel through the proxy to the echo server, after its 200. */
async function openTunnel(proxyPort: number, echoPort: number): Promise<net.Socket> {
  const socket = net.connect(proxyPort, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`)
  const head = await readUntil(socket, '\r\n\r\n')
  assert.match(head, /^HTTP\/1\.1 200 /)
  return socket
}

function readUntil(socket: net.Socket, end: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1')
      if (text.includes(end)) {
        socket.off('data', onData)
        socket.off('close', onClose)
        resolve(text)
      }
    }
    const onClose = (): void => reject(new Error(`closed before ${JSON.stringify(end)}; got ${JSON.stringify(text)}`))
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.on('error', () => resolve(true))
  })
}

test('petrel proxy: SIGHUP and SIGUSR1 log a line and the proxy keeps serving', async (t) => {
  const echoPort = await echoServer(t)
  const proxy = await startProxy(t, echoPort)
  proxy.child.kill('SIGHUP')
  proxy.child.kill('SIGUSR1')
  await waitFor('both lines', () => /SIGHUP/.test(proxy.stderr()) && /SIGUSR1/.test(proxy.stderr()), 10_000)
  assert.equal(proxy.child.exitCode, null)
  const tunnel = await openTunnel(proxy.port, echoPort)
  tunnel.write('still here')
  assert.equal(await readUntil(tunnel, 'still here'), 'still here')
  tunnel.destroy()
  proxy.child.kill('SIGTERM')
  assert.deepEqual(await proxy.exited, [0, null])
})

test('petrel proxy: SIGQUIT refuses new clients but an open tunnel works until its client ends it; then exit 0', async (t) => {
  const echoPort = await echoServer(t)
  const proxy = await startProxy(t, echoPort, ['--shutdown-timeout', '30s'])
  const tunnel = await openTunnel(proxy.port, echoPort)
  proxy.child.kill('SIGQUIT')
  // The listener closes at once; the tunnel carries on.
  const deadline = Date.now() + 10_000
  while (!(await refused(proxy.port))) {
    if (Date.now() > deadline) throw new Error('the proxy still accepts after SIGQUIT')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  tunnel.write('after quit')
  assert.equal(await readUntil(tunnel, 'after quit'), 'after quit')
  assert.equal(proxy.child.exitCode, null, 'the proxy waits for the open tunnel')
  tunnel.end()
  assert.deepEqual(await proxy.exited, [0, null])
})

test('petrel proxy: SIGQUIT cuts a tunnel still open after --shutdown-timeout, and SIGTERM during it cuts at once', async (t) => {
  const echoPort = await echoServer(t)
  const proxy = await startProxy(t, echoPort, ['--shutdown-timeout', '1s'])
  const tunnel = await openTunnel(proxy.port, echoPort)
  const closed = once(tunnel, 'close')
  const startedAt = Date.now()
  proxy.child.kill('SIGQUIT')
  await closed
  assert.deepEqual(await proxy.exited, [0, null])
  assert.ok(Date.now() - startedAt >= 900, 'the tunnel had its shutdown timeout')

  const second = await startProxy(t, echoPort, ['--shutdown-timeout', '30s'])
  const held = await openTunnel(second.port, echoPort)
  const heldClosed = once(held, 'close')
  second.child.kill('SIGQUIT')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(second.child.exitCode, null, 'still waiting for the tunnel')
  second.child.kill('SIGTERM')
  await heldClosed
  assert.deepEqual(await second.exited, [0, null])
})
