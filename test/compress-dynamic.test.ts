// Dynamic responses compressed as they are made (issue 21): Response.compress() in a handler, and
// `petrel serve --compress` (or a site's "compress": true) for CGI and proxied responses. A body
// given whole is compressed in one piece and sent with its length; one written in pieces streams
// through the compressor, each write flushed, with backpressure, and the compressor is torn down
// when the client leaves. What must not be compressed is not. Decoded by curl --compressed and the
// zstd and brotli command-line tools.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import zlib from 'node:zlib'
import { spawnSync } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { serve } from './helpers/serve.ts'
import { req } from './helpers/tcp.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { tempDir, writeTree, curl, parseCurlHead, startServeCli, type ServeCli } from './helpers/static-fixture.ts'
import { openFds, settlesTo } from './helpers/sockets.ts'
import { chooseCoding, type ContentCoding, type Response } from '../src/index.ts'

const TEXT = 'a line of text that compresses well, as pages and JSON do\n'.repeat(400)

function decode(coding: string | undefined, body: Buffer): Buffer {
  if (coding === 'gzip') return zlib.gunzipSync(body)
  if (coding === 'br') return zlib.brotliDecompressSync(body)
  if (coding === 'zstd') return zlib.zstdDecompressSync(body)
  return body
}

/** Offer compression as a server does: the coding the request prefers, level 1, 1 KiB threshold. */
function offer(accept: string | undefined, res: Response): void {
  const coding = chooseCoding(accept)
  if (coding !== null) res.compress({ coding, level: 1, minBytes: 1024 })
}

