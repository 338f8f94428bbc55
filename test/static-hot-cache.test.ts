// The hot-file cache (issue 21): files up to --small-file-bytes (1 MiB) served from memory
// within --file-cache-bytes (64 MiB), least recently used evicted, validated against the file
// system like the open-file cache. Which way a file was served is told from outside by
// overwriting it in place (same inode, same size) while its entry is valid: a file held in memory
// still answers its old bytes, one streamed from disk reads the new ones from its descriptor.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { FileCache, type FileEntry } from '../src/apps/serve/file-cache.ts'
import { MemoryBudget } from '../src/apps/serve/memory-budget.ts'
import { STATIC_DEFAULTS } from '../src/apps/serve/static.ts'
import { tempDir, writeTree, startStatic, pattern } from './helpers/static-fixture.ts'
import { startPetrel } from './helpers/petrel.ts'
import { makeTestCa } from './helpers/tls.ts'
import { execFileSync } from 'node:child_process'

const base = tempDir('hot')
const MiB = 1024 * 1024

/** `n` bytes that differ from pattern(n) at every position. */
function otherPattern(n: number): Buffer {
  const b = pattern(n)
  for (let i = 0; i < n; i++) b[i] = b[i]! ^ 0xff
  return b
}

/** Rewrite a file in place: the same inode and size, other bytes. */
function overwriteInPlace(file: string, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, 0)
  } finally {
    fs.closeSync(fd)
  }
}

/** Descriptors of this process that point into `dir`. */
function descriptorsUnder(dir: string): number {
  let n = 0
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + path.sep)) n++
    } catch {}
  }
  return n
}

describe('hot-file cache: which files are served from memory', () => {
  test('a 1 MiB file is served from memory and a 1 MiB + 1 byte file from disk, by default', async (t) => {
    assert.equal(STATIC_DEFAULTS.smallFileBytes, MiB)
    const root = path.join(base, 'limit')
    writeTree(root, { 'exact.bin': pattern(MiB), 'over.bin': pattern(MiB + 1) })
    const s = await startStatic(t, { root, cacheValidMs: 60_000 })
    assert.ok((await s.get('/exact.bin')).body.equals(pattern(MiB)))
    assert.ok((await s.get('/over.bin')).body.equals(pattern(MiB + 1)))
    overwriteInPlace(path.join(root, 'exact.bin'), otherPattern(MiB))
    overwriteInPlace(path.join(root, 'over.bin'), otherPattern(MiB + 1))
    const exact = await s.get('/exact.bin')
    assert.equal(exact.status, 200)
    assert.equal(exact.headers['content-length'], String(MiB))
    assert.ok(exact.body.equals(pattern(MiB)), 'the 1 MiB file answers the bytes held in memory')
    assert.ok((await s.get('/over.bin')).body.equals(otherPattern(MiB + 1)), 'the larger file is read from disk at each request')
  })

  test('ranges, conditional requests and HEAD are answered from memory', async (t) => {
    const root = path.join(base, 'general')
    writeTree(root, { 'm.bin': pattern(300_000) })
    const s = await startStatic(t, { root, cacheValidMs: 60_000 })
    const first = await s.get('/m.bin')
    overwriteInPlace(path.join(root, 'm.bin'), otherPattern(300_000))
    const range = await s.get('/m.bin', { Range: 'bytes=1000-1999' })
    assert.equal(range.status, 206)
    assert.ok(range.body.equals(pattern(300_000).subarray(1000, 2000)), 'the range comes from the bytes in memory')
    const multi = await s.get('/m.bin', { Range: 'bytes=0-9,200000-200009' })
    assert.equal(multi.status, 206)
    assert.ok(multi.body.includes(pattern(300_000).subarray(200_000, 200_010)))
    assert.equal((await s.get('/m.bin', { 'If-None-Match': first.headers['etag']! })).status, 304)
    const head = await s.get('/m.bin', {}, 'HEAD')
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], '300000')
    assert.equal(head.body.length, 0)
  })

  test('a precompressed variant up to the limit is served from memory too', async (t) => {
    const root = path.join(base, 'variant')
    writeTree(root, { 'app.js': 'plain', 'app.js.gz': pattern(500_000) })
    const s = await startStatic(t, { root, cacheValidMs: 60_000 })
    assert.ok((await s.get('/app.js', { 'Accept-Encoding': 'gzip' })).body.equals(pattern(500_000)))
    overwriteInPlace(path.join(root, 'app.js.gz'), otherPattern(500_000))
    const again = await s.get('/app.js', { 'Accept-Encoding': 'gzip' })
    assert.equal(again.headers['content-encoding'], 'gzip')
    assert.ok(again.body.equals(pattern(500_000)))
  })
})

