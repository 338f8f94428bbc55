// Static files (issue 3): methods, HEAD, directories and index files, listings, MIME types,
// dotfiles, Cache-Control and custom error pages, over raw TCP.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { req } from './helpers/tcp.ts'
import { tempDir, writeTree, startStatic, pattern } from './helpers/static-fixture.ts'
import { serve } from './helpers/serve.ts'
import { staticFiles } from '../src/apps/serve/static.ts'
import { contentTypeFor } from '../src/apps/serve/media-types.ts'
import { createRequire } from 'node:module'

const base = tempDir('basics')
const ROOT = path.join(base, 'root')
const SMALL = 'hello, static world\n'
writeTree(ROOT, {
  'a.txt': SMALL,
  'index.html': '<h1>home</h1>\n',
  'bin.dat': pattern(3000),
  noext: 'no extension',
  'file.zzunknown': 'what am I',
  'empty.txt': '',
  'page.html': '<p>page</p>',
  'style.css': 'body{}',
  'app.js': 'export {}',
  'mod.mjs': 'export {}',
  'data.json': '{"a":1}',
  'pic.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
  'notes.md': '# notes',
  'pic.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
  'photo.jpg': Buffer.from([0xff, 0xd8, 0xff]),
  'doc.pdf': '%PDF-1.4',
  'book.epub': 'PK',
  'app.webmanifest': '{}',
  'font.woff2': 'wOF2',
  'mod.wasm': Buffer.from([0, 0x61, 0x73, 0x6d]),
  'archive.tar': 'tar',
  'UPPER.TXT': 'shout',
  sub: { 'index.html': '<p>sub index</p>', 'x.txt': 'x' },
  home: { 'home.htm': '<p>custom index</p>' },
  noindex: {
    'one.txt': '1',
    '<b>&"quote\'.txt': 'tricky',
    'space name.txt': 'spaced',
    '.hidden-in-dir': 'HIDDEN-DOT',
    'hash#.txt': 'hash',
    'q?.txt': 'question',
    'pct%41.txt': 'percent',
    'café.txt': 'utf8 name',
  },
  'café.txt': 'cafe body',
  'dir with space': { 'index.html': 'spaced dir' },
  'list me': { 'f.txt': 'f' },
  xss: { '<img src=x onerror=alert(1)>': { 'x.txt': 'x' } },
  'evil.example': { 'index.html': 'evil dir' },
  '.env': 'DOTENV-SECRET',
  '.git': { config: 'GIT-SECRET' },
  '.well-known': { 'security.txt': 'Contact: mailto:sec@example.com' },
})
const ERRROOT = path.join(base, 'errroot')
writeTree(ERRROOT, {
  '404.html': '<h1>custom not found page</h1>',
  '403.html': '<h1>custom forbidden page</h1>',
  'ok.txt': 'ok',
  noindex: { 'f.txt': 'f' },
})

describe('methods', () => {
  test('GET serves the exact bytes with Content-Length', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/a.txt')
    assert.equal(r.status, 200)
    assert.equal(r.text, SMALL)
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(SMALL)))
    const b = await s.get('/bin.dat')
    assert.ok(b.body.equals(pattern(3000)))
  })

  test('an empty file is 200 with Content-Length: 0', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/empty.txt')
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-length'], '0')
    assert.equal(r.body.length, 0)
  })

  test('HEAD: the GET headers and no body (the next pipelined response parses cleanly)', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const c = await s.connect()
    await c.write(Buffer.concat([req('HEAD', '/a.txt'), req('GET', '/sub/x.txt')]))
    const [h, g] = await c.readResponses(2, { head: [true, false] })
    assert.equal(h!.status, 200)
    assert.equal(h!.headers['content-length'], String(Buffer.byteLength(SMALL)))
    assert.match(h!.headers['content-type']!, /^text\/plain/)
    assert.equal(g!.status, 200)
    assert.equal(g!.text, 'x')
    assert.equal(c.unparsed().length, 0)
  })

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    test(`${method} → 405 with Allow: GET, HEAD and the connection stays usable`, async (t) => {
      const s = await startStatic(t, { root: ROOT })
      const c = await s.connect()
      await c.write(req(method, '/a.txt', {}, method === 'POST' || method === 'PUT' ? 'body bytes' : undefined))
      const r = await c.readResponse()
      assert.equal(r.status, 405)
      assert.equal(r.headers['allow'], 'GET, HEAD')
      assert.ok(!r.text.includes(SMALL), 'no file content')
      await c.write(req('GET', '/a.txt'))
      const again = await c.readResponse()
      assert.equal(again.status, 200)
      assert.equal(again.text, SMALL)
    })
  }

  test('405 also for a path that does not exist or is a directory (Allow present)', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const target of ['/missing', '/sub/']) {
      const r = await s.get(target, {}, 'DELETE')
      assert.equal(r.status, 405, target)
      assert.equal(r.headers['allow'], 'GET, HEAD')
    }
  })
})