describe('Response.compress(): a body given whole', () => {
  for (const coding of ['gzip', 'br', 'zstd'] as ContentCoding[]) {
    test(`${coding}: Content-Encoding, the compressed length, Vary merged, ETag made weak, Accept-Ranges gone`, async (t) => {
      const { connect } = await serve(t, {}, (s) =>
        s.get('/', (rq, res) => {
          offer(rq.header('accept-encoding'), res)
          res.setHeader('Content-Type', 'text/html; charset=utf-8').setHeader('ETag', '"v1"').setHeader('Vary', 'Cookie').setHeader('Accept-Ranges', 'bytes')
          res.end(TEXT)
        }),
      )
      const c = await connect()
      await c.write(req('GET', '/', { Host: 'x', 'Accept-Encoding': coding }))
      const r = await c.readResponse()
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-encoding'], coding)
      assert.equal(r.headers['vary'], 'Cookie, Accept-Encoding')
      assert.equal(r.headers['etag'], 'W/"v1"')
      assert.equal(r.headers['accept-ranges'], undefined)
      assert.equal(r.chunked, false)
      assert.equal(Number(r.headers['content-length']), r.body.length)
      assert.ok(r.body.length < TEXT.length / 10)
      assert.equal(decode(coding, r.body).toString(), TEXT)
      // The connection goes on: a second request on it is answered too.
      await c.write(req('GET', '/', { Host: 'x' }))
      const plain = await c.readResponse()
      assert.equal(plain.headers['content-encoding'], undefined)
      assert.equal(plain.text, TEXT)
    })
  }

  test('not compressed: no Accept-Encoding, identity preferred, q=0, small, HEAD, 204, 304, 206, 3xx, encoded already, no-transform, not text', async (t) => {
    const cases: Record<string, (res: Response) => void> = {
      plain: (res) => res.setHeader('Content-Type', 'text/plain').end(TEXT),
      small: (res) => res.setHeader('Content-Type', 'text/plain').end('x'.repeat(1023)),
      'no-content': (res) => res.status(204).setHeader('Content-Type', 'text/plain').end(),
      'not-modified': (res) => res.status(304).setHeader('Content-Type', 'text/plain').setHeader('ETag', '"e"').end(),
      partial: (res) => res.status(206).setHeader('Content-Type', 'text/plain').setHeader('Content-Range', `bytes 0-99/${TEXT.length}`).end(TEXT.slice(0, 100)),
      moved: (res) => res.status(301).setHeader('Location', '/x').setHeader('Content-Type', 'text/html').end(TEXT),
      encoded: (res) => res.setHeader('Content-Type', 'text/plain').setHeader('Content-Encoding', 'gzip').end(zlib.gzipSync(TEXT)),
      'no-transform': (res) => res.setHeader('Content-Type', 'text/plain').setHeader('Cache-Control', 'public, no-transform').end(TEXT),
      image: (res) => res.setHeader('Content-Type', 'image/png').end(Buffer.from(TEXT)),
      untyped: (res) => res.end(TEXT),
    }
    const { connect } = await serve(t, {}, (s) =>
      s.get('/:case', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        cases[rq.params.case!]!(res)
      }),
    )
    const c = await connect()
    const ask = async (target: string, accept?: string, method = 'GET') => {
      await c.write(req(method, target, accept === undefined ? { Host: 'x' } : { Host: 'x', 'Accept-Encoding': accept }))
      return c.readResponse({ head: method === 'HEAD' })
    }
    for (const accept of [undefined, '', 'identity', 'gzip;q=0, br;q=0, zstd;q=0', 'identity;q=1, gzip;q=0.5', 'compress, deflate']) {
      const r = await ask('/plain', accept)
      assert.equal(r.headers['content-encoding'], undefined, `Accept-Encoding: ${accept}`)
      assert.equal(r.text, TEXT)
    }
    assert.equal((await ask('/plain', 'gzip;q=0.5, *;q=0.9')).headers['content-encoding'], 'zstd', '* covers zstd and br')
    const head = await ask('/plain', 'gzip', 'HEAD')
    assert.equal(head.headers['content-encoding'], undefined, 'HEAD: the head a GET without compression gets, as nginx does')
    assert.equal(head.headers['content-length'], String(TEXT.length))
    for (const name of Object.keys(cases).filter((n) => n !== 'plain')) {
      const r = await ask(`/${name}`, 'gzip, br, zstd')
      assert.equal(r.headers['content-encoding'], name === 'encoded' ? 'gzip' : undefined, name)
      assert.equal(r.headers['vary'], undefined, name)
    }
  })

  test('the client leaves while its body is being compressed: nothing is sent, nothing is reported', async (t) => {
    let compressing = 0
    const { connect, errors } = await serve(t, {}, (s) =>
      s.get('/', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        compressing++
        res.setHeader('Content-Type', 'text/plain').end('y'.repeat(4 << 20))
      }),
    )
    for (let i = 0; i < 20; i++) {
      const c = await connect()
      await c.write(req('GET', '/', { Host: 'x', 'Accept-Encoding': 'br' }))
      c.destroy()
    }
    const c = await connect()
    await c.write(req('GET', '/', { Host: 'x', 'Accept-Encoding': 'gzip' }))
    const r = await c.readResponse({ timeoutMs: 20_000 })
    assert.equal(zlib.gunzipSync(r.body).length, 4 << 20)
    assert.equal(compressing, 21)
    assert.deepEqual(errors, [])
  })
})

