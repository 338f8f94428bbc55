// The open-file cache's bounds, observed from outside: descriptors held, bytes served.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FileCache } from '../src/apps/serve/file-cache.ts'
import { createServer } from '../src/index.ts'
import { staticFiles } from '../src/apps/serve/static.ts'

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
  assert.deepEqual(entries.map((e) => e.kind), ['file', 'file', 'file', 'file', 'file', 'file'])
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
