// Static files (issue 3) as a user meets them: `petrel serve ROOT` with the static flags, driven
// by /usr/bin/curl (-I, -r, --compressed, -H If-None-Match, --path-as-is), and the same rules
// with curl against staticFiles() in this process.

import { fileURLToPath } from 'node:url'
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  tempDir,
  writeTree,
  startServeCli,
  type ServeCli,
  curl,
  parseCurlHead,
  parseMultipart,
  pattern,
  setMtime,
  FIXED_MTIME,
} from './helpers/static-fixture.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

const base = tempDir('curl')
const ROOT = path.join(base, 'root')
const SECRET = 'CURL-TOP-SECRET-c0ffee'
const JS = 'console.log("precompressed example");\n'.repeat(60)
const BIN_DATA = pattern(5000)
fs.writeFileSync(path.join(base, 'secret.txt'), SECRET)
writeTree(ROOT, {
  'index.html': '<h1>curl home</h1>',
  'data.bin': BIN_DATA,
  'app.js': JS,
  'app.js.br': zlib.brotliCompressSync(JS),
  'app.js.gz': zlib.gzipSync(JS),
  listed: { 'one.txt': '1', 'two.txt': '2' },
  'link-out': { symlink: '../secret.txt' },
  '.env': SECRET,
  '404.html': '<h1>custom 404 via cli</h1>',
})
setMtime(path.join(ROOT, 'data.bin'))

/** curl -i: status, headers and body of the response. */
async function curlI(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: Buffer; all: Buffer }> {
  const r = await curl(['-i', ...args])
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`)
  const headEnd = r.stdout.indexOf('\r\n\r\n')
  const head = parseCurlHead(r.stdout.toString('latin1', 0, headEnd + 4))
  return { ...head, body: r.stdout.subarray(headEnd + 4), all: r.stdout }
}

describe('petrel serve ROOT with curl', () => {
  let cli: ServeCli
  before(async () => {
    cli = await startServeCli(ROOT, ['--list', '--max-age', '120', '--open-file-cache-valid', '200ms', '--small-file-bytes', '1024'])
  })
  after(() => {
    cli.child.kill('SIGKILL')
  })

  test('curl -I: 200 with type, length, validators, Accept-Ranges, Cache-Control from --max-age', async () => {
    const r = await curl(['-I', cli.url('/data.bin')])
    const { status, headers } = parseCurlHead(r.stdout.toString('latin1'))
    assert.equal(status, 200)
    assert.equal(headers['content-length'], '5000')
    assert.equal(headers['content-type'], 'application/octet-stream')
    assert.match(headers['etag']!, /^W\/"/)
    assert.equal(headers['last-modified'], FIXED_MTIME.toUTCString())
    assert.equal(headers['accept-ranges'], 'bytes')
    assert.equal(headers['cache-control'], 'public, max-age=120')
  })

  test('curl -r: one range and several ranges', async () => {
    const one = await curl(['-r', '100-199', cli.url('/data.bin')])
    assert.ok(one.stdout.equals(BIN_DATA.subarray(100, 200)))
    const many = await curlI(['-r', '0-9,4990-4999', cli.url('/data.bin')])
    assert.equal(many.status, 206)
    const parts = parseMultipart(many.headers['content-type']!, many.body)
    assert.deepEqual(
      parts.map((p) => p.headers['content-range']),
      ['bytes 0-9/5000', 'bytes 4990-4999/5000'],
    )
    assert.ok(parts[0]!.body.equals(BIN_DATA.subarray(0, 10)))
    assert.ok(parts[1]!.body.equals(BIN_DATA.subarray(4990)))
    const bad = await curlI(['-r', '6000-7000', cli.url('/data.bin')])
    assert.equal(bad.status, 416)
    assert.equal(bad.headers['content-range'], 'bytes */5000')
  })

  test('curl --compressed: br chosen, decoded to the original; Vary: Accept-Encoding', async () => {
    const r = await curl(['--compressed', '-D', '-', '-o', path.join(base, 'out.js'), cli.url('/app.js')])
    const { status, headers } = parseCurlHead(r.stdout.toString('latin1'))
    assert.equal(status, 200)
    assert.equal(headers['content-encoding'], 'br')
    assert.match(headers['vary']!, /accept-encoding/i)
    assert.match(headers['content-type']!, /javascript; charset=utf-8/i)
    assert.equal(fs.readFileSync(path.join(base, 'out.js'), 'utf8'), JS)
    const gz = await curl(['-H', 'Accept-Encoding: gzip', '-D', '-', '-o', path.join(base, 'out.gz'), cli.url('/app.js')])
    assert.equal(parseCurlHead(gz.stdout.toString('latin1')).headers['content-encoding'], 'gzip')
    assert.equal(zlib.gunzipSync(fs.readFileSync(path.join(base, 'out.gz'))).toString(), JS)
  })

  test("curl -H 'If-None-Match: <etag>' → 304; curl -z <Last-Modified> → 304", async () => {
    const head = parseCurlHead((await curl(['-I', cli.url('/data.bin')])).stdout.toString('latin1'))
    const etag = head.headers['etag']!
    const nm = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-H', `If-None-Match: ${etag}`, cli.url('/data.bin')])
    assert.equal(nm.stdout.toString(), '304 0')
    const ims = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-z', FIXED_MTIME.toUTCString(), cli.url('/data.bin')])
    assert.equal(ims.stdout.toString(), '304')
    const im = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-Match: ${etag}`, cli.url('/data.bin')])
    assert.equal(im.stdout.toString(), '412')
  })

  test('--list: a directory listing; a directory without slash is redirected (curl -L follows)', async () => {
    const r = await curl(['-L', '-w', '\n%{url_effective}', cli.url('/listed')])
    const text = r.stdout.toString()
    assert.match(text, /one\.txt/)
    assert.match(text, /two\.txt/)
    assert.ok(text.endsWith('/listed/'), text.slice(-60))
    assert.ok(!text.includes(ROOT))
  })

  test('curl --path-as-is traversal, symlink escape, dotfile: refused, secret never sent; custom 404.html', async () => {
    for (const [target, want] of [
      ['/../secret.txt', 400],
      ['/%2e%2e/secret.txt', 400],
      ['/..%2fsecret.txt', 400],
      ['/link-out', 404],
      ['/.env', 404],
      ['/%252e%252e/secret.txt', 404],
    ] as const) {
      const r = await curlI(['--path-as-is', cli.url(target)])
      assert.equal(r.status, want, target)
      assert.ok(!r.all.toString('latin1').includes(SECRET), target)
      assert.ok(!r.all.toString('latin1').includes(base), target)
    }
    const nf = await curlI([cli.url('/nope')])
    assert.equal(nf.status, 404)
    assert.equal(nf.body.toString(), '<h1>custom 404 via cli</h1>')
  })

  test('curl -X POST → 405 with Allow: GET, HEAD', async () => {
    const r = await curlI(['-X', 'POST', '-d', 'x=1', cli.url('/data.bin')])
    assert.equal(r.status, 405)
    assert.equal(r.headers['allow'], 'GET, HEAD')
  })

  test('--open-file-cache-valid 200ms: a changed file is seen after 200 ms', async () => {
    const f = path.join(ROOT, 'changing.txt')
    fs.writeFileSync(f, 'before')
    assert.equal((await curl([cli.url('/changing.txt')])).stdout.toString(), 'before')
    fs.writeFileSync(f, 'after!')
    fs.utimesSync(f, new Date(), new Date(Date.now() + 3000))
    await sleep(350)
    assert.equal((await curl([cli.url('/changing.txt')])).stdout.toString(), 'after!')
  })
})

