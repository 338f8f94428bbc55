// The master/worker process model with real processes and real signals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync, renameSync, mkdirSync, chmodSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import net from 'node:net'
import path from 'node:path'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { RawClient, freePort } from './helpers/tcp.ts'
import { BIN, childPids, petrel, startPetrel, waitFor, type Running } from './helpers/petrel.ts'

const startMaster = (t: { after: (fn: () => void) => void }, args: string[], env: Record<string, string> = {}): Promise<Running> =>
  startPetrel(t, args, { env })
const workerPids = childPids

/** Keep-alive clients requesting /plaintext until `stop()`; a response with Connection: close means reconnect, anything else unexpected is a failure. */
async function load(port: number, clients: number, stop: () => boolean) {
  const stats = { ok: 0, failed: 0, reconnects: 0, errors: [] as string[] }
  const connect = async (): Promise<RawClient | null> => {
    try {
      return await RawClient.connect(port)
    } catch (err) {
      stats.failed++
      stats.errors.push(`connect: ${(err as Error).message}`)
      return null
    }
  }
  const one = async (): Promise<void> => {
    let c = await connect()
    while (!stop()) {
      if (c === null) {
        await sleep(10)
        c = await connect()
        continue
      }
      try {
        await c.write('GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n')
        const r = await c.readResponse({ timeoutMs: 5000 })
        if (r.status === 200 && r.text === 'Hello, World!') stats.ok++
        else {
          stats.failed++
          stats.errors.push(`status ${r.status}`)
        }
        if (r.headers.connection === 'close') {
          c.destroy()
          stats.reconnects++
          c = await connect()
        }
      } catch (err) {
        stats.failed++
        stats.errors.push((err as Error).message.slice(0, 120))
        c?.destroy()
        c = await connect()
      }
    }
    c?.destroy()
  }
  await Promise.all(Array.from({ length: clients }, one))
  return stats
}

test('10 reloads in a row under steady keep-alive load: no failed request, no reset', async (t) => {
  const m = await startMaster(t, ['--user', 'root', '--workers', '2'])
  let done = false
  const running = load(m.port, 8, () => done)
  await sleep(300)
  const before = workerPids(m.child.pid!)
  for (let i = 0; i < 10; i++) {
    m.child.kill('SIGHUP')
    const reloadsSoFar = (m.log().match(/reloaded;/g) ?? []).length
    await waitFor(`reload ${i + 1}`, () => (m.log().match(/reloaded;/g) ?? []).length > reloadsSoFar, 15_000)
  }
  await sleep(200)
  done = true
  const stats = await running
  const after = workerPids(m.child.pid!)
  assert.equal(after.length, 2)
  assert.ok(
    after.every((pid) => !before.includes(pid)),
    'every worker was replaced',
  )
  assert.ok(stats.ok > 100, `requests were served (${stats.ok})`)
  assert.equal(stats.failed, 0, `failures: ${stats.errors.slice(0, 5).join('; ')}`)
})

test('a single process: 5 reloads in a row under steady keep-alive load fail no request', async (t) => {
  const m = await startMaster(t, [])
  let done = false
  const running = load(m.port, 8, () => done)
  await sleep(300)
  for (let i = 0; i < 5; i++) {
    const reloadsSoFar = (m.log().match(/reloaded/g) ?? []).length
    m.child.kill('SIGHUP')
    await waitFor(`reload ${i + 1}`, () => (m.log().match(/reloaded/g) ?? []).length > reloadsSoFar, 15_000)
    await sleep(100)
  }
  await sleep(1500)
  done = true
  const stats = await running
  assert.equal(m.child.exitCode, null)
  assert.ok(stats.ok > 100, `requests were served (${stats.ok})`)
  assert.ok(stats.reconnects > 0, 'the retired servers closed their keep-alive connections')
  assert.equal(stats.failed, 0, `failures: ${stats.errors.slice(0, 5).join('; ')}`)
})

test('kill -9 on a worker: a replacement serves within a second', async (t) => {
  const m = await startMaster(t, ['--user', 'root', '--workers', '2'])
  const [victim, survivor] = workerPids(m.child.pid!)
  process.kill(victim!, 'SIGKILL')
  const killedAt = Date.now()
  await waitFor(
    'a replacement worker',
    () => {
      const pids = workerPids(m.child.pid!)
      return pids.length === 2 && !pids.includes(victim!)
    },
    1000,
  )
  assert.ok(Date.now() - killedAt <= 1000)
  assert.ok(workerPids(m.child.pid!).includes(survivor!), 'the other worker was left alone')
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`http://127.0.0.1:${m.port}/plaintext`)
    assert.equal(await r.text(), 'Hello, World!')
  }
})

