import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BufferPool } from '../src/core/buffer-pool.ts'

test('take() gives the smallest class that fits; give() makes it reusable', () => {
  const pool = new BufferPool({ minBytes: 1024, maxBytes: 8192, maxIdleBytesPerClass: 16384 })
  const a = pool.take(1000)
  assert.equal(a.length, 1024)
  assert.equal(pool.take(1025).length, 2048)
  assert.equal(pool.take(8192).length, 8192)
  assert.equal(pool.take(100_000).length, 8192, 'requests above maxBytes get the largest class')
  pool.give(a)
  assert.equal(pool.idleBytes, 1024)
  assert.equal(pool.take(10), a, 'the returned buffer is reused')
  assert.equal(pool.idleBytes, 0)
})

test('idle memory per class is bounded; foreign buffers are not kept', () => {
  const pool = new BufferPool({ minBytes: 1024, maxBytes: 4096, maxIdleBytesPerClass: 8192 })
  const taken = Array.from({ length: 5 }, () => pool.take(4096))
  for (const b of taken) pool.give(b)
  assert.equal(pool.idleBytes, 8192, 'two 4 KiB buffers kept, three left to the GC')
  pool.give(Buffer.alloc(3000))
  assert.equal(pool.idleBytes, 8192, 'a buffer of no class size is not pooled')
})
