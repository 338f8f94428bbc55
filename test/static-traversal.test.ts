// Static files (issue 3): a request can never read outside ROOT. A table of traversal attempts
// over raw TCP (encoded dots, double encoding, encoded and raw backslashes, NUL, overlong UTF-8,
// dotfiles, symlink escapes), each refused without revealing the secret's content or any path.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { req } from './helpers/tcp.ts'
import { tempDir, writeTree, startStatic, assertNoLeak, type StaticServer } from './helpers/static-fixture.ts'

const base = tempDir('traversal')
const ROOT = path.join(base, 'root')
const OUTSIDE = path.join(base, 'outside')
const SECRET = 'TOP-SECRET-OUTSIDE-ROOT-7f3a'
const SECRET2 = 'SECRET-IN-OUTSIDE-DIR-91c2'
const DOT = 'DOTFILE-SECRET-5e1d'
const PASSWD = fs.existsSync('/etc/passwd') ? fs.readFileSync('/etc/passwd', 'latin1').split('\n')[0]! : 'root:x:0:0'

fs.mkdirSync(base, { recursive: true })
fs.writeFileSync(path.join(base, 'secret.txt'), SECRET)
writeTree(OUTSIDE, { 'secret2.txt': SECRET2, 'index.html': SECRET2, '.env': DOT })
writeTree(ROOT, {
  'a.txt': 'public a',
  sub: { 'b.txt': 'public b', deeper: { 'c.txt': 'public c' } },
  '.env': DOT,
  '.git': { config: DOT },
  sub2: { '.hidden': DOT },
  '.well-known': { 'security.txt': 'Contact: x' },
  'link-passwd': { symlink: '/etc/passwd' },
  'link-secret': { symlink: '../secret.txt' },
  'link-secret-abs': { symlink: path.join(base, 'secret.txt') },
  'link-outdir': { symlink: OUTSIDE },
  'link-outdir-rel': { symlink: '../outside' },
  'link-inside': { symlink: 'a.txt' },
  'link-inside-dir': { symlink: 'sub' },
  'link-chain': { symlink: 'link-secret' },
  'link-chain-inside': { symlink: 'link-inside' },
  'link-root-parent': { symlink: '..' },
  'link-dotenv': { symlink: '.env' },
  'link-outside-dotenv': { symlink: path.join(OUTSIDE, '.env') },
})
// The root reached through a symlink itself (a common deployment: /srv/www → /srv/releases/42).
const ROOT_LINK = path.join(base, 'root-link')
fs.symlinkSync(ROOT, ROOT_LINK)

const SECRETS = [SECRET, SECRET2, DOT, PASSWD]

function assertNoSecret(raw: Buffer, what: string): void {
  const text = raw.toString('latin1')
  for (const s of SECRETS) assert.ok(!text.includes(s), `${what}: the response must not contain ${JSON.stringify(s)}: ${JSON.stringify(text.slice(0, 300))}`)
}

/** Send a raw request line and return the status, checking nothing secret or path-like came back. */
async function probe(s: StaticServer, target: string, method = 'GET'): Promise<number> {
  const c = await s.connect()
  try {
    await c.write(Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 'latin1'))
    const raw = await c.readUntilClose(5000)
    assertNoSecret(raw, `${method} ${target}`)
    const r = c.allResponses({ head: method === 'HEAD' })[0]
    assert.ok(r, `${target}: a response came back (got ${JSON.stringify(raw.toString('latin1').slice(0, 200))})`)
    assertNoLeak(r, ROOT, target)
    assertNoLeak(r, base, target)
    return r.status
  } finally {
    c.destroy()
  }
}