test('SIGQUIT lets a slow download finish, then everything exits and the pidfile is gone', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'petrel-root-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const big = Buffer.alloc(8 * 1024 * 1024, 7)
  writeFileSync(path.join(root, 'big.bin'), big)
  const m = await startMaster(t, ['--user', 'root', root, '--workers', '1'])
  const client = await RawClient.connect(m.port, { paused: true })
  await client.write('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n')
  await sleep(200)
  m.child.kill('SIGQUIT')
  await sleep(300)
  client.socket.resume()
  const [r] = await client.readResponses(1, { timeoutMs: 15_000 })
  assert.equal(r!.status, 200)
  assert.equal(r!.body.length, big.length)
  const [code] = await once(m.child, 'exit')
  assert.equal(code, 0)
  assert.equal(existsSync(m.pidFile), false)
})

test('pidfile: a second server is refused; --signal stop stops the first', async (t) => {
  const m = await startMaster(t, ['--user', 'root', '--workers', '1'])
  assert.equal(Number(readFileSync(m.pidFile, 'utf8')), m.child.pid)
  const second = spawnSync(process.execPath, [BIN, 'serve', '--port', '0', '--pid', m.pidFile], { encoding: 'utf8', timeout: 10_000 })
  assert.notEqual(second.status, 0)
  assert.match(second.stderr, /names process \d+, which is running/)
  const stop = spawnSync(process.execPath, [BIN, 'serve', '--signal', 'stop', '--pid', m.pidFile], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(stop.status, 0, stop.stderr)
  const [code] = await once(m.child, 'exit')
  assert.equal(code, 0)
  assert.equal(existsSync(m.pidFile), false)
  const none = spawnSync(process.execPath, [BIN, 'serve', '--signal', 'reload', '--pid', m.pidFile], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(none.status, 2)
  assert.match(none.stderr, /no running server in /)
})

test('a reload whose configuration fails to load keeps the old workers serving', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'petrel-root-'))
  const moved = `${root}-moved`
  t.after(() => {
    rmSync(root, { recursive: true, force: true })
    rmSync(moved, { recursive: true, force: true })
  })
  writeFileSync(path.join(root, 'a.txt'), 'still here\n')
  const m = await startMaster(t, ['--user', 'root', root, '--workers', '2'])
  const before = workerPids(m.child.pid!)
  // ROOT disappears: the new configuration is invalid.
  renameSync(root, moved)
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(m.log(), /ROOT .* is not a directory/)
  assert.deepEqual(workerPids(m.child.pid!).sort(), before.sort())
  renameSync(moved, root)
  const r = await fetch(`http://127.0.0.1:${m.port}/a.txt`)
  assert.equal(await r.text(), 'still here\n')
})

test('--config: a file that turns invalid is refused on reload, naming the file and the key; a valid one is applied', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-cfg-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const config = path.join(dir, 'petrel.json')
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 10 }))
  const m = await startMaster(t, ['--user', 'root', '--config', config, '--workers', '1'])
  const post = (body: string) => fetch(`http://127.0.0.1:${m.port}/plaintext`, { method: 'POST', body }).then((r) => r.status)
  assert.equal(await post('x'.repeat(11)), 413, "the file's limit is in force")
  const before = workerPids(m.child.pid!)
  writeFileSync(config, JSON.stringify({ 'max-body-byte': 100 }))
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(m.log(), /unknown key "max-body-byte" in .*petrel\.json; did you mean "max-body-bytes"\?/)
  assert.deepEqual(workerPids(m.child.pid!), before)
  writeFileSync(config, JSON.stringify({ 'max-body-bytes': 100 }))
  m.child.kill('SIGHUP')
  await waitFor('the reload', () => /reloaded;/.test(m.log()), 10_000)
  assert.equal(await post('x'.repeat(11)), 405, 'the new limit lets the body through to routing (POST /plaintext is 405)')
})

test('a root master without --user refuses to start workers, naming the flag', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, () => {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--port', '0', '--workers', '1'], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /workers would run as root; give --user NAME\[:GROUP\]/)
})

test('--user nobody: workers serve as nobody after binding', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async (t) => {
  const m = await startMaster(t, ['--user', 'nobody', '--workers', '1'])
  const [worker] = workerPids(m.child.pid!)
  const status = readFileSync(`/proc/${worker}/status`, 'utf8')
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1])
  const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim())
  assert.equal(uid, nobody)
  assert.equal(await (await fetch(`http://127.0.0.1:${m.port}/plaintext`)).text(), 'Hello, World!')
})

