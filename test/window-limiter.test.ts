// core/window-limiter: fixed windows per key in bounded memory (inetd's UDP answers per client
// address, the accounts pages' login attempts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WindowLimiter } from '../src/core/window-limiter.ts'

test('up to `limit` events per key per window; the wait until the window ends beyond it', () => {
  const limiter = new WindowLimiter({ limit: 3, windowMs: 1000, maxKeys: 10 })
  assert.deepEqual(
    [0, 100, 200, 300].map((t) => limiter.take('a', t)),
    [0, 0, 0, 700],
  )
  assert.equal(limiter.take('b', 300), 0, 'another key has its own window')
  assert.equal(limiter.take('a', 999), 1)
  assert.equal(limiter.take('a', 1000), 0, 'a new window')
  limiter.limit = 1
  assert.equal(limiter.take('a', 1001), 1999 - 1001 + 1, 'a lower limit applies to the window open now')
})

test('a flood of keys never holds more than maxKeys; the oldest window is forgotten first', () => {
  const limiter = new WindowLimiter({ limit: 1, windowMs: 1000, maxKeys: 3 })
  assert.equal(limiter.take('first', 0), 0)
  for (let i = 0; i < 10_000; i++) limiter.take(`forged ${i}`, 1)
  assert.equal(limiter.size, 3)
  assert.equal(limiter.take('forged 9999', 2), 999, 'a recent key is remembered')
  assert.equal(limiter.take('first', 2), 0, 'the oldest was forgotten: it starts afresh')
})

test('knobs must be whole numbers of at least 1', () => {
  assert.throws(() => new WindowLimiter({ limit: 0, windowMs: 1000, maxKeys: 1 }), /limit must be an integer >= 1, got 0/)
  assert.throws(() => new WindowLimiter({ limit: 1, windowMs: 1000, maxKeys: 1.5 }), /maxKeys must be an integer >= 1, got 1.5/)
})
