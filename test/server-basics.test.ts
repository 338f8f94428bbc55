// The HTTP/1.1 engine end to end over raw TCP: keep-alive rules, HEAD, 100-continue, pipelining,
// split input, routes, request bodies and handler failures.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Readable } from 'node:stream'
import type { HttpServer, Response } from '../src/index.ts'
import { PetrelError } from '../src/core/errors.ts'
import { req, chunked, parseAll } from './helpers/tcp.ts'
import { serve } from './helpers/serve.ts'

/** A res.corked() scope that writes, then fails. */
function writeThenThrow(res: Response, text: string): void {
  res.write(text)
  throw new Error('the scope failed')
}

function basicRoutes(s: HttpServer): void {
  s.get('/', (_req, res) => res.end('root'))
  s.get('/hello', (_req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    res.end('hello world')
  })
  s.get('/stream', (_req, res) => {
    res.write('part1,')
    res.write('part2')
    res.end()
  })
  s.post('/echo', async (r, res) => {
    const body = await r.body()
    res.setHeader('X-Length', body.length)
    res.end(body)
  })
}

describe('keep-alive rules', () => {
  test('HTTP/1.1 stays open by default and serves several requests on one connection', async (t) => {
    const { port, server, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/'))
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.status, 200)
    assert.equal(r1!.text, 'root')
    assert.equal(r1!.headers['connection'], undefined, 'HTTP/1.1 keep-alive needs no Connection header')
    assert.ok(r1!.headers['date'], 'Date header present')
    await c.write(req('GET', '/hello'))
    const [r2] = await c.readResponses(1)
    assert.equal(r2!.text, 'hello world')
    assert.equal(await c.waitClosed(150), false, 'connection stays open')
    assert.equal(server.stats.accepted, 1)
    assert.equal(server.stats.requests, 2)
  })

  test('HTTP/1.1 with Connection: close gets Connection: close and the server closes', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/', { Connection: 'close' }))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 200)
    assert.equal(r!.headers['connection'], 'close')
    assert.equal(await c.waitClosed(2000), true)
    assert.equal(c.unparsed().length, 0, 'nothing after the response')
  })

  test('HTTP/1.0 without keep-alive closes after the response', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/', {}, undefined, '1.0'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 200)
    assert.equal(r!.text, 'root')
    assert.equal(r!.headers['connection'], 'close')
    assert.equal(await c.waitClosed(2000), true)
  })

  test('HTTP/1.0 with Connection: keep-alive gets it echoed and the connection is reused', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/', { Connection: 'keep-alive' }, undefined, '1.0'))
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.headers['connection']?.toLowerCase(), 'keep-alive')
    assert.equal(r1!.headers['content-length'], '4')
    assert.equal(await c.waitClosed(150), false)
    await c.write(req('GET', '/hello', { Connection: 'Keep-Alive' }, undefined, '1.0'))
    const [r2] = await c.readResponses(1)
    assert.equal(r2!.text, 'hello world')
    // A third request without keep-alive closes it.
    await c.write(req('GET', '/', {}, undefined, '1.0'))
    const [r3] = await c.readResponses(1)
    assert.equal(r3!.headers['connection'], 'close')
    assert.equal(await c.waitClosed(2000), true)
  })

  test('HTTP/1.0 keep-alive request with a streamed (unknown length) response is close-delimited', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/stream', { Connection: 'keep-alive' }, undefined, '1.0'))
    const raw = await c.readUntilClose(2000)
    const [r] = parseAll(raw, { eof: true }).responses
    assert.equal(r!.headers['transfer-encoding'], undefined, 'no chunked coding for HTTP/1.0')
    assert.equal(r!.headers['connection'], 'close')
    assert.equal(r!.text, 'part1,part2')
  })

  test('HTTP/1.1 streamed response is chunked and the connection stays usable', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/stream'), req('GET', '/')]))
    const [r1, r2] = await c.readResponses(2)
    assert.equal(r1!.chunked, true)
    assert.equal(r1!.text, 'part1,part2')
    assert.equal(r2!.text, 'root')
  })

  test('limits.maxRequestsPerConnection closes the connection after that many requests', async (t) => {
    const { port, connect } = await serve(t, { limits: { maxRequestsPerConnection: 2 } }, basicRoutes)
    const c = await connect()
    await c.write(req('GET', '/'))
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.headers['connection'], undefined)
    await c.write(req('GET', '/'))
    const [r2] = await c.readResponses(1)
    assert.equal(r2!.headers['connection'], 'close')
    assert.equal(await c.waitClosed(2000), true)
  })

  test('requests pipelined after a Connection: close request are not processed', async (t) => {
    let secondRan = false
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/', (_r, res) => res.end('root'))
      s.get('/second', (_r, res) => {
        secondRan = true
        res.end('second')
      })
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/', { Connection: 'close' }), req('GET', '/second')]))
    const raw = await c.readUntilClose(2000)
    const responses = parseAll(raw, { eof: true }).responses
    assert.equal(responses.length, 1, `exactly one response expected, got: ${JSON.stringify(raw.toString('latin1'))}`)
    assert.equal(secondRan, false, 'the handler of the request after Connection: close must not run')
  })
})