describe('directories', () => {
  test('a directory with a trailing slash serves its index.html', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/sub/')
    assert.equal(r.status, 200)
    assert.equal(r.text, '<p>sub index</p>')
    assert.match(r.headers['content-type']!, /^text\/html; charset=utf-8$/i)
    const home = await s.get('/')
    assert.equal(home.text, '<h1>home</h1>\n')
  })

  test('a directory without the slash → 301 to the slash form, query kept', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/sub')
    assert.equal(r.status, 301)
    assert.equal(r.headers['location'], '/sub/')
    const q = await s.get('/sub?a=1&b=two')
    assert.equal(q.status, 301)
    assert.equal(q.headers['location'], '/sub/?a=1&b=two')
    const sp = await s.get('/dir%20with%20space')
    assert.equal(sp.status, 301)
    assert.equal(sp.headers['location'], '/dir%20with%20space/')
    const follow = await s.get(sp.headers['location']!)
    assert.equal(follow.text, 'spaced dir')
  })

  test('the 301 is never an open redirect: //host paths do not yield a protocol-relative Location', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    for (const target of ['//evil.example', '///evil.example', '/.//evil.example', '//evil.example?x=1']) {
      const r = await s.get(target)
      if (r.status === 301 || r.status === 302 || r.status === 307 || r.status === 308) {
        const loc = r.headers['location'] ?? ''
        assert.ok(
          !loc.startsWith('//') && !/^[a-z][a-z0-9+.-]*:/i.test(loc) && !loc.startsWith('/\\'),
          `${target}: Location ${JSON.stringify(loc)} must stay on this host`,
        )
      }
    }
  })

  test('a file name with a trailing slash is not the file (404, or a redirect to the name)', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/a.txt/')
    assert.ok(r.status === 404 || (r.status === 301 && r.headers['location'] === '/a.txt'), `status ${r.status}`)
  })

  test('the index option names another index file', async (t) => {
    const s = await startStatic(t, { root: ROOT, index: 'home.htm' })
    const r = await s.get('/home/')
    assert.equal(r.status, 200)
    assert.equal(r.text, '<p>custom index</p>')
  })

  test('without list: a directory without index is 404 (or 403) and reveals nothing', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/noindex/')
    assert.ok(r.status === 404 || r.status === 403, `status ${r.status}`)
    assert.ok(!r.text.includes('one.txt'), 'no file names')
  })

  test('with list: an HTML listing with escaped names and working links', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/noindex/')
    assert.equal(r.status, 200)
    assert.match(r.headers['content-type']!, /^text\/html/)
    assert.ok(r.text.includes('one.txt'))
    assert.ok(!r.text.includes('<b>&"quote'), 'the raw name is never in the HTML')
    assert.ok(r.text.includes('&lt;b&gt;&amp;'), 'the name is shown HTML-escaped')
    const hrefs = [...r.text.matchAll(/href="([^"]*)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&').replaceAll('&#39;', "'").replaceAll('&quot;', '"'))
    const tricky = hrefs.find((h) => h.includes('quote'))
    assert.ok(tricky !== undefined, `a link to the tricky file among ${JSON.stringify(hrefs)}`)
    const abs = (h: string) => (h.startsWith('/') ? h : `/noindex/${h.replace(/^\.\//, '')}`)
    const got = await s.get(abs(tricky))
    assert.equal(got.status, 200, `link ${tricky} works`)
    assert.equal(got.text, 'tricky')
    const spaced = hrefs.find((h) => h.includes('space'))
    assert.ok(spaced !== undefined && !spaced.includes(' '), `the spaced name is percent-encoded in href: ${spaced}`)
    assert.equal((await s.get(abs(spaced))).text, 'spaced')
    for (const [needle, body] of [
      ['hash', 'hash'],
      ['q', 'question'],
      ['pct', 'percent'],
      ['caf', 'utf8 name'],
    ] as const) {
      const href = hrefs.find((h) => h.replace(/^\.\//, '').startsWith(needle))
      assert.ok(href !== undefined, `a link for ${needle}`)
      const got = await s.get(abs(href))
      assert.equal(got.status, 200, `link ${href}`)
      assert.equal(got.text, body, `link ${href}`)
    }
  })

  test('HEAD of a listing: no body, and no Content-Length other than the GET one (RFC 9110 §8.6)', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const g = await s.get('/noindex/')
    const h = await s.get('/noindex/', {}, 'HEAD')
    assert.equal(h.status, 200)
    assert.match(h.headers['content-type']!, /^text\/html/)
    assert.ok(
      h.headers['content-length'] === undefined || h.headers['content-length'] === String(g.body.length),
      `HEAD Content-Length ${h.headers['content-length']} vs GET body ${g.body.length}`,
    )
  })

  test('with list: a directory name with markup cannot inject HTML (title, heading, links)', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/xss/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/')
    assert.equal(r.status, 200)
    assert.ok(!r.text.includes('<img'), r.text.slice(0, 400))
    const top = await s.get('/xss/')
    assert.ok(!top.text.includes('<img'), 'the name in the parent listing is escaped')
    assert.ok(top.text.includes('&lt;img'))
  })

  test('with list: the title shows the decoded directory path', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/list%20me/')
    assert.equal(r.status, 200)
    assert.match(r.text, /<title>Index of \/list me\/<\/title>/)
  })

  test('with list: a directory with index.html still serves the index', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    assert.equal((await s.get('/sub/')).text, '<p>sub index</p>')
  })

  test('with list: the listing does not show dotfiles (they are 404 anyway)', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/noindex/')
    assert.equal(r.status, 200)
    assert.ok(!r.text.includes('.hidden-in-dir'), 'dotfile not listed')
    const root = await s.get('/')
    assert.ok(!root.text.includes('DOTENV'))
  })

  test('with list: the listing body never contains the file system path of ROOT', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    const r = await s.get('/noindex/')
    assert.ok(!r.text.includes(ROOT) && !r.text.includes('LEAKMARK'), 'ROOT path not in the listing')
  })
})

