// What an idle server holds: a worker of `petrel serve ROOT` loads the code of a file server and
// nothing it does not use (database drivers, the Redis client, the thread pool, the proxy, CGI,
// the admin, node:http, TLS, log files, listings), and stays under 60 MB of resident memory (docs/process.md, "Memory").
// The CLI itself, master and workers, is checked too: pg and node:sqlite only with --database,
// node-redis only with chat --redis.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BIN, childPids, exitCode, startPetrel } from './helpers/petrel.ts'

const SERVE = new URL('../src/apps/serve/serve.ts', import.meta.url).href
const WORKER_USER = process.getuid?.() === 0 ? ['--user', 'root'] : []

/** Module code that records in `seen` the URL of every module the process resolves from then on. */
const RECORD_RESOLVED = `
  import module from 'node:module'
  const seen = new Set()
  module.registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r } })
`

/** Modules a file server has no use for. */
const UNUSED =
  /node_modules\/(pg|pg-[a-z]+|piscina|mime-types|redis|@redis\/[a-z-]+)\/|^node:(sqlite|http|https|crypto|tls|zlib|child_process|worker_threads)$|\/src\/(monitor|apps\/proxy|apps\/accounts|apps\/chat|apps\/inetd|apps\/bench)\/|\/src\/apps\/serve\/(cgi|cgi-spawner|cgi-message|demo-work|listing|https-redirect|tickets)\.ts$|\/src\/(server\/tls|core\/log-file|server\/access-log)\.ts$|\/src\/process\/pool\//

test('a server of files loads no module it does not use', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-mem-'))
  try {
    writeFileSync(path.join(dir, 'index.html'), 'hello\n')
    // What the worker process runs (serve.ts's startServe), with every module it resolves recorded.
    const script = `
      ${RECORD_RESOLVED}
      const { startServe } = await import(${JSON.stringify(SERVE)})
      const serving = await startServe({ root: ${JSON.stringify(dir)}, host: '127.0.0.1', port: 0 })
      const reply = await fetch('http://127.0.0.1:' + serving.address.port + '/index.html')
      await reply.text()
      await serving.close('stop')
      console.log(JSON.stringify([...seen]))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, r.stderr)
    const loaded = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[]
    assert.ok(
      loaded.some((url) => url.endsWith('/src/apps/serve/static.ts')),
      'the probe saw the file server load',
    )
    assert.deepEqual(
      loaded.filter((url) => UNUSED.test(url)),
      [],
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an idle worker of petrel serve ROOT stays under 60 MB of resident memory', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-mem-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'index.html'), 'hello\n')
  // The first start fills the compile cache (bin/petrel.js): a later start is what a server's
  // workers are, every day but the first.
  const warm = await startPetrel(t, [dir, '--workers', '1', ...WORKER_USER])
  warm.child.kill('SIGTERM')
  await new Promise((resolve) => warm.child.once('exit', resolve))
  const running = await startPetrel(t, [dir, '--workers', '1', ...WORKER_USER])
  await sleep(2000)
  const [worker] = childPids(running.child.pid!)
  assert.ok(worker !== undefined, 'a worker runs')
  const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))![1])
  assert.ok(rssKb < 60 * 1024, `the idle worker holds ${(rssKb / 1024).toFixed(1)} MB`)
  // It serves, too.
  assert.equal((await fetch(`http://127.0.0.1:${running.port}/index.html`)).status, 200)
})

/** The database drivers and the Redis client: what only --database (and chat --redis) may load. */
const DRIVERS = /node_modules\/(pg|pg-[a-z]+|redis|@redis\/[a-z-]+)\/|^node:sqlite$/

/**
 * Preloaded into every process of a `petrel serve` (NODE_OPTIONS reaches the workers too): it
 * records each module the process resolves and writes the list to PROBE_DIR/PID when it exits.
 */
const PROBE = `
  import { writeFileSync } from 'node:fs'
  ${RECORD_RESOLVED}
  process.on('exit', () => writeFileSync(process.env.PROBE_DIR + '/' + process.pid, JSON.stringify([...seen])))
`

/** The environment that preloads PROBE, and the lists the probed processes wrote once they exited. */
function probe(t: { after: (fn: () => void) => void }): { env: Record<string, string>; loaded: () => string[][] } {
  const probeDir = mkdtempSync(path.join(tmpdir(), 'petrel-probe-'))
  t.after(() => rmSync(probeDir, { recursive: true, force: true }))
  const file = path.join(probeDir, 'probe.mjs')
  writeFileSync(file, PROBE)
  return {
    env: { PROBE_DIR: probeDir, NODE_OPTIONS: `--import ${file}` },
    loaded: () =>
      readdirSync(probeDir)
        .filter((name) => /^\d+$/.test(name))
        .map((name) => JSON.parse(readFileSync(path.join(probeDir, name), 'utf8')) as string[]),
  }
}

/** What each process of `petrel serve ARGS` loaded, from its start to a SIGTERM stop, by pid. */
async function modulesOfServe(t: { after: (fn: () => void) => void }, args: string[]): Promise<string[][]> {
  const { env, loaded } = probe(t)
  const running = await startPetrel(t, args, { env })
  assert.equal((await fetch(`http://127.0.0.1:${running.port}/index.html`)).status, 200)
  running.child.kill('SIGTERM')
  assert.equal(await exitCode(running.child), 0, running.log())
  return loaded()
}

test('petrel serve ROOT loads no database driver and no Redis client, in the master or a worker; --database sqlite: loads node:sqlite alone', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-mem-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'index.html'), 'hello\n')
  const withWorkers = await modulesOfServe(t, [dir, '--workers', '1', ...WORKER_USER])
  assert.equal(withWorkers.length, 2, 'the master and its worker each wrote what they loaded')
  for (const loaded of withWorkers) {
    assert.ok(
      loaded.some((url) => url.endsWith('/src/cli/serve.ts') || url.endsWith('/src/apps/serve/static.ts')),
      'the probe saw petrel load',
    )
    assert.deepEqual(
      loaded.filter((url) => DRIVERS.test(url)),
      [],
    )
  }
  // The same probe sees a driver when one is used: the database the flag names, and no other.
  const [single] = await modulesOfServe(t, [dir, '--database', `sqlite:${path.join(dir, 'accounts.db')}`])
  assert.deepEqual(
    single!.filter((url) => DRIVERS.test(url)),
    ['node:sqlite'],
  )
})

test('petrel chat without --redis loads no Redis client', async (t) => {
  const { env, loaded } = probe(t)
  const child = spawn(process.execPath, [BIN, 'chat', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  t.after(() => child.kill('SIGKILL'))
  let log = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => (log += text))
  const deadline = Date.now() + 20_000
  while (!log.includes('room open')) {
    assert.ok(Date.now() < deadline && child.exitCode === null, log)
    await sleep(50)
  }
  child.kill('SIGTERM')
  assert.equal(await exitCode(child), 0, log)
  const [room] = loaded()
  assert.ok(
    room!.some((url) => url.endsWith('/src/apps/chat/room.ts')),
    'the probe saw the room load',
  )
  assert.deepEqual(
    room!.filter((url) => DRIVERS.test(url) || url.endsWith('/src/apps/chat/redis-hub.ts')),
    [],
  )
})
