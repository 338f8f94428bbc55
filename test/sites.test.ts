// Sites in the --config file of `petrel serve` (docs/sites.md), through the real CLI: hosts and
// 421, each rule kind and their order, SPA, clean URLs, CORS as Chromium sends it, per-site proxy
// and CGI, a bad config at start and on reload, and HTTPS.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { gzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exchange, parseAll, req, type HttpResponse } from './helpers/tcp.ts'
import { petrel, startPetrel, waitFor } from './helpers/petrel.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { makeTestCa } from './helpers/tls.ts'

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-sites-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Files under `dir`: name → content. */
function files(dir: string, entries: Record<string, string | Buffer>): void {
  for (const [name, content] of Object.entries(entries)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    writeFileSync(path.join(dir, name), content)
  }
}

/** One request over its own connection (closed after it), as raw bytes. */
async function ask(port: number, method: string, target: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
  const { raw } = await exchange(port, req(method, target, { Connection: 'close', ...headers }))
  const { responses } = parseAll(raw, { eof: true, head: method === 'HEAD' })
  assert.equal(responses.length, 1)
  return responses[0]!
}

/** `res` is a redirect with this status to this Location. */
function assertRedirect(res: HttpResponse, status: number, location: string): void {
  assert.equal(res.status, status)
  assert.equal(res.headers.location, location)
}

/** A config with two sites over `dir`: a.test (rules) and b.test (max-age, header rules), plus what `extra` adds. */
function twoSites(dir: string, extra: Record<string, unknown> = {}): string {
  files(dir, {
    'a/index.html': 'A home\n',
    'a/about.html': 'about A\n',
    'a/app.html': 'the app shell\n',
    'a/posts/hello.html': 'hello post\n',
    'a/docs/index.html': 'docs\n',
    'a/style.css': 'body{}\n',
    'a/style.css.gz': gzipSync('body{}\n'),
    'b/index.html': 'B home\n',
    'b/assets/app.js': 'js\n',
    'outside.html': 'outside the root\n',
  })
  const config = {
    sites: [
      {
        hosts: ['a.test', '*.a.test'],
        root: './a',
        cleanUrls: true,
        spa: 'app.html',
        redirects: [
          { from: '/old/*', to: '/new/:splat', status: 301 },
          { from: '/about', to: '/redirect-wins' },
        ],
        rewrites: [
          { from: '/blog/:slug', to: '/posts/:slug.html' },
          { from: '/raw/*', to: '/:splat' },
          { from: '/up/:name', to: '/../:name' },
        ],
        headers: [
          { path: '/posts/*', set: { 'X-Rule': 'posts' } },
          { path: '/blog/*', set: { 'X-Rule': 'blog' } },
        ],
        cors: { path: '/*', origins: ['https://app.a.test'], credentials: true, headers: ['content-type', 'x-token'], maxAge: 3600 },
      },
      {
        hosts: ['b.test', '[::1]'],
        root: './b',
        list: true,
        maxAge: '1h',
        headers: [{ path: '/assets/*', set: { 'Cache-Control': 'public, max-age=31536000, immutable' } }],
      },
    ],
    ...extra,
  }
  const file = path.join(dir, 'petrel.json')
  writeFileSync(file, JSON.stringify(config))
  return file
}

test('hosts: exact and one-label wildcard names, case and port and trailing dot ignored; the first site for unknown hosts', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir)])
  for (const host of ['a.test', 'A.Test:8080', 'a.test.', 'www.a.test', 'WWW.A.TEST.:80', 'unknown.example', 'x.y.a.test']) {
    const res = await ask(m.port, 'GET', '/', { Host: host })
    assert.equal(res.status, 200, host)
    assert.equal(res.text, 'A home\n', host)
  }
  const b = await ask(m.port, 'GET', '/', { Host: 'B.TEST:443' })
  assert.equal(b.text, 'B home\n')
  // An absolute-form target's authority is the request's host (RFC 9112 3.2.2), whatever Host says.
  assert.equal((await ask(m.port, 'GET', 'http://b.test/', { Host: 'a.test' })).text, 'B home\n')
  // An IPv6 literal is a name too; its colons are not a port.
  assert.equal((await ask(m.port, 'GET', '/', { Host: '[::1]:8080' })).text, 'B home\n')
  assert.equal((await ask(m.port, 'GET', '/', { Host: '[::1]' })).text, 'B home\n')
  // HTTP/1.0 without Host: the default site.
  const { responses } = await exchange(m.port, 'GET / HTTP/1.0\r\n\r\n')
  assert.equal(responses[0]!.text, 'A home\n')
})

