// Connection timeouts with tiny values. Every check has a lower bound (the timeout must not fire
// early) and a generous upper bound (it fires eventually); nothing asserts tight timing.

import { test, describe } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { type HttpServer } from '../src/index.ts'
import { req, parseAll } from './helpers/tcp.ts'
import { serve } from './helpers/serve.ts'

/** One scheduler tick: timers may fire this much before their nominal deadline. */
const TICK = 30
/** Slack for a loaded machine on the upper bounds. */
const SLACK = 1200

function routes(s: HttpServer): void {
  s.get('/', (_r, res) => res.end('root'))
  s.post('/echo', async (r, res) => res.end(await r.body()))
}

describe('headers timeout', () => {
  test('slowloris: a head trickled a byte every 50 ms gets 408 and close within about headersMs', async (t) => {
    const headersMs = 300
    const { server, connect } = await serve(t, { timeouts: { headersMs } }, routes)
    const c = await connect()
    await c.write('GET / HTTP/1.1\r\nHost: a\r\n')
    let sent = 0
    const trickle = (async () => {
      while (!c.closedByServer && sent < 200) {
        await c.write(sent % 2 === 0 ? 'X' : 'a').catch(() => {})
        sent++
        await sleep(50)
      }
    })()
    const raw = await c.readUntilClose(headersMs + SLACK)
    const took = c.closedByServerAt - c.connectedAt
    await trickle
    const [r] = parseAll(raw, { eof: true }).responses
    assert.equal(r!.status, 408)
    assert.equal(r!.headers['connection'], 'close')
    assert.ok(took >= headersMs - TICK, `closed after ${took} ms, before headersMs`)
    assert.ok(sent >= 3, 'the trickle was running')
    assert.equal(server.stats.timeouts.PETREL_ERR_HEADERS_TIMEOUT, 1)
  })

  test('a connection that sends nothing is closed after headersMs without a byte', async (t) => {
    const headersMs = 250
    const { connect } = await serve(t, { timeouts: { headersMs } }, routes)
    const c = await connect()
    const raw = await c.readUntilClose(headersMs + SLACK)
    const took = c.closedByServerAt - c.connectedAt
    assert.equal(raw.length, 0, 'no bytes: the client never asked for anything')
    assert.ok(took >= headersMs - TICK, `closed after ${took} ms`)
  })

  test('on a keep-alive connection, a partial second head is timed by headersMs, not keepAliveMs', async (t) => {
    const { connect } = await serve(t, { timeouts: { headersMs: 250, keepAliveMs: 5000 } }, routes)
    const c = await connect()
    await c.write(req('GET', '/'))
    await c.readResponses(1)
    await sleep(100)
    const sentAt = performance.now()
    await c.write('GET / HTTP/1.1\r\nHo')
    const raw = await c.readUntilClose(250 + SLACK)
    const took = performance.now() - sentAt
    const rs = parseAll(raw, { eof: true }).responses
    assert.deepEqual(
      rs.map((r) => r.status),
      [200, 408],
    )
    assert.ok(took >= 250 - TICK, `408 after ${took} ms`)
  })
})

describe('keep-alive idle timeout', () => {
  test('an idle keep-alive connection is closed after keepAliveMs, with no bytes after the response', async (t) => {
    const keepAliveMs = 300
    const { connect } = await serve(t, { timeouts: { keepAliveMs } }, routes)
    const c = await connect()
    await c.write(req('GET', '/'))
    const [r] = await c.readResponses(1)
    const answeredAt = performance.now()
    assert.equal(r!.status, 200)
    assert.equal(await c.waitClosed(keepAliveMs - TICK - 20), false, 'not closed early')
    assert.equal(await c.waitClosed(SLACK), true, 'closed eventually')
    const took = c.closedByServerAt - answeredAt
    assert.ok(took >= keepAliveMs - TICK, `closed after ${took} ms`)
    assert.equal(c.unparsed().length, 0, 'nothing sent on idle close')
  })

  test('a request within keepAliveMs keeps the connection going', async (t) => {
    const keepAliveMs = 300
    const { connect } = await serve(t, { timeouts: { keepAliveMs } }, routes)
    const c = await connect()
    for (let i = 0; i < 4; i++) {
      await c.write(req('GET', '/'))
      await c.readResponses(1)
      await sleep(150)
    }
    assert.equal(c.closedByServer, false, '4 × 150 ms > keepAliveMs, but each gap is shorter')
  })

  test('a large response still being delivered is not cut by the keep-alive timer', async (t) => {
    // The bug shows once performance.now() (process age) exceeds sendMs; make that so.
    if (performance.now() < 1500) await sleep(1500 - performance.now())
    const big = Buffer.alloc(16 * 1024 * 1024, 'k')
    const { connect } = await serve(t, { timeouts: { keepAliveMs: 200, sendMs: 1000 } }, (s) => {
      s.get('/big', (_r, res) => res.end(big))
    })
    const c = await connect({ paused: true })
    await c.write(req('GET', '/big'))
    await sleep(500) // less than sendMs without reading
    c.socket.resume()
    const [r] = await c.readResponses(1, { timeoutMs: 10_000 })
    assert.equal(r!.body.length, big.length)
  })

  test('a client reading a large single-buffer response slowly but steadily is not cut off', async (t) => {
    const big = Buffer.alloc(16 * 1024 * 1024, 'k')
    const { connect } = await serve(t, { timeouts: { keepAliveMs: 100, sendMs: 300 } }, (s) => {
      s.get('/big', async (_r, res) => {
        // A small first write goes out at once, so the first timer check sees progress (this
        // keeps the lastProgressAt = 0 bug above out of the picture); then one big write.
        await sleep(1)
        res.write('start')
        await sleep(20)
        res.end(big)
      })
    })
    const c = await connect({ paused: true })
    await c.write(req('GET', '/big'))
    // Read in short bursts: progress at least every 60 ms, far inside sendMs.
    const pump = setInterval(() => {
      c.socket.resume()
      setTimeout(() => c.socket.pause(), 1)
    }, 60)
    t.after(() => clearInterval(pump))
    try {
      const [r] = await c.readResponses(1, { timeoutMs: 15_000 })
      assert.equal(r!.body.length, big.length + 5)
    } finally {
      clearInterval(pump)
    }
  })
})