// [request target, allowed statuses]: every one is refused; 400 where the spec says so.
const TABLE: Array<[string, number[]]> = [
  ['/../secret.txt', [400]],
  ['/../../../../../../etc/passwd', [400]],
  ['/sub/../../secret.txt', [400]],
  ['/sub/deeper/../../../secret.txt', [400]],
  ['/%2e%2e/secret.txt', [400]],
  ['/%2E%2E/secret.txt', [400]],
  ['/.%2e/secret.txt', [400]],
  ['/%2e./secret.txt', [400]],
  ['/sub/%2e%2e/%2e%2e/secret.txt', [400]],
  ['/%2e%2e/%2e%2e/%2e%2e/etc/passwd', [400]],
  ['/..%2fsecret.txt', [400]],
  ['/..%2Fsecret.txt', [400]],
  ['/%2e%2e%2fsecret.txt', [400]],
  ['/sub%2f..%2f..%2fsecret.txt', [400]],
  ['/%2fetc%2fpasswd', [400]],
  ['/..%5csecret.txt', [400]],
  ['/..%5Csecret.txt', [400]],
  ['/%2e%2e%5csecret.txt', [400]],
  ['/sub%5c..%5c..%5csecret.txt', [400]],
  ['/..\\secret.txt', [400]],
  ['/sub\\..\\..\\secret.txt', [400]],
  ['/a.txt%00', [400]],
  ['/a.txt%00.html', [400]],
  ['/%00/../secret.txt', [400]],
  ['/sub/%00', [400]],
  // Double encoding is decoded once only: "%2e%2e" is a literal (missing) name.
  ['/%252e%252e/secret.txt', [404]],
  ['/%252e%252e%252fsecret.txt', [404]],
  ['/sub/%252e%252e/%252e%252e/secret.txt', [404]],
  ['/%25252e%25252e/secret.txt', [404]],
  // Overlong UTF-8 for "." and "/" is not valid UTF-8: refused.
  ['/%c0%ae%c0%ae/secret.txt', [400, 404]],
  ['/%c0%ae%c0%ae%c0%afsecret.txt', [400, 404]],
  ['/sub/..%c0%af..%c0%afsecret.txt', [400, 404]],
  ['/%e0%80%ae%e0%80%ae/secret.txt', [400, 404]],
  ['/%c1%9c..%c1%9csecret.txt', [400, 404]],
  ['/%uff0e%uff0e/secret.txt', [400, 404]],
  ['/%ef%bc%8e%ef%bc%8e/secret.txt', [404]], // fullwidth dots are just a name
  // The same overlong sequences as raw bytes (not valid in a request-target at all).
  ['/\xc0\xae\xc0\xae/secret.txt', [400, 404]],
  ['/sub/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/secret.txt', [400, 404]],
  ['/..\xc0\xafsecret.txt', [400, 404]],
  ['/%', [400]],
  ['/%zz', [400]],
  // Dotfiles.
  ['/.env', [404]],
  ['/%2eenv', [404]],
  ['/.git/config', [404]],
  ['/.git/', [404]],
  ['/.git', [404]],
  ['/sub2/.hidden', [404]],
  ['/.well-known/../.env', [404]],
  ['/.well-known/%2e%2e/.env', [404]],
  ['/sub/./../.env', [404]],
  ['/.well-known/../../secret.txt', [400]],
  // Symlink escapes.
  ['/link-passwd', [404]],
  ['/link-secret', [404]],
  ['/link-secret-abs', [404]],
  ['/link-chain', [404]],
  ['/link-outdir/secret2.txt', [404]],
  ['/link-outdir-rel/secret2.txt', [404]],
  ['/link-outdir/', [404]],
  ['/link-outdir', [404]],
  ['/link-root-parent/secret.txt', [404]],
  ['/link-root-parent/', [404]],
  ['/link-root-parent/root/.env', [404]],
  // Other shapes of the target.
  ['//etc/passwd', [404]],
  ['/./../secret.txt', [400]],
  ['http://t/../secret.txt', [400]],
  ['http://t/%2e%2e/secret.txt', [400]],
]

describe('path traversal table (raw TCP, default options)', () => {
  test('every attempt is refused with the expected status and reveals nothing', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const wrong: string[] = []
    for (const [target, statuses] of TABLE) {
      const status = await probe(s, target)
      if (!statuses.includes(status)) wrong.push(`${target} → ${status} (want ${statuses.join(' or ')})`)
      const head = await probe(s, target, 'HEAD')
      if (!statuses.includes(head)) wrong.push(`HEAD ${target} → ${head} (want ${statuses.join(' or ')})`)
    }
    assert.deepEqual(wrong, [])
    assert.deepEqual(
      s.errors.map((e) => e.message),
      [],
      'no handler errors',
    )
  })

  test('the same attempts with Range, If-None-Match and Accept-Encoding reveal nothing either', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    for (const [target] of TABLE) {
      if (target.includes('\\') || target.startsWith('http')) continue
      const r = await s.raw(req('GET', target, { Range: 'bytes=0-', 'Accept-Encoding': 'gzip, br', 'If-None-Match': '"x"' }))
      assert.ok(r.status >= 300, `${target} → ${r.status}`)
      assertNoSecret(r.raw, target)
    }
  })

  test('the root listing may name symlinks but /link-outdir/ never lists the outside directory', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/link-outdir/')
    assert.equal(r.status, 404)
    assert.ok(!r.text.includes('secret2.txt'))
    const up = await s.get('/link-root-parent/')
    assert.equal(up.status, 404)
    assert.ok(!up.text.includes('secret.txt') && !up.text.includes('outside'))
  })

  test('dot-segments that stay inside ROOT are resolved and the file is served', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const target of [
      '/sub/./b.txt',
      '/sub/%2e/b.txt',
      '/sub/deeper/../b.txt',
      '/sub/deeper/%2e%2e/b.txt',
      '/sub//b.txt',
      '/./sub/b.txt',
      '/x/../sub/b.txt',
    ]) {
      const r = await s.get(target)
      assert.equal(r.status, 200, target)
      assert.equal(r.text, 'public b', target)
    }
  })

  test('symlinks that stay inside ROOT are followed by default', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    assert.equal((await s.get('/link-inside')).text, 'public a')
    assert.equal((await s.get('/link-chain-inside')).text, 'public a')
    assert.equal((await s.get('/link-inside-dir/b.txt')).text, 'public b')
    assert.equal((await s.get('/link-inside-dir/deeper/c.txt')).text, 'public c')
  })

  test('a visible symlink inside ROOT to a dotfile: the dotfile content stays hidden', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/link-dotenv')
    assert.ok(!r.text.includes(DOT), `status ${r.status}`)
  })

  test('ROOT given as a symlink to the real directory still serves its files and refuses escapes', async (t) => {
    const s = await startStatic(t, { root: ROOT_LINK })
    assert.equal((await s.get('/a.txt')).text, 'public a')
    assert.equal((await s.get('/link-inside')).text, 'public a')
    assert.equal(await probe(s, '/link-secret'), 404)
    assert.equal(await probe(s, '/%2e%2e/secret.txt'), 400)
  })
})

