// The one supervisor (src/process/supervisor.ts) under both of its programs: `petrel serve
// --workers` and `petrel chat --workers` get the same start timeout, restart backoff and
// retire-then-SIGKILL, seen here as an operator sees them: log lines, exit codes, processes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { BIN, childPids, killTree, petrel, startPetrel, waitFor } from './helpers/petrel.ts'
import { socketCount } from './helpers/sockets.ts'
import { connectLines } from './helpers/lines.ts'
import { startRedis } from './helpers/redis.ts'

interface Program {
  name: string
  child: ChildProcess
  log: () => string
  /** A client's round trip through the program's workers (an HTTP answer, a chat line). */
  works: () => Promise<void>
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch {
    return true
  }
}

/** `petrel chat ARGS` as a process; resolves once the room is open. */
async function startChat(t: { after: (fn: () => void) => void }, args: string[]): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  const child = spawn(process.execPath, [BIN, 'chat', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (text: string) => (log += text))
  t.after(() => killTree(child))
  await waitFor('the room to open', () => /room open on 127\.0\.0\.1:\d+/.test(log) || child.exitCode !== null, 20_000)
  const port = /room open on 127\.0\.0\.1:(\d+)/.exec(log)
  assert.ok(port, log)
  return { child, port: Number(port[1]), log: () => log }
}

/** Each program, started when its turn comes (a worker's age decides its restart delay). */
function programs(t: { after: (fn: () => void) => void }, workers: number): Array<() => Promise<Program>> {
  const serve = async (): Promise<Program> => {
    const running = await startPetrel(t, ['--user', 'root', '--workers', String(workers), '--shutdown-timeout', '1s'])
    return {
      name: 'serve',
      child: running.child,
      log: running.log,
      works: async () => assert.equal(await (await fetch(`http://127.0.0.1:${running.port}/plaintext`)).text(), 'Hello, World!'),
    }
  }
  const chat = async (): Promise<Program> => {
    const running = await startChat(t, ['--workers', String(workers)])
    return {
      name: 'chat',
      child: running.child,
      log: running.log,
      works: async () => {
        const a = await connectLines(running.port)
        const b = await connectLines(running.port)
        try {
          await a.until(/^\* welcome, you are guest\d+;/)
          await b.until(/^\* welcome, you are guest\d+;/)
          await a.until(/joined$/)
          b.say('still a room')
          assert.match(await a.until(/still a room/), /^guest\d+: still a room$/)
        } finally {
          a.socket.destroy()
          b.socket.destroy()
        }
      },
    }
  }
  return [serve, chat]
}