describe('HEAD', () => {
  test('HEAD gets the GET headers, including its Content-Length, and no body', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('HEAD', '/hello'), req('GET', '/hello')]))
    const [h, g] = await c.readResponses(2, { head: [true, false] })
    assert.equal(h!.status, 200)
    assert.equal(h!.headers['content-length'], '11')
    assert.equal(h!.headers['content-type'], 'text/plain')
    assert.equal(h!.body.length, 0)
    assert.equal(g!.text, 'hello world', 'the GET after it parses: the HEAD response had no body bytes')
    assert.equal(c.unparsed().length, 0)
  })

  test('HEAD to a handler that streams with write() sends no body bytes (no chunk terminator)', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('HEAD', '/stream'), req('GET', '/')]))
    const [h, g] = await c.readResponses(2, { head: [true, false], timeoutMs: 2000 })
    assert.equal(h!.status, 200)
    assert.equal(g!.status, 200, 'the GET after the HEAD must parse')
    assert.equal(g!.text, 'root')
  })

  test('HEAD answered with a declared Content-Length and no body keeps that length', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.route('HEAD', '/file', (_r, res) => {
        res.setHeader('Content-Length', 12345)
        res.end()
      })
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('HEAD', '/file'), req('GET', '/')]))
    const [h, g] = await c.readResponses(2, { head: [true, false] })
    assert.equal(h!.headers['content-length'], '12345')
    assert.equal(g!.text, 'root')
  })

  test('HEAD on a route with only GET is allowed (listed in Allow)', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('DELETE', '/hello'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 405)
    assert.deepEqual(r!.headers['allow']!.split(/,\s*/).sort(), ['GET', 'HEAD'])
  })
})

describe('Expect: 100-continue', () => {
  test('a handler that reads the body makes the server send 100 Continue before the final response', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('POST', '/echo', { Expect: '100-continue', 'Content-Length': 5 }))
    // The client waits for the 100 before sending the body.
    await c.until(() => c.received.indexOf('\r\n\r\n') >= 0, 2000, '100 Continue')
    assert.equal(c.received.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n')
    await c.write('hello')
    const [r] = await c.readResponses(1)
    assert.equal(c.interim.length, 1)
    assert.equal(r!.status, 200)
    assert.equal(r!.text, 'hello')
  })

  test('a handler that answers without reading gets no 100 Continue', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.post('/deny', (_r, res) => res.status(403).end('no'))
    })
    const c = await connect()
    await c.write(req('POST', '/deny', { Expect: '100-continue', 'Content-Length': 5 }))
    const [r] = await c.readResponses(1, { timeoutMs: 2000 })
    assert.equal(r!.status, 403)
    assert.equal(c.interim.length, 0, 'no 1xx before the final response')
    assert.doesNotMatch(c.received.toString('latin1'), /100 Continue/)
  })

  test('an HTTP/1.0 request with Expect: 100-continue gets no 100 (RFC 9110 §10.1.1, §15.2)', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(req('POST', '/echo', { Expect: '100-continue' }, 'hello', '1.0'))
    const raw = await c.readUntilClose(2000)
    const responses = parseAll(raw, { eof: true }).responses
    assert.deepEqual(
      responses.map((r) => r.status),
      [200],
      `raw: ${JSON.stringify(raw.toString('latin1'))}`,
    )
  })
})

describe('pipelining and split input', () => {
  test('responses come in request order when an earlier handler is async and a later one sync', async (t) => {
    const order: string[] = []
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/slow', async (_r, res) => {
        order.push('slow start')
        await sleep(120)
        res.end('slow')
      })
      s.get('/medium', async (_r, res) => {
        order.push('medium start')
        await sleep(30)
        res.end('medium')
      })
      s.get('/fast', (_r, res) => {
        order.push('fast')
        res.end('fast')
      })
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/slow'), req('GET', '/fast'), req('GET', '/medium'), req('GET', '/fast'), req('GET', '/slow')]))
    const rs = await c.readResponses(5)
    assert.deepEqual(
      rs.map((r) => r.text),
      ['slow', 'fast', 'medium', 'fast', 'slow'],
    )
  })

  test('many pipelined requests in one write are answered in order in few reads', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/n/:i', (r, res) => res.end(`n=${r.params.i}`))
    })
    const c = await connect()
    const n = 300
    const parts: Buffer[] = []
    for (let i = 0; i < n; i++) parts.push(req('GET', `/n/${i}`))
    await c.write(Buffer.concat(parts))
    const rs = await c.readResponses(n)
    for (let i = 0; i < n; i++) assert.equal(rs[i]!.text, `n=${i}`)
    // ~300 × 90 bytes arrive batched, not as 300 separate writes.
    assert.ok(c.reads <= 10, `responses took ${c.reads} reads`)
  })

  test('a request split byte by byte over many writes works, and so does its body', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.writeSplit(req('GET', '/hello', { 'X-Padding': 'a'.repeat(40) }), 1)
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.text, 'hello world')
    await c.writeSplit(req('POST', '/echo', {}, 'split body'), 1)
    const [r2] = await c.readResponses(1)
    assert.equal(r2!.text, 'split body')
    await c.writeSplit(Buffer.concat([req('POST', '/echo', { 'Transfer-Encoding': 'chunked' }), chunked(['ab', 'cde'], 'X-T: 1\r\n')]), 1)
    const [r3] = await c.readResponses(1)
    assert.equal(r3!.text, 'abcde')
  })

  test('a pipelined batch split at every possible boundary still parses', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const batch = Buffer.concat([req('GET', '/'), req('POST', '/echo', {}, 'xyz'), req('GET', '/hello')])
    for (let cut = 1; cut < batch.length; cut += 7) {
      const c = await connect()
      await c.write(batch.subarray(0, cut))
      await sleep(1)
      await c.write(batch.subarray(cut))
      const rs = await c.readResponses(3)
      assert.deepEqual(
        rs.map((r) => r.text),
        ['root', 'xyz', 'hello world'],
        `cut at ${cut}`,
      )
      c.destroy()
    }
  })

  test('pipelined requests followed by a half-close are all answered (sync handlers)', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/a', (_r, res) => res.end('a'))
      s.get('/b', (_r, res) => res.end('b'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/a'), req('GET', '/b'), req('GET', '/a')]))
    c.socket.end()
    const raw = await c.readUntilClose(3000)
    assert.deepEqual(
      parseAll(raw, { eof: true }).responses.map((r) => r.text),
      ['a', 'b', 'a'],
    )
  })

  test('pipelined requests followed by a half-close are all answered (async first handler)', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/a', async (_r, res) => {
        await sleep(50)
        res.end('a')
      })
      s.get('/b', (_r, res) => res.end('b'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/a'), req('GET', '/b'), req('GET', '/a')]))
    c.socket.end() // FIN: we send nothing more but still read
    const raw = await c.readUntilClose(3000)
    assert.deepEqual(
      parseAll(raw, { eof: true }).responses.map((r) => r.text),
      ['a', 'b', 'a'],
    )
  })
})

