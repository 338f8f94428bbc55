// `petrel serve` without --workers: one process honours the master's signals — HUP reloads
// (a new server on the same socket, the old one retired gracefully), QUIT stops gracefully with
// every log line written, TERM stops fast, USR1 reopens the logs — and `--signal` reaches only a
// Petrel server.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync, renameSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import net from 'node:net'
import path from 'node:path'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { RawClient, freePort } from './helpers/tcp.ts'
import { exitCode, petrel, startPetrel, waitFor } from './helpers/petrel.ts'

function tempDir(t: { after: (fn: () => void) => void }, prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const post = (port: number, body: string): Promise<number> => fetch(`http://127.0.0.1:${port}/plaintext`, { method: 'POST', body }).then((r) => r.status)

/** Whether a TCP connection to the port is refused. */
async function refused(port: number): Promise<boolean> {
  try {
    const c = await RawClient.connect(port)
    c.socket.destroy()
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED'
  }
}

test('HUP with a changed --config: the new limit is in force, a download in flight finishes, same process, pidfile kept', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  const big = Buffer.alloc(8 * 1024 * 1024, 7)
  writeFileSync(path.join(dir, 'big.bin'), big)
  const config = path.join(dir, 'petrel.json')
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 10, root: dir }))
  const m = await startPetrel(t, ['--config', config])
  assert.equal(await post(m.port, 'x'.repeat(11)), 413, "the file's limit is in force")
  // A client that reads nothing yet: its response is still going out when the reload comes.
  const slow = await RawClient.connect(m.port, { paused: true })
  await slow.write('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n')
  await sleep(200)
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 100, root: dir }))
  m.child.kill('SIGHUP')
  await waitFor('the reload', () => /reloaded/.test(m.log()), 10_000)
  assert.equal(await post(m.port, 'x'.repeat(11)), 405, 'the new limit lets the body through to routing (POST of a file is 405)')
  slow.socket.resume()
  const [r] = await slow.readResponses(1, { timeoutMs: 15_000 })
  assert.equal(r!.status, 200)
  assert.equal(r!.body.length, big.length)
  assert.equal(m.child.exitCode, null, 'the process is still running')
  assert.equal(Number(readFileSync(m.pidFile, 'utf8')), m.child.pid)
  // And it still answers HUP the same way (a second reload, then a stop through --signal).
  const again = petrel('serve', '--signal', 'reload', '--pid', m.pidFile)
  assert.equal(again.status, 0, again.stderr)
  await waitFor('the second reload', () => (m.log().match(/reloaded/g) ?? []).length === 2, 10_000)
  assert.equal(await post(m.port, 'x'.repeat(11)), 405)
})

test('HUP with a configuration that fails: refused with a log line, the old server keeps serving', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  const config = path.join(dir, 'petrel.json')
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 10 }))
  const m = await startPetrel(t, ['--config', config])
  writeFileSync(config, JSON.stringify({ 'max-body-byte': 100 }))
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(m.log(), /reload refused, still serving with the old configuration: unknown key "max-body-byte" in .*petrel\.json/)
  assert.equal(await post(m.port, 'x'.repeat(11)), 413, 'the old limit is still in force')
  // A configuration that loads but whose server cannot start (a log in a missing directory) is refused too.
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 100, 'access-log': path.join(dir, 'no-such-dir', 'access.log') }))
  m.child.kill('SIGHUP')
  await waitFor('the second refusal', () => (m.log().match(/reload refused/g) ?? []).length === 2, 10_000)
  assert.match(m.log(), /no-such-dir.*does not exist/)
  assert.equal(await post(m.port, 'x'.repeat(11)), 413)
  // A FIFO in place of the file: refused at once, where reading it waited for a writer for ever.
  rmSync(config)
  spawnSync('mkfifo', [config])
  m.child.kill('SIGHUP')
  await waitFor('the third refusal', () => (m.log().match(/reload refused/g) ?? []).length === 3, 10_000)
  assert.match(m.log(), /petrel\.json: is a FIFO \(named pipe\), not a regular file/)
  assert.equal(await post(m.port, 'x'.repeat(11)), 413)
  assert.equal(m.child.exitCode, null)
})

test('--signal quit: every access-log line written just before is in the file; exit 0, pidfile removed', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  const accessLog = path.join(dir, 'access.log')
  const m = await startPetrel(t, ['--access-log', accessLog])
  for (let i = 0; i < 25; i++) await (await fetch(`http://127.0.0.1:${m.port}/plaintext?n=${i}`)).text()
  // The lines are buffered (flushed once a second): the stop must write them.
  const quit = petrel('serve', '--signal', 'quit', '--pid', m.pidFile)
  assert.equal(quit.status, 0, quit.stderr)
  assert.equal(await exitCode(m.child), 0, `exit code 0, not killed by the signal (${m.child.signalCode})`)
  const lines = readFileSync(accessLog, 'utf8').trim().split('\n')
  assert.equal(lines.length, 25)
  assert.ok(lines.every((l, i) => l.includes(`?n=${i} `)))
  assert.equal(existsSync(m.pidFile), false)
})

