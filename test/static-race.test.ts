// Static files (issue 17, item 4): "paths cannot leave ROOT, symlinks included" must hold while
// a racer swaps a directory inside ROOT for a symlink to outside it. A worker thread renames the
// directories back and forth without pause while raw TCP clients fetch every kind of thing the
// static server answers with — in-memory files, files read from a cached descriptor, files
// opened per request (descriptor budget 0), .gz variants, index.html, directory listings and
// ranges — with the file cache's validity at 0 so every request looks the path up again. Not one
// byte from outside may come back.

import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { spawnSync } from 'node:child_process'
import { tempDir, writeTree, startStatic, type StaticServer } from './helpers/static-fixture.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import type { RawClient } from './helpers/tcp.ts'

const base = tempDir('race')
const ROOT = path.join(base, 'root')
const OUTSIDE = path.join(base, 'outside')
const SECRET = 'OUTSIDE-SECRET-4b7e'
const SECRET_NAME = 'OUTSIDE-NAME-c81d.txt'
/** Larger than smallFileBytes below, so it is served from a descriptor rather than from memory. */
const BIG_BYTES = 3000

function big(marker: string): string {
  return marker.repeat(Math.ceil(BIG_BYTES / marker.length)).slice(0, BIG_BYTES)
}

// The same names inside and outside, so a request that crosses over finds something to serve.
const shape = (marker: string) => ({
  'small.txt': `${marker} small\n`,
  'big.bin': big(marker),
  'page.js': `${marker} plain js\n`,
  // Not real gzip: the server sends the variant's bytes as they are, and these stay readable.
  'page.js.gz': `${marker} gz bytes\n`,
  'index.html': `<p>${marker} index</p>\n`,
})
writeTree(ROOT, {
  d: shape('inside'),
  l: { 'listed.txt': 'inside listed\n' },
  'd.link': { symlink: path.join(OUTSIDE, 'd') },
  'l.link': { symlink: path.join(OUTSIDE, 'l') },
})
writeTree(OUTSIDE, { d: shape(SECRET), l: { [SECRET_NAME]: `${SECRET} listed\n` } })

/**
 * Swap ROOT/NAME between the real directory and a symlink to OUTSIDE/NAME as fast as renames go,
 * until the flag is set. Each pass leaves the tree as it found it.
 */
const RACER = `
const { renameSync } = require('node:fs')
const { workerData } = require('node:worker_threads')
const stop = new Int32Array(workerData.stop)
let swaps = 0
while (Atomics.load(stop, 0) === 0) {
  for (const dir of workerData.dirs) {
    renameSync(dir, dir + '.real')
    renameSync(dir + '.link', dir)
    renameSync(dir, dir + '.link')
    renameSync(dir + '.real', dir)
  }
  swaps++
}
Atomics.store(stop, 1, swaps)
`

const TARGETS: Array<{ target: string; headers?: string; list?: boolean }> = [
  { target: '/d/small.txt' },
  { target: '/d/big.bin' },
  { target: '/d/big.bin', headers: 'Range: bytes=10-200\r\n' },
  { target: '/d/small.txt', headers: 'Range: bytes=0-5,8-12\r\n' },
  { target: '/d/page.js', headers: 'Accept-Encoding: gzip\r\n' },
  { target: '/d/' },
  { target: '/l/', list: true },
]

/** The request bytes of TARGETS, made once. */
const REQUESTS = TARGETS.map(({ target, headers }) => Buffer.from(`GET ${target} HTTP/1.1\r\nHost: t\r\n${headers ?? ''}\r\n`, 'latin1'))

interface Tally {
  requests: number
  outside: number
  insideOk: number
  /** Requests whose connection was cut before their response. */
  cut: number
  statuses: Map<number, number>
  firstLeak: string
}

