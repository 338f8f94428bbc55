// The open-file cache's bounds, observed from outside: descriptors held, bytes served.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FileCache } from '../src/apps/serve/file-cache.ts'
import { createServer } from '../src/index.ts'
import { staticFiles } from '../src/apps/serve/static.ts'
import { serve } from './helpers/serve.ts'
import { req, type HttpResponse, type RawClient } from './helpers/tcp.ts'

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length
}

test('descriptors kept open are capped by maxOpenFiles; files beyond it are still found', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-fc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (let i = 0; i < 6; i++) writeFileSync(path.join(dir, `f${i}.bin`), Buffer.alloc(1000, i))
  const cache = new FileCache({ root: dir, validMs: 60_000, smallFileBytes: 0, followSymlinks: false, maxOpenFiles: 2 })
  const before = openDescriptors()
  const entries = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => cache.lookup(path.join(dir, `f${i}.bin`))))
  assert.deepEqual(
    entries.map((e) => e.kind),
    ['file', 'file', 'file', 'file', 'file', 'file'],
  )
  assert.equal(entries.filter((e) => e.open !== null).length, 2)
  assert.ok(openDescriptors() - before <= 2, 'at most two descriptors held')
  cache.clear()
  await new Promise((r) => setTimeout(r, 50))
  assert.ok(openDescriptors() - before <= 0, 'clear() closes them')
})

test('with a descriptor budget of 1, every file is still served byte for byte', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-fc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const files = [0, 1, 2].map((i) => Buffer.alloc(200_000 + i, 65 + i))
  files.forEach((b, i) => writeFileSync(path.join(dir, `big${i}.bin`), b))
  const server = createServer({ onError: () => {} })
  server.fallback(staticFiles({ root: dir, smallFileBytes: 0, maxOpenFiles: 1 }))
  const { port } = await server.listen({ port: 0 })
  t.after(() => server.close())
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < files.length; i++) {
      const body = Buffer.from(await (await fetch(`http://127.0.0.1:${port}/big${i}.bin`)).arrayBuffer())
      assert.ok(body.equals(files[i]!), `big${i}.bin round ${round}`)
    }
  }
})

test('descriptors opened for one response are closed after it, whatever the answer and even when the client leaves', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-fc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const body = Buffer.alloc(200_000, 0x61)
  writeFileSync(path.join(dir, 'big.bin'), body)
  writeFileSync(path.join(dir, 'huge.bin'), Buffer.alloc(8 * 1024 * 1024, 0x62))
  writeFileSync(path.join(dir, '404.html'), Buffer.alloc(5000, 0x63))
  // No descriptor budget and nothing in memory: every response opens (and must close) its own.
  const { connect } = await serve(t, {}, (s) => s.fallback(staticFiles({ root: dir, smallFileBytes: 0, maxOpenFiles: 0 })))
  const before = openDescriptors()
  const etag = (await exchangeOnce(connect, req('HEAD', '/big.bin'), true)).headers.etag!
  const answers: Array<[Buffer, boolean, number]> = [
    [req('GET', '/big.bin'), false, 200],
    [req('HEAD', '/big.bin'), true, 200],
    [req('GET', '/big.bin', { 'If-None-Match': etag }), false, 304],
    [req('GET', '/big.bin', { Range: 'bytes=5-10' }), false, 206],
    [req('GET', '/big.bin', { Range: 'bytes=0-0,100-200' }), false, 206],
    [req('GET', '/big.bin', { Range: 'bytes=900000-' }), false, 416],
    [req('GET', '/missing.txt'), false, 404],
  ]
  for (const [bytes, head, status] of answers)
    assert.equal((await exchangeOnce(connect, bytes, head)).status, status, bytes.toString('latin1').split('\r\n')[0] ?? '')
  // A client that asks for 8 MiB, reads a little and leaves.
  const leaver = await connect({ paused: true })
  await leaver.write(req('GET', '/huge.bin'))
  await new Promise((r) => setTimeout(r, 100))
  leaver.destroy()
  const deadline = Date.now() + 5000
  while (openDescriptors() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  assert.equal(openDescriptors(), before, 'every descriptor opened for a response was closed')
})

/** One request on a fresh connection, which is closed afterwards. */
async function exchangeOnce(connect: () => Promise<RawClient>, bytes: Buffer, head: boolean): Promise<HttpResponse> {
  const c = await connect()
  try {
    await c.write(bytes)
    return await c.readResponse({ head, timeoutMs: 10_000 })
  } finally {
    c.destroy()
  }
}

test('ROOT "/" contains every path (the inside check once compared against "//" and refused them all)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-fc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'a.txt'), 'under the file system root')
  const cache = new FileCache({ root: '/', validMs: 60_000, smallFileBytes: 1024, followSymlinks: false })
  const entry = await cache.lookup(path.join(dir, 'a.txt'))
  assert.equal(entry.kind, 'file')
  assert.equal(entry.body?.toString(), 'under the file system root')
  assert.equal((await cache.lookup(path.join(dir, '.hidden'))).kind, 'missing')
})

test('a directory listing reads no file: rows come from the metadata, and nothing is kept for them', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-fc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // 100 files of 50 KB: small enough to be held in memory, 5 MB in all.
  for (let i = 0; i < 100; i++) writeFileSync(path.join(dir, `f${String(i).padStart(3, '0')}.bin`), Buffer.alloc(50_000, i))
  const { connect } = await serve(t, {}, (s) => s.fallback(staticFiles({ root: dir, list: true })))
  const bytesRead = (): number => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1])
  const descriptorsBefore = openDescriptors()
  const before = bytesRead()
  const c = await connect()
  await c.write(req('GET', '/'))
  const listing = await c.readResponse()
  const read = bytesRead() - before
  assert.equal(listing.status, 200)
  assert.equal((listing.text.match(/f\d{3}\.bin/g) ?? []).length / 2, 100, 'every file is listed (a link and its text)')
  assert.ok(read < 1_000_000, `the listing read ${read} bytes; the files hold 5,000,000`)
  assert.ok(openDescriptors() - descriptorsBefore <= 2, 'no descriptor kept for the rows (both ends of the connection aside: they are in this process)')
})