test('TERM is a fast stop: a download in flight is cut, exit 0, pidfile removed; a second TERM during QUIT cuts too', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7))
  for (const signals of [['SIGTERM'], ['SIGQUIT', 'SIGTERM']] as const) {
    const m = await startPetrel(t, [dir, '--shutdown-timeout', '60s'])
    const slow = await RawClient.connect(m.port, { paused: true })
    await slow.write('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n')
    await sleep(200)
    for (const signal of signals) {
      m.child.kill(signal)
      await sleep(200)
    }
    assert.equal(await exitCode(m.child), 0, `exit after ${signals.join(', ')}`)
    slow.socket.resume()
    await slow.until(() => slow.closed, 5000, 'the connection to close')
    assert.ok(slow.bytesReceived < 8 * 1024 * 1024, `the download was cut (${slow.bytesReceived} bytes) after ${signals.join(', ')}`)
    assert.equal(existsSync(m.pidFile), false)
  }
})

test('USR1 reopens the logs; when the path cannot be opened, the old file stays in use and the error log says so', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  const logs = path.join(dir, 'logs')
  mkdirSync(logs)
  const accessLog = path.join(logs, 'access.log')
  const errorLog = path.join(logs, 'error.log')
  const m = await startPetrel(t, ['--access-log', accessLog, '--error-log', errorLog])
  const get = async (tag: string) => (await fetch(`http://127.0.0.1:${m.port}/plaintext?${tag}`)).text()
  await get('first')
  await sleep(1300)
  renameSync(accessLog, `${accessLog}.1`)
  assert.equal(petrel('serve', '--signal', 'reopen', '--pid', m.pidFile).status, 0)
  await sleep(300)
  await get('second')
  await sleep(1300)
  assert.match(readFileSync(`${accessLog}.1`, 'utf8'), /\?first /)
  assert.match(readFileSync(accessLog, 'utf8'), /\?second /)
  // The directory goes away (moved): the paths cannot be opened again.
  const moved = path.join(dir, 'logs.moved')
  renameSync(logs, moved)
  m.child.kill('SIGUSR1')
  await waitFor('the reopen failure on stderr', () => /log .*access\.log: ENOENT/.test(m.log()), 5000)
  await get('third')
  m.child.kill('SIGQUIT')
  await exitCode(m.child)
  assert.match(readFileSync(path.join(moved, 'access.log'), 'utf8'), /\?third /, 'lines go on to the old file')
  assert.match(readFileSync(path.join(moved, 'error.log'), 'utf8'), /\[error\] .*cannot reopen log .*access\.log, still writing to the old file: ENOENT/)
})

test('--signal refuses a pidfile whose process is not Petrel, and signals nothing; such a pidfile is taken over at start', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  const pidFile = path.join(dir, 'stale.pid')
  const sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' })
  t.after(() => sleeper.kill('SIGKILL'))
  await once(sleeper, 'spawn')
  writeFileSync(pidFile, `${sleeper.pid}\n`)
  for (const name of ['reload', 'stop', 'quit', 'reopen']) {
    const r = petrel('serve', '--signal', name, '--pid', pidFile)
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, new RegExp(`names process ${sleeper.pid}, which is not a Petrel server \\(it runs \`sleep 1000\`\\).*nothing was signalled`))
    assert.equal(r.stderr.trim().split('\n').length, 1)
  }
  await sleep(200)
  assert.equal(sleeper.exitCode, null, 'the sleep was not signalled')
  assert.equal(sleeper.signalCode, null)
  // A server started with that pidfile takes it over rather than refusing to start.
  const server = spawn(process.execPath, [fileURLToPath(new URL('../bin/petrel.js', import.meta.url)), 'serve', '--port', '0', '--pid', pidFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => server.kill('SIGKILL'))
  let out = ''
  server.stdout!.on('data', (d) => (out += d))
  server.stderr!.on('data', (d) => (out += d))
  await waitFor('the server to start', () => /serving/.test(out) || server.exitCode !== null, 15_000)
  assert.match(out, /serving the demo site/)
  assert.equal(Number(readFileSync(pidFile, 'utf8')), server.pid)
  assert.equal(petrel('serve', '--signal', 'stop', '--pid', pidFile).status, 0)
  assert.equal(await exitCode(server), 0)
  // A pidfile naming a process that is gone is refused with its own message.
  writeFileSync(pidFile, `${server.pid}\n`)
  const gone = petrel('serve', '--signal', 'reload', '--pid', pidFile)
  assert.equal(gone.status, 2)
  assert.match(gone.stderr, new RegExp(`no running server in .*stale\\.pid \\(process ${server.pid} is gone\\)`))
})