describe('body timeout', () => {
  test('a body that stalls (Content-Length 10, 3 bytes sent) gets 408 and close', async (t) => {
    const bodyMs = 300
    let handlerError: Error | null = null
    const { server, connect } = await serve(t, { timeouts: { bodyMs } }, (s) => {
      s.post('/echo', async (r, res) => {
        try {
          res.end(await r.body())
        } catch (err) {
          handlerError = err as Error
          throw err
        }
      })
    })
    const c = await connect()
    await c.write('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc')
    const stalledAt = performance.now()
    const raw = await c.readUntilClose(bodyMs + SLACK)
    const took = c.closedByServerAt - stalledAt
    const rs = parseAll(raw, { eof: true }).responses
    assert.equal(rs.length, 1, JSON.stringify(raw.toString('latin1')))
    assert.equal(rs[0]!.status, 408)
    assert.equal(rs[0]!.headers['connection'], 'close')
    assert.ok(took >= bodyMs - TICK, `closed after ${took} ms`)
    assert.ok(handlerError !== null, 'body() rejected for the handler')
    assert.equal(server.stats.timeouts.PETREL_ERR_BODY_TIMEOUT, 1)
  })

  test('a slow but steady body (a byte every 100 ms, bodyMs 300) is received whole', async (t) => {
    const { connect } = await serve(t, { timeouts: { bodyMs: 300, headersMs: 300 } }, routes)
    const c = await connect()
    await c.write('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n')
    await c.writeSplit('12345678', 1, 100)
    const [r] = await c.readResponses(1, { timeoutMs: 2000 })
    assert.equal(r!.status, 200)
    assert.equal(r!.text, '12345678')
  })

  test('a handler that consumes its body stream slowly does not get the client a 408', async (t) => {
    const size = 4 * 1024 * 1024
    const { connect } = await serve(t, { limits: { maxBodyBytes: 8 * 1024 * 1024 }, timeouts: { bodyMs: 200 } }, (s) => {
      s.post('/slow-consumer', async (r, res) => {
        const stream = r.stream()
        await sleep(600) // e.g. waiting for an upstream to accept the upload
        let n = 0
        for await (const chunk of stream) n += (chunk as Buffer).length
        res.end(String(n))
      })
    })
    const c = await connect()
    await c.write(req('POST', '/slow-consumer', {}, Buffer.alloc(size, 'u'))).catch(() => {})
    const [r] = await c.readResponses(1, { timeoutMs: 3000 })
    assert.equal(r!.status, 200)
    assert.equal(r!.text, String(size))
  })
})

