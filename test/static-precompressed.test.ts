// Static files (issue 3): precompressed NAME.br / NAME.gz variants chosen by Accept-Encoding,
// with the original's type, Content-Encoding and Vary, ranges over the variant's bytes, over raw TCP.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import zlib from 'node:zlib'
import { tempDir, writeTree, startStatic } from './helpers/static-fixture.ts'

const base = tempDir('precompressed')
const ROOT = path.join(base, 'root')
const JS = 'export const message = "hello from the plain file";\n'.repeat(40)
const BR = zlib.brotliCompressSync(JS)
const GZ = zlib.gzipSync(JS)
const CSS = 'body { color: red }\n'.repeat(50)
const CSS_GZ = zlib.gzipSync(CSS)
writeTree(ROOT, {
  'app.js': JS,
  'app.js.br': BR,
  'app.js.gz': GZ,
  'style.css': CSS,
  'style.css.gz': CSS_GZ,
  'plain.txt': 'no variants here',
  'only.tar.gz': zlib.gzipSync('archive'),
  dir: { 'index.html': '<p>index</p>'.repeat(30), 'index.html.br': zlib.brotliCompressSync('<p>index</p>'.repeat(30)) },
})
const JS_TYPE = /^(text|application)\/javascript; charset=utf-8$/i

function vary(h: Record<string, string>): boolean {
  return (h['vary'] ?? '').split(',').some((v) => v.trim().toLowerCase() === 'accept-encoding')
}

describe('choosing a variant', () => {
  const cases: Array<[string | undefined, 'br' | 'gzip' | null]> = [
    ['gzip, deflate, br', 'br'],
    ['br', 'br'],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['br;q=0,gzip;q=0.5', 'gzip'],
    ['gzip;q=0, br;q=0', null],
    ['gzip;q=0', null],
    ['*', 'br'],
    ['*;q=0', null],
    ['br;q=0, *', 'gzip'],
    ['gzip;q=0, *', 'br'],
    ['identity', null],
    ['deflate', null],
    ['', null],
    [undefined, null],
    ['GZIP', 'gzip'],
    ['Br ; q=1', 'br'],
    ['br;q=0.000, gzip;q=1.0', 'gzip'],
  ]
  test('Accept-Encoding decides: br over gzip, q=0 excludes, * counts', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const wrong: string[] = []
    for (const [ae, want] of cases) {
      const r = await s.get('/app.js', ae === undefined ? {} : { 'Accept-Encoding': ae })
      const expectBody = want === 'br' ? BR : want === 'gzip' ? GZ : Buffer.from(JS)
      const ok =
        r.status === 200 &&
        (r.headers['content-encoding'] ?? null) === want &&
        r.body.equals(expectBody) &&
        r.headers['content-length'] === String(expectBody.length) &&
        JS_TYPE.test(r.headers['content-type'] ?? '') &&
        vary(r.headers)
      if (!ok)
        wrong.push(
          `Accept-Encoding: ${JSON.stringify(ae)} → ${r.status} encoding ${r.headers['content-encoding']} type ${r.headers['content-type']} vary ${r.headers['vary']} (want ${want})`,
        )
    }
    assert.deepEqual(wrong, [])
  })

  test('only a .gz beside the file: gzip even when br is preferred', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/style.css', { 'Accept-Encoding': 'br, gzip' })
    assert.equal(r.headers['content-encoding'], 'gzip')
    assert.ok(r.body.equals(CSS_GZ))
    assert.match(r.headers['content-type']!, /^text\/css; charset=utf-8$/i)
    assert.ok(vary(r.headers))
    const brOnly = await s.get('/style.css', { 'Accept-Encoding': 'br' })
    assert.equal(brOnly.headers['content-encoding'], undefined)
    assert.equal(brOnly.text, CSS)
    assert.ok(vary(brOnly.headers), 'Vary also when the plain file is served but variants exist')
  })

  test('a file without variants is served plain', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/plain.txt', { 'Accept-Encoding': 'br, gzip' })
    assert.equal(r.headers['content-encoding'], undefined)
    assert.equal(r.text, 'no variants here')
  })

  test('a request for NAME.gz itself is the .gz file with its own type and no Content-Encoding', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const ae of ['gzip', undefined]) {
      const r = await s.get('/app.js.gz', ae === undefined ? {} : { 'Accept-Encoding': ae })
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-encoding'], undefined)
      assert.equal(r.headers['content-type'], 'application/gzip')
      assert.ok(r.body.equals(GZ))
    }
    const tgz = await s.get('/only.tar.gz', { 'Accept-Encoding': 'gzip' })
    assert.equal(tgz.headers['content-encoding'], undefined)
    const br = await s.get('/app.js.br', { 'Accept-Encoding': 'br' })
    assert.equal(br.headers['content-encoding'], undefined)
    assert.ok(br.body.equals(BR))
  })

  test('the index file of a directory gets its variant too', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/dir/', { 'Accept-Encoding': 'br' })
    assert.equal(r.headers['content-encoding'], 'br')
    assert.match(r.headers['content-type']!, /^text\/html/)
    assert.equal(zlib.brotliDecompressSync(r.body).toString(), '<p>index</p>'.repeat(30))
  })
})

