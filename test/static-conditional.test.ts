// Static files (issue 3): validators (weak ETag from size and mtime, Last-Modified) and the
// conditional requests If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since, over raw TCP.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { req } from './helpers/tcp.ts'
import { tempDir, writeTree, startStatic, setMtime, FIXED_MTIME } from './helpers/static-fixture.ts'

const base = tempDir('conditional')
const ROOT = path.join(base, 'root')
const BODY = 'conditional body\n'
writeTree(ROOT, { 'f.txt': BODY, 'g.txt': 'another file of other size', 'big.bin': Buffer.alloc(200_000, 7) })
setMtime(path.join(ROOT, 'f.txt'))
setMtime(path.join(ROOT, 'g.txt'))
setMtime(path.join(ROOT, 'big.bin'))

const LM = FIXED_MTIME.toUTCString() // Mon, 15 Jan 2024 12:00:00 GMT
const BEFORE = new Date(FIXED_MTIME.getTime() - 1000).toUTCString()
const AFTER = new Date(FIXED_MTIME.getTime() + 86_400_000).toUTCString()

describe('validators', () => {
  test('a weak ETag and Last-Modified from the file', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/f.txt')
    assert.equal(r.status, 200)
    assert.match(r.headers['etag']!, /^W\/"[\x21\x23-\x7e]+"$/)
    assert.equal(r.headers['last-modified'], LM)
    const h = await s.get('/f.txt', {}, 'HEAD')
    assert.equal(h.headers['etag'], r.headers['etag'])
    const other = await s.get('/g.txt')
    assert.notEqual(other.headers['etag'], r.headers['etag'], 'different size → different ETag')
    const big = await s.get('/big.bin', {}, 'HEAD')
    assert.match(big.headers['etag']!, /^W\/"/, 'large (streamed) files have validators too')
    assert.equal(big.headers['last-modified'], LM)
  })

  test('the ETag changes when the mtime changes (after the cache validity)', async (t) => {
    const dir = path.join(base, 'mtime')
    writeTree(dir, { 'm.txt': 'same size' })
    setMtime(path.join(dir, 'm.txt'))
    const s = await startStatic(t, { root: dir, cacheValidMs: 50 })
    const r1 = await s.get('/m.txt')
    setMtime(path.join(dir, 'm.txt'), new Date(FIXED_MTIME.getTime() + 10_000))
    await new Promise((r) => setTimeout(r, 120))
    const r2 = await s.get('/m.txt')
    assert.notEqual(r2.headers['etag'], r1.headers['etag'])
    assert.equal(r2.headers['last-modified'], new Date(FIXED_MTIME.getTime() + 10_000).toUTCString())
    // The old validator no longer yields a 304.
    const r3 = await s.get('/m.txt', { 'If-None-Match': r1.headers['etag']! })
    assert.equal(r3.status, 200)
    assert.equal(r3.text, 'same size')
  })
})

describe('If-None-Match', () => {
  test('matching tag, "*", lists and the strong form of the tag → 304 with no body', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const etag = (await s.get('/f.txt')).headers['etag']!
    const strong = etag.slice(2)
    for (const value of [etag, '*', `"nope", ${etag}`, `"a",${etag},"b"`, strong, ` ${etag} `, `W/"x" , ${strong}`]) {
      const c = await s.connect()
      // Pipelined with a second request: a 304 with body bytes would corrupt the next response.
      await c.write(Buffer.concat([req('GET', '/f.txt', { 'If-None-Match': value }), req('GET', '/g.txt')]))
      const [r, next] = await c.readResponses(2)
      assert.equal(r!.status, 304, `If-None-Match: ${value}`)
      assert.equal(r!.headers['etag'], etag, '304 repeats the ETag')
      assert.ok(
        r!.headers['content-length'] === undefined || r!.headers['content-length'] === String(Buffer.byteLength(BODY)),
        '304 Content-Length, if any, is the 200 one',
      )
      assert.equal(next!.status, 200)
      assert.equal(next!.text, 'another file of other size', 'no stray bytes after the 304')
      assert.equal(c.unparsed().length, 0)
      c.destroy()
    }
  })

  test('HEAD with a matching If-None-Match → 304', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const etag = (await s.get('/f.txt')).headers['etag']!
    const r = await s.get('/f.txt', { 'If-None-Match': etag }, 'HEAD')
    assert.equal(r.status, 304)
  })

  test('a non-matching tag → 200 with the body; If-None-Match wins over If-Modified-Since', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const value of ['"nope"', 'W/"nope"', '"a", "b"', 'garbage']) {
      const r = await s.get('/f.txt', { 'If-None-Match': value })
      assert.equal(r.status, 200, value)
      assert.equal(r.text, BODY)
    }
    const r = await s.get('/f.txt', { 'If-None-Match': '"nope"', 'If-Modified-Since': AFTER })
    assert.equal(r.status, 200, 'If-Modified-Since is ignored when If-None-Match is present')
  })

  test('the ETag of one file does not match another', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const etag = (await s.get('/f.txt')).headers['etag']!
    assert.equal((await s.get('/g.txt', { 'If-None-Match': etag })).status, 200)
  })
})

