// HTTP/2 in the server (createServer({ tls, http2: true })): ALPN chooses h2, the same handlers
// answer through Request and Response, and real clients agree — curl --http2 (GET, HEAD, a body
// up and down, a streamed response, cookies joined, errors), h2load (100,000 requests, none
// failed), and raw frames over TLS for what a client may get wrong: a malformed request resets
// only its stream, a connection error ends the connection with GOAWAY, and every descriptor is
// freed when clients leave mid-stream.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { promisify } from 'node:util'
import { createServer, type HttpServer } from '../src/index.ts'
import { Flag, frame, FrameReader, FrameType, H2Error, headersFrames, PREFACE, settingsFrame } from '../src/protocol/http2/frames.ts'
import { HpackDecoder, HpackEncoder } from '../src/protocol/http2/hpack.ts'
import { requireDebianPackage } from './helpers/debian.ts'
import { makeTestCa, type TestCa } from './helpers/tls.ts'
import { openFds, settlesTo } from './helpers/sockets.ts'

const run = promisify(execFile)
let dir: string
let ca: TestCa
let server: HttpServer
let port: number
const errors: Error[] = []
const BIG = Buffer.alloc(300_000, 'big body ')

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'petrel-h2-'))
  ca = makeTestCa(dir)
  const leaf = ca.issue(['localhost', '127.0.0.1'])
  server = createServer({ tls: { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, http2: true, onError: (err) => errors.push(err) })
  server.get('/plaintext', (_req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    res.end('Hello, World!')
  })
  server.get('/big', (_req, res) => {
    res.setHeader('Content-Type', 'application/octet-stream')
    res.end(BIG)
  })
  server.get('/stream', async (_req, res) => {
    res.setHeader('Content-Type', 'text/plain')
    for (let i = 0; i < 3; i++) {
      if (!res.write(`chunk ${i}\n`)) await res.drain()
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    res.end()
  })
  server.get('/forever', async (_req, res) => {
    res.setHeader('Content-Type', 'application/octet-stream')
    try {
      for (;;) if (!res.write(Buffer.alloc(64 * 1024, 'f'))) await res.drain()
    } catch {}
  })
  server.post('/echo', async (req, res) => {
    const body = await req.body()
    res.setHeader('Content-Type', 'application/octet-stream')
    res.end(body)
  })
  server.get('/utf8', (_req, res) => {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.end('héllo €')
  })
  server.post('/trailers', async (req, res) => {
    const body = await req.body()
    res.json({ body: body.toString(), trailers: req.trailers })
  })
  server.post('/ignore-body', (_req, res) => {
    res.status(202).end()
  })
  server.get('/info', (req, res) =>
    res.json({ version: req.httpVersion, host: req.header('host'), path: req.path, a: req.query.get('a'), cookie: req.header('cookie'), secure: req.secure }),
  )
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port
})

after(async () => {
  await server.close({ destroy: true })
  rmSync(dir, { recursive: true, force: true })
})

function curl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  requireDebianPackage('curl')
  return run('curl', ['-sS', '--http2', '--cacert', ca.caCert, '--resolve', `localhost:${port}:127.0.0.1`, '--max-time', '10', ...args], {
    encoding: 'latin1',
    maxBuffer: 16 << 20,
  })
}
const url = (p: string): string => `https://localhost:${port}${p}`