describe('non-ASCII names', () => {
  test('a percent-encoded UTF-8 name is served', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/caf%C3%A9.txt')
    assert.equal(r.status, 200)
    assert.equal(r.text, 'cafe body')
  })

  test('raw UTF-8 bytes in the request path (not valid in a request-target) name the file or are refused with 400, never a misleading 404', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.raw(
      Buffer.concat([Buffer.from('GET /caf', 'latin1'), Buffer.from([0xc3, 0xa9]), Buffer.from('.txt HTTP/1.1\r\nHost: t\r\n\r\n', 'latin1')]),
    )
    assert.ok(r.status === 200 || r.status === 400, `status ${r.status}`)
    if (r.status === 200) assert.equal(r.text, 'cafe body')
  })
})

describe('dotfiles', () => {
  test('dotfiles and dot-directories are 404; /.well-known/ is served', async (t) => {
    const s = await startStatic(t, { root: ROOT, list: true })
    for (const target of ['/.env', '/.git/config', '/.git/', '/.git', '/noindex/.hidden-in-dir', '/%2eenv', '/%2Egit/config', '/sub/../.env']) {
      const r = await s.get(target)
      assert.equal(r.status, 404, target)
      assert.ok(!r.text.includes('SECRET') && !r.text.includes('HIDDEN-DOT'), `${target} reveals nothing`)
    }
    const wk = await s.get('/.well-known/security.txt')
    assert.equal(wk.status, 200)
    assert.equal(wk.text, 'Contact: mailto:sec@example.com')
  })
})