describe('Response.compress(): a body written in pieces', () => {
  test('each write reaches the client compressed before the next is made (flushed per write), chunked, decodable at every step', async (t) => {
    const { connect } = await serve(t, {}, (s) =>
      s.get('/events', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/event-stream')
        for (let i = 0; i < 3; i++) {
          if (!res.write(`data: event ${i}\n\n`)) await res.drain()
          await new Promise((resolve) => setTimeout(resolve, 150))
        }
        res.end()
      }),
    )
    const c = await connect()
    await c.write(req('GET', '/events', { Host: 'x', 'Accept-Encoding': 'gzip', Connection: 'close' }))
    const inflate = zlib.createGunzip()
    let text = ''
    inflate.on('data', (d: Buffer) => (text += d.toString()))
    let fed = 0
    const feed = (): void => {
      // Chunk framing stripped: the body bytes so far, from the head's end, without chunk size lines.
      const all = c.received
      const headEnd = all.indexOf('\r\n\r\n') + 4
      let p = headEnd
      const body: Buffer[] = []
      while (p < all.length) {
        const lineEnd = all.indexOf('\r\n', p)
        if (lineEnd < 0) break
        const size = Number.parseInt(all.toString('latin1', p, lineEnd), 16)
        if (lineEnd + 2 + size + 2 > all.length) break
        body.push(all.subarray(lineEnd + 2, lineEnd + 2 + size))
        p = lineEnd + 2 + size + 2
      }
      const joined = Buffer.concat(body)
      if (joined.length > fed) inflate.write(joined.subarray(fed))
      fed = joined.length
    }
    for (let i = 0; i < 3; i++) {
      await c.until(
        () => {
          feed()
          return text.includes(`event ${i}`)
        },
        2000,
        `event ${i} decoded while the stream is still open`,
      )
      if (i < 2) assert.ok(!text.includes(`event ${i + 1}`), 'the next event is not made yet')
      assert.ok(!c.closedByServer)
    }
    await c.until(() => c.closedByServer, 2000, 'the end of the response')
    const [r] = c.allResponses()
    assert.equal(r!.headers['content-encoding'], 'gzip')
    assert.equal(r!.chunked, true)
    assert.equal(zlib.gunzipSync(r!.body).toString(), 'data: event 0\n\ndata: event 1\n\ndata: event 2\n\n')
  })

  test('backpressure: a client that does not read holds the writer back; what the server holds stays bounded', async (t) => {
    let written = 0
    let waiting = false
    let finished = false
    // Base64 of random bytes: it compresses to about 3/4, so what the client does not read stays
    // in the pipeline as compressed bytes rather than vanishing into a 1000:1 ratio.
    const { randomBytes } = await import('node:crypto')
    const noise = Buffer.from(randomBytes(768 * 1024).toString('base64'))
    const piece = (n: number): Buffer => noise.subarray((n * 65536) % (noise.length - 65536), ((n * 65536) % (noise.length - 65536)) + 65536)
    const total = 64 << 20
    const { connect } = await serve(t, {}, (s) =>
      s.get('/big', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain')
        for (let n = 0; written < total; n++) {
          written += 65536
          if (!res.write(piece(n))) {
            waiting = true
            await res.drain()
            waiting = false
          }
        }
        res.end()
        finished = true
      }),
    )
    const c = await connect({ paused: true })
    await c.write(req('GET', '/big', { Host: 'x', 'Accept-Encoding': 'gzip', Connection: 'close' }))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const heldBack = written
    assert.ok(waiting, 'the writer waits on drain()')
    // The socket buffers on both sides, the connection's queue and the compressor's two 16 KiB buffers: a few MiB, not the 64.
    assert.ok(heldBack < 8 << 20, `the writer is held back: ${heldBack} bytes handed over while the client read nothing`)
    c.socket.resume()
    await c.until(() => c.closedByServer, 30_000, 'the whole body')
    assert.ok(finished)
    const [r] = c.allResponses()
    const decoded = zlib.gunzipSync(r!.body)
    assert.equal(decoded.length, total)
    assert.ok(decoded.subarray(0, 65536).equals(piece(0)) && decoded.subarray(total - 65536).equals(piece(total / 65536 - 1)))
  })

  test('the client leaves mid-stream: drain() rejects, the compressor is torn down, descriptors are freed, nothing is reported', async (t) => {
    let rejected = 0
    const piece = Buffer.from(`${'chunk of streamed text '.repeat(3000)}\n`)
    const { connect, errors } = await serve(t, {}, (s) =>
      s.get('/forever', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain')
        try {
          for (;;) if (!res.write(piece)) await res.drain()
        } catch {
          rejected++
        }
      }),
    )
    const before = openFds(process.pid)
    for (const coding of ['gzip', 'br', 'zstd', 'gzip', 'br', 'zstd']) {
      const c = await connect({ paused: true })
      await c.write(req('GET', '/forever', { Host: 'x', 'Accept-Encoding': coding }))
      await new Promise((resolve) => setTimeout(resolve, 100))
      c.destroy()
    }
    await settlesTo(() => 6 - rejected, 0, 5000)
    assert.equal(rejected, 6)
    assert.ok((await settlesTo(() => openFds(process.pid), before, 5000)) <= before)
    assert.deepEqual(errors, [])
  })

  test('a stream given to end() is compressed as it flows; a declared Content-Length below the threshold is not', async (t) => {
    const { Readable } = await import('node:stream')
    const { connect } = await serve(t, {}, (s) => {
      s.get('/stream', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'application/json')
        res.end(Readable.from([Buffer.from('['), ...Array.from({ length: 300 }, (_, i) => Buffer.from(`{"n":${i}},`)), Buffer.from('{}]')]))
      })
      s.get('/declared', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain').setHeader('Content-Length', 10)
        res.write('0123456789')
        res.end()
      })
    })
    const c = await connect()
    await c.write(req('GET', '/stream', { Host: 'x', 'Accept-Encoding': 'zstd' }))
    const r = await c.readResponse()
    assert.equal(r.headers['content-encoding'], 'zstd')
    const parsed = JSON.parse(zlib.zstdDecompressSync(r.body).toString()) as unknown[]
    assert.equal(parsed.length, 301)
    await c.write(req('GET', '/declared', { Host: 'x', 'Accept-Encoding': 'zstd' }))
    const d = await c.readResponse()
    assert.equal(d.headers['content-encoding'], undefined)
    assert.equal(d.text, '0123456789')
  })
})