describe('HTTP/2 through curl', () => {
  test('ALPN h2: GET and HEAD with the head as HTTP/1.1 gives it, lower-case, without connection fields; HTTP/1.1 still served', async () => {
    const get = await curl('-D', '-', url('/plaintext'))
    assert.match(get.stdout, /^HTTP\/2 200 \r\n/)
    assert.match(get.stdout, /\r\ncontent-type: text\/plain\r\n/)
    assert.match(get.stdout, /\r\ncontent-length: 13\r\n/)
    assert.doesNotMatch(get.stdout, /connection:|keep-alive|transfer-encoding/i)
    assert.ok(get.stdout.endsWith('\r\n\r\nHello, World!'))
    const head = await curl('-I', url('/plaintext'))
    assert.match(head.stdout, /^HTTP\/2 200 \r\n/)
    assert.match(head.stdout, /content-length: 13/)
    const old = await curl('--http1.1', '-D', '-', url('/plaintext'))
    assert.match(old.stdout, /^HTTP\/1\.1 200 OK/)
  })

  test('a 300 KB response across windows, a 300 KB upload echoed, a streamed response, a 404', async () => {
    const big = await curl(url('/big'))
    assert.equal(big.stdout.length, BIG.length)
    const file = path.join(dir, 'up.bin')
    const up = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251))
    writeFileSync(file, up)
    const echo = await curl('--data-binary', `@${file}`, url('/echo'))
    assert.ok(Buffer.from(echo.stdout, 'latin1').equals(up))
    assert.equal((await curl(url('/stream'))).stdout, 'chunk 0\nchunk 1\nchunk 2\n')
    const missing = await curl('-o', '/dev/null', '-w', '%{http_code} %{http_version}', url('/nope'))
    assert.equal(missing.stdout, '404 2')
  })

  test('a UTF-8 string body is sent as UTF-8 with its length; an upload the handler does not read is drained, the answer kept', async () => {
    const r = await curl('-D', '-', url('/utf8'))
    assert.match(r.stdout, /content-length: 10\r\n/)
    assert.equal(Buffer.from(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8'), 'héllo €')
    const file = path.join(dir, 'ignored.bin')
    writeFileSync(file, Buffer.alloc(60_000, 'i'))
    const ignored = await curl('--data-binary', `@${file}`, '-o', '/dev/null', '-w', '%{http_code}', url('/ignore-body'))
    assert.equal(ignored.stdout, '202')
  })

  test('the request as handlers see it: version 2.0, :authority as Host, the query, cookies joined, secure', async () => {
    const info = JSON.parse((await curl('-H', 'cookie: a=1', '-H', 'cookie: b=2', url('/info?a=5'))).stdout) as Record<string, unknown>
    assert.deepEqual(info, { version: '2.0', host: `localhost:${port}`, path: '/info', a: '5', cookie: 'a=1; b=2', secure: true })
  })
})

test('h2load: 100,000 requests on 10 connections × 100 streams, none failed', async () => {
  requireDebianPackage('nghttp2-client')
  const { stdout } = await run('h2load', ['-n', '100000', '-c', '10', '-m', '100', `https://127.0.0.1:${port}/plaintext`], { maxBuffer: 1 << 20 })
  assert.match(stdout, /requests: 100000 total, 100000 started, 100000 done, 100000 succeeded, 0 failed, 0 errored, 0 timeout/)
  assert.match(stdout, /status codes: 100000 2xx/)
})