describe('routes', () => {
  test('params are percent-decoded; unknown path is 404; bad escapes are 400', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/users/:id', (r, res) => res.json({ id: r.params.id, q: r.query.get('q'), path: r.path }))
      s.get('/files/*', (r, res) => res.end(r.params['*']))
      s.get('/a/:x/b/:y', (r, res) => res.end(`${r.params.x}|${r.params.y}`))
    })
    const c = await connect()
    await c.write(
      Buffer.concat([
        req('GET', '/users/caf%C3%A9%20%2F1?q=a%20b'),
        req('GET', '/files/x/y.txt'),
        req('GET', '/a/1/b/%3F'),
        req('GET', '/nope'),
        req('GET', '/users/%E0%A4%A'),
      ]),
    )
    const [r1, r2, r3, r4, r5] = await c.readResponses(5)
    assert.deepEqual(JSON.parse(r1!.text), { id: 'café /1', q: 'a b', path: '/users/caf%C3%A9%20%2F1' })
    assert.equal(r1!.headers['content-type'], 'application/json')
    assert.equal(r2!.text, 'x/y.txt')
    assert.equal(r3!.text, '1|?')
    assert.equal(r4!.status, 404)
    assert.equal(r5!.status, 400)
  })

  test('wrong method gets 405 with Allow; fallback handles unknown paths', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/thing', (_r, res) => res.end('get'))
      s.put('/thing', (_r, res) => res.end('put'))
      s.route('PATCH', '/thing', (_r, res) => res.end('patch'))
      s.fallback((r, res) => res.status(418).end(`fallback ${r.method} ${r.path}`))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('POST', '/thing', {}, 'x'), req('PUT', '/thing', {}, ''), req('GET', '/other?x=1')]))
    const [r1, r2, r3] = await c.readResponses(3)
    assert.equal(r1!.status, 405)
    assert.deepEqual(r1!.headers['allow']!.split(/,\s*/).sort(), ['GET', 'HEAD', 'PATCH', 'PUT'])
    assert.equal(r2!.text, 'put')
    assert.equal(r3!.status, 418)
    assert.equal(r3!.text, 'fallback GET /other')
  })

  test('absolute-form target routes by its path; OPTIONS * is accepted', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/p', (r, res) => res.end(`${r.path} ${r.url}`))
      s.fallback((r, res) => res.end(`fallback ${r.method} ${r.path}`))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', 'http://example.com/p?x=1'), req('OPTIONS', '*')]))
    const [r1, r2] = await c.readResponses(2)
    assert.equal(r1!.text, '/p http://example.com/p?x=1')
    assert.equal(r2!.text, 'fallback OPTIONS *')
  })
})

