// Static files (issue 3): byte ranges over raw TCP — single ranges, multipart/byteranges parsed
// and checked part by part, 416, If-Range, HEAD with Range, for small (in-memory) and large
// (streamed) files.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { req } from './helpers/tcp.ts'
import { tempDir, writeTree, startStatic, setMtime, FIXED_MTIME, pattern, parseMultipart } from './helpers/static-fixture.ts'

const base = tempDir('ranges')
const ROOT = path.join(base, 'root')
const SMALL = pattern(1000)
const LARGE = pattern(300_000) // above the default smallFileBytes (64 KiB): streamed
writeTree(ROOT, { 's.bin': SMALL, 'l.bin': LARGE, 't.txt': 'abcdefghijklmnopqrstuvwxyz', 'empty.txt': '' })
for (const f of ['s.bin', 'l.bin', 't.txt']) setMtime(path.join(ROOT, f))
const LM = FIXED_MTIME.toUTCString()

for (const [name, file, content] of [
  ['small file', '/s.bin', SMALL],
  ['large streamed file', '/l.bin', LARGE],
] as const) {
  describe(`ranges on a ${name}`, () => {
    const size = content.length
    test('200 advertises Accept-Ranges: bytes', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const r = await s.get(file)
      assert.equal(r.headers['accept-ranges'], 'bytes')
      assert.ok(r.body.equals(content))
    })

    test('one range → 206 with Content-Range and exactly those bytes', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const cases: Array<[string, number, number]> = [
        ['bytes=0-99', 0, 99],
        ['bytes=0-0', 0, 0],
        [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
        ['bytes=500-', 500, size - 1],
        ['bytes=-100', size - 100, size - 1],
        [`bytes=${size - 10}-${size + 5000}`, size - 10, size - 1],
        [`bytes=-${size + 10}`, 0, size - 1],
        ['bytes = 10-19', 10, 19],
        ['BYTES=10-19', 10, 19],
      ]
      const wrong: string[] = []
      for (const [range, start, end] of cases) {
        const r = await s.get(file, { Range: range })
        const ok =
          r.status === 206 &&
          r.headers['content-range'] === `bytes ${start}-${end}/${size}` &&
          r.headers['content-length'] === String(end - start + 1) &&
          r.body.equals(content.subarray(start, end + 1))
        if (!ok) wrong.push(`${range} → ${r.status} ${r.headers['content-range']} len ${r.body.length}`)
      }
      // "bytes = 10-19" and "BYTES=10-19": a server may also ignore these (200); only the others must be 206.
      const strict = wrong.filter((w) => !((w.startsWith('bytes = ') || w.startsWith('BYTES=')) && /→ 200 /.test(w)))
      assert.deepEqual(strict, [])
    })

    test('several ranges → 206 multipart/byteranges, each part with its Content-Range, type and bytes', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const r = await s.get(file, { Range: `bytes=0-9,100-199,-5` })
      assert.equal(r.status, 206)
      assert.equal(r.headers['content-range'], undefined, 'no top-level Content-Range on multipart')
      assert.equal(r.headers['content-length'], String(r.body.length), 'Content-Length is exact')
      const parts = parseMultipart(r.headers['content-type']!, r.body)
      const want: Array<[number, number]> = [
        [0, 9],
        [100, 199],
        [size - 5, size - 1],
      ]
      assert.equal(parts.length, 3)
      for (let i = 0; i < 3; i++) {
        const [a, b] = want[i]!
        assert.equal(parts[i]!.headers['content-range'], `bytes ${a}-${b}/${size}`)
        assert.equal(parts[i]!.headers['content-type'], 'application/octet-stream')
        assert.ok(parts[i]!.body.equals(content.subarray(a, b + 1)), `part ${i} bytes`)
      }
    })

    test('unsatisfiable → 416 with Content-Range: bytes */SIZE', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      for (const range of [`bytes=${size}-`, `bytes=${size}-${size + 10}`, `bytes=${size + 100}-${size + 200},${size}-`, 'bytes=-0']) {
        const r = await s.get(file, { Range: range })
        assert.equal(r.status, 416, range)
        assert.equal(r.headers['content-range'], `bytes */${size}`, range)
        assert.ok(!r.body.includes(content.subarray(0, 32)), 'no file content in a 416')
      }
    })

    test('a malformed or non-bytes Range is ignored → 200 full body', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      for (const range of ['items=0-9', 'bytes=abc', 'bytes=9-1', 'bytes=', 'bytes=1-2-3', 'bytes=--1']) {
        const r = await s.get(file, { Range: range })
        assert.equal(r.status, 200, range)
        assert.ok(r.body.equals(content), range)
      }
    })

    test('If-Range with the current Last-Modified → 206; another date or a weak ETag → 200 full', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const full = await s.get(file)
      const r = await s.get(file, { Range: 'bytes=0-9', 'If-Range': LM })
      assert.equal(r.status, 206)
      assert.ok(r.body.equals(content.subarray(0, 10)))
      for (const ifRange of [
        new Date(FIXED_MTIME.getTime() - 5000).toUTCString(),
        new Date(FIXED_MTIME.getTime() + 5000).toUTCString(),
        full.headers['etag']!,
        full.headers['etag']!.slice(2),
        '"other"',
      ]) {
        const x = await s.get(file, { Range: 'bytes=0-9', 'If-Range': ifRange })
        assert.equal(x.status, 200, `If-Range: ${ifRange}`)
        assert.ok(x.body.equals(content), `If-Range: ${ifRange} → full body`)
      }
    })

    test('HEAD with Range → 206 headers and no body; the connection carries on', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const c = await s.connect()
      await c.write(
        Buffer.concat([req('HEAD', file, { Range: 'bytes=10-19' }), req('HEAD', file, { Range: 'bytes=0-1,5-6' }), req('GET', file, { Range: 'bytes=20-29' })]),
      )
      const [h, hm, g] = await c.readResponses(3, { head: [true, true, false] })
      assert.equal(h!.status, 206)
      assert.equal(h!.headers['content-range'], `bytes 10-19/${size}`)
      assert.equal(h!.headers['content-length'], '10')
      assert.equal(hm!.status, 206)
      assert.match(hm!.headers['content-type']!, /^multipart\/byteranges; boundary=/)
      assert.equal(g!.status, 206)
      assert.ok(g!.body.equals(content.subarray(20, 30)))
      assert.equal(c.unparsed().length, 0)
    })

    test('Range with a matching If-None-Match → 304 (conditions come first)', async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const etag = (await s.get(file, {}, 'HEAD')).headers['etag']!
      assert.equal((await s.get(file, { Range: 'bytes=0-9', 'If-None-Match': etag })).status, 304)
    })
  })
}

