// RESP2: the command encoder's bytes, and the reply parser at every split point of a reply stream.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCommand, ProtocolError, RedisError, ReplyParser, type Reply } from '../src/protocol/resp/resp.ts'
import { describeRedis, parseRedisUrl } from '../src/protocol/resp/client.ts'

const STREAM = Buffer.from(
  '+OK\r\n' +
    ':42\r\n' +
    ':-7\r\n' +
    '$5\r\nhello\r\n' +
    '$0\r\n\r\n' +
    '$-1\r\n' +
    '$4\r\nx\r\ny\r\n' +
    '$5\r\nhéé\r\n' +
    '-ERR wrong number of arguments\r\n' +
    '*-1\r\n' +
    '*0\r\n' +
    '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\n{}\r\n' +
    '*2\r\n*1\r\n:1\r\n+a\r\n',
)
const EXPECTED: Reply[] = ['OK', 42, -7, 'hello', '', null, 'x\r\ny', 'héé', new RedisError('ERR wrong number of arguments'), null, [], ['message', 'ch', '{}'], [[1], 'a']]

function parseIn(pieces: Buffer[]): Reply[] {
  const parser = new ReplyParser()
  return pieces.flatMap((piece) => parser.push(Buffer.from(piece)))
}

test('the whole stream at once, and cut at every point and every pair of points', () => {
  assert.deepEqual(parseIn([STREAM]), EXPECTED)
  for (let i = 1; i < STREAM.length; i++) {
    assert.deepEqual(parseIn([STREAM.subarray(0, i), STREAM.subarray(i)]), EXPECTED, `split at ${i}`)
    for (let j = i + 1; j < STREAM.length; j += 3) {
      assert.deepEqual(parseIn([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]), EXPECTED, `split at ${i}, ${j}`)
    }
  }
  const byteByByte = parseIn([...STREAM].map((b) => Buffer.from([b])))
  assert.deepEqual(byteByByte, EXPECTED)
})

test('garbage is a ProtocolError, not a wrong reply', () => {
  for (const bad of ['?what\r\n', ':12a\r\n', '$3\r\nabcd\r\n', '+OK\rX\n', '$-2\r\n', '*x\r\n']) {
    assert.throws(() => new ReplyParser().push(Buffer.from(bad)), ProtocolError, bad)
  }
})

test('commands are arrays of bulk strings, lengths in bytes', () => {
  assert.equal(encodeCommand(['SET', 'k', 'é', 15]).toString(), '*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n$2\r\n15\r\n')
})

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

test('a large bulk reply in many reads is held until complete, then parsed once', () => {
  const payload = 'p'.repeat(1_000_000)
  const bytes = Buffer.from(`*2\r\n$${payload.length}\r\n${payload}\r\n:1\r\n`)
  const parser = new ReplyParser()
  const replies: Reply[] = []
  for (let i = 0; i < bytes.length; i += 4096) replies.push(...parser.push(bytes.subarray(i, i + 4096)))
  assert.deepEqual(replies, [[payload, 1]])
})

test('a Redis that stops answering: the waiting command fails after the deadline and the client reconnects', async (t) => {
  const net = await import('node:net')
  const { RedisClient } = await import('../src/protocol/resp/client.ts')
  let connections = 0
  // Accepts, reads, never answers: a network that drops packets looks like this from the client.
  const silent = net.createServer((socket) => {
    connections++
    socket.resume()
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as import('node:net').AddressInfo).port
  const client = await RedisClient.connect({ host: '127.0.0.1', port, db: 0 }, { commandTimeoutMs: 300, reconnectMs: 50 })
  // The client first: the server's close waits for its connections.
  t.after(async () => {
    await client.close()
    await new Promise<void>((r) => silent.close(() => r()))
  })
  const started = Date.now()
  await assert.rejects(client.command(['PING']), /connection to redis was lost/)
  const waited = Date.now() - started
  assert.ok(waited >= 280 && waited < 1500, `failed after ${waited} ms`)
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(connections >= 2, 'and it reconnected')
})
