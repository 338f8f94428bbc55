// Static files compressed on the fly (issue 21, --compress / compress: true): the coding chosen by
// Accept-Encoding q-values (zstd > br > gzip at equal q), only compressible types at or above the
// threshold, the identity for ranges, a variant ETag of its own (304 on it), a file changed on disk
// compressed again, and the cache of variants held within its byte budget. Decoded by real peers:
// curl --compressed (gzip, br) and the zstd command-line tool.

import { fileURLToPath } from 'node:url'
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { spawnSync } from 'node:child_process'
import { tempDir, writeTree, startStatic, startServeCli, type ServeCli, curl, parseCurlHead, pattern } from './helpers/static-fixture.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { makeTestCa } from './helpers/tls.ts'
import { CompressedVariants } from '../src/apps/serve/compress.ts'
import type { FileEntry } from '../src/apps/serve/file-cache.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
const base = tempDir('compress')
const ROOT = path.join(base, 'root')
const JS = 'export const greeting = "compressed on the fly";\n'.repeat(200)
const HTML = '<p>a page that compresses well</p>\n'.repeat(100)
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(4000, 'A')])
writeTree(ROOT, {
  'app.js': JS,
  'page.html': HTML,
  'small.txt': 'too small to be worth it\n'.repeat(10),
  'picture.png': PNG,
  'has-variant.css': 'body { color: red }\n'.repeat(100),
  'has-variant.css.gz': zlib.gzipSync('body { color: red }\n'.repeat(100)),
})

function decode(encoding: string | undefined, body: Buffer): Buffer {
  if (encoding === 'gzip') return zlib.gunzipSync(body)
  if (encoding === 'br') return zlib.brotliDecompressSync(body)
  if (encoding === 'zstd') return zlib.zstdDecompressSync(body)
  return body
}

function varies(h: Record<string, string>): boolean {
  return (h['vary'] ?? '').split(',').some((v) => v.trim().toLowerCase() === 'accept-encoding')
}

describe('petrel serve --compress with real decoders', () => {
  let cli: ServeCli
  const url = (p: string): string => cli.url(p)
  before(async () => {
    requireDebianPackage('curl')
    requireDebianPackage('zstd')
    cli = await startServeCli(ROOT, ['--compress'])
  })
  after(() => {
    cli.child.kill('SIGKILL')
  })

  for (const coding of ['gzip', 'br']) {
    test(`curl --compressed with Accept-Encoding: ${coding} decodes to the file's bytes`, async () => {
      const headFile = path.join(base, `head-${coding}.txt`)
      const r = await curl(['-s', '--compressed', '-H', `Accept-Encoding: ${coding}`, '-D', headFile, url('/app.js')])
      assert.equal(r.code, 0, r.stderr)
      const { status, headers } = parseCurlHead(fs.readFileSync(headFile, 'latin1'))
      assert.equal(status, 200)
      assert.equal(headers['content-encoding'], coding)
      assert.ok(varies(headers))
      assert.ok(Number(headers['content-length']) < JS.length, 'Content-Length is that of the compressed bytes')
      assert.equal(r.stdout.toString('utf8'), JS)
    })
  }

  test('curl --compressed (all codings offered) gets zstd; the zstd tool decodes it to the file', async () => {
    const headFile = path.join(base, 'head-default.txt')
    const decoded = await curl(['-s', '--compressed', '-D', headFile, url('/page.html')])
    assert.equal(parseCurlHead(fs.readFileSync(headFile, 'latin1')).headers['content-encoding'], 'zstd')
    assert.equal(decoded.stdout.toString('utf8'), HTML)
    const raw = await curl(['-s', '-H', 'Accept-Encoding: zstd', url('/page.html')])
    assert.ok(raw.stdout.length < HTML.length)
    const zstd = spawnSync('zstd', ['-d', '-c', '-q'], { input: raw.stdout })
    assert.equal(zstd.status, 0, zstd.stderr.toString())
    assert.equal(zstd.stdout.toString('utf8'), HTML)
  })

  test('--help documents the flags', () => {
    const help = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' })
    for (const flag of [
      '--compress ',
      '--compress-min-bytes',
      '--compress-cache-bytes',
      '--compress-gzip-level',
      '--compress-br-level',
      '--compress-zstd-level',
    ])
      assert.ok(help.stdout.includes(flag), flag)
  })
})