describe('content types (mime-types database)', () => {
  const cases: Array<[string, RegExp]> = [
    ['/page.html', /^text\/html; charset=utf-8$/i],
    ['/style.css', /^text\/css; charset=utf-8$/i],
    ['/app.js', /^(text|application)\/javascript; charset=utf-8$/i],
    ['/mod.mjs', /^(text|application)\/javascript; charset=utf-8$/i],
    ['/data.json', /^application\/json; charset=utf-8$/i],
    ['/a.txt', /^text\/plain; charset=utf-8$/i],
    ['/pic.svg', /^image\/svg\+xml; charset=utf-8$/i],
    ['/notes.md', /^text\/markdown; charset=utf-8$/i],
    ['/pic.png', /^image\/png$/],
    ['/photo.jpg', /^image\/jpeg$/],
    ['/doc.pdf', /^application\/pdf$/],
    ['/font.woff2', /^font\/woff2$/],
    ['/mod.wasm', /^application\/wasm$/],
    ['/book.epub', /^application\/epub\+zip$/],
    ['/app.webmanifest', /^application\/manifest\+json(; charset=utf-8)?$/i],
    ['/archive.tar', /^application\/x-tar$/],
    ['/UPPER.TXT', /^text\/plain; charset=utf-8$/i],
    ['/noext', /^application\/octet-stream$/],
    ['/file.zzunknown', /^application\/octet-stream$/],
  ]
  test('standard types from the database, utf-8 on text types, octet-stream when unknown', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const wrong: string[] = []
    for (const [target, type] of cases) {
      const r = await s.get(target)
      assert.equal(r.status, 200, target)
      if (!type.test(r.headers['content-type'] ?? '')) wrong.push(`${target}: ${r.headers['content-type']} (want ${type})`)
    }
    assert.deepEqual(wrong, [])
  })

  test('every extension of the database gets the type the mime-types package would give', () => {
    const require = createRequire(import.meta.url)
    const db = require('mime-db') as Record<string, { extensions?: string[] }>
    const mime = require('mime-types') as { contentType(ext: string): string | false }
    const differ: string[] = []
    let checked = 0
    for (const media of Object.values(db)) {
      for (const extension of media.extensions ?? []) {
        const theirs = mime.contentType(extension)
        const expected = theirs === false ? 'application/octet-stream' : theirs.endsWith('+xml') ? `${theirs}; charset=utf-8` : theirs
        const ours = contentTypeFor(`/dir/file.${extension}`)
        checked++
        if (ours !== expected) differ.push(`.${extension}: ${ours} (mime-types: ${expected})`)
      }
    }
    assert.ok(checked > 1000)
    assert.deepEqual(differ, [])
  })
})

describe('Cache-Control', () => {
  test('maxAgeSeconds → Cache-Control: public, max-age=N', async (t) => {
    const s = await startStatic(t, { root: ROOT, maxAgeSeconds: 3600 })
    const r = await s.get('/a.txt')
    assert.equal(r.headers['cache-control'], 'public, max-age=3600')
    const h = await s.get('/a.txt', {}, 'HEAD')
    assert.equal(h.headers['cache-control'], 'public, max-age=3600')
  })

  test('a 304 carries Cache-Control and ETag too (RFC 9110 §15.4.5)', async (t) => {
    const s = await startStatic(t, { root: ROOT, maxAgeSeconds: 60 })
    const r = await s.get('/a.txt')
    const nm = await s.get('/a.txt', { 'If-None-Match': r.headers['etag']! })
    assert.equal(nm.status, 304)
    assert.equal(nm.headers['cache-control'], 'public, max-age=60')
    assert.equal(nm.headers['etag'], r.headers['etag'])
  })
})