describe('request bodies', () => {
  function bodyRoutes(s: HttpServer): void {
    s.post('/buffer', async (r, res) => {
      const b = await r.body()
      res.json({ length: b.length, text: b.length < 100 ? b.toString() : undefined, trailers: r.trailers })
    })
    s.post('/stream', async (r, res) => {
      let length = 0
      let sum = 0
      for await (const chunk of r.stream()) {
        length += (chunk as Buffer).length
        for (const byte of chunk as Buffer) sum = (sum + byte) % 65521
      }
      res.json({ length, sum })
    })
    s.post('/json', async (r, res) => res.json({ got: await r.json() }))
  }

  function checksum(b: Buffer): number {
    let sum = 0
    for (const byte of b) sum = (sum + byte) % 65521
    return sum
  }

  test('Content-Length and chunked bodies through body(), with trailers', async (t) => {
    const { port, connect } = await serve(t, {}, bodyRoutes)
    const c = await connect()
    await c.write(
      Buffer.concat([
        req('POST', '/buffer', {}, 'hello'),
        req('POST', '/buffer', { 'Transfer-Encoding': 'chunked' }),
        chunked(['he', 'llo', ' chunked'], 'X-Checksum: 42\r\n'),
        req('POST', '/buffer', { 'Content-Length': 0 }),
        req('POST', '/json', { 'Content-Type': 'application/json' }, '{"a":[1,2]}'),
      ]),
    )
    const [r1, r2, r3, r4] = await c.readResponses(4)
    assert.deepEqual(JSON.parse(r1!.text), { length: 5, text: 'hello', trailers: {} })
    assert.deepEqual(JSON.parse(r2!.text), { length: 13, text: 'hello chunked', trailers: { 'x-checksum': '42' } })
    assert.deepEqual(JSON.parse(r3!.text), { length: 0, text: '', trailers: {} })
    assert.deepEqual(JSON.parse(r4!.text), { got: { a: [1, 2] } })
  })

  test('large Content-Length and chunked bodies through stream(), sent in pieces', async (t) => {
    const { port, connect } = await serve(t, { limits: { maxBodyBytes: 4 * 1024 * 1024 } }, bodyRoutes)
    const body = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff
    const c = await connect()
    await c.writeSplit(req('POST', '/stream', {}, body), 256 * 1024)
    const [r1] = await c.readResponses(1)
    assert.deepEqual(JSON.parse(r1!.text), { length: body.length, sum: checksum(body) })
    const pieces: Buffer[] = []
    for (let i = 0; i < body.length; i += 100_000) pieces.push(body.subarray(i, i + 100_000))
    await c.writeSplit(Buffer.concat([req('POST', '/stream', { 'Transfer-Encoding': 'chunked' }), chunked(pieces)]), 200_000)
    const [r2] = await c.readResponses(1)
    assert.deepEqual(JSON.parse(r2!.text), { length: body.length, sum: checksum(body) })
    // And body() on the same large body.
    await c.write(req('POST', '/buffer', {}, body))
    const [r3] = await c.readResponses(1)
    assert.equal(JSON.parse(r3!.text).length, body.length)
  })

  test('a chunked body larger than maxBodyBytes gets 413 and the connection is closed', async (t) => {
    const { port, connect } = await serve(t, { limits: { maxBodyBytes: 1000 } }, bodyRoutes)
    const c = await connect()
    await c.write(
      Buffer.concat([req('POST', '/buffer', { 'Transfer-Encoding': 'chunked' }), Buffer.from('200\r\n'), Buffer.alloc(0x200, 'a'), Buffer.from('\r\n')]),
    )
    await sleep(30)
    await c.write(Buffer.concat([Buffer.from('300\r\n'), Buffer.alloc(0x300, 'b'), Buffer.from('\r\n0\r\n\r\n')])).catch(() => {})
    const raw = await c.readUntilClose(2000)
    const rs = parseAll(raw, { eof: true }).responses
    assert.equal(rs.length, 1, JSON.stringify(raw.toString('latin1')))
    assert.equal(rs[0]!.status, 413)
    assert.equal(rs[0]!.headers['connection'], 'close')
  })

  test('a chunked body exactly at maxBodyBytes is accepted', async (t) => {
    const { port, connect } = await serve(t, { limits: { maxBodyBytes: 1000 } }, bodyRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('POST', '/buffer', { 'Transfer-Encoding': 'chunked' }), chunked([Buffer.alloc(600, 'a'), Buffer.alloc(400, 'b')])]))
    const [r] = await c.readResponses(1)
    assert.equal(JSON.parse(r!.text).length, 1000)
  })

  test('a small unread body is drained and the connection reused', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.post('/ignore', (_r, res) => res.end('ignored'))
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(
      Buffer.concat([
        req('POST', '/ignore', {}, 'x'.repeat(1000)),
        req('POST', '/ignore', { 'Transfer-Encoding': 'chunked' }),
        chunked(['abc', 'def']),
        req('GET', '/'),
      ]),
    )
    const rs = await c.readResponses(3)
    assert.deepEqual(
      rs.map((r) => r.text),
      ['ignored', 'ignored', 'root'],
    )
  })
})