test('over HTTPS too: curl --compressed gets br and decodes it to the file', async (t) => {
  requireDebianPackage('curl')
  const ca = makeTestCa(path.join(base, 'ca'))
  const pair = ca.issue(['127.0.0.1'])
  const cli = await startServeCli(ROOT, ['--compress', '--tls-cert', pair.cert, '--tls-key', pair.key])
  t.after(() => cli.child.kill('SIGKILL'))
  assert.match(cli.url('/'), /^https:/)
  const headFile = path.join(base, 'head-https.txt')
  const r = await curl(['-s', '--cacert', ca.caCert, '--compressed', '-H', 'Accept-Encoding: br', '-D', headFile, cli.url('/app.js')])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(parseCurlHead(fs.readFileSync(headFile, 'latin1')).headers['content-encoding'], 'br')
  assert.equal(r.stdout.toString('utf8'), JS)
})

describe('on-the-fly compression in staticFiles()', () => {
  const cases: Array<[string | undefined, string | null]> = [
    ['gzip, deflate, br, zstd', 'zstd'],
    ['gzip, br', 'br'],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['zstd;q=0.5, br;q=0.8, gzip;q=0.9', 'gzip'],
    ['zstd;q=0.5, br;q=0.9, gzip;q=0.9', 'br'],
    ['zstd;q=0, br', 'br'],
    ['*', 'zstd'],
    ['*;q=0.5, gzip', 'gzip'],
    ['zstd;q=0, br;q=0, *', 'gzip'],
    ['*;q=0', null],
    ['gzip;q=0', null],
    ['identity', null],
    ['gzip;q=0.5, identity', null],
    ['identity;q=0.1, gzip', 'gzip'],
    ['deflate', null],
    ['', null],
    [undefined, null],
  ]
  test('Accept-Encoding q-values choose the coding, with Vary, type and length right', async (t) => {
    const s = await startStatic(t, { root: ROOT, compress: true })
    const wrong: string[] = []
    for (const [ae, want] of cases) {
      const r = await s.get('/app.js', ae === undefined ? {} : { 'Accept-Encoding': ae })
      const ok =
        r.status === 200 &&
        (r.headers['content-encoding'] ?? null) === want &&
        decode(want ?? undefined, r.body).toString('utf8') === JS &&
        r.headers['content-length'] === String(r.body.length) &&
        /javascript/.test(r.headers['content-type'] ?? '') &&
        varies(r.headers)
      if (!ok) wrong.push(`${JSON.stringify(ae)} → ${r.status} ${r.headers['content-encoding']} vary ${r.headers['vary']} (want ${want})`)
    }
    assert.deepEqual(wrong, [])
  })

  test('a file too large to keep in memory is compressed as it streams from disk: chunked, weak ETag, Vary; a range and HEAD get the identity', async (t) => {
    const root = path.join(base, 'streamed')
    const big = 'const line = "a large bundle streamed from disk";\n'.repeat(4000)
    writeTree(root, { 'bundle.js': big })
    const s = await startStatic(t, { root, compress: true, smallFileBytes: 64 * 1024 })
    for (const coding of ['gzip', 'br', 'zstd']) {
      const r = await s.get('/bundle.js', { 'Accept-Encoding': coding })
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-encoding'], coding)
      assert.equal(r.headers['content-length'], undefined)
      assert.equal(r.chunked, true)
      assert.equal(r.headers['accept-ranges'], undefined)
      assert.match(r.headers['etag'] ?? '', /^W\//)
      assert.ok(varies(r.headers))
      assert.ok(r.body.length < big.length / 20)
      assert.equal(decode(coding, r.body).toString('utf8'), big)
    }
    const range = await s.get('/bundle.js', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' })
    assert.equal(range.status, 206)
    assert.equal(range.headers['content-encoding'], undefined)
    assert.equal(range.text, big.slice(0, 10))
    const head = await s.get('/bundle.js', { 'Accept-Encoding': 'gzip' }, 'HEAD')
    assert.equal(head.headers['content-encoding'], undefined)
    assert.equal(head.headers['content-length'], String(big.length))
    const plain = await s.get('/bundle.js')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.text, big)
    assert.ok(varies(plain.headers))
  })

  test('without compress: true the file is sent as it is', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/app.js', { 'Accept-Encoding': 'gzip, br, zstd' })
    assert.equal(r.headers['content-encoding'], undefined)
    assert.equal(r.body.toString('utf8'), JS)
  })

  test('a file under the threshold and an image are not compressed, and do not vary', async (t) => {
    const s = await startStatic(t, { root: ROOT, compress: true })
    for (const [target, bytes] of [
      ['/small.txt', Buffer.from('too small to be worth it\n'.repeat(10))],
      ['/picture.png', PNG],
    ] as const) {
      const r = await s.get(target, { 'Accept-Encoding': 'gzip, br, zstd' })
      assert.equal(r.headers['content-encoding'], undefined, target)
      assert.equal(r.headers['vary'], undefined, target)
      assert.ok(r.body.equals(bytes), target)
    }
    // The threshold is a knob: lowered, the small text file is compressed too.
    const low = await startStatic(t, { root: ROOT, compress: true, compressMinBytes: 10 })
    assert.equal((await low.get('/small.txt', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], 'gzip')
  })

  test('a precompressed sibling is still served as it is', async (t) => {
    const s = await startStatic(t, { root: ROOT, compress: true })
    const r = await s.get('/has-variant.css', { 'Accept-Encoding': 'zstd, br, gzip' })
    assert.equal(r.headers['content-encoding'], 'gzip')
    assert.ok(r.body.equals(fs.readFileSync(path.join(ROOT, 'has-variant.css.gz'))))
  })

  test('a Range request gets the identity bytes', async (t) => {
    const s = await startStatic(t, { root: ROOT, compress: true })
    const r = await s.get('/app.js', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' })
    assert.equal(r.status, 206)
    assert.equal(r.headers['content-encoding'], undefined)
    assert.equal(r.body.toString('utf8'), JS.slice(0, 10))
    assert.ok(varies(r.headers))
  })

  test('HEAD has the head of GET; the variant ETag differs from the identity one and answers 304', async (t) => {
    const s = await startStatic(t, { root: ROOT, compress: true })
    const get = await s.get('/app.js', { 'Accept-Encoding': 'br' })
    const head = await s.get('/app.js', { 'Accept-Encoding': 'br' }, 'HEAD')
    assert.equal(head.status, 200)
    for (const field of ['content-encoding', 'content-length', 'etag', 'vary', 'content-type', 'last-modified'])
      assert.equal(head.headers[field], get.headers[field], field)
    assert.equal(head.body.length, 0)
    const identity = await s.get('/app.js')
    assert.ok(get.headers['etag'] && identity.headers['etag'])
    assert.notEqual(get.headers['etag'], identity.headers['etag'])
    const again = await s.get('/app.js', { 'Accept-Encoding': 'br', 'If-None-Match': get.headers['etag']! })
    assert.equal(again.status, 304)
    assert.equal(again.headers['etag'], get.headers['etag'])
    assert.equal(again.body.length, 0)
    // The identity's ETag is not the br representation's: the full variant is sent.
    const other = await s.get('/app.js', { 'Accept-Encoding': 'br', 'If-None-Match': identity.headers['etag']! })
    assert.equal(other.status, 200)
    assert.equal(decode('br', other.body).toString('utf8'), JS)
  })

  test('a file changed on disk is compressed again', async (t) => {
    const root = path.join(base, 'changing')
    writeTree(root, { 'data.json': JSON.stringify({ version: 1, pad: 'x'.repeat(3000) }) })
    const s = await startStatic(t, { root, compress: true, cacheValidMs: 0 })
    const first = await s.get('/data.json', { 'Accept-Encoding': 'gzip' })
    assert.equal(first.headers['content-encoding'], 'gzip')
    const changed = JSON.stringify({ version: 2, pad: 'y'.repeat(4000) })
    fs.writeFileSync(path.join(root, 'data.json'), changed)
    const second = await s.get('/data.json', { 'Accept-Encoding': 'gzip' })
    assert.equal(second.headers['content-encoding'], 'gzip')
    assert.equal(decode('gzip', second.body).toString('utf8'), changed)
    assert.notEqual(second.headers['etag'], first.headers['etag'])
  })

  test('files compressing to more than the cache budget are still served compressed, and correctly', async (t) => {
    const root = path.join(base, 'over-budget')
    const texts = [0, 1, 2].map((i) => Array.from({ length: 4000 }, (_, j) => `${i}:${(j * 7919) % 10007}`).join(' '))
    writeTree(root, Object.fromEntries(texts.map((text, i) => [`f${i}.txt`, text])))
    const s = await startStatic(t, { root, compress: true, compressCacheBytes: 1000 })
    for (let pass = 0; pass < 2; pass++)
      for (const [i, text] of texts.entries()) {
        const r = await s.get(`/f${i}.txt`, { 'Accept-Encoding': 'gzip' })
        assert.equal(r.headers['content-encoding'], 'gzip')
        assert.ok(r.body.length > 1000)
        assert.equal(decode('gzip', r.body).toString('utf8'), text)
      }
  })
})

describe('CompressedVariants: the byte budget', () => {
  function entry(name: string, body: Buffer, etag = `W/"${name}"`): FileEntry {
    return {
      kind: 'file',
      file: `/r/${name}`,
      realPath: `/r/${name}`,
      size: body.length,
      mtimeMs: 0,
      etag,
      lastModified: '',
      contentType: 'text/plain; charset=utf-8',
      body,
      open: null,
      checkedAt: 0,
      prepared: null,
      lruOlder: null,
      lruNewer: null,
    }
  }

  test('many files and codings never hold more than the budget, and each variant decodes', async () => {
    const budget = 3000
    const variants = new CompressedVariants(budget)
    let highest = 0
    for (let i = 0; i < 40; i++) {
      // Random-ish text: compresses, but not to nothing.
      const body = Buffer.from(Array.from({ length: 800 + i * 50 }, (_, j) => String.fromCharCode(97 + ((i * 31 + j * j) % 26))).join(''))
      for (const coding of ['gzip', 'br', 'zstd'] as const) {
        const made = await variants.variant(entry(`f${i}`, body), coding)
        highest = Math.max(highest, variants.bytes)
        assert.ok(made !== null)
        assert.ok(decode(coding, made.body!).equals(body))
        assert.ok(made.etag.endsWith(`-${coding}"`))
      }
    }
    assert.ok(highest <= budget, `at most ${budget} bytes held, saw ${highest}`)
    assert.ok(variants.bytes > budget / 3, `the budget is used: ${variants.bytes}`)
  })

  test('one larger than the whole budget is served and not kept; a changed file replaces its old variant', async () => {
    const variants = new CompressedVariants(500)
    const big = pattern(20_000)
    const made = await variants.variant(entry('big', big), 'gzip')
    assert.ok(made !== null && made.size > 500)
    assert.equal(variants.bytes, 0)
    const text = Buffer.from('abc'.repeat(1000))
    const first = await variants.variant(entry('t', text, 'W/"1"'), 'gzip')
    const kept = variants.bytes
    assert.ok(kept > 0)
    assert.equal(variants.variant(entry('t', text, 'W/"1"'), 'gzip'), first, 'kept: returned at once')
    const changed = Buffer.from('xyz'.repeat(1000))
    const second = await variants.variant(entry('t', changed, 'W/"2"'), 'gzip')
    assert.ok(decode('gzip', second!.body!).equals(changed))
    assert.equal(variants.bytes, second!.size, 'the old variant was dropped')
  })
})
