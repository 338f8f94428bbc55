// Static files (issue 3): the open-file cache (changes on disk seen once cacheValidMs passes),
// small files from memory, large files streamed exactly (20 MB), and a 2 GiB sparse file read
// by a range near its end, over raw TCP.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { req } from './helpers/tcp.ts'
import { tempDir, writeTree, startStatic, pattern } from './helpers/static-fixture.ts'

const base = tempDir('cache')

describe('open-file cache', () => {
  test('a file changed on disk is served fresh once cacheValidMs passes (same size and new size)', async (t) => {
    const root = path.join(base, 'fresh')
    writeTree(root, { 'f.txt': 'version-1' })
    const file = path.join(root, 'f.txt')
    const s = await startStatic(t, { root, cacheValidMs: 200 })
    assert.equal((await s.get('/f.txt')).text, 'version-1')
    fs.writeFileSync(file, 'version-2')
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000))
    await sleep(350)
    const r2 = await s.get('/f.txt')
    assert.equal(r2.text, 'version-2', 'same size, new content')
    fs.writeFileSync(file, 'version-3, which is longer')
    await sleep(350)
    const r3 = await s.get('/f.txt')
    assert.equal(r3.text, 'version-3, which is longer')
    assert.equal(r3.headers['content-length'], String('version-3, which is longer'.length))
  })

  test('a deleted file becomes 404, and a new file appears, after cacheValidMs', async (t) => {
    const root = path.join(base, 'appear')
    writeTree(root, { 'gone.txt': 'here now' })
    const s = await startStatic(t, { root, cacheValidMs: 200 })
    assert.equal((await s.get('/gone.txt')).status, 200)
    assert.equal((await s.get('/new.txt')).status, 404)
    fs.rmSync(path.join(root, 'gone.txt'))
    fs.writeFileSync(path.join(root, 'new.txt'), 'brand new')
    await sleep(350)
    assert.equal((await s.get('/gone.txt')).status, 404)
    const n = await s.get('/new.txt')
    assert.equal(n.status, 200)
    assert.equal(n.text, 'brand new')
  })

  test('a file that grows past smallFileBytes is streamed whole once the cache refreshes', async (t) => {
    const root = path.join(base, 'grow')
    writeTree(root, { 'g.bin': pattern(100) })
    const s = await startStatic(t, { root, cacheValidMs: 200, smallFileBytes: 1024 })
    assert.ok((await s.get('/g.bin')).body.equals(pattern(100)))
    fs.writeFileSync(path.join(root, 'g.bin'), pattern(500_000))
    await sleep(350)
    const r = await s.get('/g.bin')
    assert.equal(r.headers['content-length'], '500000')
    assert.ok(r.body.equals(pattern(500_000)))
  })

  test('a precompressed variant added later is picked up after cacheValidMs', async (t) => {
    const root = path.join(base, 'variant-later')
    writeTree(root, { 'v.js': 'plain js' })
    const s = await startStatic(t, { root, cacheValidMs: 200 })
    const r1 = await s.get('/v.js', { 'Accept-Encoding': 'gzip' })
    assert.equal(r1.headers['content-encoding'], undefined)
    fs.writeFileSync(path.join(root, 'v.js.gz'), 'gzipped bytes')
    await sleep(350)
    const r2 = await s.get('/v.js', { 'Accept-Encoding': 'gzip' })
    assert.equal(r2.headers['content-encoding'], 'gzip')
    assert.equal(r2.text, 'gzipped bytes')
  })

  test('small files from memory: many concurrent requests all get the exact bytes', async (t) => {
    const root = path.join(base, 'small')
    const files: Record<string, Buffer> = {}
    for (let i = 0; i < 20; i++) files[`s${i}.bin`] = crypto.randomBytes(100 + i * 37)
    writeTree(root, files)
    const s = await startStatic(t, { root, smallFileBytes: 4096 })
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => s.get(`/s${i % 20}.bin`)))
    results.forEach((r, i) => assert.ok(r.body.equals(files[`s${i % 20}.bin`]!), `request ${i}`))
  })

  test('pipelined requests mixing small, large and ranged files arrive in order and exact', async (t) => {
    const root = path.join(base, 'mix')
    const big = crypto.randomBytes(1_500_000)
    writeTree(root, { 'a.txt': 'small a', 'big.bin': big, 'b.txt': 'small b' })
    const s = await startStatic(t, { root, smallFileBytes: 1024 })
    const c = await s.connect()
    await c.write(
      Buffer.concat([
        req('GET', '/a.txt'),
        req('GET', '/big.bin'),
        req('GET', '/b.txt'),
        req('GET', '/big.bin', { Range: 'bytes=1000-1999,-10' }),
        req('GET', '/a.txt'),
      ]),
    )
    const rs = await c.readResponses(5, { timeoutMs: 10_000 })
    assert.equal(rs[0]!.text, 'small a')
    assert.ok(rs[1]!.body.equals(big))
    assert.equal(rs[2]!.text, 'small b')
    assert.equal(rs[3]!.status, 206)
    assert.ok(rs[3]!.body.includes(big.subarray(1000, 2000)))
    assert.equal(rs[4]!.text, 'small a')
  })
})

