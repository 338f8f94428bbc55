// What an idle server holds: a worker of `petrel serve ROOT` loads the code of a file server and
// nothing it does not use (database drivers, the thread pool, the proxy, CGI, the admin, node:http),
// and stays under 60 MB of resident memory (docs/process.md, "Memory").

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { childPids, startPetrel } from './helpers/petrel.ts'

const SERVE = new URL('../src/apps/serve/serve.ts', import.meta.url).href
const WORKER_USER = process.getuid?.() === 0 ? ['--user', 'root'] : []

/** Modules a file server has no use for. */
const UNUSED = /node_modules\/(pg|pg-[a-z]+|piscina|mime-types)\/|^node:(sqlite|http|https|crypto|child_process|worker_threads)$|\/src\/(monitor|apps\/proxy|apps\/accounts|apps\/chat|apps\/inetd|apps\/bench)\/|\/src\/apps\/serve\/(cgi|cgi-spawner|demo-work)\.ts$|\/src\/process\/pool\//

test('a server of files loads no module it does not use', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-mem-'))
  try {
    writeFileSync(path.join(dir, 'index.html'), 'hello\n')
    // What the worker process runs (serve.ts's startServe), with every module it resolves recorded.
    const script = `
      import module from 'node:module'
      const seen = new Set()
      module.registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r } })
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
    assert.ok(loaded.some((url) => url.endsWith('/src/apps/serve/static.ts')), 'the probe saw the file server load')
    assert.deepEqual(loaded.filter((url) => UNUSED.test(url)), [])
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
