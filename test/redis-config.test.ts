// `--redis URL`: what the CLI accepts before anything connects, and how a log line tells it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeRedis, parseRedisUrl } from '../src/apps/chat/redis-config.ts'

test('redis:// URLs', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { host: '127.0.0.1', port: 6379, db: 0 })
  assert.deepEqual(parseRedisUrl('redis://:s%40cret@db.local:6380/2'), { host: 'db.local', port: 6380, password: 's@cret', db: 2 })
  assert.deepEqual(parseRedisUrl('redis://app:pw@[::1]:7000'), { host: '::1', port: 7000, username: 'app', password: 'pw', db: 0 })
  assert.throws(() => parseRedisUrl('http://x'), /only redis:\/\/ URLs/)
  assert.throws(() => parseRedisUrl('localhost:6379'), /only redis:\/\/ URLs|not a URL/)
  assert.throws(() => parseRedisUrl('redis://h/x'), /database number/)
})

test('a Redis address is described without its password (the chat room prints it at start)', () => {
  assert.equal(describeRedis(parseRedisUrl('redis://:s%40cret@db.local:6380/2')), 'redis://db.local:6380/2')
  assert.equal(describeRedis(parseRedisUrl('redis://app:pw@[::1]:7000')), 'redis://app@[::1]:7000/0')
})