test('with --workers: the sites reach every worker (they cross to them as plain settings)', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir), '--workers', '2', '--user', 'root'])
  // Connections spread over the workers (reusePort): enough of them meet both.
  for (let i = 0; i < 8; i++) {
    assert.equal((await ask(m.port, 'GET', '/', { Host: 'b.test' })).text, 'B home\n')
    assert.equal((await ask(m.port, 'GET', '/blog/hello', { Host: 'a.test' })).text, 'hello post\n')
  }
})

test('no site for the Host and no default: 421 Misdirected Request; "default": true picks the default', async (t) => {
  const dir = tempDir(t)
  files(dir, { 'a/index.html': 'A\n', 'b/index.html': 'B\n' })
  const file = path.join(dir, 'petrel.json')
  writeFileSync(
    file,
    JSON.stringify({
      sites: [
        { hosts: ['a.test'], root: './a', default: false },
        { hosts: ['b.test'], root: './b' },
      ],
    }),
  )
  const m = await startPetrel(t, ['--config', file])
  const res = await ask(m.port, 'GET', '/', { Host: 'other.test' })
  assert.equal(res.status, 421)
  assert.match(res.text, /^421 Misdirected Request: this server has no site for the Host/)
  assert.equal((await ask(m.port, 'GET', '/', { Host: 'a.test' })).text, 'A\n')
  // A wildcard matches one label only.
  assert.equal((await ask(m.port, 'GET', '/', { Host: 'x.a.test' })).status, 421)

  writeFileSync(
    file,
    JSON.stringify({
      sites: [
        { hosts: ['a.test'], root: './a' },
        { hosts: ['b.test'], root: './b', default: true },
      ],
    }),
  )
  const n = await startPetrel(t, ['--config', file])
  assert.equal((await ask(n.port, 'GET', '/', { Host: 'other.test' })).text, 'B\n')
})

test('rules: redirects (query kept) before rewrites; headers by path; a rewrite serves its target; the first matching rule wins', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir)])
  const a = { Host: 'a.test' }
  assertRedirect(await ask(m.port, 'GET', '/old/x/y.html?q=1', a), 301, '/new/x/y.html?q=1')
  // /about is a file (about.html, clean URLs) but the redirect rule comes first.
  assertRedirect(await ask(m.port, 'GET', '/about', a), 308, '/redirect-wins')
  const blog = await ask(m.port, 'GET', '/blog/hello', a)
  assert.equal(blog.status, 200)
  assert.equal(blog.text, 'hello post\n')
  // Header rules match the path as requested (before the rewrite).
  assert.equal(blog.headers['x-rule'], 'blog')
  assert.equal((await ask(m.port, 'GET', '/posts/hello.html', a)).headers['x-rule'], 'posts')
  // b.test: the header rule's Cache-Control wins over the site's maxAge; elsewhere maxAge applies.
  const asset = await ask(m.port, 'GET', '/assets/app.js', { Host: 'b.test' })
  assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable')
  assert.equal((await ask(m.port, 'GET', '/index.html', { Host: 'b.test' })).headers['cache-control'], 'public, max-age=3600')
  // Listings per site: b.test lists its directories, a.test (the flags' default) does not.
  const listing = await ask(m.port, 'GET', '/assets/', { Host: 'b.test' })
  assert.equal(listing.status, 200)
  assert.match(listing.text, /app\.js/)
  const unlisted = await ask(m.port, 'GET', '/posts/', { Host: 'a.test' })
  assert.equal(unlisted.status, 403)
  assert.doesNotMatch(unlisted.text, /hello/)
})

