// A real redis-server for the tests that need one (Debian's redis-server, which
// scripts/install-test-tools.sh installs), started on a free port with no persistence, and stopped
// by the `stop()` it returns (call it from the suite's after hook).

import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { once } from 'node:events'
import { freePort } from './tcp.ts'
import { requireDebianPackage } from './debian.ts'

/** Start a redis-server (on `port`, or a free one); resolves with its URL once it answers PING. */
export async function startRedis(port?: number): Promise<{ url: string; port: number; process: ChildProcess; stop: () => Promise<void> }> {
  requireDebianPackage('redis-server')
  port ??= await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.on('error', () => resolve(false))
      socket.on('data', (data) => {
        socket.destroy()
        resolve(data.toString() === '+PONG\r\n')
      })
      socket.on('connect', () => socket.write('PING\r\n'))
    })
    if (answered) return { url: `redis://127.0.0.1:${port}`, port, process: child, stop }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop()
      throw new Error(`redis-server did not start on port ${port}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}