describe('send timeout', () => {
  async function sendTimeoutTest(t: TestContext, headersMs: number): Promise<void> {
    const sendMs = 300
    let generated = 0
    let blockedAt = 0
    const { server, connect } = await serve(t, { timeouts: { sendMs, headersMs } }, (s) => {
      s.get('/big', async (_r, res) => {
        await sleep(1)
        const chunk = Buffer.alloc(64 * 1024, 's')
        while (generated < 50 * 1024 * 1024) {
          generated += chunk.length
          if (!res.write(chunk)) {
            blockedAt = performance.now()
            await res.drain()
          }
        }
        res.end()
      })
    })
    const c = await connect({ paused: true })
    await c.write(req('GET', '/big'))
    await c.until(() => blockedAt > 0, 2000, 'the handler to block on drain')
    // The kernel buffers fill within moments; after that nothing moves. A paused client does not
    // see the close, so watch the server side.
    await sleep(100)
    const stuckAt = performance.now()
    await sleep(sendMs - 150)
    assert.equal(server.connections.size, 1, 'not disconnected before sendMs')
    const generatedWhileStuck = generated
    await c.until(() => server.connections.size === 0, 1500 + SLACK, `the server to drop the connection (sendMs ${sendMs}, headersMs ${headersMs})`)
    const took = performance.now() - stuckAt
    assert.ok(took >= sendMs - 150, `dropped after ${took} ms`)
    assert.ok(generatedWhileStuck < 50 * 1024 * 1024, 'the handler was held back while stuck')
    assert.equal(server.stats.timeouts.PETREL_ERR_SEND_TIMEOUT, 1)
    // The client, reading at last, finds a truncated response and a closed connection.
    c.socket.resume()
    const raw = await c.readUntilClose(5000)
    assert.equal(parseAll(raw, { eof: true }).responses.length, 0)
    assert.ok(raw.length > 0 && raw.length < 50 * 1024 * 1024)
  }

  test('a client that never reads a large streamed response is disconnected after about sendMs', async (t) => {
    await sendTimeoutTest(t, 200)
  })

  test('the send timeout does not wait for an unrelated headersMs to expire first', async (t) => {
    await sendTimeoutTest(t, 5000)
  })

  test('a large response on a closing connection (Connection: close) is not cut off after lingerMs', async (t) => {
    const big = Buffer.alloc(8 * 1024 * 1024, 'l')
    const { connect } = await serve(t, { timeouts: { lingerMs: 200, sendMs: 5000 } }, (s) => {
      s.get('/big', (_r, res) => res.end(big))
    })
    const c = await connect({ paused: true })
    await c.write(req('GET', '/big', { Connection: 'close' }))
    await sleep(600) // a slow client: reads later, well within sendMs
    c.socket.resume()
    const raw = await c.readUntilClose(5000)
    const rs = parseAll(raw, { eof: true }).responses
    assert.equal(rs.length, 1, `got ${raw.length} bytes of ${big.length}`)
    assert.equal(rs[0]!.body.length, big.length)
  })
})

describe('handler timeout', () => {
  test('a handler that never answers gets the client a 503 after handlerMs, and the connection closes', async (t) => {
    const { server, connect } = await serve(t, { expectErrors: true, timeouts: { handlerMs: 200 } }, (s) => {
      s.get('/hang', () => new Promise<void>(() => {}))
    })
    const c = await connect()
    const started = Date.now()
    await c.write(req('GET', '/hang'))
    const [r] = await c.readResponses(1, { timeoutMs: 3000 })
    const elapsed = Date.now() - started
    assert.equal(r!.status, 503)
    assert.match(r!.text, /timeouts\.handlerMs/)
    assert.equal(r!.headers.connection, 'close')
    assert.ok(elapsed >= 200 - TICK && elapsed < 200 + SLACK, `after ${elapsed} ms`)
    assert.ok(await c.waitClosed(2000))
    assert.equal(server.stats.timeouts.PETREL_ERR_HANDLER_TIMEOUT, 1)
  })

  test('a response that has started streaming is not cut by handlerMs', async (t) => {
    const { connect } = await serve(t, { timeouts: { handlerMs: 150 } }, (s) => {
      s.get('/slow', async (_r, res) => {
        res.write('start;')
        await sleep(400)
        res.end('end')
      })
    })
    const c = await connect()
    await c.write(req('GET', '/slow'))
    const [r] = await c.readResponses(1, { timeoutMs: 3000 })
    assert.equal(r!.status, 200)
    assert.equal(r!.text, 'start;end')
  })

  test('a late answer after the 503 is dropped, not written into a closed exchange', async (t) => {
    let late: (() => void) | null = null
    const { errors, connect } = await serve(t, { expectErrors: true, timeouts: { handlerMs: 100 } }, (s) => {
      s.get(
        '/late',
        (_r, res) =>
          new Promise<void>((resolve) => {
            late = () => {
              res.end('too late')
              resolve()
            }
          }),
      )
    })
    const c = await connect()
    await c.write(req('GET', '/late'))
    const raw = await c.readUntilClose(3000)
    late!()
    await sleep(50)
    const responses = parseAll(raw, { eof: true }).responses
    assert.deepEqual(
      responses.map((r) => r.status),
      [503],
    )
    assert.ok(
      errors.some((e) => /handlerMs/.test(e.message)),
      'the timeout is reported',
    )
  })
})