/** One keep-alive client sending requests in pipelined batches until `total` have been answered. */
async function client(s: StaticServer, total: number, offset: number, tally: Tally, listing: boolean): Promise<void> {
  const BATCH = 8
  // A fresh connection now and then keeps the client's receive store small.
  const PER_CONNECTION = 400
  let c: RawClient | null = null
  let onConnection = 0
  for (let sent = 0; sent < total; sent += BATCH) {
    if (c === null || onConnection >= PER_CONNECTION) {
      c?.destroy()
      c = await s.connect()
      onConnection = 0
    }
    const batch: number[] = []
    for (let i = 0; i < BATCH; i++) {
      let which = (offset + sent + i) % TARGETS.length
      if (!listing && TARGETS[which]!.list === true) which = 0
      batch.push(which)
    }
    await c.write(Buffer.concat(batch.map((i) => REQUESTS[i]!)))
    onConnection += BATCH
    for (let i = 0; i < BATCH; i++) {
      let r
      try {
        r = await c.readResponse({ timeoutMs: 20_000 })
      } catch {
        // The server cut the connection: the rest of the batch is lost, and counted.
        tally.cut += BATCH - i
        c.destroy()
        c = null
        break
      }
      tally.requests++
      tally.statuses.set(r.status, (tally.statuses.get(r.status) ?? 0) + 1)
      const raw = r.raw.toString('latin1')
      if (raw.includes(SECRET) || raw.includes(SECRET_NAME)) {
        tally.outside++
        if (tally.firstLeak === '') tally.firstLeak = raw.slice(0, 300)
      } else if ((r.status === 200 || r.status === 206) && raw.includes('inside')) {
        tally.insideOk++
      }
    }
  }
  c?.destroy()
}

test('a directory swapped for a symlink to outside while requests run: zero outside bytes in 21,000 requests', async (t) => {
  // Three servers on the same ROOT: the default budget (small files in memory, larger ones from a
  // cached descriptor), no descriptor budget (every large file opened per request), and a
  // listing server. Validity 0: every request asks the file system again.
  const cached = await startStatic(t, { root: ROOT, cacheValidMs: 0, smallFileBytes: 1024 })
  const perRequest = await startStatic(t, { root: ROOT, cacheValidMs: 0, smallFileBytes: 1024, maxOpenFiles: 0 })
  const listing = await startStatic(t, { root: ROOT, cacheValidMs: 0, smallFileBytes: 1024, list: true })

  const stop = new Int32Array(new SharedArrayBuffer(8))
  const racer = new Worker(RACER, { eval: true, workerData: { stop: stop.buffer, dirs: [path.join(ROOT, 'd'), path.join(ROOT, 'l')] } })
  const racerExit = new Promise<number>((resolve, reject) => {
    racer.once('error', reject)
    racer.once('exit', resolve)
  })
  t.after(() => racer.terminate())

  const tally: Tally = { requests: 0, outside: 0, insideOk: 0, cut: 0, statuses: new Map(), firstLeak: '' }
  const PER_CLIENT = 3000
  try {
    await Promise.all([
      client(cached, PER_CLIENT, 0, tally, false),
      client(cached, PER_CLIENT, 3, tally, false),
      client(perRequest, PER_CLIENT, 1, tally, false),
      client(perRequest, PER_CLIENT, 4, tally, false),
      client(listing, PER_CLIENT, 2, tally, true),
      client(listing, PER_CLIENT, 5, tally, true),
      client(listing, PER_CLIENT, 6, tally, true),
    ])
  } finally {
    Atomics.store(stop, 0, 1)
    await racerExit
  }

  const summary = `${tally.requests} requests (${tally.cut} cut), statuses ${JSON.stringify([...tally.statuses])}, ${Atomics.load(stop, 1)} swap passes`
  t.diagnostic(summary)
  assert.ok(tally.requests >= 20_000, summary)
  assert.ok(Atomics.load(stop, 1) > 100, `the racer ran: ${summary}`)
  assert.equal(tally.outside, 0, `responses carrying outside content: ${tally.outside} (${summary}); first: ${JSON.stringify(tally.firstLeak)}`)
  // The race made some answers 404, but the inside files were served all along.
  // The file is opened before the head is sent, so a rename never cuts a response short.
  assert.equal(tally.cut, 0, `connections cut: ${summary}`)
  assert.ok(tally.insideOk > tally.requests / 10, `inside content served: ${tally.insideOk} (${summary})`)
  for (const s of [cached, perRequest, listing])
    assert.deepEqual(
      s.errors.map((e) => e.message),
      [],
    )
  // The tree is as it was: the racer always finishes a pass.
  assert.ok(fs.lstatSync(path.join(ROOT, 'd')).isDirectory())
  assert.ok(fs.lstatSync(path.join(ROOT, 'd.link')).isSymbolicLink())
})

test('without /proc, `petrel serve ROOT` refuses to start: no opened file could be checked', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to unmount /proc in a private mount namespace')
  requireDebianPackage('util-linux')
  const bin = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
  const script = 'umount -l /proc && exec "$0" "$@"'
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, process.execPath, bin, 'serve', ROOT, '--port', '0'], {
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(r.status, 1, `exit status (stderr: ${r.stderr})`)
  assert.match(r.stderr, /^petrel: serving files needs Linux with \/proc mounted: .*; mount \/proc \[PETREL_ERR_NO_PROC_FD\]$/m)
})
