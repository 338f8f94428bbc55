// Static files (issue 17, item 10): a server out of file descriptors (EMFILE) cannot open the
// file it was asked for. That says nothing about the file: the answer is 503 with Retry-After,
// the error log says why, and nothing is cached — once descriptors are free again the same file
// is served, well within the cache's validity. The server is the real `petrel serve` in a child
// process; its open-files limit is lowered and raised from outside with prlimit(1).

import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RawClient, req } from './helpers/tcp.ts'
import { tempDir, writeTree, pattern } from './helpers/static-fixture.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
const base = tempDir('descriptors')
const ROOT = path.join(base, 'root')
const BIG = pattern(200_000)
writeTree(ROOT, { 'warm.txt': 'warm', 'small.txt': 'small file body', 'big.bin': BIG, dir: { 'one.txt': '1' } })

/** The soft open-files limit of a process, from /proc (Node has no getrlimit). */
function softNoFile(pid: number): string {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))!
  return line.split(/\s{2,}/)[1]!
}

function setSoftNoFile(pid: number, soft: string): void {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:`], { encoding: 'utf8' })
  assert.equal(r.status, 0, `prlimit: ${r.stderr}`)
  assert.equal(softNoFile(pid), soft)
}

test('out of descriptors: 503 with Retry-After and a log line, never cached as missing; served 200 once descriptors are free', async (t) => {
  requireDebianPackage('util-linux')
  // A long cache validity: a "missing" cached by mistake would still be answered after the limit is raised.
  const child = spawn(
    process.execPath,
    [BIN, 'serve', ROOT, '--host', '127.0.0.1', '--port', '0', '--open-file-cache-valid', '60s', '--small-file-bytes', '1024', '--list'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  t.after(() => child.kill('SIGKILL'))
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const deadline = Date.now() + 15_000
  let port = 0
  while (port === 0 && Date.now() < deadline && child.exitCode === null) {
    const m = /on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)
    if (m) port = Number(m[1])
    else await sleep(20)
  }
  assert.ok(port > 0, `server started: ${stdout}${stderr}`)
  const pid = child.pid!

  // The connection exists before the limit drops: the requests need no new descriptor to arrive.
  const c = await RawClient.connect(port)
  t.after(() => c.destroy())
  await c.write(req('GET', '/warm.txt'))
  assert.equal((await c.readResponse()).status, 200)

  const limit = softNoFile(pid)
  // Below every descriptor number in use: any open() fails with EMFILE, the ones already open keep working.
  setSoftNoFile(pid, '3')
  try {
    for (const target of ['/small.txt', '/big.bin', '/dir/']) {
      await c.write(req('GET', target))
      const r = await c.readResponse({ timeoutMs: 10_000 })
      assert.equal(r.status, 503, `${target} while out of descriptors: ${r.raw.toString('latin1').slice(0, 300)}`)
      assert.equal(r.headers['retry-after'], '1', target)
      assert.match(r.text, /no file descriptor free/, target)
      assert.ok(!r.text.includes(ROOT), `${target}: the answer names no path`)
      assert.equal(c.closedByServer, false, `${target}: the connection stays open`)
    }
  } finally {
    setSoftNoFile(pid, limit)
  }
  assert.match(stderr, /static: out of file descriptors \(EMFILE\) opening .*small\.txt: answered 503; raise the open-files limit/)

  // Descriptors are free again: the same files, on the same connection and a new one.
  await c.write(req('GET', '/small.txt'))
  const small = await c.readResponse()
  assert.equal(small.status, 200)
  assert.equal(small.text, 'small file body')
  await c.write(req('GET', '/big.bin'))
  const big = await c.readResponse({ timeoutMs: 10_000 })
  assert.equal(big.status, 200)
  assert.ok(big.body.equals(BIG), 'big.bin byte for byte')
  const fresh = await RawClient.connect(port)
  t.after(() => fresh.destroy())
  await fresh.write(req('GET', '/dir/'))
  const listing = await fresh.readResponse()
  assert.equal(listing.status, 200)
  assert.match(listing.text, /one\.txt/)
})
