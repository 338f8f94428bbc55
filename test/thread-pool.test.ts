// ThreadPool: tasks on worker threads with a bounded queue, a per-task timeout, cancellation
// and transfers; and, through HTTP, what a client sees: the answer, a 503 when the queue is
// full, and its work cancelled when it leaves.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { threadId } from 'node:worker_threads'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ThreadPool } from '../src/process/pool/thread-pool.ts'
import { PetrelError } from '../src/core/errors.ts'
import { startServe } from '../src/apps/serve/serve.ts'
import hashPassword from '../src/apps/serve/demo-work.ts'
import { serve } from './helpers/serve.ts'
import { RawClient, exchange, req } from './helpers/tcp.ts'

const WORK = new URL('./fixtures/pool-work.ts', import.meta.url)

function pool(options: Partial<ConstructorParameters<typeof ThreadPool>[0]> = {}): ThreadPool {
  return new ThreadPool({ filename: WORK, threads: 1, maxQueue: 1, idleTimeoutMs: 1000, ...options })
}

const code = (expected: string) => (err: unknown) => (err as PetrelError).code === expected

describe('ThreadPool', () => {
  test('runs a task on another thread and returns its result', async (t) => {
    const p = pool()
    t.after(() => p.destroy())
    const result = await p.run<{ task: unknown; threadId: number }>({ hello: 'pool' })
    assert.deepEqual(result.task, { hello: 'pool' })
    assert.notEqual(result.threadId, threadId)
  })

  test('a full queue refuses with PETREL_ERR_POOL_QUEUE_FULL (503)', async (t) => {
    const p = pool({ threads: 1, maxQueue: 1 })
    t.after(() => p.destroy())
    await p.run({ warm: true })
    const running = p.run<number>({ ms: 300 }, { name: 'spin' })
    const queued = p.run<number>({ ms: 10 }, { name: 'spin' })
    await assert.rejects(p.run({ ms: 10 }, { name: 'spin' }), (err: PetrelError) => err.code === 'PETREL_ERR_POOL_QUEUE_FULL' && err.status === 503)
    assert.ok((await running) > 0)
    assert.ok((await queued) > 0)
  })

  test('a task past its timeout fails with PETREL_ERR_POOL_TIMEOUT, and the pool goes on', async (t) => {
    const p = pool({ taskTimeoutMs: 100 })
    // The thread is up first, so the timeout hits a running task, not one still waiting for a thread.
    await p.run('warm', { timeoutMs: 30_000 })
    t.after(() => p.destroy())
    const started = performance.now()
    await assert.rejects(p.run({ ms: 5000 }, { name: 'spin' }), code('PETREL_ERR_POOL_TIMEOUT'))
    assert.ok(performance.now() - started < 2000, 'the running task was stopped, not waited for')
    // A new thread replaces the one stopped; starting it may take longer than the 100 ms timeout.
    assert.deepEqual((await p.run<{ task: unknown }>('after', { timeoutMs: 30_000 })).task, 'after')
  })

  test("cancelling a running task rejects with the signal's reason and frees the thread", async (t) => {
    const p = pool()
    t.after(() => p.destroy())
    const controller = new AbortController()
    const reason = new PetrelError('PETREL_ERR_CONNECTION_CLOSED')
    const running = p.run({ ms: 5000 }, { name: 'spin', signal: controller.signal })
    setTimeout(() => controller.abort(reason), 100)
    await assert.rejects(running, (err) => err === reason)
    assert.equal(await p.run({ bytes: new Uint8Array([1, 2, 3]).buffer }, { name: 'sum' }), 6)
  })

  test('cancelling a queued task takes it out of the queue', async (t) => {
    const p = pool({ maxQueue: 1 })
    t.after(() => p.destroy())
    await p.run('warm')
    const running = p.run<number>({ ms: 200 }, { name: 'spin' })
    const controller = new AbortController()
    const queued = p.run({ ms: 10 }, { name: 'spin', signal: controller.signal })
    controller.abort(new Error('left'))
    await assert.rejects(queued, /left/)
    // The queue slot is free again.
    const next = p.run<number>({ ms: 10 }, { name: 'spin' })
    await running
    assert.ok((await next) > 0)
  })

  test('maxQueue 0: no waiting, but an idle thread still takes a task', async (t) => {
    const p = pool({ maxQueue: 0 })
    t.after(() => p.destroy())
    assert.equal(await p.run({ bytes: new Uint8Array([4]).buffer }, { name: 'sum' }), 4)
  })

  test('transferred buffers move to the thread instead of being copied', async (t) => {
    const p = pool()
    t.after(() => p.destroy())
    const bytes = new Uint8Array(1024).fill(2).buffer
    assert.equal(await p.run({ bytes }, { name: 'sum', transferList: [bytes] }), 2048)
    assert.equal(bytes.byteLength, 0, 'detached here')
  })

  test('pool threads run at a lower priority than the event loop (nice 10 by default)', async (t) => {
    const p = pool()
    const q = pool({ nice: 3, filename: path.relative(process.cwd(), fileURLToPath(WORK)) })
    t.after(() => Promise.all([p.destroy(), q.destroy()]))
    assert.equal(await p.run(null, { name: 'niceness' }), 10)
    assert.equal(await q.run(null, { name: 'niceness' }), 3, 'a relative path works too')
  })

  test('an error thrown by the task rejects run()', async (t) => {
    const p = pool()
    t.after(() => p.destroy())
    await assert.rejects(p.run(null, { name: 'fail' }), /the task failed on purpose/)
  })
})

