// The directory listing of `petrel serve --list`. File names are untrusted, so most of these
// tests feed hostile names and compare the rows against strings written out by hand: a link
// must stay one relative path segment and a name must stay text.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { renderListing, formatSize, formatDate, type ListingEntry } from '../src/apps/serve/listing.ts'

/** 2026-11-26T14:03:27.456Z; the seconds and milliseconds must not show. */
const MTIME_MS = Date.UTC(2026, 10, 26, 14, 3, 27, 456)
const DATE = '2026-11-26 14:03'

function file(name: string, size = 10, mtimeMs = MTIME_MS): ListingEntry {
  return { name, isDirectory: false, size, mtimeMs }
}

function dir(name: string, mtimeMs = MTIME_MS): ListingEntry {
  return { name, isDirectory: true, size: 4096, mtimeMs }
}

/** The <tr> lines of the table body, in order. */
function rows(html: string): string[] {
  const body = html.slice(html.indexOf('<tbody>\n') + 8, html.indexOf('</tbody>'))
  return body.split('\n').filter((line) => line !== '')
}

/** The href of every link on the page, as written in the markup (entities not decoded). */
function hrefs(html: string): string[] {
  return [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]!)
}

describe('page', () => {
  test('a whole small page, written out by hand', () => {
    const html = renderListing('/docs/', [file('a.txt', 1536), dir('img')])
    assert.equal(
      html,
      '<!DOCTYPE html>\n' +
        '<html>\n' +
        '<head>\n' +
        '<meta charset="utf-8">\n' +
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
        '<title>Index of /docs/</title>\n' +
        '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}' +
        'th,td{padding:.2em 1.5em .2em 0;text-align:left}td:nth-child(2){text-align:right}' +
        'td:nth-child(3){font-family:monospace;white-space:nowrap}</style>\n' +
        '</head>\n' +
        '<body>\n' +
        '<h1>Index of /docs/</h1>\n' +
        '<table>\n' +
        '<thead><tr><th>Name</th><th>Size</th><th>Last modified</th></tr></thead>\n' +
        '<tbody>\n' +
        '<tr><td><a href="../">../</a></td><td></td><td></td></tr>\n' +
        '<tr><td><a href="./img/">img/</a></td><td>-</td><td>2026-11-26 14:03</td></tr>\n' +
        '<tr><td><a href="./a.txt">a.txt</a></td><td title="1536">1.5 KiB</td><td>2026-11-26 14:03</td></tr>\n' +
        '</tbody>\n' +
        '</table>\n' +
        '</body>\n' +
        '</html>\n',
    )
  })

  test('has no scripts, event handlers or style attributes', () => {
    const html = renderListing('/<script>alert(1)</script>/', [file('<script>alert(1)</script>'), file('" onmouseover="alert(1)'), dir("' onclick='alert(1)")])
    assert.doesNotMatch(html, /<script/i)
    assert.doesNotMatch(html, /<[^>]*\son\w+=/i)
    assert.doesNotMatch(html, /\sstyle=/i)
  })

  test('an empty directory has only the parent link, and the root has no rows at all', () => {
    assert.deepEqual(rows(renderListing('/empty/', [])), ['<tr><td><a href="../">../</a></td><td></td><td></td></tr>'])
    assert.deepEqual(rows(renderListing('/', [])), [])
  })
})

describe('escaping', () => {
  test('every special character in a name is escaped in the text', () => {
    const [row] = rows(renderListing('/', [file(`a&b<c>d"e'f`)]))
    assert.equal(row, `<tr><td><a href="./a%26b%3Cc%3Ed%22e&#39;f">a&amp;b&lt;c&gt;d&quot;e&#39;f</a></td>` + `<td title="10">10 B</td><td>${DATE}</td></tr>`)
  })

  test('every special character in the path is escaped in the title and the heading', () => {
    const html = renderListing(`/a&b<c>d"e'f/`, [])
    const escaped = 'Index of /a&amp;b&lt;c&gt;d&quot;e&#39;f/'
    assert.ok(html.includes(`<title>${escaped}</title>\n`), html)
    assert.ok(html.includes(`<h1>${escaped}</h1>\n`), html)
    assert.ok(!html.includes('a&b'), 'raw & must not appear')
    assert.ok(!html.includes('<c>'), 'raw tag must not appear')
  })

  test('an already-escaped-looking name is escaped again, not passed through', () => {
    const [row] = rows(renderListing('/', [file('&lt;b&gt;')]))
    assert.ok(row !== undefined, 'a row')
    assert.ok(row.includes('>&amp;lt;b&amp;gt;</a>'), row)
    assert.ok(row.includes('href="./%26lt%3Bb%26gt%3B"'), row)
  })

  test('a directory name is escaped too and gets its trailing slash outside the escape', () => {
    const [row] = rows(renderListing('/', [dir('<x>')]))
    assert.equal(row, `<tr><td><a href="./%3Cx%3E/">&lt;x&gt;/</a></td><td>-</td><td>${DATE}</td></tr>`)
  })
})

