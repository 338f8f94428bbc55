// The sample files in examples/ must load through the real loaders and run: a user copies them.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { loadConfig } from '../src/cli/config.ts'
import { SERVE_FLAGS } from '../src/cli/serve-flags.ts'
import { loadInetdConfig, type ServiceConfig } from '../src/apps/inetd/config.ts'
import { Inetd, INETD_DEFAULTS } from '../src/apps/inetd/inetd.ts'
import { freePort } from './helpers/tcp.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url))

test('examples/petrel.json loads with the flags\' meaning: a number of seconds, "workers" as a number', async () => {
  const file = path.join(EXAMPLES, 'petrel.json')
  const flags = await loadConfig(file, SERVE_FLAGS, { exclude: ['help', 'config', 'signal'] })
  assert.equal(flags.get('root'), path.resolve(EXAMPLES, '../site'), 'root is relative to the file')
  assert.equal(flags.get('keepalive-timeout'), 5000, '"keepalive-timeout": 5 is five seconds')
  assert.equal(flags.get('headers-timeout'), 10_000)
  assert.equal(flags.get('workers'), '2')
  assert.equal(flags.get('admin'), '127.0.0.1:8081')
})

test('petrel serve --config examples/petrel.json serves the site with its workers, logs and admin listener', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-example-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // The file's production paths and ports, moved for the test by flags, which win over the file.
  const accessLog = path.join(dir, 'access.log')
  const pidFile = path.join(dir, 'petrel.pid')
  const args = [
    BIN,
    'serve',
    '--config',
    path.join(EXAMPLES, 'petrel.json'),
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--admin',
    '127.0.0.1:0',
    '--access-log',
    accessLog,
    '--error-log',
    path.join(dir, 'error.log'),
    '--pid',
    pidFile,
    ...(process.getuid?.() === 0 ? ['--user', 'root'] : []),
  ]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  t.after(() => child.kill('SIGKILL'))
  let log = ''
  child.stderr!.setEncoding('utf8')
  let port = 0
  let adminPort = 0
  for await (const chunk of child.stderr!) {
    log += chunk
    adminPort = Number(/admin \(dashboard, \/metrics\) on http:\/\/127\.0\.0\.1:(\d+)\//.exec(log)?.[1] ?? 0)
    port = Number(/2 worker\(s\) serving http:\/\/127\.0\.0\.1:(\d+)\//.exec(log)?.[1] ?? 0)
    if (port !== 0) break
  }
  assert.ok(port > 0 && adminPort > 0, `started: ${log}`)
  const home = await fetch(`http://127.0.0.1:${port}/`)
  assert.equal(home.status, 200)
  assert.equal(await home.text(), readFileSync(path.join(EXAMPLES, '../site/index.html'), 'utf8'))
  assert.equal(home.headers.get('cache-control'), 'public, max-age=3600', '"max-age": 3600')
  assert.equal((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status, 200)
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(child.pid))
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
  assert.match(readFileSync(accessLog, 'utf8'), /"GET \/ HTTP\/1\.1" 200 /, 'the request is in the access log after a graceful stop')
  assert.equal(existsSync(pidFile), false)
})

/** Sends `input`, half-closes, and reads until the server closes. */
async function tcpExchange(port: number, input: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (text += chunk))
  await once(socket, 'connect')
  socket.end(input)
  await once(socket, 'close')
  return text
}

test('examples/inetd.conf loads through the real loader and each of its services answers', async (t) => {
  const services = await loadInetdConfig(path.join(EXAMPLES, 'inetd.conf'), {
    bind: '127.0.0.1',
    portOffset: INETD_DEFAULTS.portOffset,
    instances: INETD_DEFAULTS.instances,
    onlyFrom: null,
    idleTimeoutMs: INETD_DEFAULTS.idleTimeoutMs,
    udpRate: INETD_DEFAULTS.udpRate,
  })
  assert.deepEqual(
    services.map((s) => `${s.name} ${s.protocols.join('+')} ${s.port}`),
    ['echo tcp+udp 10007', 'daytime tcp+udp 10013', 'upper tcp 10100', 'year tcp 10101'],
  )
  assert.deepEqual(
    services.map((s) => s.instances),
    [32, 32, 4, 32],
  )
  assert.deepEqual(services[0]!.onlyFrom, ['127.0.0.0/8', '::1'])
  // The file's ports may be taken on a shared machine: each service moves to a free one.
  const moved: ServiceConfig[] = []
  for (const service of services) moved.push({ ...service, port: await freePort() })
  const inetd = await Inetd.start(moved, { log: () => {} })
  t.after(() => inetd.close())
  const port = (name: string) => moved.find((s) => s.name === name)!.port
  assert.equal(await tcpExchange(port('echo'), 'hello\n'), 'hello\n')
  assert.equal(await tcpExchange(port('upper'), 'shout\n'), 'SHOUT\n')
  assert.equal(await tcpExchange(port('year'), ''), `${new Date().getUTCFullYear()}\n`)
  assert.match(await tcpExchange(port('daytime'), ''), /^\w+day, \w+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$/)
  const udp = dgram.createSocket('udp4')
  t.after(() => udp.close())
  udp.send('ping', port('echo'), '127.0.0.1')
  const [reply] = (await once(udp, 'message')) as [Buffer]
  assert.equal(reply.toString(), 'ping')
})