describe('hot-file cache: the memory budget', () => {
  test('the least recently used file is evicted to make room, and is read again from disk', async (t) => {
    const root = path.join(base, 'lru')
    const names = ['a', 'b', 'c', 'd']
    writeTree(root, Object.fromEntries(names.map((n) => [`${n}.txt`, Buffer.alloc(1000, n)])))
    // Room for three files of 1000 bytes.
    const s = await startStatic(t, { root, cacheValidMs: 60_000, fileCacheBytes: 3000 })
    for (const n of ['a', 'b', 'c', 'a', 'd']) assert.equal((await s.get(`/${n}.txt`)).status, 200)
    for (const n of names) overwriteInPlace(path.join(root, `${n}.txt`), Buffer.alloc(1000, n.toUpperCase()))
    // a was used after b, so b — the least recently used — made room for d.
    const served = Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await s.get(`/${n}.txt`)).text[0]])))
    assert.deepEqual(served, { a: 'a', b: 'B', c: 'c', d: 'd' })
  })

  test('a file larger than the whole budget is streamed from disk and evicts nothing', async (t) => {
    const root = path.join(base, 'too-big')
    writeTree(root, { 'small.txt': Buffer.alloc(1000, 's'), 'big.bin': pattern(5000) })
    const s = await startStatic(t, { root, cacheValidMs: 60_000, fileCacheBytes: 4000 })
    await s.get('/small.txt')
    assert.ok((await s.get('/big.bin')).body.equals(pattern(5000)))
    overwriteInPlace(path.join(root, 'small.txt'), Buffer.alloc(1000, 'S'))
    overwriteInPlace(path.join(root, 'big.bin'), otherPattern(5000))
    assert.equal((await s.get('/small.txt')).text[0], 's', 'still in memory')
    assert.ok((await s.get('/big.bin')).body.equals(otherPattern(5000)), 'read from disk')
  })

  test('a directory larger than the budget: the bytes held never exceed it, and descriptors are freed', async (t) => {
    const root = path.join(base, 'flood')
    fs.mkdirSync(root)
    const sizes: number[] = []
    for (let i = 0; i < 48; i++) sizes.push(i % 8 === 0 ? MiB : 100_000 + i)
    sizes.forEach((size, i) => fs.writeFileSync(path.join(root, `f${i}.bin`), pattern(size)))
    const budget = 2 * MiB
    const cache = new FileCache({ root, validMs: 60_000, smallFileBytes: MiB, maxCachedBytes: budget, maxOpenFiles: 4, followSymlinks: false })
    t.after(() => cache.clear())
    let highest = 0
    // Twice over, sixteen lookups at a time: reads under way are counted against the budget too.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < sizes.length; i += 16) {
        const batch = sizes.slice(i, i + 16).map(async (size, j) => {
          const entry = await cache.lookup(path.join(root, `f${i + j}.bin`))
          highest = Math.max(highest, cache.stats().memoryBytes)
          assert.equal(entry.size, size)
          if (entry.body !== null) assert.ok(entry.body.equals(pattern(size)))
        })
        await Promise.all(batch)
      }
    }
    const stats = cache.stats()
    assert.ok(highest <= budget, `at most ${budget} bytes held, saw ${highest}`)
    assert.ok(stats.memoryFiles > 0 && stats.memoryBytes > budget / 2, `the budget is used: ${JSON.stringify(stats)}`)
    assert.ok(descriptorsUnder(root) <= 4, 'descriptors kept within maxOpenFiles')
    cache.clear()
    assert.deepEqual(cache.stats(), { entries: 0, memoryBytes: 0, memoryFiles: 0, openFiles: 0 })
    await sleep(50)
    assert.equal(descriptorsUnder(root), 0, 'clear() closes every descriptor')
  })

  test('one budget shared by two roots (two sites): together they hold at most it, and the least recently used anywhere makes room', async (t) => {
    const roots = ['site-a', 'site-b'].map((name) => path.join(base, name))
    for (const root of roots) {
      fs.mkdirSync(root)
      for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(root, `f${i}.bin`), pattern(100_000))
    }
    const memory = new MemoryBudget(450_000)
    const [a, b] = roots.map((root) => new FileCache({ root, validMs: 60_000, smallFileBytes: MiB, maxCachedBytes: 10 * MiB, memory, followSymlinks: false }))
    t.after(() => {
      a!.clear()
      b!.clear()
    })
    const held = (): number => a!.stats().memoryBytes + b!.stats().memoryBytes
    // Each cache's own maxCachedBytes (10 MiB) would hold all twenty files; the shared budget holds four.
    for (let i = 0; i < 10; i++) {
      for (const [cache, root] of [
        [a!, roots[0]!],
        [b!, roots[1]!],
      ] as const) {
        const entry = await cache.lookup(path.join(root, `f${i}.bin`))
        assert.ok(entry.body?.equals(pattern(100_000)))
        assert.ok(held() <= 450_000 && memory.bytes === held(), `held ${held()}, budget counts ${memory.bytes}`)
      }
    }
    assert.equal(held(), 400_000)
    // The newest four are b's f9, a's f9, b's f8, a's f8; a hit on a's f8 keeps it when b's f0 comes back.
    assert.notEqual((a!.lookup(path.join(roots[0]!, 'f8.bin')) as FileEntry).body, null)
    await b!.lookup(path.join(roots[1]!, 'f0.bin'))
    assert.equal(a!.stats().memoryFiles + b!.stats().memoryFiles, 4)
    assert.notEqual((a!.lookup(path.join(roots[0]!, 'f8.bin')) as FileEntry).body, null, 'the recently used file of the other site stays')
    a!.clear()
    b!.clear()
    assert.equal(memory.bytes, 0)
  })

  test('a file read again after its validity keeps the budget: its old bytes are given back first', async () => {
    const root = path.join(base, 'refresh')
    writeTree(root, { 'a.bin': pattern(600), 'b.bin': pattern(600) })
    const cache = new FileCache({ root, validMs: 0, smallFileBytes: MiB, maxCachedBytes: 1200, followSymlinks: false })
    for (let i = 0; i < 5; i++) {
      const [a, b] = await Promise.all([cache.lookup(path.join(root, 'a.bin')), cache.lookup(path.join(root, 'b.bin'))])
      assert.ok(a.body !== null && b.body !== null, 'both fit, whatever was held before')
      assert.ok(cache.stats().memoryBytes <= 1200)
    }
    cache.clear()
  })

  test('small bodies count all the memory they keep: none pins a slab of the shared buffer pool', async (t) => {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const root = path.join(base, 'slabs')
    fs.mkdirSync(root)
    const count = 400
    for (let i = 0; i < count; i++) fs.writeFileSync(path.join(root, `t${i}.txt`), 'x'.repeat(100))
    const cache = new FileCache({ root, validMs: 60_000, smallFileBytes: MiB, maxCachedBytes: MiB, followSymlinks: false })
    t.after(() => cache.clear())
    gc()
    const before = process.memoryUsage().arrayBuffers
    for (let i = 0; i < count; i++) {
      // Other work takes most of the shared pool between two reads, as requests do in a server.
      Buffer.allocUnsafe(4000)
      const entry = await cache.lookup(path.join(root, `t${i}.txt`))
      assert.equal(entry.body?.length, 100)
    }
    gc()
    const held = process.memoryUsage().arrayBuffers - before
    assert.equal(cache.stats().memoryBytes, count * 100)
    // 40,000 bytes of bodies; a pooled slab each would be 400 × 8 KiB = 3.2 MiB.
    assert.ok(held < 512 * 1024, `array buffers grew by ${held} bytes for ${count * 100} bytes of bodies`)
  })
})