describe('a streamed file that changes size while its entry is still valid', () => {
  test('a file that grew: exactly Content-Length bytes are sent, the next pipelined response is intact', async (t) => {
    const root = path.join(base, 'grew')
    const first = pattern(200_000)
    writeTree(root, { 'grow.bin': first, 'a.txt': 'small a' })
    const s = await startStatic(t, { root, cacheValidMs: 60_000, smallFileBytes: 1024 })
    assert.equal((await s.get('/grow.bin')).body.length, 200_000)
    fs.appendFileSync(path.join(root, 'grow.bin'), Buffer.alloc(100_000, 0x41))
    const c = await s.connect()
    await c.write(Buffer.concat([req('GET', '/grow.bin'), req('GET', '/a.txt')]))
    const rs = await c.readResponses(2, { timeoutMs: 3000 })
    assert.equal(rs[0]!.body.length, Number(rs[0]!.headers['content-length']))
    assert.ok(rs[0]!.body.subarray(0, 200_000).equals(first))
    assert.equal(rs[1]!.status, 200)
    assert.equal(rs[1]!.text, 'small a', 'the bytes after Content-Length are the next response, not file data')
  })

  test('a file that shrank: the server never leaves the client waiting for bytes that will not come', async (t) => {
    const root = path.join(base, 'shrank')
    writeTree(root, { 'shrink.bin': pattern(200_000) })
    const s = await startStatic(t, { root, cacheValidMs: 60_000, smallFileBytes: 1024 })
    assert.equal((await s.get('/shrink.bin')).body.length, 200_000)
    fs.truncateSync(path.join(root, 'shrink.bin'), 100)
    const c = await s.connect()
    await c.write(req('GET', '/shrink.bin'))
    let outcome: string
    try {
      const r = await c.readResponse({ timeoutMs: 2000 })
      outcome = `complete response of ${r.body.length} bytes`
    } catch (err) {
      outcome = c.closedByServer ? 'closed by the server' : `hung: ${(err as Error).message.slice(0, 80)}`
    }
    assert.ok(!outcome.startsWith('hung'), outcome)
  })
})

describe('large files', () => {
  test('a 20 MB file arrives exactly (streamed)', async (t) => {
    const root = path.join(base, 'large')
    const data = crypto.randomBytes(20 * 1024 * 1024)
    writeTree(root, { 'big.bin': data })
    const s = await startStatic(t, { root, smallFileBytes: 64 * 1024 })
    const r = await s.get('/big.bin')
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-length'], String(data.length))
    assert.equal(crypto.createHash('sha256').update(r.body).digest('hex'), crypto.createHash('sha256').update(data).digest('hex'))
  })

  test('a 2 GiB sparse file: HEAD size, a range near the end returns the right bytes quickly', async (t) => {
    const root = path.join(base, 'sparse')
    fs.mkdirSync(root, { recursive: true })
    const file = path.join(root, 'sparse.bin')
    const size = 2 ** 31 + 64 // just past 2 GiB: offsets beyond int32
    const fd = fs.openSync(file, 'w')
    fs.ftruncateSync(fd, size)
    const marker = Buffer.from('THE-END-MARKER-0123456789')
    fs.writeSync(fd, marker, 0, marker.length, size - marker.length)
    fs.closeSync(fd)
    const s = await startStatic(t, { root })
    const h = await s.get('/sparse.bin', {}, 'HEAD')
    assert.equal(h.headers['content-length'], String(size))
    const started = performance.now()
    const r = await s.get('/sparse.bin', { Range: `bytes=${size - marker.length}-` })
    const ms = performance.now() - started
    assert.equal(r.status, 206)
    assert.equal(r.headers['content-range'], `bytes ${size - marker.length}-${size - 1}/${size}`)
    assert.ok(r.body.equals(marker))
    assert.ok(ms < 1000, `took ${ms} ms`)
    const mid = await s.get('/sparse.bin', { Range: `bytes=${2 ** 31 - 4}-${2 ** 31 + 3}` })
    assert.ok(mid.body.equals(Buffer.alloc(8)))
    const multi = await s.get('/sparse.bin', { Range: `bytes=0-3,${size - 4}-` })
    assert.equal(multi.status, 206)
    assert.ok(multi.body.includes(Buffer.from('6789')))
    // A client that reads a little of the whole file and hangs up must not hold the server.
    const c = await s.connect()
    await c.write(req('GET', '/sparse.bin'))
    await c.until(() => c.bytesReceived > 1_000_000, 5000, '1 MB')
    c.destroy()
    const after = await s.get('/sparse.bin', { Range: 'bytes=0-3' })
    assert.equal(after.status, 206)
  })
})