describe('the pool behind HTTP routes', () => {
  test("the demo's /scrypt/pool answers what /scrypt/inline does", async (t) => {
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0 })
    t.after(() => serving.server.close({ destroy: true }))
    const expected = hashPassword({ password: 'hunter2' })
    for (const where of ['inline', 'pool']) {
      const { responses } = await exchange(serving.address.port, req('GET', `/scrypt/${where}?password=hunter2`, { Connection: 'close' }))
      assert.equal(responses[0]!.status, 200)
      const body = JSON.parse(responses[0]!.text) as { hash: string; where: string }
      assert.equal(body.where, where)
      assert.equal(body.hash, expected)
    }
  })

  test('a full queue is a 503 with Retry-After; a client that leaves cancels its task', async (t) => {
    const p = pool({ threads: 1, maxQueue: 1 })
    t.after(() => p.destroy())
    const outcomes: string[] = []
    const server = await serve(t, {}, (s) => {
      s.get('/spin', async (request, res) => {
        try {
          await p.run({ ms: Number(request.query.get('ms')) }, { name: 'spin', signal: res.signal })
          outcomes.push('done')
          res.end('spun\n')
        } catch (err) {
          outcomes.push((err as PetrelError).code ?? 'other')
          throw err
        }
      })
    })
    const port = server.port
    await p.run('warm')
    // One runs, one waits, the third is refused.
    const first = await RawClient.connect(port)
    await first.write(req('GET', '/spin?ms=400'))
    await new Promise((r) => setTimeout(r, 50))
    const second = await RawClient.connect(port)
    await second.write(req('GET', '/spin?ms=10'))
    await new Promise((r) => setTimeout(r, 50))
    const { responses } = await exchange(port, req('GET', '/spin?ms=10', { Connection: 'close' }))
    assert.equal(responses[0]!.status, 503)
    assert.equal(responses[0]!.headers['retry-after'], '1')
    assert.match(responses[0]!.text, /^503 Service Unavailable: the thread pool is busy/)
    // The first client leaves while its task runs: the task is cancelled, not finished.
    first.destroy()
    const answer = await second.readResponse()
    assert.equal(answer.text, 'spun\n')
    second.destroy()
    assert.deepEqual(outcomes.sort(), ['PETREL_ERR_CONNECTION_CLOSED', 'PETREL_ERR_POOL_QUEUE_FULL', 'done'])
  })
})