test('a rewrite cannot leave ROOT: "..", %2e%2e and encoded slashes in captured segments', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir)])
  const a = { Host: 'a.test' }
  // "/up/:name" → "/../:name" climbs above "/" after normalising: refused.
  const up = await ask(m.port, 'GET', '/up/outside.html', a)
  assert.equal(up.status, 400)
  assert.doesNotMatch(up.text, /outside the root/)
  for (const target of [
    '/raw/..%2foutside.html',
    '/raw/%2e%2e%2foutside.html',
    '/blog/..%2f..%2foutside',
    '/raw/%2e%2e/outside.html',
    '/raw/%2E%2E/%2E%2E/outside.html',
  ]) {
    const res = await ask(m.port, 'GET', target, a)
    assert.doesNotMatch(res.text, /outside the root/, `${target}: ${res.status} ${res.text}`)
  }
  // An encoded slash inside the root is refused by the file server, not decoded into a path.
  const slash = await ask(m.port, 'GET', '/raw/posts%2fhello.html', a)
  assert.equal(slash.status, 400)
  // The same path with a real slash is served.
  assert.equal((await ask(m.port, 'GET', '/raw/posts/hello.html', a)).text, 'hello post\n')
})

test('cleanUrls: /about serves about.html, /about.html redirects 308 to /about with the query, index.html to its directory', async (t) => {
  const dir = tempDir(t)
  const file = twoSites(dir)
  // Without the /about redirect rule of twoSites.
  const config = JSON.parse(readFileSync(file, 'utf8'))
  config.sites[0].redirects = []
  writeFileSync(file, JSON.stringify(config))
  const m = await startPetrel(t, ['--config', file])
  const a = { Host: 'a.test' }
  const about = await ask(m.port, 'GET', '/about', a)
  assert.equal(about.status, 200)
  assert.equal(about.text, 'about A\n')
  assertRedirect(await ask(m.port, 'GET', '/about.html?x=1&y=2', a), 308, '/about?x=1&y=2')
  assertRedirect(await ask(m.port, 'GET', '/docs/index.html', a), 308, '/docs/')
  assert.equal((await ask(m.port, 'HEAD', '/about', a)).status, 200)
})

test('spa: GET/HEAD of an extension-less path with no file, accepting HTML, gets the app with 200; others 404', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir)])
  const html = { Host: 'a.test', Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }
  const route = await ask(m.port, 'GET', '/dashboard/settings', html)
  assert.equal(route.status, 200)
  assert.equal(route.text, 'the app shell\n')
  assert.equal((await ask(m.port, 'HEAD', '/dashboard', html)).status, 200)
  // An extension: a missing asset is a 404, not the app.
  assert.equal((await ask(m.port, 'GET', '/missing.js', html)).status, 404)
  // A client that does not accept HTML (fetch() of JSON) gets 404.
  assert.equal((await ask(m.port, 'GET', '/dashboard', { Host: 'a.test', Accept: 'application/json' })).status, 404)
  // Not for other methods.
  assert.notEqual((await ask(m.port, 'DELETE', '/dashboard', html)).status, 200)
  // An existing file is itself.
  assert.equal((await ask(m.port, 'GET', '/style.css', html)).text, 'body{}\n')
})