describe('symlinked variants, error pages and special files', () => {
  test('a .gz variant or a 404.html that is a symlink out of ROOT is never used; a FIFO is 404 without hanging', async (t) => {
    const r2 = path.join(base, 'root2')
    writeTree(r2, {
      'leak.js': 'plain js',
      'leak.js.gz': { symlink: '../secret.txt' },
      'leak.css': 'plain css',
      'leak.css.br': { symlink: '/etc/passwd' },
      '404.html': { symlink: '../secret.txt' },
    })
    const fifo = spawnSync('mkfifo', [path.join(r2, 'fifo.txt')])
    const s = await startStatic(t, { root: r2 })
    const js = await s.get('/leak.js', { 'Accept-Encoding': 'gzip, br' })
    assertNoSecret(js.raw, '/leak.js')
    assert.equal(js.text, 'plain js')
    assert.equal(js.headers['content-encoding'], undefined)
    const css = await s.get('/leak.css', { 'Accept-Encoding': 'br' })
    assertNoSecret(css.raw, '/leak.css')
    assert.equal(css.text, 'plain css')
    const nf = await s.get('/missing')
    assert.equal(nf.status, 404)
    assertNoSecret(nf.raw, '/missing with 404.html → outside')
    if (fifo.status === 0) {
      const f = await s.get('/fifo.txt')
      assert.equal(f.status, 404)
    }
  })
})

describe('ROOT behind a symlink that is switched (atomic deploy: current → releases/N)', () => {
  test('after the switch and cacheValidMs, files come from the new target, not 404', async (t) => {
    const deploy = path.join(base, 'deploy')
    writeTree(deploy, { rel1: { 'a.txt': 'release 1' }, rel2: { 'a.txt': 'release 2' } })
    fs.symlinkSync('rel1', path.join(deploy, 'current'))
    const s = await startStatic(t, { root: path.join(deploy, 'current'), cacheValidMs: 100 })
    assert.equal((await s.get('/a.txt')).text, 'release 1')
    fs.symlinkSync('rel2', path.join(deploy, 'next'))
    fs.renameSync(path.join(deploy, 'next'), path.join(deploy, 'current'))
    await new Promise((r) => setTimeout(r, 250))
    const r = await s.get('/a.txt')
    assert.equal(r.status, 200)
    assert.equal(r.text, 'release 2')
  })
})

describe('listing and symlinks that leave ROOT', () => {
  test('the listing does not show the size and date of a file outside ROOT through a symlink', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/')
    assert.equal(r.status, 200)
    const size = String(fs.statSync('/etc/passwd').size)
    const row = r.text.split('\n').find((l) => l.includes('link-passwd'))
    assert.ok(row === undefined || !row.includes(`title="${size}"`), `row: ${row}`)
  })
})

describe('followSymlinks', () => {
  test('with followSymlinks every symlink is followed', async (t) => {
    const s = await startStatic(t, { root: ROOT, followSymlinks: true })
    assert.equal((await s.get('/link-secret')).text, SECRET)
    assert.equal((await s.get('/link-outdir/secret2.txt')).text, SECRET2)
    assert.equal((await s.get('/link-chain')).text, SECRET)
    assert.equal((await s.get('/link-inside')).text, 'public a')
  })

  test('with followSymlinks, a symlink to a dotfile outside ROOT is still refused (dotfiles stay hidden whatever name reaches them)', async (t) => {
    const s = await startStatic(t, { root: ROOT, followSymlinks: true })
    const r = await s.get('/link-outside-dotenv')
    assert.equal(r.status, 404)
    assert.ok(!r.text.includes(DOT))
  })

  test('with followSymlinks, dot-segments and encoded separators are still refused', async (t) => {
    const s = await startStatic(t, { root: ROOT, followSymlinks: true })
    for (const target of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/..%5csecret.txt', '/a.txt%00', '/.env']) {
      const c = await s.connect()
      await c.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 'latin1'))
      const raw = await c.readUntilClose()
      const text = raw.toString('latin1')
      assert.ok(!text.includes(SECRET) && !text.includes(DOT), target)
      assert.match(text, /^HTTP\/1\.1 (400|404) /, target)
    }
  })
})