/** A raw HTTP/2 client over TLS: frames out, frames in. */
async function rawClient(): Promise<{
  socket: tls.TLSSocket
  encoder: HpackEncoder
  frames: Array<{ type: number; flags: number; streamId: number; payload: Buffer }>
  send(...bufs: Buffer[]): void
  until(what: string, done: () => boolean): Promise<void>
}> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca.caCert), ALPNProtocols: ['h2'] })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  assert.equal(socket.alpnProtocol, 'h2')
  const frames: Array<{ type: number; flags: number; streamId: number; payload: Buffer }> = []
  const reader = new FrameReader(
    {
      frame: (type, flags, streamId, payload, s, e) => (frames.push({ type, flags, streamId, payload: Buffer.from(payload.subarray(s, e)) }), true),
      framingError: (code, why) => assert.fail(`${code} ${why}`),
    },
    false,
  )
  reader.maxFrameSize = 1 << 24
  let closed = false
  socket.on('data', (chunk: Buffer) => reader.push(chunk))
  socket.on('close', () => (closed = true))
  socket.on('error', () => {})
  socket.write(Buffer.concat([PREFACE, settingsFrame([])]))
  const until = async (what: string, done: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000
    while (!done()) {
      if (Date.now() > deadline)
        assert.fail(`timed out waiting for ${what}; frames: ${JSON.stringify(frames.map((f) => [f.type, f.flags, f.streamId]))} closed ${closed}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  return { socket, encoder: new HpackEncoder(), frames, send: (...bufs) => socket.write(Buffer.concat(bufs)), until }
}

const GET = (p: string): Array<[string, string]> => [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', p],
  [':authority', 'localhost'],
]

describe('HTTP/2 with raw frames', () => {
  test('malformed requests reset only their stream with PROTOCOL_ERROR; the next request on the connection is answered', async (t) => {
    const c = await rawClient()
    t.after(() => c.socket.destroy())
    const bad: Array<Array<[string, string]>> = [
      [
        [':method', 'GET'],
        [':path', '/plaintext'],
        [':authority', 'x'],
      ],
      [...GET('/plaintext'), ['Upper', 'x']],
      [...GET('/plaintext'), ['connection', 'keep-alive']],
      [...GET('/plaintext'), ['te', 'gzip']],
      [
        [':method', 'GET'],
        ['x-a', '1'],
        [':scheme', 'https'],
        [':path', '/'],
        [':authority', 'x'],
      ],
      [...GET('/plaintext'), [':status', '200']],
      [...GET('/plaintext'), ['x-space', ' padded']],
      [...GET('relative')],
    ]
    bad.forEach((fields, i) => c.send(headersFrames(1 + 2 * i, Buffer.from(c.encoder.encode(fields)), true, 16_384)))
    const good = 1 + 2 * bad.length
    c.send(headersFrames(good, Buffer.from(c.encoder.encode(GET('/plaintext'))), true, 16_384))
    await c.until('the good stream to end', () => c.frames.some((f) => f.streamId === good && f.flags & Flag.END_STREAM))
    const resets = c.frames.filter((f) => f.type === FrameType.RST_STREAM)
    assert.deepEqual(
      resets.map((f) => [f.streamId, f.payload.readUInt32BE(0)]),
      bad.map((_, i) => [1 + 2 * i, H2Error.PROTOCOL_ERROR]),
    )
    const headers = c.frames.find((f) => f.type === FrameType.HEADERS && f.streamId === good)!
    const fields: string[] = []
    new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 65536 }).decode(headers.payload, 0, headers.payload.length, {
      field: (n, v) => fields.push(n, v),
    })
    assert.deepEqual(fields.slice(0, 2), [':status', '200'])
    assert.ok(!c.frames.some((f) => f.type === FrameType.GOAWAY))
  })

  test('request bodies over limits.maxBodyBytes: a declared one gets 413 at once (and RST_STREAM NO_ERROR once more than maxDrainBytes follow), an undeclared one 413 from the handler', async (t) => {
    const c = await rawClient()
    t.after(() => c.socket.destroy())
    const post = (length?: number): Array<[string, string]> => [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':path', '/echo'],
      [':authority', 'localhost'],
      ...(length === undefined ? [] : [['content-length', String(length)] as [string, string]]),
    ]
    c.send(headersFrames(1, Buffer.from(c.encoder.encode(post(2 << 20))), false, 16_384))
    await c.until('the 413 on stream 1', () => c.frames.some((f) => f.streamId === 1 && f.type === FrameType.HEADERS))
    for (let i = 0; i < 5; i++) c.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_384)))
    await c.until('the RST_STREAM on stream 1', () => c.frames.some((f) => f.streamId === 1 && f.type === FrameType.RST_STREAM))
    const status = (id: number): string => {
      const headers = c.frames.find((f) => f.type === FrameType.HEADERS && f.streamId === id)!
      const fields: string[] = []
      decoder.decode(headers.payload, 0, headers.payload.length, { field: (n, v) => fields.push(n, v) })
      return fields[1]!
    }
    const decoder = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 65536 })
    assert.equal(status(1), '413')
    assert.equal(c.frames.find((f) => f.streamId === 1 && f.type === FrameType.RST_STREAM)!.payload.readUInt32BE(0), H2Error.NO_ERROR)
    // Undeclared: 1 MiB + 1 in DATA frames, the window given back as the handler reads.
    c.send(headersFrames(3, Buffer.from(c.encoder.encode(post())), false, 16_384))
    const piece = Buffer.alloc(16_384, 'u')
    for (let sent = 0; sent <= 1 << 20; sent += piece.length) {
      c.send(frame(FrameType.DATA, 0, 3, piece))
      await new Promise((resolve) => setImmediate(resolve))
      if (c.frames.some((f) => f.streamId === 3 && f.type === FrameType.HEADERS)) break
    }
    await c.until('the answer on stream 3', () => c.frames.some((f) => f.streamId === 3 && f.type === FrameType.HEADERS))
    assert.equal(status(3), '413')
  })

  test('request trailers reach req.trailers; a pseudo-header in trailers resets the stream (PROTOCOL_ERROR)', async (t) => {
    const c = await rawClient()
    t.after(() => c.socket.destroy())
    const post: Array<[string, string]> = [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':path', '/trailers'],
      [':authority', 'localhost'],
    ]
    c.send(
      headersFrames(1, Buffer.from(c.encoder.encode(post)), false, 16_384),
      frame(FrameType.DATA, 0, 1, Buffer.from('payload')),
      headersFrames(1, Buffer.from(c.encoder.encode([['x-digest', 'abc']])), true, 16_384),
    )
    await c.until('the answer on stream 1', () => c.frames.some((f) => f.streamId === 1 && f.type === FrameType.DATA && f.flags & Flag.END_STREAM))
    const body = Buffer.concat(c.frames.filter((f) => f.streamId === 1 && f.type === FrameType.DATA).map((f) => f.payload)).toString()
    assert.deepEqual(JSON.parse(body), { body: 'payload', trailers: { 'x-digest': 'abc' } })
    c.send(
      headersFrames(3, Buffer.from(c.encoder.encode(post)), false, 16_384),
      frame(FrameType.DATA, 0, 3, Buffer.from('payload')),
      headersFrames(3, Buffer.from(c.encoder.encode([[':path', '/other']])), true, 16_384),
    )
    await c.until('the reset of stream 3', () => c.frames.some((f) => f.streamId === 3 && f.type === FrameType.RST_STREAM))
    assert.equal(c.frames.find((f) => f.streamId === 3 && f.type === FrameType.RST_STREAM)!.payload.readUInt32BE(0), H2Error.PROTOCOL_ERROR)
  })

  test('a connection error (DATA on stream 0 after a request) ends the connection with GOAWAY PROTOCOL_ERROR', async (t) => {
    const c = await rawClient()
    t.after(() => c.socket.destroy())
    c.send(frame(FrameType.DATA, 0, 0, Buffer.from('x')))
    await c.until('GOAWAY', () => c.frames.some((f) => f.type === FrameType.GOAWAY))
    const goaway = c.frames.find((f) => f.type === FrameType.GOAWAY)!
    assert.equal(goaway.payload.readUInt32BE(4), H2Error.PROTOCOL_ERROR)
  })

  test('clients that leave mid-stream, or reset their streams, leave no descriptor and no stream behind', async () => {
    const before = openFds(process.pid)
    for (let i = 0; i < 10; i++) {
      const c = await rawClient()
      c.send(headersFrames(1, Buffer.from(c.encoder.encode(GET('/forever'))), true, 16_384))
      c.send(headersFrames(3, Buffer.from(c.encoder.encode(GET('/forever'))), true, 16_384))
      await c.until('the response to start', () => c.frames.some((f) => f.type === FrameType.DATA))
      if (i % 2 === 0) c.send(frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])), frame(FrameType.RST_STREAM, 0, 3, Buffer.from([0, 0, 0, 8])))
      await new Promise((resolve) => setTimeout(resolve, 20))
      c.socket.destroy()
    }
    assert.ok((await settlesTo(() => openFds(process.pid), before, 5000)) <= before)
    assert.equal(await settlesTo(() => server.connections.size, 0, 5000), 0)
  })
})

test('no server errors were reported by any of the above', () => {
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  )
})

describe('petrel serve: HTTP/2 by default', () => {
  test('files over h2 over TLS and over cleartext; HTTP/1.1 only with --no-http2; an HTTP/2 knob reaches the SETTINGS', async (t) => {
    const { startPetrel } = await import('./helpers/petrel.ts')
    const root = mkdtempSync(path.join(tmpdir(), 'petrel-h2-root-'))
    t.after(() => rmSync(root, { recursive: true, force: true }))
    const page = Buffer.alloc(100 * 1024, 'p')
    writeFileSync(path.join(root, 'page.bin'), page)
    const leaf = ca.issue(['localhost'], { stem: 'cli' })
    const m = await startPetrel(t, [root, '--tls-cert', leaf.cert, '--tls-key', leaf.key])
    const get = (args: string[]) =>
      run('curl', ['-sS', '--cacert', ca.caCert, '--resolve', `localhost:${m.port}:127.0.0.1`, ...args], { encoding: 'latin1', maxBuffer: 1 << 20 })
    const h2 = await get(['--http2', '-o', path.join(root, 'out.bin'), '-w', '%{http_version} %{http_code}', `https://localhost:${m.port}/page.bin`])
    assert.equal(h2.stdout, '2 200')
    assert.ok(readFileSync(path.join(root, 'out.bin')).equals(page))
    // A file over the in-memory size streams from disk in pooled buffers, sent without a copy:
    // each buffer is reused only once the socket has written it (a reuse too early would show here).
    const large = randomBytes(3 * 1024 * 1024 + 123)
    writeFileSync(path.join(root, 'large.bin'), large)
    const streamed = await get([
      '--http2',
      '-o',
      path.join(root, 'large-out.bin'),
      '-w',
      '%{http_version} %{http_code}',
      `https://localhost:${m.port}/large.bin`,
    ])
    assert.equal(streamed.stdout, '2 200')
    assert.ok(readFileSync(path.join(root, 'large-out.bin')).equals(large), 'the large file arrived whole and in order')
    const plain = await startPetrel(t, [root, '--tls-cert', leaf.cert, '--tls-key', leaf.key, '--no-http2'])
    const h1 = await run('curl', [
      '-sS',
      '--http2',
      '--cacert',
      ca.caCert,
      '--resolve',
      `localhost:${plain.port}:127.0.0.1`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_version}',
      `https://localhost:${plain.port}/page.bin`,
    ])
    assert.equal(h1.stdout, '1.1', 'with --no-http2 ALPN offers only http/1.1')
    const clear = await startPetrel(t, [root, '--http2-max-streams', '7'])
    const h2c = await run('curl', [
      '-sS',
      '--http2-prior-knowledge',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `http://127.0.0.1:${clear.port}/page.bin`,
    ])
    assert.equal(h2c.stdout, '2 200', 'cleartext: prior knowledge')
    // The server's first frame is its SETTINGS: MAX_CONCURRENT_STREAMS (0x3) is the flag's value.
    const { connect } = await import('node:net')
    const raw = connect(clear.port, '127.0.0.1')
    t.after(() => raw.destroy())
    raw.write(Buffer.concat([PREFACE, settingsFrame([])]))
    let got = Buffer.alloc(0)
    for await (const chunk of raw) {
      got = Buffer.concat([got, chunk as Buffer])
      if (got.length >= 9 && got.length >= 9 + got.readUIntBE(0, 3)) break
    }
    assert.equal(got[3], FrameType.SETTINGS)
    const settings = new Map<number, number>()
    for (let p = 9; p < 9 + got.readUIntBE(0, 3); p += 6) settings.set(got.readUInt16BE(p), got.readUInt32BE(p + 2))
    assert.equal(settings.get(0x3), 7, '--http2-max-streams is the SETTINGS value the client reads')
  })
})