test('cors: a preflight as Chromium sends it gets 204 with origin, methods, headers and Max-Age; actual responses get the origin and Vary; other origins nothing', async (t) => {
  const dir = tempDir(t)
  const m = await startPetrel(t, ['--config', twoSites(dir)])
  // Chromium's preflight for fetch(url, {method: 'PUT', credentials: 'include', headers: {'Content-Type': 'application/json', 'X-Token': 't'}}).
  const preflight = await ask(m.port, 'OPTIONS', '/style.css', {
    Host: 'a.test',
    Accept: '*/*',
    'Access-Control-Request-Method': 'PUT',
    'Access-Control-Request-Headers': 'content-type,x-token',
    Origin: 'https://app.a.test',
    'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Sec-Fetch-Mode': 'cors',
    'Sec-Fetch-Site': 'same-site',
    'Sec-Fetch-Dest': 'empty',
    Referer: 'https://app.a.test/',
    'Accept-Encoding': 'gzip, deflate, br, zstd',
    'Accept-Language': 'en-US,en;q=0.9',
  })
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.a.test')
  assert.equal(preflight.headers['access-control-allow-credentials'], 'true')
  assert.equal(preflight.headers['access-control-allow-methods'], 'GET, HEAD, POST')
  assert.equal(preflight.headers['access-control-allow-headers'], 'content-type, x-token')
  assert.equal(preflight.headers['access-control-max-age'], '3600')
  assert.match(preflight.headers.vary ?? '', /Origin/)
  const actual = await ask(m.port, 'GET', '/style.css', { Host: 'a.test', Origin: 'https://app.a.test', 'Accept-Encoding': 'gzip' })
  assert.equal(actual.status, 200)
  assert.equal(actual.headers['access-control-allow-origin'], 'https://app.a.test')
  assert.equal(actual.headers['access-control-allow-credentials'], 'true')
  // The file has a .gz variant: Vary names both what the CORS rule and the encoding chose by.
  assert.match(actual.headers.vary ?? '', /Origin/)
  assert.match(actual.headers.vary ?? '', /Accept-Encoding/)
  const other = await ask(m.port, 'GET', '/style.css', { Host: 'a.test', Origin: 'https://evil.test' })
  assert.equal(other.status, 200)
  assert.equal(Object.keys(other.headers).filter((h) => h.startsWith('access-control-')).length, 0)
  const otherPreflight = await ask(m.port, 'OPTIONS', '/style.css', { Host: 'a.test', Origin: 'https://evil.test', 'Access-Control-Request-Method': 'PUT' })
  assert.notEqual(otherPreflight.status, 204)
  assert.equal(otherPreflight.headers['access-control-allow-origin'], undefined)
})

test('per-site proxy and cgiBin: each site its own upstream and scripts; a rewrite reaches the upstream as the new path', async (t) => {
  const dir = tempDir(t)
  const upstream = createServer((request, response) => response.end(`upstream saw ${request.method} ${request.url} host=${request.headers.host}`))
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => upstream.close())
  const upstreamPort = (upstream.address() as AddressInfo).port
  files(dir, {
    'a/index.html': 'A\n',
    'b/index.html': 'B\n',
    'cgi/hello': '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nscript of b at %s" "$SCRIPT_NAME"\n',
  })
  chmodSync(path.join(dir, 'cgi/hello'), 0o755)
  const file = path.join(dir, 'petrel.json')
  writeFileSync(
    file,
    JSON.stringify({
      sites: [
        {
          hosts: ['a.test'],
          root: './a',
          rewrites: [{ from: '/v1/:thing', to: '/api/:thing' }],
          proxy: [{ path: '/api/', upstreams: [`http://127.0.0.1:${upstreamPort}`] }],
        },
        { hosts: ['b.test'], root: './b', cgiBin: './cgi' },
      ],
    }),
  )
  const m = await startPetrel(t, ['--config', file])
  const proxied = await ask(m.port, 'GET', '/api/x?y=1', { Host: 'a.test' })
  assert.equal(proxied.status, 200)
  assert.match(proxied.text, /^upstream saw GET \/api\/x\?y=1 host=a\.test/)
  const rewritten = await ask(m.port, 'GET', '/v1/z?q', { Host: 'a.test' })
  assert.match(rewritten.text, /^upstream saw GET \/api\/z\?q /)
  // b.test has no proxy: its /api/ is files (404); a.test has no CGI.
  assert.equal((await ask(m.port, 'GET', '/api/x', { Host: 'b.test' })).status, 404)
  const script = await ask(m.port, 'GET', '/cgi-bin/hello', { Host: 'b.test' })
  assert.equal(script.status, 200)
  assert.equal(script.text, 'script of b at /cgi-bin/hello')
  assert.equal((await ask(m.port, 'GET', '/cgi-bin/hello', { Host: 'a.test' })).status, 404)
})