test('--daemon: returns once serving, detached in a new session; --signal stop ends it and removes the pidfile', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-daemon-'))
  const pidFile = path.join(dir, 'petrel.pid')
  const logFile = path.join(dir, 'petrel.log')
  t.after(() => {
    const pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : 0)
    if (pid > 0)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  const probe = spawnSync(process.execPath, ['-e', 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})'], {
    encoding: 'utf8',
  })
  const port = Number(probe.stdout.trim())
  const started = spawnSync(process.execPath, [BIN, 'serve', '--daemon', '--pid', pidFile, '--daemon-log', logFile, '--port', String(port)], {
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(started.status, 0, started.stderr)
  assert.match(started.stdout, /running in the background \(pid (\d+)\)/)
  const pid = Number(readFileSync(pidFile, 'utf8'))
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  assert.equal(Number(stat[3]), pid, 'the daemon leads its own session (sid = pid)')
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/plaintext`)).text(), 'Hello, World!')
  const stop = spawnSync(process.execPath, [BIN, 'serve', '--signal', 'stop', '--pid', pidFile], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(stop.status, 0, stop.stderr)
  await waitFor('the pidfile to go', () => !existsSync(pidFile), 10_000)
  assert.match(readFileSync(logFile, 'utf8'), /serving the demo site/)
})

test('access log: lines after --signal reopen go to a new file once logrotate moved the old one; a graceful stop loses none', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-log-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const logFile = path.join(dir, 'access.log')
  const m = await startMaster(t, ['--user', 'root', '--workers', '2', '--access-log', logFile])
  const get = async (n: number, tag: string) => {
    for (let i = 0; i < n; i++) await (await fetch(`http://127.0.0.1:${m.port}/plaintext?${tag}=${i}`, { headers: { 'user-agent': `tester "${tag}"` } })).text()
  }
  await get(20, 'before')
  await sleep(1300) // the buffered lines reach the file within the flush interval
  renameSync(logFile, `${logFile}.1`)
  const reopen = spawnSync(process.execPath, [BIN, 'serve', '--signal', 'reopen', '--pid', m.pidFile], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(reopen.status, 0, reopen.stderr)
  await sleep(300)
  await get(30, 'after')
  m.child.kill('SIGQUIT')
  await once(m.child, 'exit')
  const old = readFileSync(`${logFile}.1`, 'utf8').trim().split('\n')
  const fresh = readFileSync(logFile, 'utf8').trim().split('\n')
  assert.equal(old.length, 20)
  assert.equal(fresh.length, 30)
  assert.ok(old.every((l) => l.includes('?before=')) && fresh.every((l) => l.includes('?after=')))
  assert.match(
    fresh[0]!,
    /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/plaintext\?after=\d+ HTTP\/1\.1" 200 13 "-" "tester \\x22after\\x22"$/,
  )
})

test('without reusePort the master accepts and hands connections over: it says so, serves, and reloads fail nothing', async (t) => {
  const m = await startMaster(t, ['--user', 'root', '--workers', '2'], { PETREL_LISTEN_MODE: 'shared' })
  assert.match(m.log(), /no reusePort here: the master accepts and hands each connection to a worker/)
  let done = false
  const running = load(m.port, 6, () => done)
  await sleep(200)
  for (let i = 0; i < 3; i++) {
    const reloadsSoFar = (m.log().match(/reloaded;/g) ?? []).length
    m.child.kill('SIGHUP')
    await waitFor(`reload ${i + 1}`, () => (m.log().match(/reloaded;/g) ?? []).length > reloadsSoFar, 15_000)
  }
  done = true
  const stats = await running
  assert.ok(stats.ok > 50, `requests were served (${stats.ok})`)
  assert.equal(stats.failed, 0, `failures: ${stats.errors.slice(0, 5).join('; ')}`)
})

test('handed-over connections (no reusePort) keep half-open: a client that half-closes after its request gets the whole answer', async (t) => {
  const m = await startMaster(t, ['--user', 'root', '--workers', '1'], { PETREL_LISTEN_MODE: 'shared' })
  const client = net.connect({ port: m.port, host: '127.0.0.1', allowHalfOpen: true })
  client.on('error', () => {})
  t.after(() => client.destroy())
  await once(client, 'connect')
  let got = ''
  client.setEncoding('latin1')
  client.on('data', (text: string) => (got += text))
  // The request, then our FIN at once (printf … | nc -N does this); a CGI script answers later.
  client.end('GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: a\r\n\r\n')
  await once(client, 'end')
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n[\s\S]*Hello from a shell script/)
})

