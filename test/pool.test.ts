// core/pool.ts: bounds, waiting with a deadline, a bounded queue of waiters, health checks on
// borrow, broken resources replaced, idle ones reaped, and a drain that waits for borrowers.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ResourcePool } from '../src/core/pool.ts'
import { PetrelError } from '../src/core/errors.ts'

interface Res {
  id: number
  healthy: boolean
  closed: boolean
}

function pool(options: Partial<ConstructorParameters<typeof ResourcePool<Res>>[0]> = {}) {
  let next = 0
  const made: Res[] = []
  const p = new ResourcePool<Res>({
    max: 2,
    create: async () => {
      const r = { id: ++next, healthy: true, closed: false }
      made.push(r)
      return r
    },
    destroy: (r) => {
      r.closed = true
    },
    ...options,
  })
  return { p, made }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('never more than max; a released resource goes to the next waiter, in order', async () => {
  const { p, made } = pool()
  const a = await p.acquire()
  const b = await p.acquire()
  const order: number[] = []
  const w1 = p.acquire().then((r) => (order.push(1), r))
  const w2 = p.acquire().then((r) => (order.push(2), r))
  assert.equal(p.snapshot().waiting, 2)
  p.release(a)
  p.release(b)
  assert.deepEqual([(await w1).id, (await w2).id], [a.id, b.id])
  assert.deepEqual(order, [1, 2])
  assert.equal(made.length, 2)
  await p.drain(100)
})

test('a waiter past the deadline gets PETREL_ERR_DB_POOL_TIMEOUT (503); a full queue fails at once', async () => {
  const { p } = pool({ max: 1, acquireTimeoutMs: 50, maxWaiters: 1 })
  const held = await p.acquire()
  const started = Date.now()
  const waiting = p.acquire()
  await assert.rejects(p.acquire(), (err: PetrelError) => err.code === 'PETREL_ERR_DB_POOL_FULL' && err.status === 503)
  await assert.rejects(waiting, (err: PetrelError) => err.code === 'PETREL_ERR_DB_POOL_TIMEOUT' && err.status === 503)
  assert.ok(Date.now() - started >= 45)
  p.release(held)
  assert.equal((await p.acquire()).id, held.id, 'the timed-out waiter did not take the resource with it')
  assert.equal(p.snapshot().timeouts, 1)
  await p.drain(100)
})

test('broken resources are destroyed and replaced for a waiter; a failed health check on borrow too', async () => {
  const { p, made } = pool({ max: 1, checkAfterMs: 0, check: async (r) => r.healthy })
  const a = await p.acquire()
  const waiter = p.acquire()
  p.release(a, true)
  const b = await waiter
  assert.ok(a.closed)
  assert.notEqual(b.id, a.id)
  b.healthy = false
  p.release(b)
  const c = await p.acquire()
  assert.ok(b.closed, 'unhealthy on borrow: destroyed')
  assert.equal(c.id, 3)
  assert.equal(made.length, 3)
  p.release(c)
  await p.drain(100)
})

test('use() gives back on success and on error; an error the caller calls broken destroys it', async () => {
  const { p } = pool({ max: 1 })
  assert.equal(await p.use(async (r) => r.id), 1)
  await assert.rejects(
    p.use(async () => {
      throw new Error('query failed')
    }),
    /query failed/,
  )
  assert.equal(await p.use(async (r) => r.id), 1, 'a query error keeps the connection')
  await assert.rejects(
    p.use(
      async () => {
        throw Object.assign(new Error('reset'), { code: 'ECONNRESET' })
      },
      (err) => (err as { code?: string }).code === 'ECONNRESET',
    ),
  )
  assert.equal(await p.use(async (r) => r.id), 2, 'a broken connection is replaced')
  assert.deepEqual(
    { ...p.snapshot(), created: 0, destroyed: 0, timeouts: 0 },
    { size: 1, idle: 1, borrowed: 0, waiting: 0, created: 0, destroyed: 0, timeouts: 0 },
  )
  await p.drain(100)
})

test('drain() refuses new borrowers, waits for the borrowed, then closes everything', async () => {
  const { p, made } = pool({ min: 2, max: 3 })
  await p.start()
  assert.equal(p.size, 2)
  const held = await p.acquire()
  const waiterBeforeDrain = (await p.acquire(), p.acquire())
  let drained = false
  const draining = p.drain(2000).then(() => (drained = true))
  await assert.rejects(p.acquire(), (err: PetrelError) => err.code === 'PETREL_ERR_DB_POOL_CLOSED')
  await sleep(30)
  assert.equal(drained, false, 'waits for the borrowed ones')
  p.release(held)
  await sleep(5)
  assert.equal(drained, false)
  for (const r of made) if (!r.closed && r !== held) p.release(r)
  await draining
  assert.ok(made.every((r) => r.closed))
  await waiterBeforeDrain.then(
    (r) => assert.ok(r.closed),
    () => {},
  )
})

test('idle resources over min are reaped after idleTimeoutMs', async () => {
  const { p, made } = pool({ min: 1, max: 3, idleTimeoutMs: 1000 })
  await p.start()
  const rs = await Promise.all([p.acquire(), p.acquire(), p.acquire()])
  for (const r of rs) p.release(r)
  assert.equal(p.size, 3)
  await sleep(1700)
  assert.equal(p.size, 1)
  assert.equal(made.filter((r) => r.closed).length, 2)
  await p.drain(100)
})