test('a bad sites config at start: exit 2, naming the file, the JSON path and the problem', (t) => {
  const dir = tempDir(t)
  files(dir, { 'a/index.html': 'A\n' })
  const file = path.join(dir, 'petrel.json')
  const cases: Array<[unknown, RegExp]> = [
    [{ sites: [] }, /sites: expected a non-empty array/],
    [
      {
        sites: [
          { hosts: ['a.test'], root: './a' },
          { hosts: ['b.test'], redirects: [{ from: '/x', to: 'ftp://x' }] },
        ],
      },
      /sites\[1\]\.redirects\[0\]\.to: "ftp:\/\/x" is neither a path/,
    ],
    [{ sites: [{ hosts: ['a.test'], redirects: [{ from: '/x/*', to: '/y/:slug' }] }] }, /sites\[0\]\.redirects\[0\]\.to: ":slug" is not captured/],
    [
      { sites: [{ hosts: ['a.test'], redirects: [{ from: '/:host/*', to: 'https://:host/:splat' }] }] },
      /sites\[0\]\.redirects\[0\]\.to: .*a parameter in the host/,
    ],
    [
      { sites: [{ hosts: ['a.test'], redirects: [{ from: '/x', to: '/y', status: 200 }] }] },
      /sites\[0\]\.redirects\[0\]\.status: 200 is not a redirect status/,
    ],
    [{ sites: [{ hosts: ['a.test'], rewrites: [{ from: '/*/x', to: '/y' }] }] }, /sites\[0\]\.rewrites\[0\]\.from: "\/\*\/x": "\*" must be the last segment/],
    [{ sites: [{ hosts: ['a.test:80'] }] }, /sites\[0\]\.hosts\[0\]: "a\.test:80" is not a host name/],
    [{ sites: [{ hosts: ['a.test'] }, { hosts: ['A.test.'] }] }, /sites\[1\]\.hosts\[0\]: "a\.test" is already a host of sites\[0\]/],
    [{ sites: [{ hosts: ['a.test'], root: './missing' }] }, /sites\[0\]\.root: .*missing is not a directory/],
    [{ sites: [{ hosts: ['a.test'], cors: { origins: ['*'], credentials: true } }] }, /sites\[0\]\.cors\.origins: with "credentials": true, name the origins/],
    [
      { sites: [{ hosts: ['a.test'], proxy: [{ path: '/api/', upstreams: ['127.0.0.1:3000'] }] }] },
      /sites\[0\]\.proxy\[0\]\.upstreams: "127\.0\.0\.1:3000" is not a URL/,
    ],
    [{ sites: [{ hosts: ['a.test'], auth: { path: '/admin/*' } }] }, /sites\[0\]\.auth\.htpasswd: missing; expected a non-empty string/],
    [{ sites: [{ hosts: ['a.test'], compress: 'yes' }] }, /sites\[0\]\.compress: "yes": expected true or false/],
    [{ sites: [{ hosts: ['a.test'], rot: './a' }] }, /sites\[0\]\.rot: unknown key/],
    [
      {
        sites: [
          { hosts: ['a.test'], default: true },
          { hosts: ['b.test'], default: true },
        ],
      },
      /sites\[1\]\.default: only one site/,
    ],
    [{ root: './a', sites: [{ hosts: ['a.test'], root: './a' }] }, /has "sites": give each site its "root" there/],
  ]
  for (const [config, expected] of cases) {
    writeFileSync(file, JSON.stringify(config))
    const r = petrel('serve', '--port', '0', '--config', file)
    assert.equal(r.status, 2, `${JSON.stringify(config)}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), JSON.stringify(config))
    assert.match(r.stderr, expected, JSON.stringify(config))
  }
  // --proxy and --cgi-bin are per site with sites.
  writeFileSync(file, JSON.stringify({ sites: [{ hosts: ['a.test'], root: './a' }] }))
  const r = petrel('serve', '--port', '0', '--config', file, '--proxy', '/api/=http://127.0.0.1:1')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--proxy with "sites" in the config file/)
})

test('a bad sites config on reload is refused with its JSON path; the running sites keep serving; a good one is taken', async (t) => {
  const dir = tempDir(t)
  files(dir, { 'a/index.html': 'A\n', 'b/index.html': 'B\n' })
  const file = path.join(dir, 'petrel.json')
  writeFileSync(file, JSON.stringify({ port: 0, sites: [{ hosts: ['a.test'], root: './a' }] }))
  const m = await startPetrel(t, ['--config', file])
  writeFileSync(file, JSON.stringify({ port: 0, sites: [{ hosts: ['a.test'], root: './a', redirects: [{ from: 'no-slash', to: '/x' }] }] }))
  m.child.kill('SIGHUP')
  await waitFor('the refusal', () => /reload refused/.test(m.log()), 10_000)
  assert.match(
    m.log(),
    /reload refused, still serving with the old configuration: config file .*petrel\.json: sites\[0\]\.redirects\[0\]\.from: "no-slash": a pattern starts with "\/"/,
  )
  assert.equal((await ask(m.port, 'GET', '/', { Host: 'a.test' })).text, 'A\n')
  writeFileSync(file, JSON.stringify({ port: 0, sites: [{ hosts: ['a.test'], root: './b' }] }))
  m.child.kill('SIGHUP')
  const deadline = Date.now() + 10_000
  let text = ''
  while (Date.now() < deadline && text !== 'B\n') {
    text = (await ask(m.port, 'GET', '/', { Host: 'a.test' }).catch(() => ({ text: '' }))).text
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(text, 'B\n')
})

test('over HTTPS: sites by Host through curl, 421 and the rules', async (t) => {
  requireDebianPackage('curl')
  const dir = tempDir(t)
  const ca = makeTestCa(path.join(dir, 'ca'))
  const leaf = ca.issue(['a.test', 'b.test', 'other.test'])
  files(dir, { 'a/index.html': 'A over TLS\n', 'a/about.html': 'about\n', 'b/index.html': 'B over TLS\n' })
  const file = path.join(dir, 'petrel.json')
  writeFileSync(
    file,
    JSON.stringify({
      sites: [
        { hosts: ['a.test'], root: './a', cleanUrls: true, default: false },
        { hosts: ['b.test'], root: './b' },
      ],
    }),
  )
  const m = await startPetrel(t, ['--config', file, '--tls-cert', leaf.cert, '--tls-key', leaf.key])
  const curl = (host: string, urlPath: string): string => {
    const r = spawnSync(
      'curl',
      ['-sS', '-i', '--cacert', ca.caCert, '--max-time', '10', '--resolve', `${host}:${m.port}:127.0.0.1`, `https://${host}:${m.port}${urlPath}`],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(r.status, 0, r.stderr)
    return r.stdout
  }
  // Over h2, which curl takes by ALPN (HTTP/2 is on by default): Host is :authority.
  assert.match(curl('a.test', '/'), /^HTTP\/2 200[\s\S]*A over TLS/)
  assert.match(curl('b.test', '/'), /^HTTP\/2 200[\s\S]*B over TLS/)
  assert.match(curl('a.test', '/about'), /^HTTP\/2 200[\s\S]*about/)
  assert.match(curl('a.test', '/about.html'), /^HTTP\/2 308[\s\S]*location: \/about\r?\n/i)
  assert.match(curl('other.test', '/'), /^HTTP\/2 421 /)
})
