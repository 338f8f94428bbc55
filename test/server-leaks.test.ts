// Clients that leave in the middle of an exchange: whatever the handler does, the server's socket
// is closed (no CLOSE-WAIT left behind) and the connection is forgotten.

import { test, describe } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpServer, Request, Response } from '../src/index.ts'
import { req } from './helpers/tcp.ts'
import { serve } from './helpers/serve.ts'
import { socketsIn, settlesTo } from './helpers/sockets.ts'

const LINGER_MS = 600
const SLOW_PAUSE_MS = 250
/** Slack for a loaded machine on the upper bounds. */
const SLACK = 2000

/** Streams a chunk every 50 ms until the client is gone, then stops without ending: an SSE handler's shape. */
function streamUntilAbort(_req: Request, res: Response): void {
  res.setHeader('Content-Type', 'text/event-stream')
  res.write('data: first\n\n')
  const every = setInterval(() => res.write('data: tick\n\n'), 50)
  res.signal.addEventListener('abort', () => clearInterval(every), { once: true })
}

/** Waits for the client to go away before answering anything. */
function waitForAbort(_req: Request, res: Response): void {
  res.signal.addEventListener('abort', () => {}, { once: true })
}

/** Ends its stream when the client leaves: a legitimate answer to the signal. */
function endOnAbort(_req: Request, res: Response): void {
  res.write('data: first\n\n')
  res.signal.addEventListener('abort', () => res.end(), { once: true })
}

function routes(s: HttpServer): void {
  s.get('/events', streamUntilAbort)
  s.get('/ends', endOnAbort)
  s.get('/never', waitForAbort)
  s.get('/slow', async (_r, res) => {
    // Pauses shorter than lingerMs (with room for a loaded machine's timer lateness), longer in all.
    res.write('one,')
    await sleep(SLOW_PAUSE_MS)
    res.write('two,')
    await sleep(SLOW_PAUSE_MS)
    res.write('three,')
    await sleep(SLOW_PAUSE_MS)
    res.end('four')
  })
}

async function leaveAndCount(t: TestContext, path: string, how: 'fin' | 'reset', readFirst: boolean): Promise<void> {
  const { server, port, connect } = await serve(t, { timeouts: { lingerMs: LINGER_MS } }, routes)
  const c = await connect()
  await c.write(req('GET', path))
  if (readFirst) await c.until(() => c.bytesReceived > 0, 5000, 'the first bytes')
  else await sleep(50)
  if (how === 'fin') c.end()
  else c.socket.resetAndDestroy()
  const pids = [process.pid]
  const closeWait = await settlesTo(() => socketsIn(pids, port, 'CLOSE_WAIT'), 0, LINGER_MS + SLACK)
  assert.equal(closeWait, 0, 'a CLOSE-WAIT socket is left on the server port')
  assert.equal(await settlesTo(() => server.connectionCounts().active, 0, SLACK), 0, 'the server still counts the connection')
}

describe('a client that leaves mid-response', () => {
  test('FIN during a streamed response whose handler stops on abort: the socket is closed', (t) => leaveAndCount(t, '/events', 'fin', true))
  test('reset during a streamed response: the socket is closed', (t) => leaveAndCount(t, '/events', 'reset', true))
  test('FIN before a handler that waits on abort has sent a head: the socket is closed', (t) => leaveAndCount(t, '/never', 'fin', false))
  test('reset before a head: the socket is closed', (t) => leaveAndCount(t, '/never', 'reset', false))
  test('FIN to a handler that ends its response on abort: no crash, the socket is closed', async (t) => {
    await leaveAndCount(t, '/ends', 'fin', true)
  })

  test('a client that only half-closed still gets a response that keeps being written, whole', async (t) => {
    const { connect } = await serve(t, { timeouts: { lingerMs: LINGER_MS } }, routes)
    const c = await connect()
    // Half-close at once: the handler pauses between pieces, longer in all than lingerMs, so only
    // its writes keep the connection.
    c.socket.end(req('GET', '/slow'))
    const raw = await c.readUntilClose(5000)
    const text = raw.toString('latin1')
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
    for (const piece of ['one,', 'two,', 'three,', 'four']) assert.ok(text.includes(piece), `missing ${piece} in ${JSON.stringify(text)}`)
    assert.match(text, /0\r\n\r\n$/, 'the chunked body is complete')
  })
})