describe('ranges: text type and edge cases', () => {
  test('a multipart part carries the file type with charset', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/t.txt', { Range: 'bytes=0-2,23-25' })
    const parts = parseMultipart(r.headers['content-type']!, r.body)
    assert.deepEqual(
      parts.map((p) => p.body.toString()),
      ['abc', 'xyz'],
    )
    for (const p of parts) assert.match(p.headers['content-type']!, /^text\/plain; charset=utf-8$/i)
  })

  test('overlapping or adjacent ranges: any valid 206 that delivers the requested bytes', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/t.txt', { Range: 'bytes=0-5,3-8' })
    assert.equal(r.status, 206)
    const got = /^multipart/.test(r.headers['content-type']!)
      ? parseMultipart(r.headers['content-type']!, r.body).map((p) => [p.headers['content-range'], p.body.toString()])
      : [[r.headers['content-range'], r.text]]
    const covered = new Set<number>()
    for (const [cr, text] of got) {
      const m = /^bytes (\d+)-(\d+)\/26$/.exec(cr!)!
      assert.equal(text, 'abcdefghijklmnopqrstuvwxyz'.slice(Number(m[1]), Number(m[2]) + 1))
      for (let i = Number(m[1]); i <= Number(m[2]); i++) covered.add(i)
    }
    for (let i = 0; i <= 8; i++) assert.ok(covered.has(i), `byte ${i} delivered`)
  })

  test('Range on an empty file: 416 bytes */0 or a plain 200', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/empty.txt', { Range: 'bytes=0-' })
    assert.ok(r.status === 416 || r.status === 200, String(r.status))
    if (r.status === 416) assert.equal(r.headers['content-range'], 'bytes */0')
  })

  test('many tiny ranges do not amplify the response without bound', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const ranges = Array.from({ length: 500 }, () => '0-999').join(',')
    const r = await s.get('/s.bin', { Range: `bytes=${ranges}` })
    assert.ok(r.body.length < 100_000, `${r.status}: ${r.body.length} bytes for 500 copies of the whole 1000-byte file`)
  })
})