test('HUP that moves the port: the new port serves, the old one closes once its connection is done; a taken port is refused', async (t) => {
  const dir = tempDir(t, 'petrel-single-')
  writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7))
  const config = path.join(dir, 'petrel.json')
  const first = await freePort()
  writeFileSync(config, JSON.stringify({ port: first, root: dir }))
  const m = await startPetrel(t, ['--config', config], { portFromConfig: true })
  assert.equal(m.port, first)
  const slow = await RawClient.connect(first, { paused: true })
  await slow.write('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n')
  await sleep(200)
  const second = await freePort()
  writeFileSync(config, JSON.stringify({ port: second, root: dir }))
  m.child.kill('SIGHUP')
  await waitFor('the reload', () => /reloaded/.test(m.log()), 10_000)
  assert.match(m.log(), new RegExp(`now on http://127\\.0\\.0\\.1:${second}/, http://127\\.0\\.0\\.1:${first}/ closed to new connections`))
  assert.equal((await fetch(`http://127.0.0.1:${second}/big.bin`, { method: 'HEAD' })).status, 200)
  assert.ok(await refused(first), 'the old port takes no new connection')
  slow.socket.resume()
  const [r] = await slow.readResponses(1, { timeoutMs: 15_000 })
  assert.equal(r!.body.length, 8 * 1024 * 1024, 'the download on the old port finished')
  // A port someone else holds: refused, and the server stays where it is.
  const holder = net.createServer().listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.after(() => holder.close())
  const taken = (holder.address() as net.AddressInfo).port
  writeFileSync(config, JSON.stringify({ port: taken, root: dir }))
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(
    m.log(),
    new RegExp(`reload refused, still serving with the old configuration: cannot listen on 127\\.0\\.0\\.1:${taken}: the address is already in use`),
  )
  assert.equal((await fetch(`http://127.0.0.1:${second}/big.bin`, { method: 'HEAD' })).status, 200)
})

test('--user without --workers is refused, naming the flag', () => {
  const r = petrel('serve', '--port', '0', '--user', 'nobody')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /^petrel: --user needs --workers/)
})

for (const [mode, args] of [
  ['one process', [] as string[]],
  ['--workers 1', ['--workers', '1', ...(process.getuid?.() === 0 ? ['--user', 'root'] : [])]],
] as const) {
  test(`${mode}: a graceful stop closes idle keep-alive connections at once, even one whose client keeps its side open`, async (t) => {
    const running = await startPetrel(t, [...args])
    // Two idle clients that never close on the server's FIN: one after a request, one that sent nothing.
    const sockets: net.Socket[] = []
    t.after(() => {
      for (const s of sockets) s.destroy()
    })
    for (const send of [true, false]) {
      const s = net.connect({ port: running.port, host: '127.0.0.1', allowHalfOpen: true })
      s.on('error', () => {})
      sockets.push(s)
      await once(s, 'connect')
      if (send) {
        s.write('GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n')
        await once(s, 'data')
      }
    }
    await sleep(100)
    const started = Date.now()
    process.kill(running.child.pid!, 'SIGQUIT')
    assert.equal(await exitCode(running.child), 0)
    const took = Date.now() - started
    // The default lingerMs is 5 s: a stop that lingered on the idle clients would take that long.
    assert.ok(took < 3000, `the graceful stop took ${took} ms with two idle clients`)
  })
}

for (const [mode, args] of [
  ['one process', [] as string[]],
  ['--workers 1', ['--workers', '1', ...(process.getuid?.() === 0 ? ['--user', 'root'] : [])]],
] as const) {
  test(`${mode}: a graceful stop gives an open tunnel (an upgrade through the proxy) --shutdown-timeout, then cuts it`, async (t) => {
    // An upstream that switches protocols and then echoes, as a WebSocket server would.
    const upstream = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
        socket.pipe(socket)
      })
    })
    upstream.listen(0, '127.0.0.1')
    await once(upstream, 'listening')
    t.after(() => upstream.close())
    const port = (upstream.address() as net.AddressInfo).port
    const running = await startPetrel(t, ['--proxy', `/ws/=http://127.0.0.1:${port}`, '--shutdown-timeout', '1s', ...args])
    const client = net.connect(running.port, '127.0.0.1')
    client.on('error', () => {})
    t.after(() => client.destroy())
    await once(client, 'connect')
    client.write('GET /ws/ HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    await once(client, 'data')
    const started = Date.now()
    process.kill(running.child.pid!, 'SIGQUIT')
    assert.equal(await exitCode(running.child), 0)
    const took = Date.now() - started
    // Without the cut a worker waited for the tunnel's read timeout (a minute), until the master killed it.
    assert.ok(took < 5000, `the graceful stop took ${took} ms with a tunnel open`)
    assert.doesNotMatch(running.log(), /killed \(SIGKILL\)/)
  })
}