describe('custom error pages', () => {
  test('404.html is the body of a 404, status kept', async (t) => {
    const s = await startStatic(t, { root: ERRROOT })
    const r = await s.get('/no/such/file.txt')
    assert.equal(r.status, 404)
    assert.equal(r.text, '<h1>custom not found page</h1>')
    assert.match(r.headers['content-type']!, /^text\/html/)
    const dot = await s.get('/.secret')
    assert.equal(dot.status, 404)
    assert.equal(dot.text, '<h1>custom not found page</h1>')
  })

  test('a directory without index answers with the matching custom page (404.html or 403.html)', async (t) => {
    const s = await startStatic(t, { root: ERRROOT })
    const r = await s.get('/noindex/')
    assert.ok(r.status === 404 || r.status === 403, `status ${r.status}`)
    assert.equal(r.text, r.status === 404 ? '<h1>custom not found page</h1>' : '<h1>custom forbidden page</h1>')
  })

  test('HEAD of a missing file: 404 without a body', async (t) => {
    const s = await startStatic(t, { root: ERRROOT })
    const c = await s.connect()
    await c.write(Buffer.concat([req('HEAD', '/missing'), req('GET', '/ok.txt')]))
    const [h, g] = await c.readResponses(2, { head: [true, false] })
    assert.equal(h!.status, 404)
    assert.equal(g!.status, 200)
    assert.equal(g!.text, 'ok')
  })

  test('without 404.html the default 404 body reveals no path', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const r = await s.get('/missing/deep/file.txt')
    assert.equal(r.status, 404)
    assert.ok(!r.text.includes(ROOT) && !r.text.includes(path.join(ROOT, 'missing')), r.text)
  })
})

describe('the prepared head of an in-memory file', () => {
  /** The head's lines without the Date line, which may differ between two responses. */
  const headLines = (raw: Buffer): string[] =>
    raw
      .toString('latin1', 0, raw.indexOf('\r\n\r\n'))
      .split('\r\n')
      .filter((l) => !l.startsWith('Date: '))

  test('is byte for byte the head the general path writes, for GET and HEAD, with and without Cache-Control', async (t) => {
    for (const maxAgeSeconds of [undefined, 60]) {
      const s = await startStatic(t, { root: ROOT, ...(maxAgeSeconds === undefined ? {} : { maxAgeSeconds }) })
      const prepared = await s.get('/a.txt')
      // An If-None-Match that matches nothing, or a close, takes the general path to the same 200.
      const general = await s.get('/a.txt', { 'If-None-Match': '"no-such-tag"' })
      assert.equal(prepared.status, 200)
      assert.equal(prepared.text, SMALL)
      assert.deepEqual(headLines(prepared.raw), headLines(general.raw))
      assert.match(prepared.headers['date'] ?? '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
      const closing = await s.get('/a.txt', { Connection: 'close' })
      assert.deepEqual(
        headLines(closing.raw).filter((l) => l !== 'Connection: close'),
        headLines(prepared.raw),
      )
      const head = await s.get('/a.txt', {}, 'HEAD')
      assert.deepEqual(headLines(head.raw), headLines(prepared.raw))
      assert.equal(head.raw.length, prepared.raw.length - SMALL.length, 'HEAD: the same head, no body')
    }
  })

  test('a HEAD counts 0 body bytes (access log, onResponse) whichever path answers it', async (t) => {
    const seen: number[] = []
    const { connect } = await serve(t, { onResponse: (_rq, res) => seen.push(res.bodyBytes) }, (s) => s.fallback(staticFiles({ root: ROOT })))
    const variants: Array<Record<string, string>> = [{}, { Connection: 'close' }, { 'If-None-Match': '"no-such-tag"' }]
    for (const headers of variants) {
      const c = await connect()
      await c.write(req('HEAD', '/a.txt', headers))
      await c.readResponses(1, { head: true })
    }
    assert.deepEqual(seen, [0, 0, 0])
  })

  test('HTTP/1.0 and ranges still get their own answers; the Date line follows the clock', async (t) => {
    const s = await startStatic(t, { root: ROOT })
    const old = await s.raw('GET /a.txt HTTP/1.0\r\n\r\n')
    assert.equal(old.status, 200)
    assert.equal(old.text, SMALL)
    assert.ok(old.raw.toString('latin1').startsWith('HTTP/1.1 200 OK\r\n'))
    const range = await s.get('/a.txt', { Range: 'bytes=0-4' })
    assert.equal(range.status, 206)
    assert.equal(range.text, SMALL.slice(0, 5))
    const first = (await s.get('/a.txt')).headers['date']
    // The Date line is refreshed by a once-a-second timer, which a loaded machine can run late:
    // ask again until it moves, for up to 5 s.
    let second = first
    for (let waited = 0; second === first && waited < 5000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250))
      second = (await s.get('/a.txt')).headers['date']
    }
    assert.notEqual(first, second)
    assert.ok(Date.parse(second!) > Date.parse(first!))
  })
})
