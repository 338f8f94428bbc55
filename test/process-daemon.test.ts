// `petrel serve --daemon`: the command returns only once the server is up, or prints the
// daemon's own one-line error and exits non-zero — whatever the daemon's output goes to.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import net from 'node:net'
import path from 'node:path'
import { once } from 'node:events'
import { petrel, startPetrel } from './helpers/petrel.ts'

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-daemon-'))
  t.after(() => {
    // A daemon that did start after all must not outlive the test.
    const pidFile = path.join(dir, 'petrel.pid')
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0
    if (pid > 0)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** The parent's answer: one line on stderr, a non-zero status, no stack trace. */
function assertOneLineFailure(r: { status: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.status, 0, `non-zero exit; stderr: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /    at /, 'no stack trace')
  assert.doesNotMatch(r.stderr, /exited during start-up/, "the daemon's own error, not a generic one")
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  assert.match(r.stderr, pattern)
}

test("--daemon on a taken port: the parent prints the daemon's error naming the port, exits 1 (one process and --workers)", async (t) => {
  const holder = net.createServer().listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.after(() => holder.close())
  const port = (holder.address() as net.AddressInfo).port
  for (const extra of [[], ['--workers', '1', '--user', 'root']]) {
    const dir = tempDir(t)
    const r = petrel('serve', '--daemon', '--pid', path.join(dir, 'petrel.pid'), '--port', String(port), ...extra)
    assertOneLineFailure(
      r,
      new RegExp(`^petrel: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use; .*\\[PETREL_ERR_ADDRESS_IN_USE\\]$`, 'm'),
    )
    assert.equal(existsSync(path.join(dir, 'petrel.pid')), false, 'the pidfile was removed')
  }
})

test('--daemon with a log in a missing directory: the parent prints the error naming the directory', (t) => {
  const dir = tempDir(t)
  const missing = path.join(dir, 'no-such-dir')
  const r = petrel('serve', '--daemon', '--pid', path.join(dir, 'petrel.pid'), '--port', '0', '--access-log', path.join(missing, 'access.log'))
  assertOneLineFailure(
    r,
    new RegExp(
      `^petrel: cannot open ${missing}/access\\.log: its directory does not exist; create the directory or give a path in one that exists \\[PETREL_ERR_NO_DIRECTORY\\]$`,
      'm',
    ),
  )
})

test('--daemon with a pidfile a running server holds: the parent prints the error naming the pidfile', async (t) => {
  const running = await startPetrel(t, [])
  const r = petrel('serve', '--daemon', '--pid', running.pidFile, '--port', '0')
  assertOneLineFailure(
    r,
    new RegExp(`^petrel: the pidfile is held by a running server: ${running.pidFile} names process ${running.child.pid}, which is running`, 'm'),
  )
  assert.equal(Number(readFileSync(running.pidFile, 'utf8')), running.child.pid, 'the running server keeps its pidfile')
})