describe('Response.compress(): edges', () => {
  test('a client that half-closes after its request still gets the whole streamed body, ended, then the connection closes', async (t) => {
    const { connect } = await serve(t, {}, (s) =>
      s.get('/', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain')
        for (let i = 0; i < 4; i++) {
          res.write(TEXT)
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
        res.end()
      }),
    )
    const c = await connect()
    await c.write(req('GET', '/', { Host: 'x', 'Accept-Encoding': 'gzip' }))
    c.end()
    await c.until(() => c.closedByServer, 3000, 'the connection to end after the response')
    const [r] = c.allResponses()
    assert.equal(r!.headers['content-encoding'], 'gzip')
    assert.equal(zlib.gunzipSync(r!.body).toString(), TEXT.repeat(4))
  })

  test('a handler that fails after end(body): the compressed answer stands, the error is reported', async (t) => {
    const { connect, errors } = await serve(t, { expectErrors: true }, (s) =>
      s.get('/', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain').end(TEXT)
        assert.throws(() => res.setHeader('X-Late', '1'), /headers/i)
        throw new Error('after the end')
      }),
    )
    const c = await connect()
    await c.write(req('GET', '/', { Host: 'x', 'Accept-Encoding': 'br' }))
    const r = await c.readResponse()
    assert.equal(r.status, 200)
    assert.equal(r.headers['x-late'], undefined)
    assert.equal(zlib.brotliDecompressSync(r.body).toString(), TEXT)
    await c.write(req('GET', '/', { Host: 'x' }))
    assert.equal((await c.readResponse()).status, 200, 'the connection goes on')
    assert.ok(errors.some((e) => /after the end/.test(e.message)))
  })

  test('drain() awaited after end() resolves; an empty body is never compressed; a bad level is refused up front', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/late-drain', async (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain')
        let full = false
        for (let i = 0; i < 64 && !full; i++) full = !res.write(Buffer.alloc(64 * 1024, 'x'))
        res.end()
        await res.drain()
      })
      s.get('/empty', (rq, res) => {
        res.compress({ coding: 'br', level: 4, minBytes: 0 })
        res.setHeader('Content-Type', 'text/plain').end()
      })
      s.get('/bad-level', (_rq, res) => {
        assert.throws(() => res.compress({ coding: 'gzip', level: 12, minBytes: 0 }), /gzip level is a whole number from 1 to 9/)
        assert.throws(() => res.compress({ coding: 'deflate' as ContentCoding, level: 1, minBytes: 0 }), /coding must be one of/)
        res.end('refused')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/late-drain', { Host: 'x', 'Accept-Encoding': 'gzip' }))
    const r = await c.readResponse({ timeoutMs: 10_000 })
    assert.equal(zlib.gunzipSync(r.body).length % (64 * 1024), 0)
    await c.write(req('GET', '/empty', { Host: 'x', 'Accept-Encoding': 'br' }))
    const empty = await c.readResponse()
    assert.equal(empty.headers['content-encoding'], undefined)
    assert.equal(empty.headers['content-length'], '0')
    await c.write(req('GET', '/bad-level', { Host: 'x' }))
    assert.equal((await c.readResponse()).text, 'refused')
  })

  test('every Cache-Control value counts (no-transform in a second field); digests of the identity bytes are dropped', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/two', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.setHeader('Content-Type', 'text/plain').setHeader('Cache-Control', ['public', 'no-transform']).end(TEXT)
      })
      s.get('/digest', (rq, res) => {
        offer(rq.header('accept-encoding'), res)
        res.addRawFields('Content-Digest: sha-256=:AAAA:\r\nRepr-Digest: sha-256=:BBBB:\r\n', false)
        res.setHeader('Content-Type', 'text/plain').end(TEXT)
      })
    })
    const c = await connect()
    await c.write(req('GET', '/two', { Host: 'x', 'Accept-Encoding': 'gzip' }))
    assert.equal((await c.readResponse()).headers['content-encoding'], undefined)
    await c.write(req('GET', '/digest', { Host: 'x', 'Accept-Encoding': 'gzip' }))
    const d = await c.readResponse()
    assert.equal(d.headers['content-encoding'], 'gzip')
    assert.equal(d.headers['content-digest'], undefined)
    assert.equal(d.headers['repr-digest'], undefined)
  })
})