test("--user nobody with logs in a root-owned 0755 directory: --signal reopen after a rotation keeps every line, the new file is nobody's", {
  skip: process.getuid?.() !== 0 ? 'needs root' : false,
}, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-log-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // The way /var/log/petrel usually is: root's, writable by root alone.
  chmodSync(dir, 0o755)
  const logs = path.join(dir, 'logs')
  mkdirSync(logs, { mode: 0o755 })
  const accessLog = path.join(logs, 'access.log')
  const errorLog = path.join(logs, 'error.log')
  const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim())
  const m = await startMaster(t, ['--user', 'nobody', '--workers', '1', '--access-log', accessLog, '--error-log', errorLog])
  const get = async (n: number, tag: string) => {
    for (let i = 0; i < n; i++) await (await fetch(`http://127.0.0.1:${m.port}/plaintext?${tag}=${i}`)).text()
  }
  await get(5, 'before')
  await sleep(1300)
  renameSync(accessLog, `${accessLog}.1`)
  renameSync(errorLog, `${errorLog}.1`)
  const reopen = petrel('serve', '--signal', 'reopen', '--pid', m.pidFile)
  assert.equal(reopen.status, 0, reopen.stderr)
  await sleep(500)
  await get(7, 'after')
  m.child.kill('SIGQUIT')
  await once(m.child, 'exit')
  assert.doesNotMatch(m.log(), /EACCES/)
  assert.equal(readFileSync(`${accessLog}.1`, 'utf8').trim().split('\n').length, 5)
  const fresh = readFileSync(accessLog, 'utf8').trim().split('\n')
  assert.equal(fresh.length, 7, 'every line after the reopen is in the new file')
  assert.ok(fresh.every((l) => l.includes('?after=')))
  for (const file of [accessLog, errorLog]) {
    assert.equal(statSync(file).uid, nobody, `${file} belongs to the workers' user`)
    assert.equal(statSync(file).mode & 0o777, 0o640)
  }
  assert.equal(statSync(logs).uid, 0, "the directory is still root's alone")
})

test('--workers: a reload that moves the port listens there and closes the old one; a taken port is refused and changes nothing', async (t) => {
  for (const env of [{}, { PETREL_LISTEN_MODE: 'shared' }] as Array<Record<string, string>>) {
    const dir = mkdtempSync(path.join(tmpdir(), 'petrel-cfg-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const config = path.join(dir, 'petrel.json')
    const first = await freePort()
    writeFileSync(config, JSON.stringify({ port: first }))
    const m = await startPetrel(t, ['--user', 'root', '--workers', '2', '--config', config], { env, portFromConfig: true })
    assert.equal(m.port, first)
    const second = await freePort()
    writeFileSync(config, JSON.stringify({ port: second }))
    m.child.kill('SIGHUP')
    await waitFor('the reload', () => /reloaded;/.test(m.log()), 20_000)
    assert.match(m.log(), new RegExp(`reloaded; workers \\d+, \\d+; now on http://127\\.0\\.0\\.1:${second}/`))
    assert.equal(await (await fetch(`http://127.0.0.1:${second}/plaintext`)).text(), 'Hello, World!')
    await assert.rejects(fetch(`http://127.0.0.1:${first}/plaintext`), 'the old port is closed')
    const before = workerPids(m.child.pid!).sort()
    const holder = net.createServer().listen(0, '127.0.0.1')
    await once(holder, 'listening')
    t.after(() => holder.close())
    const taken = (holder.address() as net.AddressInfo).port
    writeFileSync(config, JSON.stringify({ port: taken }))
    m.child.kill('SIGHUP')
    await waitFor('the refusal', () => /reload refused/.test(m.log()), 20_000)
    assert.match(
      m.log(),
      new RegExp(`reload refused, the running workers keep the old configuration: cannot listen on 127\\.0\\.0\\.1:${taken}: the address is already in use`),
    )
    assert.deepEqual(workerPids(m.child.pid!).sort(), before, 'the workers were left alone')
    assert.equal(await (await fetch(`http://127.0.0.1:${second}/plaintext`)).text(), 'Hello, World!')
    // A worker that dies now is replaced on the address in force, not on the refused one.
    process.kill(before[0]!, 'SIGKILL')
    await waitFor('a replacement', () => workerPids(m.child.pid!).length === 2 && !workerPids(m.child.pid!).includes(before[0]!), 10_000)
    for (let i = 0; i < 6; i++) assert.equal(await (await fetch(`http://127.0.0.1:${second}/plaintext`)).text(), 'Hello, World!')
  }
})