test('a client that never acknowledges the SETTINGS is cut after handshakeMs with GOAWAY SETTINGS_TIMEOUT', async (t) => {
  const strict = createServer({ http2: true, timeouts: { handshakeMs: 300 }, onError: (err) => errors.push(err) })
  const { port: strictPort } = await strict.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => strict.close({ destroy: true }))
  const { connect } = await import('node:net')
  const socket = connect(strictPort, '127.0.0.1')
  const frames: Array<{ type: number; payload: Buffer }> = []
  const reader = new FrameReader(
    { frame: (type, _f, _s, payload, s, e) => (frames.push({ type, payload: Buffer.from(payload.subarray(s, e)) }), true), framingError: () => {} },
    false,
  )
  socket.on('data', (chunk: Buffer) => reader.push(chunk))
  // The preface and a SETTINGS frame, but never the ACK of the server's.
  socket.write(Buffer.concat([PREFACE, settingsFrame([])]))
  await new Promise((resolve) => socket.once('close', resolve))
  const goaway = frames.find((f) => f.type === FrameType.GOAWAY)
  assert.equal(goaway?.payload.readUInt32BE(4), H2Error.SETTINGS_TIMEOUT)
})

describe('cleartext HTTP/2 (prior knowledge) beside HTTP/1.1 on one port', () => {
  test('curl --http2-prior-knowledge and HTTP/1.1 on the same port; h2load over cleartext, none failed; a client that says nothing is closed after headersMs', async (t) => {
    const clear = createServer({ http2: true, timeouts: { headersMs: 500 }, onError: (err) => errors.push(err) })
    clear.get('/plaintext', (_req, res) => {
      res.setHeader('Content-Type', 'text/plain')
      res.end('Hello, World!')
    })
    const { port: clearPort } = await clear.listen({ port: 0, host: '127.0.0.1' })
    t.after(() => clear.close({ destroy: true }))
    const h2 = await run('curl', ['-sS', '--http2-prior-knowledge', '-w', ' %{http_version}', `http://127.0.0.1:${clearPort}/plaintext`])
    assert.equal(h2.stdout, 'Hello, World! 2')
    const h1 = await run('curl', ['-sS', '--http1.1', '-w', ' %{http_version}', `http://127.0.0.1:${clearPort}/plaintext`])
    assert.equal(h1.stdout, 'Hello, World! 1.1')
    requireDebianPackage('nghttp2-client')
    const load = await run('h2load', ['-n', '20000', '-c', '4', '-m', '50', `http://127.0.0.1:${clearPort}/plaintext`], { maxBuffer: 1 << 20 })
    assert.match(load.stdout, /20000 succeeded, 0 failed, 0 errored, 0 timeout/)
    const { connect } = await import('node:net')
    const silent = connect(clearPort, '127.0.0.1')
    const started = performance.now()
    await new Promise((resolve) => silent.once('close', resolve))
    const waited = performance.now() - started
    assert.ok(waited >= 400 && waited < 3000, `closed after ${Math.round(waited)} ms`)
    assert.equal(await settlesTo(() => clear.connections.size, 0, 2000), 0, 'the server forgot the socket')
    // A client that resets before its first byte: no unhandled 'error', the server goes on.
    const reset = connect(clearPort, '127.0.0.1')
    await new Promise((resolve) => reset.once('connect', resolve))
    reset.resetAndDestroy()
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal((await run('curl', ['-sS', '--http2-prior-knowledge', `http://127.0.0.1:${clearPort}/plaintext`])).stdout, 'Hello, World!')
  })

  test('the first bytes decide at every split point: the preface in two writes cut anywhere is HTTP/2, "P" then "OST …" and "PR" then "OPFIND …" HTTP/1.1', async (t) => {
    const clear = createServer({ onError: (err) => errors.push(err) })
    clear.get('/plaintext', (_req, res) => res.end('Hello'))
    clear.route('POST', '/plaintext', (_req, res) => res.end('posted'))
    clear.route('PROPFIND', '/plaintext', (_req, res) => res.end('found'))
    const { port: clearPort } = await clear.listen({ port: 0, host: '127.0.0.1' })
    t.after(() => clear.close({ destroy: true }))
    const { connect } = await import('node:net')
    /** Send `bytes` cut at `cut` (two writes, the second after the first has surely been read), and collect until close or `enough`. */
    const exchange = async (bytes: Buffer, cut: number, enough: (got: Buffer) => boolean): Promise<Buffer> => {
      const socket = connect(clearPort, '127.0.0.1')
      socket.setNoDelay(true)
      let got = Buffer.alloc(0)
      const done = new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          got = Buffer.concat([got, chunk])
          if (enough(got)) resolve()
        })
        socket.on('close', () => resolve())
      })
      socket.write(bytes.subarray(0, cut))
      await new Promise((resolve) => setTimeout(resolve, 15))
      socket.write(bytes.subarray(cut))
      await done
      socket.destroy()
      return got
    }
    const h2 = Buffer.concat([PREFACE, settingsFrame([])])
    for (let cut = 1; cut < h2.length; cut++) {
      // The server's SETTINGS frame comes first once HTTP/2 has the socket.
      const got = await exchange(h2, cut, (g) => g.length >= 9)
      assert.equal(got[3], FrameType.SETTINGS, `cut at ${cut}: ${got.toString('latin1', 0, 20)}`)
    }
    for (const [text, cut, answer] of [
      ['POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 1, 'posted'],
      ['PROPFIND /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 2, 'found'],
      ['PROPFIND /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 1, 'found'],
    ] as const) {
      const got = (await exchange(Buffer.from(text), cut, () => false)).toString('latin1')
      assert.match(got, /^HTTP\/1\.1 200 OK\r\n/, `${text.slice(0, 8)} cut at ${cut}`)
      assert.ok(got.endsWith(answer))
    }
  })
})