describe('variants and the other rules', () => {
  test('ranges apply to the variant bytes', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/app.js', { 'Accept-Encoding': 'br', Range: 'bytes=0-9' })
    assert.equal(r.status, 206)
    assert.equal(r.headers['content-encoding'], 'br')
    assert.equal(r.headers['content-range'], `bytes 0-9/${BR.length}`)
    assert.ok(r.body.equals(BR.subarray(0, 10)))
    const g = await s.get('/app.js', { 'Accept-Encoding': 'gzip', Range: `bytes=-4` })
    assert.equal(g.headers['content-range'], `bytes ${GZ.length - 4}-${GZ.length - 1}/${GZ.length}`)
    assert.ok(g.body.equals(GZ.subarray(GZ.length - 4)))
    const bad = await s.get('/app.js', { 'Accept-Encoding': 'br', Range: `bytes=${BR.length}-` })
    assert.equal(bad.status, 416)
    assert.equal(bad.headers['content-range'], `bytes */${BR.length}`)
  })

  test('multipart ranges over a variant carry the original type in each part', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/app.js', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-1,10-11' })
    assert.equal(r.status, 206)
    assert.equal(r.headers['content-encoding'], 'gzip')
    assert.match(r.body.toString('latin1'), /Content-Range: bytes 0-1\//i)
    assert.ok(r.body.includes(GZ.subarray(10, 12)))
  })

  test('HEAD reports the variant length and encoding', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/app.js', { 'Accept-Encoding': 'br' }, 'HEAD')
    assert.equal(r.headers['content-encoding'], 'br')
    assert.equal(r.headers['content-length'], String(BR.length))
    assert.ok(vary(r.headers))
  })

  test('each representation has its own ETag; a 304 keeps Vary and Content-Encoding semantics', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const plain = await s.get('/app.js')
    const br = await s.get('/app.js', { 'Accept-Encoding': 'br' })
    const gz = await s.get('/app.js', { 'Accept-Encoding': 'gzip' })
    assert.equal(new Set([plain.headers['etag'], br.headers['etag'], gz.headers['etag']]).size, 3, 'three different ETags')
    const nm = await s.get('/app.js', { 'Accept-Encoding': 'br', 'If-None-Match': br.headers['etag']! })
    assert.equal(nm.status, 304)
    assert.ok(vary(nm.headers), '304 carries Vary')
    // The br tag must not validate the identity representation.
    const cross = await s.get('/app.js', { 'If-None-Match': br.headers['etag']! })
    assert.equal(cross.status, 200)
    assert.equal(cross.text, JS)
  })
})