describe('hot-file cache: validation against the file system', () => {
  test('a 1 MiB file in memory changed on disk, or replaced by rename, is served fresh after the validity window', async (t) => {
    const root = path.join(base, 'fresh')
    writeTree(root, { 'f.bin': pattern(MiB) })
    const file = path.join(root, 'f.bin')
    const s = await startStatic(t, { root, cacheValidMs: 200 })
    assert.ok((await s.get('/f.bin')).body.equals(pattern(MiB)))
    overwriteInPlace(file, otherPattern(MiB))
    await sleep(350)
    assert.ok((await s.get('/f.bin')).body.equals(otherPattern(MiB)), 'changed in place')
    const staged = path.join(base, 'staged.bin')
    fs.writeFileSync(staged, pattern(MiB - 10))
    fs.renameSync(staged, file)
    await sleep(350)
    const renamed = await s.get('/f.bin')
    assert.equal(renamed.headers['content-length'], String(MiB - 10))
    assert.ok(renamed.body.equals(pattern(MiB - 10)), 'replaced by rename')
  })
})

describe('hot-file cache: petrel serve', () => {
  test('--file-cache-bytes holds the process RSS under a directory of 1 MiB files far larger than it', async (t) => {
    const root = path.join(base, 'rss')
    fs.mkdirSync(root)
    const count = 144
    for (let i = 0; i < count; i++) fs.writeFileSync(path.join(root, `f${i}.bin`), pattern(MiB))
    const run = await startPetrel(t, [root, '--file-cache-bytes', String(8 * MiB), '--open-file-cache-valid', '60s'])
    const pid = run.child.pid!
    const rssBytes = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
    const get = async (i: number): Promise<void> => {
      const response = await fetch(`http://127.0.0.1:${run.port}/f${i}.bin`)
      const body = Buffer.from(await response.arrayBuffer())
      assert.equal(response.status, 200)
      assert.equal(body.length, MiB)
    }
    for (let i = 0; i < 8; i++) await get(i)
    const baseline = rssBytes()
    let highest = baseline
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < count; i += 8) {
        await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((j) => get(i + j)))
        highest = Math.max(highest, rssBytes())
      }
    }
    // Every file held would be 144 MiB more. The budget is 8 MiB; evicted bytes are freed by the
    // garbage collector, which V8 runs once external memory has grown by about 64 MiB (measured:
    // about 75 MiB of growth however many files pass through).
    assert.ok(highest - baseline < 100 * MiB, `RSS grew by ${Math.round((highest - baseline) / MiB)} MiB (from ${Math.round(baseline / MiB)} MiB)`)
  })

  test('over HTTPS, a 1 MiB file and its ranges are served from memory', async (t) => {
    const root = path.join(base, 'https')
    writeTree(root, { 'f.bin': pattern(MiB) })
    const ca = makeTestCa(path.join(base, 'ca'))
    const cert = ca.issue(['localhost', '127.0.0.1'])
    const run = await startPetrel(t, [root, '--tls-cert', cert.cert, '--tls-key', cert.key, '--open-file-cache-valid', '60s'])
    const curl = (...args: string[]): Buffer =>
      execFileSync('curl', ['-sS', '--fail', '--cacert', ca.caCert, '--max-time', '20', ...args, `https://127.0.0.1:${run.port}/f.bin`])
    assert.ok(curl().equals(pattern(MiB)))
    overwriteInPlace(path.join(root, 'f.bin'), otherPattern(MiB))
    assert.ok(curl().equals(pattern(MiB)), 'the whole file from memory')
    assert.ok(curl('-r', '500000-500099').equals(pattern(MiB).subarray(500_000, 500_100)), 'a range from memory')
  })
})