describe('petrel serve flags', () => {
  test('--follow-symlinks serves a symlink that leaves ROOT; without it → 404', async (t) => {
    const plain = await startServeCli(ROOT, [])
    t.after(() => plain.child.kill('SIGKILL'))
    const follow = await startServeCli(ROOT, ['--follow-symlinks'])
    t.after(() => follow.child.kill('SIGKILL'))
    const a = await curlI([plain.url('/link-out')])
    assert.equal(a.status, 404)
    assert.ok(!a.all.toString().includes(SECRET))
    const b = await curlI([follow.url('/link-out')])
    assert.equal(b.status, 200)
    assert.equal(b.body.toString(), SECRET)
    // Without --list a directory without index is 403 or 404, and without --max-age no Cache-Control.
    const d = await curlI([plain.url('/listed/')])
    assert.ok(d.status === 403 || d.status === 404, String(d.status))
    assert.ok(!d.body.toString().includes('one.txt'))
    const c = await curlI(['-I', plain.url('/data.bin')])
    assert.equal(c.headers['cache-control'], undefined)
  })

  test('serve --help lists the static flags; bad values exit 2 with a one-line message', () => {
    const help = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', timeout: 15_000 })
    for (const flag of ['--list', '--follow-symlinks', '--max-age', '--open-file-cache-valid', '--small-file-bytes'])
      assert.ok(help.stdout.includes(flag), flag)
    for (const args of [['--max-age', 'soon'], ['--max-age', '-5'], ['--small-file-bytes', 'big'], ['--open-file-cache-valid', 'never'], ['--max-age']]) {
      const r = spawnSync(process.execPath, [BIN, 'serve', ROOT, '--port', '0', ...args], { encoding: 'utf8', timeout: 15_000 })
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(args[0]!))
      assert.equal(r.stderr.trim().split('\n').length, 1)
    }
  })
})