describe('response framing', () => {
  test('204 and 304 carry no body and no framing headers; the next response still parses', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/204', (_r, res) => res.status(204).end('ignored body'))
      s.get('/304', (_r, res) => {
        res.status(304)
        res.write('ignored')
        res.end()
      })
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/204'), req('GET', '/304'), req('GET', '/')]))
    const [a, b, r] = await c.readResponses(3)
    assert.equal(a!.status, 204)
    assert.equal(a!.headers['content-length'], undefined)
    assert.equal(a!.headers['transfer-encoding'], undefined)
    assert.equal(b!.status, 304)
    assert.equal(b!.headers['transfer-encoding'], undefined)
    assert.equal(r!.text, 'root')
  })

  test('a header value with CR/LF is refused (no response splitting) and the handler gets a 500', async (t) => {
    const { port, connect, errors } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/split', (r, res) => {
        res.setHeader('X-Echo', r.query.get('v') ?? '')
        res.end('should not get here')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/split?v=a%0d%0aSet-Cookie:%20evil=1'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 500)
    assert.equal(r!.headers['set-cookie'], undefined)
    assert.equal(errors.length, 1)
  })

  test('a header value with obs-text goes out byte for byte (latin1, as node:http writes heads); the body stays UTF-8', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/obs', (_r, res) => {
        res.setHeader('X-Name', 'caf\u00e9')
        res.end('caf\u00e9 \u2615')
      })
      s.get('/obs-stream', (_r, res) => {
        res.setHeader('X-Name', '\u00ff')
        res.write(Buffer.from('x'))
        res.end()
      })
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/obs'), req('GET', '/obs-stream', { Connection: 'close' })]))
    const raw = await c.readUntilClose(2000)
    const first = raw.indexOf(Buffer.from('X-Name: '))
    assert.deepEqual([...raw.subarray(first + 8, first + 13)], [0x63, 0x61, 0x66, 0xe9, 0x0d], 'é is the one byte 0xe9')
    assert.ok(raw.includes(Buffer.from('\r\n\r\ncaf\u00e9 \u2615', 'utf8')), 'the body is UTF-8')
    assert.ok(
      raw.includes(Buffer.from([0x58, 0x2d, 0x4e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xff, 0x0d, 0x0a])),
      'a head sent with the first body piece is latin1 too',
    )
    const responses = parseAll(raw, { eof: true }).responses
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200],
    )
    assert.equal(responses[1]!.text, 'x')
  })

  test('bodies keep their bytes whatever shares their batch: non-ASCII text as UTF-8, small Buffers copied in byte for byte', async (t) => {
    // é is one byte in V8's string and two in UTF-8: a batch written as latin1 by mistake would
    // send 0xe9; ☕ is beyond one byte and would be cut to 0x15.
    const { connect } = await serve(t, {}, (s) => {
      s.get('/ascii', (_r, res) => res.end('plain'))
      s.get('/latin', (_r, res) => res.end('caf\u00e9'))
      s.get('/wide', (_r, res) => res.end('\u2615'))
      s.get('/chunks', (_r, res) => {
        res.write('a\u00e9')
        res.write('b')
        res.end('\u2615')
      })
      s.get('/later', (_r, res) => {
        setTimeout(() => {
          res.write('x')
          res.end('\u00e9')
        }, 5)
      })
      // Small Buffers are copied into the batch's text byte for byte: they must stay those bytes
      // next to UTF-8 text, and a completion callback still runs.
      s.get('/bytes', (_r, res) => res.end(Buffer.from([0xe9, 0xff, 0x00, 0x80])))
      s.get('/mixed', (_r, res) => {
        let flushed = 0
        res.write(Buffer.from([0xe9]), () => flushed++)
        res.write('\u00e9')
        res.write(Buffer.alloc(2000, 0xff), () => flushed++)
        res.write(Buffer.from([0xfe]))
        res.end('\u2615')
        setImmediate(() => assert.equal(flushed, 2))
      })
    })
    const c = await connect()
    const paths = ['/ascii', '/latin', '/bytes', '/ascii', '/wide', '/chunks', '/mixed', '/bytes', '/ascii', '/later']
    await c.write(Buffer.concat(paths.map((p, i) => req('GET', p, i === paths.length - 1 ? { Connection: 'close' } : {}))))
    const raw = await c.readUntilClose(2000)
    const responses = parseAll(raw, { eof: true }).responses
    const utf8 = (text: string): string => Buffer.from(text, 'utf8').toString('hex')
    const bytes = 'e9ff0080'
    const mixed = `e9${utf8('\u00e9')}${'ff'.repeat(2000)}fe${utf8('\u2615')}`
    assert.deepEqual(
      responses.map((r) => r.body.toString('hex')),
      [utf8('plain'), utf8('caf\u00e9'), bytes, utf8('plain'), utf8('\u2615'), utf8('a\u00e9b\u2615'), mixed, bytes, utf8('plain'), utf8('x\u00e9')],
    )
    assert.equal(responses[1]!.headers['content-length'], '5')
    assert.equal(responses[5]!.chunked, true)
    assert.equal(responses[6]!.chunked, true)
  })

  test('a Buffer written later with a completion callback leaves no send timer behind once it is flushed', async (t) => {
    const { server, connect } = await serve(t, {}, (s) => {
      s.get('/later', (_r, res) => {
        setTimeout(() => {
          let flushed = false
          res.write(Buffer.alloc(1000, 0x61), () => (flushed = true))
          res.end()
          setImmediate(() => assert.ok(flushed))
        }, 5)
      })
    })
    const c = await connect()
    await c.write(req('GET', '/later'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.body.length, 1000)
    await new Promise((resolve) => setTimeout(resolve, 20))
    // The connection waits for its next request: its keep-alive timer, and nothing else.
    assert.equal(server.scheduler.size, 1)
  })

  test('a declared Content-Length that the body does not match cuts the connection', async (t) => {
    const { port, connect } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/short', (_r, res) => {
        res.setHeader('Content-Length', 10)
        res.write('abc')
        res.end()
      })
    })
    const c = await connect()
    await c.write(req('GET', '/short'))
    const raw = await c.readUntilClose(2000)
    // Either nothing (the head was still batched) or a truncated response; never a complete one.
    assert.equal(parseAll(raw, { eof: true }).responses.length, 0, `the client must not see a complete response: ${JSON.stringify(raw.toString('latin1'))}`)
    assert.ok(c.closedByServer)
  })

  test('a declared Content-Length with write() sends an unchunked body', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/cl', (_r, res) => {
        res.setHeader('Content-Length', 6)
        res.write('abc')
        res.write('def')
        res.end()
      })
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/cl'), req('GET', '/')]))
    const [a, b] = await c.readResponses(2)
    assert.equal(a!.chunked, false)
    assert.equal(a!.text, 'abcdef')
    assert.equal(b!.text, 'root')
  })

  test('end(Readable) streams the body chunked; pipelined requests behind it wait their turn', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.get('/readable', (_r, res) => res.end(Readable.from(['one,', 'two,', 'three'])))
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/readable'), req('GET', '/'), req('GET', '/readable')]))
    const rs = await c.readResponses(3)
    assert.deepEqual(
      rs.map((r) => r.text),
      ['one,two,three', 'root', 'one,two,three'],
    )
    assert.equal(rs[0]!.chunked, true)
  })

  test('HEAD to an unknown path gets the 404 head without a body', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('HEAD', '/nope'), req('GET', '/')]))
    const [h, g] = await c.readResponses(2, { head: [true, false] })
    assert.equal(h!.status, 404)
    assert.ok(Number(h!.headers['content-length']) > 0)
    assert.equal(g!.text, 'root')
  })

  test('when the server closes after answering a 100-continue request without reading, it says Connection: close (RFC 9110 §10.1.1)', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.post('/deny', (_r, res) => res.status(403).end('no'))
    })
    const c = await connect()
    await c.write(req('POST', '/deny', { Expect: '100-continue', 'Content-Length': 5 }))
    const [r] = await c.readResponses(1, { timeoutMs: 2000 })
    const closed = await c.waitClosed(500)
    assert.ok(!closed || r!.headers['connection'] === 'close', 'the connection was closed although the response did not announce it')
  })
})