describe('If-Modified-Since', () => {
  test('not modified since → 304; modified since → 200', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const date of [LM, AFTER, 'Monday, 15-Jan-24 12:00:00 GMT', 'Mon Jan 15 12:00:00 2024']) {
      const r = await s.get('/f.txt', { 'If-Modified-Since': date })
      assert.equal(r.status, 304, `If-Modified-Since: ${date}`)
      assert.equal(r.body.length, 0)
    }
    const r = await s.get('/f.txt', { 'If-Modified-Since': BEFORE })
    assert.equal(r.status, 200)
    assert.equal(r.text, BODY)
  })

  test('an invalid date is ignored → 200', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const date of ['yesterday', '', '2024-01-15T12:00:00Z', 'Mon, 32 Jan 2024 12:00:00 GMT']) {
      const r = await s.get('/f.txt', { 'If-Modified-Since': date })
      assert.equal(r.status, 200, `If-Modified-Since: ${JSON.stringify(date)}`)
    }
  })

  test('HEAD not modified → 304', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    assert.equal((await s.get('/f.txt', { 'If-Modified-Since': LM }, 'HEAD')).status, 304)
  })
})

describe('If-Match and If-Unmodified-Since', () => {
  test('If-Match: a weak ETag never satisfies it (412), "*" does (200), another tag → 412', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const etag = (await s.get('/f.txt')).headers['etag']!
    const strong = etag.slice(2)
    for (const value of [etag, strong, '"nope"', `"a", ${etag}`]) {
      const r = await s.get('/f.txt', { 'If-Match': value })
      assert.equal(r.status, 412, `If-Match: ${value}`)
      assert.ok(!r.text.includes(BODY), 'no file content in a 412')
    }
    const star = await s.get('/f.txt', { 'If-Match': '*' })
    assert.equal(star.status, 200)
    assert.equal(star.text, BODY)
  })

  test('If-Unmodified-Since before the mtime → 412; at or after → 200', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/f.txt', { 'If-Unmodified-Since': BEFORE })
    assert.equal(r.status, 412)
    for (const date of [LM, AFTER]) {
      const ok = await s.get('/f.txt', { 'If-Unmodified-Since': date })
      assert.equal(ok.status, 200, date)
      assert.equal(ok.text, BODY)
    }
  })

  test('If-Match takes precedence over If-Unmodified-Since; 412 wins over 304', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const etag = (await s.get('/f.txt')).headers['etag']!
    // If-Match "*" passes, so If-Unmodified-Since (which would fail) is not evaluated.
    assert.equal((await s.get('/f.txt', { 'If-Match': '*', 'If-Unmodified-Since': BEFORE })).status, 200)
    // If-Match fails → 412 even though If-None-Match would give 304.
    assert.equal((await s.get('/f.txt', { 'If-Match': '"nope"', 'If-None-Match': etag })).status, 412)
  })

  test('the connection stays usable after 412 and 304', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const c = await s.connect()
    await c.write(Buffer.concat([req('GET', '/f.txt', { 'If-Match': '"x"' }), req('GET', '/f.txt', { 'If-Modified-Since': LM }), req('GET', '/f.txt')]))
    const rs = await c.readResponses(3)
    assert.deepEqual(
      rs.map((r) => r.status),
      [412, 304, 200],
    )
    assert.equal(rs[2]!.text, BODY)
    assert.equal(c.unparsed().length, 0)
  })
})

describe('conditionals on a missing file', () => {
  test('If-None-Match: * on a missing file → 404, If-Match: * on a missing file → 404 or 412', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    assert.equal((await s.get('/missing.txt', { 'If-None-Match': '*' })).status, 404)
    const r = await s.get('/missing.txt', { 'If-Match': '*' })
    assert.ok(r.status === 404 || r.status === 412, String(r.status))
    assert.ok(fs.existsSync(ROOT))
  })
})
