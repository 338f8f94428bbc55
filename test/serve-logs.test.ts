// The access log of `petrel serve`, as a file an operator reads: handler responses and the
// answers the server writes itself (malformed requests, the connection limit).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { once } from 'node:events'
import { startServe } from '../src/apps/serve/serve.ts'

async function rawExchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  let data = ''
  socket.on('data', (d) => (data += d))
  socket.write(bytes)
  const timer = setTimeout(() => socket.destroy(), 5000)
  await once(socket, 'close')
  clearTimeout(timer)
  return data
}

async function settled(server: { connections: Set<unknown> }): Promise<void> {
  const deadline = Date.now() + 5000
  while (server.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
}

test("access log: handler responses and the server's own answers (400, 503) each get a line", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-alog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const logFile = path.join(dir, 'access.log')
  const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, limits: { maxConnections: 1 }, logs: { accessLog: logFile } })
  const { port } = serving.address
  assert.match(await rawExchange(port, 'GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
  await settled(serving.server)
  assert.match(await rawExchange(port, 'GET /plaintext HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /)
  await settled(serving.server)
  // The one allowed connection is held open; the next gets the 503.
  const holder = net.connect(port, '127.0.0.1')
  await once(holder, 'connect')
  await new Promise((r) => setTimeout(r, 50))
  assert.match(await rawExchange(port, ''), /^HTTP\/1\.1 503 /)
  holder.destroy()
  await serving.server.close()
  await serving.closeLogs()
  const lines = readFileSync(logFile, 'utf8').trim().split('\n')
  assert.equal(lines.length, 3, lines.join('\n'))
  assert.match(lines[0]!, /"GET \/plaintext HTTP\/1\.1" 200 13 "-" "-"$/)
  assert.match(lines[1]!, /^127\.0\.0\.1 - - \[[^\]]+\] "-" 400 \d+ "-" "-"$/)
  assert.match(lines[2]!, /^127\.0\.0\.1 - - \[[^\]]+\] "-" 503 \d+ "-" "-"$/)
})