test('serve and chat: a worker that keeps dying is replaced at once, then after 100 ms, then 200 ms; the program keeps working', async (t) => {
  // Each worker is killed young (well within 10 s of its start), so the deaths count as a run.
  for (const startProgram of programs(t, 1)) {
    const program = await startProgram()
    const master = program.child.pid!
    for (const expected of ['replacing it\n', 'replacing it in 100 ms\n', 'replacing it in 200 ms\n']) {
      const [victim] = childPids(master)
      assert.ok(victim !== undefined, `${program.name}: a worker runs`)
      process.kill(victim, 'SIGKILL')
      await waitFor(`${program.name}: the line on ${victim}'s death`, () => /exited \(/.test(program.log().split(`worker ${victim} `)[1] ?? ''), 10_000)
      assert.ok(program.log().includes(`worker ${victim} exited (SIGKILL); ${expected}`), `${program.name}: ${program.log()}`)
      await waitFor(
        `${program.name}: a replacement for ${victim}`,
        () => {
          const pids = childPids(master)
          return pids.length === 1 && pids[0] !== victim
        },
        10_000,
      )
      // The replacement may still be starting: a client tries again until it is served (and
      // only then is the next worker killed, so that each death is of a worker that listened).
      let served = false
      for (let attempt = 0; !served; attempt++) {
        try {
          await program.works()
          served = true
        } catch (err) {
          if (attempt === 50) throw err
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    }
  }
})

test('serve and chat: a worker that overstays a stop is killed with SIGKILL, a line says so, and the master exits 0', async (t) => {
  for (const startProgram of programs(t, 2)) {
    const program = await startProgram()
    const [stuck, other] = childPids(program.child.pid!)
    assert.ok(stuck !== undefined && other !== undefined)
    // A stopped process reads no message: it cannot retire, only be killed.
    process.kill(stuck, 'SIGSTOP')
    program.child.kill('SIGTERM')
    const [code] = await once(program.child, 'exit')
    assert.equal(code, 0, program.log())
    // A fast stop's deadline: 0 + 2 s for serve; a chat worker's stop grace is 3 s.
    const deadlineMs = program.name === 'serve' ? 2000 : 3000
    assert.ok(program.log().includes(`worker ${stuck} did not stop within ${deadlineMs} ms; killed (SIGKILL)`), `${program.name}: ${program.log()}`)
    assert.ok(!program.log().includes(`worker ${other} did not stop`), 'the worker that could stop was not killed')
    await waitFor(`${program.name}: its workers gone`, () => isGone(stuck) && isGone(other), 5000)
  }
})

test('chat: a worker that does not listen within --worker-start-timeout is killed, and the room does not open (exit 1, PETREL_ERR_CHAT_WORKER_START)', async (t) => {
  // A "Redis" that accepts and never answers: the worker's hub never connects.
  const silent = net.createServer(() => {}).listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.after(() => silent.close())
  const redisPort = (silent.address() as net.AddressInfo).port
  const child = spawn(
    process.execPath,
    [BIN, 'chat', '--port', '0', '--workers', '2', '--redis', `redis://127.0.0.1:${redisPort}`, '--worker-start-timeout', '500ms'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  t.after(() => child.kill('SIGKILL'))
  let log = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => (log += text))
  const [code] = await once(child, 'exit')
  assert.equal(code, 1, log)
  const line =
    /^petrel: a chat worker process failed to start, so the room is not open; .*: worker (\d+) did not start listening within 500 ms \[PETREL_ERR_CHAT_WORKER_START\]$/m.exec(
      log,
    )
  assert.ok(line, log)
  assert.ok(isGone(Number(line[1])), 'the worker that did not start was killed')
  assert.doesNotMatch(log, /room open/)
})

test('serve: a worker that does not listen within --worker-start-timeout is killed, and the server does not start (exit 1, PETREL_ERR_WORKER_START)', () => {
  // No worker forks, loads and binds within a millisecond.
  const r = petrel('serve', '--port', '0', '--workers', '1', '--user', 'root', '--worker-start-timeout', '1ms')
  assert.equal(r.status, 1, r.stderr)
  const line = /^petrel: a worker process failed to start; .*: worker (\d+) did not start listening within 1 ms \[PETREL_ERR_WORKER_START\]$/m.exec(r.stderr)
  assert.ok(line, r.stderr)
  assert.ok(isGone(Number(line[1])), 'the worker that did not start was killed')
  assert.doesNotMatch(r.stdout + r.stderr, /serving http/)
})

test('serve: --worker-start-timeout without --workers is a usage error naming the fix (exit 2)', () => {
  const r = petrel('serve', '--port', '0', '--worker-start-timeout', '1s')
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, /--worker-start-timeout applies to worker processes; give --workers N too/)
})

test('chat: --worker-start-timeout without --workers is a usage error naming the fix (exit 2)', () => {
  const child = spawn(process.execPath, [BIN, 'chat', '--worker-start-timeout', '1s'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => (log += text))
  return once(child, 'exit').then(([code]) => {
    assert.equal(code, 2, log)
    assert.match(log, /--worker-start-timeout applies to worker processes; give --workers N too/)
  })
})

test('serve, with and without --workers: a refused reload says so with PETREL_ERR_CONFIG_RELOAD from the error table', async (t) => {
  for (const args of [['--user', 'root', '--workers', '1'], []]) {
    const root = mkdtempSync(path.join(tmpdir(), 'petrel-root-'))
    t.after(() => rmSync(root, { recursive: true, force: true }))
    const running = await startPetrel(t, [...args, root])
    // ROOT disappears: the new configuration is invalid.
    rmSync(root, { recursive: true, force: true })
    running.child.kill('SIGHUP')
    await waitFor('the refusal', () => /reload refused/.test(running.log()), 10_000)
    assert.match(
      running.log(),
      /reload refused, (the running workers keep|still serving with) the old configuration: ROOT .* is not a directory.* \[PETREL_ERR_CONFIG_RELOAD\]\n/,
      running.log(),
    )
  }
})

test('chat: a replacement that cannot start (its Redis is down) is tried again on the backoff schedule, and serves once Redis is back', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const room = await startChat(t, ['--workers', '1', '--redis', redis.url, '--room', `sv${process.pid}`])
  await redis.stop()
  const [victim] = childPids(room.child.pid!)
  assert.ok(victim !== undefined)
  process.kill(victim, 'SIGKILL')
  // The replacements fail (Redis refuses) and are replaced again: at once, 100 ms, 200 ms, …
  await waitFor('three failed replacements', () => (room.log().match(/cannot reach Redis.*\[PETREL_ERR_REDIS_UNAVAILABLE\]/g) ?? []).length >= 3, 20_000)
  assert.match(room.log(), new RegExp(`worker ${victim} exited \\(SIGKILL\\); replacing it\\n`))
  // A failed start is killed if it has not exited by itself when its message arrives.
  assert.match(room.log(), /exited \((code 1|SIGKILL)\); replacing it in 100 ms\n/)
  assert.match(room.log(), /exited \((code 1|SIGKILL)\); replacing it in 200 ms\n/)
  assert.equal(room.child.exitCode, null, 'the master keeps running')
  const back = await startRedis(redis.port)
  t.after(() => back.stop())
  await waitFor('a replacement that listens', () => /worker 0 \(pid \d+\) listening on \d+\n[^]*$/.test(room.log().split('replacing it in')!.at(-1)!), 40_000)
  const a = await connectLines(room.port)
  t.after(() => a.socket.destroy())
  assert.match(await a.until(/^\* welcome/), /^\* welcome, you are guest\d+;/)
})

test('chat, with and without --workers: signals are events as for serve: HUP and USR1 get a line and the room stays, QUIT closes it (exit 0, workers gone)', async (t) => {
  for (const args of [['--workers', '2'], []]) {
    const room = await startChat(t, args)
    const workers = childPids(room.child.pid!)
    room.child.kill('SIGHUP')
    await waitFor('the SIGHUP line', () => /SIGHUP: a room has no configuration file to read again; restart it to change its flags\n/.test(room.log()), 10_000)
    room.child.kill('SIGUSR1')
    await waitFor('the SIGUSR1 line', () => /SIGUSR1: a room has no log file to reopen/.test(room.log()), 10_000)
    const a = await connectLines(room.port)
    t.after(() => a.socket.destroy())
    assert.match(await a.until(/^\* welcome/), /^\* welcome, you are guest\d+;/, 'the room is still open')
    assert.deepEqual(childPids(room.child.pid!), workers, 'the workers were left alone')
    room.child.kill('SIGQUIT')
    const [code, signal] = await once(room.child, 'exit')
    assert.deepEqual([code, signal], [0, null], room.log())
    for (const pid of workers) await waitFor(`worker ${pid} gone`, () => isGone(pid), 5000)
  }
})

test('chat: a worker that stops reading the relay is killed with a PETREL_ERR_CHAT_WORKER_STALLED line and replaced; the room goes on', async (t) => {
  const room = await startChat(t, ['--workers', '2'])
  const workers = childPids(room.child.pid!)
  const before = workers.map(socketCount)
  const talker = await connectLines(room.port)
  t.after(() => talker.socket.destroy())
  await talker.until(/^\* welcome/)
  const holder = workers.findIndex((pid, i) => socketCount(pid) > before[i]!)
  assert.ok(holder >= 0, 'the talker is on a worker')
  const stalled = workers[1 - holder]!
  // A stopped process reads nothing: every line relayed to it waits in its channel.
  process.kill(stalled, 'SIGSTOP')
  // Lines as fast as the talker's worker takes them, until the master gives up on the stalled one.
  const deadline = Date.now() + 60_000
  for (let sent = 0; !/has not read \d+ lines in a row/.test(room.log()); ) {
    assert.ok(Date.now() < deadline, `no stall line after ${sent} lines: ${room.log()}`)
    if (talker.socket.writableLength < 65536) {
      talker.say(Array.from({ length: 1000 }, (_, i) => `line ${sent + i}`).join('\n'))
      sent += 1000
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  assert.match(
    room.log(),
    new RegExp(
      `a chat worker stopped reading the room's lines from the master; .*: worker \\d \\(pid ${stalled}\\) has not read 10000 lines in a row; killing it`,
    ),
  )
  talker.socket.destroy()
  await waitFor('the stalled worker replaced', () => isGone(stalled) && childPids(room.child.pid!).length === 2, 10_000)
  // The talker's worker may still be working through the lines it had read: a newcomer is
  // welcomed once it is through.
  for (let attempt = 0; ; attempt++) {
    const newcomer = await connectLines(room.port)
    try {
      assert.match(await newcomer.until(/^\* welcome/), /^\* welcome, you are guest\d+;/)
      break
    } catch (err) {
      if (attempt === 10) throw err
    } finally {
      newcomer.socket.destroy()
    }
  }
})

/** test/fixtures/lifecycle-master.ts as a process, its stdout gathered; resolves with the pids of its first workers once they listen. */
async function lifecycleMaster(
  t: { after: (fn: () => void) => void },
  env: Record<string, string>,
): Promise<{ child: ChildProcess; log: () => string; workers: number[] }> {
  const child = spawn(process.execPath, ['test/fixtures/lifecycle-master.ts'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  let log = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (text: string) => (log += text))
  t.after(() => killTree(child))
  await waitFor('the workers to listen', () => /^ready /m.test(log) || child.exitCode !== null, 20_000)
  const ready = /^ready ([\d ]+)$/m.exec(log)
  assert.ok(ready, log)
  return { child, log: () => log, workers: ready[1]!.split(' ').map(Number) }
}

test('a stop during a rolling reload is acted on at once: the master does not replace every worker first', async (t) => {
  const master = await lifecycleMaster(t, { WORKERS: '3', SHUTDOWN_MS: '500', RELOAD_SHUTDOWN_MS: '500', RELOAD_START_DELAY: '2500' })
  master.child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 300))
  const stoppedAt = Date.now()
  master.child.kill('SIGTERM')
  const [code] = await once(master.child, 'exit')
  assert.equal(code, 0, master.log())
  // Waiting for the reload would take three starts of 2.5 s each.
  assert.ok(Date.now() - stoppedAt < 3_000, `exited ${Date.now() - stoppedAt} ms after SIGTERM:\n${master.log()}`)
  assert.doesNotMatch(master.log(), /reloaded; workers/)
})

test('an old worker that dies during a rolling reload is replaced once: the master keeps the configured number of workers', async (t) => {
  const master = await lifecycleMaster(t, { WORKERS: '2', SHUTDOWN_MS: '500', RELOAD_SHUTDOWN_MS: '500', RELOAD_START_DELAY: '700' })
  master.child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 300))
  process.kill(master.workers[1]!, 'SIGKILL')
  await waitFor('the reload to end', () => /reloaded; workers/.test(master.log()), 20_000)
  // Let a replacement the policy scheduled start too, then count the master's children.
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  assert.equal(childPids(master.child.pid!).length, 2, master.log())
  master.child.kill('SIGTERM')
  await once(master.child, 'exit')
})

test("a worker retired by a reload gets its own shutdown timeout, not the new configuration's: no SIGKILL while it finishes", async (t) => {
  // The old worker needs 3.5 s to close and was started with a 10 s shutdown timeout; the new configuration says 200 ms (plus the 2 s grace).
  const master = await lifecycleMaster(t, { WORKERS: '1', SHUTDOWN_MS: '10000', RELOAD_SHUTDOWN_MS: '200', CLOSE_DELAY: '3500' })
  master.child.kill('SIGHUP')
  await waitFor('the reload to end', () => /reloaded; workers/.test(master.log()), 20_000)
  assert.doesNotMatch(master.log(), /killed \(SIGKILL\)/)
  master.child.kill('SIGTERM')
  await once(master.child, 'exit')
})

test('a fork the system refuses (out of descriptors) is retried on the backoff schedule; the supervisor lives on and gets its worker back', async () => {
  const child = spawn('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" test/fixtures/fork-fail.ts`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (text: string) => (out += text))
  child.stderr!.resume()
  const [code] = await once(child, 'exit')
  assert.equal(code, 0, out)
  assert.match(out, /could not start a worker \(spawn .* EMFILE\); replacing it in \d+ ms/)
  assert.match(out, /^workers 1$/m)
})