describe('bodies the handler does not read', () => {
  test('chunk extensions and BWS before them are accepted', async (t) => {
    const { port, connect } = await serve(t, {}, basicRoutes)
    const c = await connect()
    await c.write(Buffer.concat([req('POST', '/echo', { 'Transfer-Encoding': 'chunked' }), Buffer.from('3;name=value\r\nabc\r\n2 ;x\r\nde\r\n0\r\n\r\n')]))
    const [r] = await c.readResponses(1)
    assert.equal(r!.text, 'abcde')
  })

  test('an async handler that answers before the body arrives: the body is discarded and the next request served', async (t) => {
    const { port, connect } = await serve(t, {}, (s) => {
      s.post('/early', async (_r, res) => {
        await sleep(10)
        res.end('early')
      })
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(req('POST', '/early', { 'Content-Length': 10 }))
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.text, 'early')
    await c.write(Buffer.concat([Buffer.from('0123456789'), req('GET', '/')]))
    const [r2] = await c.readResponses(1)
    assert.equal(r2!.text, 'root')
  })

  test('an async handler that answers before a large body arrives: the connection is closed instead of draining', async (t) => {
    const { port, connect } = await serve(t, { limits: { maxBodyBytes: 10_000_000 } }, (s) => {
      s.post('/early', async (_r, res) => {
        await sleep(10)
        res.end('early')
      })
    })
    const c = await connect()
    await c.write(req('POST', '/early', { 'Content-Length': 5_000_000 }))
    const [r1] = await c.readResponses(1)
    assert.equal(r1!.text, 'early')
    assert.equal(await c.waitClosed(2000), true)
  })
})

describe('handler failures', () => {
  test('a handler that throws gets 500 and the connection stays usable', async (t) => {
    const { port, errors, connect } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/throw', () => {
        throw new Error('boom')
      })
      s.get('/reject', async () => {
        await sleep(10)
        throw new Error('async boom')
      })
      s.get('/', (_r, res) => res.end('root'))
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/throw'), req('GET', '/'), req('GET', '/reject'), req('GET', '/')]))
    const rs = await c.readResponses(4)
    assert.deepEqual(
      rs.map((r) => r.status),
      [500, 200, 500, 200],
    )
    assert.equal(rs[0]!.headers['connection'], undefined)
    assert.deepEqual(
      errors.map((e) => e.message),
      ['boom', 'async boom'],
    )
    assert.equal(await c.waitClosed(100), false)
  })

  test('an async handler that rejects after part of a chunked response destroys the connection', async (t) => {
    const { port, errors, connect } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/partial', async (_r, res) => {
        res.write('first part')
        await sleep(30)
        throw new Error('failed mid-response')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/partial'))
    const raw = await c.readUntilClose(2000)
    const text = raw.toString('latin1')
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(text, /Transfer-Encoding: chunked/)
    assert.match(text, /first part/)
    assert.doesNotMatch(text, /\r\n0\r\n\r\n$/, 'no terminating chunk: the client must see a truncated response')
    assert.equal(parseAll(raw, { eof: true }).responses.length, 0)
    assert.ok(errors.some((e) => e.message === 'failed mid-response'))
  })

  test('a handler that finishes after the client reset the connection does not revive it', async (t) => {
    let conn: { open: boolean; phase: number } | undefined
    let ended = false
    const { server, connect } = await serve(t, {}, (s) => {
      s.get('/late', async (_r, res) => {
        conn = [...server.connections][0]
        await sleep(150)
        res.end('too late')
        ended = true
      })
    })
    const c = await connect()
    await c.write(req('GET', '/late'))
    await c.until(() => conn !== undefined, 1000, 'handler start')
    c.socket.resetAndDestroy()
    await c.until(() => server.connections.size === 0, 1000, 'server to see the reset')
    assert.equal(conn!.open, false)
    await c.until(() => ended, 1000, 'handler end')
    assert.equal(conn!.open, false, `connection reopened: phase ${conn!.phase}`)
  })

  test('a handler failure is reported to onError once', async (t) => {
    const { port, errors, connect } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/partial', async (_r, res) => {
        res.write('first part')
        await sleep(10)
        throw new Error('failed mid-response')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/partial'))
    await c.readUntilClose(2000)
    assert.equal(errors.length, 1, `onError got: ${errors.map((e) => e.message).join(' | ')}`)
  })

  test('res.fail() from a callback answers as a thrown error would: its status and a report, or a cut once the head went out', async (t) => {
    const { errors, connect } = await serve(t, { expectErrors: true }, (s) => {
      s.get('/late', (_r, res) => {
        setTimeout(() => res.fail(new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', 'nothing came')), 5)
      })
      s.get('/busy', (_r, res) => {
        setTimeout(() => res.fail(new PetrelError('PETREL_ERR_POOL_QUEUE_FULL')), 5)
      })
      s.get('/cut', (_r, res) => {
        res.write('first part')
        setTimeout(() => res.fail(new Error('failed mid-response')), 5)
      })
    })
    const c = await connect()
    await c.write(Buffer.concat([req('GET', '/late'), req('GET', '/busy')]))
    const [late, busy] = await c.readResponses(2)
    assert.equal(late!.status, 504)
    assert.equal(busy!.status, 503)
    assert.equal(errors.length, 1, 'the 504 is reported, the 503 is not')
    assert.match(errors[0]!.message, /nothing came/)
    const c2 = await connect()
    await c2.write(req('GET', '/cut'))
    const raw = (await c2.readUntilClose(2000)).toString('latin1')
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
    assert.ok(raw.includes('first part') && !raw.endsWith('0\r\n\r\n'), 'the chunked body is cut, not ended')
    assert.equal(errors.length, 2)
  })

  test('res.fail() after the connection answered on its own (handler timeout) reports the error and leaves the connection be', async (t) => {
    const { errors, connect } = await serve(t, { expectErrors: true, timeouts: { handlerMs: 50 } }, (s) => {
      s.get('/slow', (_r, res) => {
        setTimeout(() => res.fail(new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', 'too late')), 150)
      })
    })
    const c = await connect()
    await c.write(req('GET', '/slow'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 503)
    await c.until(() => errors.some((e) => /too late/.test(e.message)), 2000, 'the late failure reported')
  })

  test('a response ended inside res.corked() holds nothing past it: the next one streams at once', async (t) => {
    let finish = (): void => {}
    const { connect } = await serve(t, {}, (s) => {
      s.get('/corked', (_r, res) => {
        setTimeout(() => {
          res.corked(() => res.end('first'))
        }, 5)
      })
      s.get('/next', (_r, res) => {
        setTimeout(() => {
          res.write('streamed piece')
          finish = () => res.end('end')
        }, 5)
      })
    })
    const c = await connect()
    await c.write(req('GET', '/corked'))
    const [a] = await c.readResponses(1)
    assert.equal(a!.text, 'first')
    const before = c.bytesReceived
    await c.write(req('GET', '/next'))
    // The piece must arrive while the response is still open, not wait for its end.
    await c.until(() => c.received.subarray(before).includes('streamed piece'), 2000, 'the streamed piece')
    finish()
    const raw = c.received.subarray(before).toString('latin1')
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
  })

  test('res.corked() cannot leave a cork on: a scope that throws still sends what it wrote, and later writes stream at once', async (t) => {
    let finish = (): void => {}
    let thrown = ''
    const { connect } = await serve(t, {}, (s) => {
      s.get('/throws', (_r, res) => {
        setTimeout(() => {
          try {
            res.corked(writeThenThrow, res, 'inside,')
          } catch (err) {
            thrown = (err as Error).message
          }
          setTimeout(() => {
            res.write('after')
            finish = () => res.end()
          }, 5)
        }, 5)
      })
    })
    const c = await connect()
    await c.write(req('GET', '/throws'))
    // Both pieces arrive while the response is still open: the cork went with the scope.
    await c.until(() => c.received.includes('inside,') && c.received.includes('after'), 2000, 'both pieces before the end')
    assert.equal(thrown, 'the scope failed')
    finish()
    const [r] = await c.readResponses(1)
    assert.equal(r!.text, 'inside,after')
  })

  test('a bad argument to the API (a status outside 100-999, a route pattern without "/") is PETREL_ERR_INVALID_OPTION, saying what it takes', async (t) => {
    const { errors, connect } = await serve(t, { expectErrors: true }, (s) => {
      assert.throws(() => s.get('no-slash', (_r, res) => res.end('x')), {
        code: 'PETREL_ERR_INVALID_OPTION',
        message: /route pattern must start with "\/": no-slash/,
      })
      s.get('/bad-status', (_r, res) => {
        res.status(1000).end('never')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/bad-status'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.status, 500)
    assert.equal(errors.length, 1)
    assert.equal((errors[0] as PetrelError).code, 'PETREL_ERR_INVALID_OPTION')
    assert.match(errors[0]!.message, /status code must be an integer from 100 to 999, got 1000/)
  })

  test('header names are checked every time, the same name twice in a row included: empty or non-token names throw', async (t) => {
    const seen: string[] = []
    const { connect } = await serve(t, {}, (s) => {
      s.get('/names', (_r, res) => {
        for (const name of ['X-Ok', 'X-Ok', '', '', 'Bad Name', 'Bad Name', 'X-\u00e9']) {
          try {
            res.setHeader(name, 'v')
            seen.push(`ok ${name}`)
          } catch (err) {
            seen.push(`${(err as PetrelError).code} ${name}`)
          }
        }
        res.end('done')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/names'))
    const [r] = await c.readResponses(1)
    assert.equal(r!.text, 'done')
    assert.deepEqual(seen, ['ok X-Ok', 'ok X-Ok', ...['', '', 'Bad Name', 'Bad Name', 'X-\u00e9'].map((n) => `PETREL_ERR_INVALID_HEADER_FOR_RESPONSE ${n}`)])
    assert.equal(r!.headers['x-ok'], 'v')
  })

  test('mounts: longest prefix first and ahead of the routes; an absolute-form target without a path is "/"; a prefix must be bytes', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/api/own', (_r, res) => res.end('route'))
      s.mount('/', (_r, res) => res.end('root mount'))
      s.mount('/api/', (r, res) => res.end(`api mount ${r.url}`))
      assert.throws(() => s.mount('/caf\u0129/', (_r, res) => res.end('x')), { code: 'PETREL_ERR_INVALID_OPTION' })
    })
    const c = await connect()
    await c.write(
      Buffer.concat([
        req('GET', '/api/own'),
        req('GET', '/apiary'),
        Buffer.from('GET http://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n'),
        Buffer.from('GET http://example.test/api/x?y=1 HTTP/1.1\r\nHost: example.test\r\n\r\n'),
      ]),
    )
    const answers = await c.readResponses(4)
    assert.deepEqual(
      answers.map((a) => a!.text),
      ['api mount /api/own', 'root mount', 'root mount', 'api mount http://example.test/api/x?y=1'],
    )
  })
})

describe('request targets, normalised paths and the host (issue 17, items 3, 5 and 6)', () => {
  test('routes and mounts match the normalised path: dot-segments and "%2e" cannot reach outside a mount, nor into one', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.mount('/api/', (r, res) => res.end(`api ${r.path}`))
      s.get('/private/secret.txt', (r, res) => res.end(`route ${r.path} ${r.url}`))
      s.fallback((r, res) => res.status(404).end(`fallback ${r.path}`))
    })
    const targets = [
      '/api/../private/secret.txt',
      '/api/%2e%2e/private/secret.txt',
      '/api/%2E%2E/private/secret.txt',
      '/api/.%2e/private/secret.txt',
      '/api/x/../y',
      '//api//y',
      '/%61pi/y',
      '/private/./secret.txt',
      '/x/../api',
    ]
    const c = await connect()
    await c.write(Buffer.concat(targets.map((target) => req('GET', target))))
    const answers = await c.readResponses(targets.length)
    assert.deepEqual(
      answers.map((a) => a.text),
      [
        'route /private/secret.txt /api/../private/secret.txt',
        'route /private/secret.txt /api/%2e%2e/private/secret.txt',
        'route /private/secret.txt /api/%2E%2E/private/secret.txt',
        'route /private/secret.txt /api/.%2e/private/secret.txt',
        'api /api/y',
        'api /api/y',
        'api /api/y',
        'route /private/secret.txt /private/./secret.txt',
        'fallback /api',
      ],
    )
  })

  test('absolute-form: the path ends at "?" and the authority is the host for req.header, req.headers and routing', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/sub/a.txt', (_r, res) => res.end('must not be reached from the query'))
      s.fallback((r, res) => res.end(`${r.path}|${r.search}|${r.header('host')}|${r.headers.host}|${r.url}`))
    })
    const c = await connect()
    await c.write(
      Buffer.concat([
        Buffer.from('GET http://h?/sub/a.txt HTTP/1.1\r\nHost: front\r\n\r\n'),
        Buffer.from('GET http://evil.example/a/../b HTTP/1.1\r\nHost: front\r\n\r\n'),
        Buffer.from('GET / HTTP/1.1\r\nHost: \r\n\r\n'),
      ]),
    )
    const [r1, r2, r3] = await c.readResponses(3)
    assert.equal(r1!.text, '/|/sub/a.txt|h|h|http://h?/sub/a.txt')
    assert.equal(r2!.text, '/b||evil.example|evil.example|http://evil.example/a/../b')
    // An empty Host is valid (RFC 9112 §3.2: what a client sends for a target without authority).
    assert.equal(r3!.status, 200)
    assert.equal(r3!.text, '/||||/')
  })

  test('an invalid Host is 400 and the connection closes; routes and mounts must be normalised paths', async (t) => {
    const { connect } = await serve(t, {}, (s) => {
      s.get('/', (_r, res) => res.end('root'))
      for (const bad of ['/a/../b', '//a', '/a/./b', '/%61', '/a//b']) {
        assert.throws(() => s.get(bad, (_r, res) => res.end('x')), { code: 'PETREL_ERR_INVALID_OPTION' }, bad)
        assert.throws(() => s.mount(`${bad}/`, (_r, res) => res.end('x')), { code: 'PETREL_ERR_INVALID_OPTION' }, bad)
      }
      assert.throws(() => s.mount('api/', (_r, res) => res.end('x')), { code: 'PETREL_ERR_INVALID_OPTION' })
      // Mount prefixes are unreserved bytes and "/" only: "/secret!/" and "/secret%21/" would be
      // one directory to the file server but two prefixes to a byte compare.
      for (const spelled of ['/secret!/', '/secret%21/', '/caf%C3%A9/', '/café/', '/a;b/']) {
        assert.throws(() => s.mount(spelled, (_r, res) => res.end('x')), { code: 'PETREL_ERR_INVALID_OPTION' }, spelled)
      }
    })
    for (const host of ['a b', 'a@b/c', 'evil.com/x?', 'a\tb, c']) {
      const c = await connect()
      await c.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      const raw = await c.readUntilClose(5000)
      const [r] = parseAll(raw, { eof: true }).responses
      assert.equal(r!.status, 400, JSON.stringify(host))
      assert.match(r!.text, /Host/)
    }
  })
})