describe('petrel serve --compress: CGI and proxied responses, decoded by real tools', () => {
  const base = tempDir('compress-dynamic')
  const root = path.join(base, 'www')
  const cgiBin = path.join(base, 'cgi-bin')
  writeTree(root, { 'index.html': '<p>hello</p>\n' })
  writeTree(cgiBin, {})
  fs.writeFileSync(
    path.join(cgiBin, 'page.sh'),
    `#!/bin/sh\nprintf 'Content-Type: text/html\\r\\n\\r\\n'\ni=0\nwhile [ $i -lt 300 ]; do echo "<p>row $i of a page made by a script</p>"; i=$((i+1)); done\n`,
    {
      mode: 0o755,
    },
  )
  let upstream: http.Server
  let cli: ServeCli
  const UPSTREAM_JSON = JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}` })))
  before(async () => {
    requireDebianPackage('curl')
    requireDebianPackage('zstd')
    requireDebianPackage('brotli')
    upstream = http.createServer((rq, res) => {
      if (rq.url === '/api/chunked') {
        res.setHeader('Content-Type', 'application/json')
        res.setHeader('ETag', '"up-1"')
        res.write(UPSTREAM_JSON.slice(0, 5000))
        setTimeout(() => res.end(UPSTREAM_JSON.slice(5000)), 50)
      } else if (rq.url === '/api/gzipped') {
        res.setHeader('Content-Type', 'application/json')
        res.setHeader('Content-Encoding', 'gzip')
        res.end(zlib.gzipSync(UPSTREAM_JSON))
      } else {
        res.setHeader('Content-Type', 'application/json')
        res.end(UPSTREAM_JSON)
      }
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const port = (upstream.address() as AddressInfo).port
    cli = await startServeCli(root, ['--compress', '--cgi-bin', cgiBin, '--proxy', `/api/=http://127.0.0.1:${port}`, '--compress-br-level', '5'])
  })
  after(() => {
    cli?.child.kill('SIGKILL')
    upstream?.close()
  })

  const fetchWith = async (coding: string, target: string) => {
    const headFile = path.join(base, `head-${coding}-${target.replaceAll('/', '_')}`)
    const r = await curl(['-s', '-H', `Accept-Encoding: ${coding}`, '-D', headFile, cli.url(target)])
    assert.equal(r.code, 0, r.stderr)
    return { ...parseCurlHead(fs.readFileSync(headFile, 'latin1')), body: r.stdout }
  }
  const tool = (name: string, body: Buffer): string => {
    const out = spawnSync(name, ['-d', '-c'], { input: body })
    assert.equal(out.status, 0, out.stderr.toString())
    return out.stdout.toString()
  }

  test('a CGI script: zstd and brotli decode it with their tools, curl --compressed with gzip', async () => {
    const expected = Array.from({ length: 300 }, (_, i) => `<p>row ${i} of a page made by a script</p>\n`).join('')
    const z = await fetchWith('zstd', '/cgi-bin/page.sh')
    assert.equal(z.headers['content-encoding'], 'zstd')
    assert.equal(tool('zstd', z.body), expected)
    const b = await fetchWith('br', '/cgi-bin/page.sh')
    assert.equal(b.headers['content-encoding'], 'br')
    assert.equal(tool('brotli', b.body), expected)
    const g = await curl(['-s', '--compressed', '-H', 'Accept-Encoding: gzip', cli.url('/cgi-bin/page.sh')])
    assert.equal(g.stdout.toString(), expected)
  })

  test('proxied: a chunked upstream body compressed in streaming (ETag made weak), one with a length, one the upstream encoded left alone', async () => {
    const chunked = await fetchWith('zstd', '/api/chunked')
    assert.equal(chunked.headers['content-encoding'], 'zstd')
    assert.equal(chunked.headers['etag'], 'W/"up-1"')
    assert.match(chunked.headers['vary'] ?? '', /Accept-Encoding/)
    assert.equal(tool('zstd', chunked.body), UPSTREAM_JSON)
    const whole = await fetchWith('br', '/api/whole')
    assert.equal(whole.headers['content-encoding'], 'br')
    assert.equal(tool('brotli', whole.body), UPSTREAM_JSON)
    const gz = await fetchWith('br', '/api/gzipped')
    assert.equal(gz.headers['content-encoding'], 'gzip', "the upstream's own coding is passed on, not compressed twice")
    assert.equal(zlib.gunzipSync(gz.body).toString(), UPSTREAM_JSON)
    const none = await fetchWith('identity', '/api/whole')
    assert.equal(none.headers['content-encoding'], undefined)
    assert.equal(none.body.toString(), UPSTREAM_JSON)
  })

  test('sites: "compress": true on one site compresses its files and proxied responses; a site that does not say follows --compress (off here)', async (t) => {
    const dir = path.join(base, 'sites')
    writeTree(dir, { a: { 'page.txt': TEXT }, b: { 'page.txt': TEXT } })
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
    const config = path.join(dir, 'petrel.json')
    fs.writeFileSync(
      config,
      JSON.stringify({
        sites: [
          { hosts: ['a.test'], root: './a', compress: true, proxy: [{ path: '/api/', upstreams: [upstreamUrl] }] },
          { hosts: ['b.test'], root: './b', proxy: [{ path: '/api/', upstreams: [upstreamUrl] }] },
        ],
      }),
    )
    const { startPetrel } = await import('./helpers/petrel.ts')
    const m = await startPetrel(t, ['--config', config])
    const get = async (host: string, target: string) => {
      const r = await curl(['-s', '-D', '-', '-o', '/dev/null', '-H', `Host: ${host}`, '-H', 'Accept-Encoding: gzip', `http://127.0.0.1:${m.port}${target}`])
      return /content-encoding: (\S+)/i.exec(r.stdout.toString())?.[1] ?? null
    }
    assert.equal(await get('a.test', '/page.txt'), 'gzip')
    assert.equal(await get('a.test', '/api/whole'), 'gzip')
    assert.equal(await get('b.test', '/page.txt'), null)
    assert.equal(await get('b.test', '/api/whole'), null)
  })

  test('a level out of range is refused at start, naming the flag and its range', () => {
    const r = spawnSync(process.execPath, ['bin/petrel.js', 'serve', root, '--port', '0', '--compress', '--compress-gzip-level', '12'], { encoding: 'utf8' })
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--compress-gzip-level/)
    assert.match(r.stderr, /9/)
  })
})