describe('links', () => {
  // [name, href as it appears in the markup, visible text]
  const cases: Array<[string, string, string]> = [
    ['a b.txt', './a%20b.txt', 'a b.txt'],
    ['c#frag', './c%23frag', 'c#frag'],
    ['q?x=1', './q%3Fx%3D1', 'q?x=1'],
    ['100%', './100%25', '100%'],
    ['%41', './%2541', '%41'],
    ['say "hi"', './say%20%22hi%22', 'say &quot;hi&quot;'],
    ["it's", './it&#39;s', 'it&#39;s'],
    ['<script>alert(1)</script>', './%3Cscript%3Ealert(1)%3C%2Fscript%3E', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['javascript:alert(1)', './javascript%3Aalert(1)', 'javascript:alert(1)'],
    ['café', './caf%C3%A9', 'café'],
    ['line\nbreak', './line%0Abreak', 'line\uFFFDbreak'],
    ['tab\there\r\u007f', './tab%09here%0D%7F', 'tab\uFFFDhere\uFFFD\uFFFD'],
    ['back\\slash', './back%5Cslash', 'back\\slash'],
    ['a/b', './a%2Fb', 'a/b'],
    ['//evil.example', './%2F%2Fevil.example', '//evil.example'],
    ['emoji 😀', './emoji%20%F0%9F%98%80', 'emoji 😀'],
  ]
  for (const [name, href, text] of cases) {
    test(`file ${JSON.stringify(name)} links to ${href}`, () => {
      const html = renderListing('/', [file(name)])
      const [row] = rows(html)
      assert.equal(row, `<tr><td><a href="${href}">${text}</a></td><td title="10">10 B</td><td>${DATE}</td></tr>`)
    })
  }

  test('directories link with a trailing slash', () => {
    const html = renderListing('/', [dir('sub dir'), dir('javascript:x')])
    assert.deepEqual(hrefs(html), ['./javascript%3Ax/', './sub%20dir/'])
  })

  test('every href is "../" or "./" and one encoded segment, whatever the name', () => {
    const names = ['a b', '#', '?', '%', '"', "'", '<script>', 'javascript:alert(1)', 'é', 'x\ny', 'a/../b', 'http://x']
    const html = renderListing('/sub/', [...names.map((n) => file(n)), ...names.map((n) => dir(n + 'd'))])
    const links = hrefs(html)
    assert.equal(links.length, 1 + 2 * names.length)
    assert.equal(links[0], '../')
    for (const href of links.slice(1)) {
      assert.match(href, /^\.\/(?:[A-Za-z0-9\-_.!~*()%]|&#39;)+\/?$/, href)
    }
  })

  test('a lone surrogate in a name does not throw and becomes U+FFFD', () => {
    const [row] = rows(renderListing('/', [file('bad\uD800name')]))
    assert.equal(row, `<tr><td><a href="./bad%EF%BF%BDname">bad\uFFFDname</a></td><td title="10">10 B</td><td>${DATE}</td></tr>`)
  })
})

describe('parent link', () => {
  test('absent at the root', () => {
    const html = renderListing('/', [file('a')])
    assert.ok(!html.includes('href="../"'))
    assert.deepEqual(hrefs(html), ['./a'])
  })

  test('present, and first, below the root', () => {
    for (const path of ['/a/', '/a/b/c/']) {
      const html = renderListing(path, [dir('x'), file('y')])
      assert.deepEqual(hrefs(html), ['../', './x/', './y'], path)
    }
  })
})

describe('ordering and filtering', () => {
  test('directories first, then files, each by name in code-unit order', () => {
    const html = renderListing('/', [
      file('b.txt'),
      dir('zeta'),
      file('B.txt'),
      file('a.txt'),
      dir('Alpha'),
      file('é.txt'),
      file('e.txt'),
      dir('alpha'),
      file('10.txt'),
      file('9.txt'),
    ])
    // Uppercase sorts before lowercase and "é" (U+00E9) after every ASCII letter, whatever the
    // locale; digits compare as characters, so "10" comes before "9".
    assert.deepEqual(hrefs(html), ['./Alpha/', './alpha/', './zeta/', './10.txt', './9.txt', './B.txt', './a.txt', './b.txt', './e.txt', './%C3%A9.txt'])
  })

  test('a file and a directory of the same name: the directory first', () => {
    assert.deepEqual(hrefs(renderListing('/', [file('x'), dir('x')])), ['./x/', './x'])
  })

  test("does not reorder the caller's array", () => {
    const entries = [file('b'), dir('a')]
    renderListing('/', entries)
    assert.deepEqual(
      entries.map((e) => e.name),
      ['b', 'a'],
    )
  })

  test('names starting with "." are skipped, as are empty names', () => {
    const html = renderListing('/', [file('.env'), dir('.git'), dir('.'), dir('..'), file(''), file('visible'), file('a.b')])
    assert.deepEqual(hrefs(html), ['./a.b', './visible'])
    assert.ok(!html.includes('.env'))
    assert.ok(!html.includes('.git'))
  })
})

describe('sizes', () => {
  test('formatSize', () => {
    assert.equal(formatSize(0), '0 B')
    assert.equal(formatSize(1), '1 B')
    assert.equal(formatSize(1023), '1023 B')
    assert.equal(formatSize(1024), '1.0 KiB')
    assert.equal(formatSize(1536), '1.5 KiB')
    assert.equal(formatSize(10 * 1024 * 1024), '10.0 MiB')
    assert.equal(formatSize(1024 * 1024 - 1), '1.0 MiB')
    assert.equal(formatSize(1024 * 1024 + 52429), '1.1 MiB')
    assert.equal(formatSize(3 * 1024 ** 3 + 512 * 1024 ** 2), '3.5 GiB')
    assert.equal(formatSize(2048 * 1024 ** 3), '2048.0 GiB')
  })

  test('rows show the human size and the exact bytes in the title', () => {
    const html = renderListing('/', [file('a', 0), file('b', 1023), file('c', 1024), file('d', 1536), file('e', 10485760)])
    const sizeCells = rows(html).map((row) => row.split('</td>')[1] + '</td>')
    assert.deepEqual(sizeCells, [
      '<td title="0">0 B</td>',
      '<td title="1023">1023 B</td>',
      '<td title="1024">1.0 KiB</td>',
      '<td title="1536">1.5 KiB</td>',
      '<td title="10485760">10.0 MiB</td>',
    ])
  })

  test('directories and impossible sizes show "-"', () => {
    const html = renderListing('/', [dir('d'), file('neg', -1), file('nan', NaN), file('frac', 1.5)])
    const sizeCells = rows(html).map((row) => row.split('</td>')[1] + '</td>')
    assert.deepEqual(sizeCells, ['<td>-</td>', '<td>-</td>', '<td>-</td>', '<td>-</td>'])
  })
})

describe('dates', () => {
  test('formatDate is UTC, minutes precision', () => {
    assert.equal(formatDate(MTIME_MS), '2026-11-26 14:03')
    assert.equal(formatDate(0), '1970-01-01 00:00')
    assert.equal(formatDate(Date.UTC(2024, 0, 5, 9, 7, 59, 999)), '2024-01-05 09:07')
    assert.equal(formatDate(Date.UTC(1999, 11, 31, 23, 59)), '1999-12-31 23:59')
    assert.equal(formatDate(NaN), '-')
    assert.equal(formatDate(Date.UTC(10000, 0, 1)), '-')
  })

  test('the row shows the UTC date whatever TZ says', () => {
    const before = process.env.TZ
    process.env.TZ = 'Pacific/Kiritimati' // UTC+14: a local-time bug would show the next day
    try {
      const [row] = rows(renderListing('/', [file('late', 1, Date.UTC(2026, 10, 26, 23, 30))]))
      assert.ok(row !== undefined, 'a row')
      assert.ok(row.endsWith('<td>2026-11-26 23:30</td></tr>'), row)
    } finally {
      if (before === undefined) delete process.env.TZ
      else process.env.TZ = before
    }
  })
})
