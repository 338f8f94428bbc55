// ResponseParser (the load generator's side of RFC 9112) as a black box: bytes in, the sequence of
// completed responses (status, keep-alive) out. Every input is parsed whole, then cut at every
// split point into two and three pieces and byte at a time, and every cut must give the same
// transcript — for malformed input, the same error.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { ResponseParser, type ResponseParserOptions } from '../src/protocol/http1/response-parser.ts'
import { ERRORS, type ErrorCode } from '../src/core/errors.ts'

interface Transcript {
  responses: string[]
  error: string | null
  /** The error's code in src/core/errors.ts. */
  errorCode: ErrorCode | null
  /** What finish() said when the stream ended after the input. */
  closedCleanly: boolean
}

function run(pieces: readonly Buffer[], options?: ResponseParserOptions): Transcript {
  const parser = new ResponseParser(options)
  const responses: string[] = []
  outer: for (const piece of pieces) {
    let pos = 0
    while (pos < piece.length) {
      pos = parser.execute(piece, pos, piece.length)
      if (parser.error !== null) break outer
      if (parser.complete) {
        responses.push(`${parser.status}${parser.keepAlive ? '' : ' close'}`)
        parser.next()
      }
    }
  }
  let closedCleanly = false
  if (parser.error === null) {
    const idle = parser.idle
    if (parser.finish()) {
      responses.push(`${parser.status}${parser.keepAlive ? '' : ' close'}`)
      closedCleanly = true
    } else {
      closedCleanly = idle
    }
  }
  return { responses, error: parser.error, errorCode: parser.errorCode, closedCleanly }
}

/** Parse whole, then at every 2- and 3-way cut and byte at a time: all must agree. */
function parseAllWays(input: string, options?: ResponseParserOptions): Transcript {
  const bytes = Buffer.from(input, 'latin1')
  const whole = run([bytes], options)
  for (let i = 1; i < bytes.length; i++) {
    assert.deepEqual(run([bytes.subarray(0, i), bytes.subarray(i)], options), whole, `split at ${i}`)
  }
  if (bytes.length <= 160) {
    for (let i = 1; i < bytes.length; i++) {
      for (let j = i + 1; j < bytes.length; j++) {
        assert.deepEqual(run([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)], options), whole, `split at ${i}, ${j}`)
      }
    }
  }
  const single: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1))
  assert.deepEqual(run(single, options), whole, 'byte at a time')
  return whole
}

function ok(input: string, responses: string[], options?: ResponseParserOptions, closedCleanly = true): void {
  assert.deepEqual(parseAllWays(input, options), { responses, error: null, errorCode: null, closedCleanly })
}

function bad(input: string, error: string, responsesBefore: string[] = []): void {
  const t = parseAllWays(input)
  assert.equal(t.error, error)
  assert.deepEqual(t.responses, responsesBefore)
}

describe('response framing (RFC 9112 §6.3)', () => {
  test('Content-Length body', () => ok('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello', ['200']))
  test('pipelined responses are told apart', () =>
    ok('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Oops\r\ncontent-length: 2\r\n\r\nxy', [
      '200',
      '404',
      '500',
    ]))
  test('chunked with extensions and trailers', () =>
    ok(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\na \t; x\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
      ['200', '204'],
    ))
  test('chunk sizes in upper and lower case hex', () =>
    ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n', ['200']))
  test('Transfer-Encoding with chunked last after another coding', () =>
    ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n', ['200']))
  test('Transfer-Encoding without chunked last: the body runs to the close', () =>
    ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabcdef', ['200 close']))
  test('no length at all: the body runs to the close', () => ok('HTTP/1.1 200 OK\r\nServer: x\r\n\r\nthe body, to the end', ['200 close']))
  test('a response cut short by the close is not counted', () => ok('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', [], undefined, false))
  test('a cut chunked response is not counted', () => ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', [], undefined, false))
  test('a cut head is not counted', () => ok('HTTP/1.1 200 OK\r\nContent-Le', [], undefined, false))
  test('204 and 304 have no body whatever their fields say', () =>
    ok('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', [
      '204',
      '304',
      '200',
    ]))
  test('responses to HEAD have no body', () =>
    ok('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', ['200', '200'], { headRequests: true }))
  test('1xx interim responses are skipped', () =>
    ok('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', [
      '201',
    ]))
  test('101 ends HTTP on the connection', () => ok('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', ['101 close']))
  test('bare LF line endings (with allowBareLf) and a missing reason phrase are accepted', () =>
    ok('HTTP/1.1 200\nContent-Length: 2\n\nokHTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', ['200', '200'], { allowBareLf: true }))
  test('204 and 304 carrying both framing fields still have no body', () =>
    ok('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', ['304', '204']))
  test('identical duplicate Content-Length is accepted', () => ok('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx', ['200']))
  test('field values are trimmed', () => ok('HTTP/1.1 200 OK\r\nContent-Length: \t 3 \t\r\n\r\nabc', ['200']))
})

describe('persistence', () => {
  test('HTTP/1.1 Connection: close', () => ok('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', ['200 close']))
  test('Connection option lists are read token by token', () => ok('HTTP/1.1 200 OK\r\nConnection: x-foo, CLOSE\r\nContent-Length: 0\r\n\r\n', ['200 close']))
  test('HTTP/1.0 closes unless it says keep-alive', () =>
    ok('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', ['200 close', '200']))
})

describe('malformed responses stop the parser', () => {
  test('not HTTP', () => bad('SSH-2.0-OpenSSH_9.2\r\n', 'malformed status line'))
  test('HTTP/2 preface in an HTTP/1.1 exchange', () => bad('HTTP/2 200\r\n\r\n', 'malformed status line'))
  test('status code with letters', () => bad('HTTP/1.1 2x0 OK\r\n\r\n', 'malformed status code'))
  test('status code of four digits', () => bad('HTTP/1.1 2000 OK\r\n\r\n', 'malformed status code'))
  test('Content-Length not a number', () => bad('HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n', 'Content-Length is not a number'))
  test('conflicting Content-Length', () => bad('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx', 'conflicting Content-Length values'))
  test('Content-Length with Transfer-Encoding', () =>
    bad('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'both Transfer-Encoding and Content-Length'))
  test('obs-fold', () => bad('HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n', 'obsolete line folding in a response head'))
  test('field line without a colon', () => bad('HTTP/1.1 200 OK\r\nnonsense\r\n\r\n', 'field line without a colon'))
  test('chunk size not hex', () => bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'chunk-size line without a size'))
  test('junk after a chunk size', () => bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n', 'malformed chunk-size line'))
  test('chunk data longer than its size', () =>
    bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 'chunk data longer than its size'))
  test('chunk size overflow', () => bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\n', 'chunk size too large'))
  test('whitespace before the colon', () =>
    bad('HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n', 'field name with a character that is not a token character'))
  test('a field line without a name', () => bad('HTTP/1.1 200 OK\r\n: x\r\n\r\n', 'field line without a name'))
  test('an empty Transfer-Encoding', () => bad('HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\nabc', 'malformed Transfer-Encoding'))
  test('chunked twice', () => bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 'malformed Transfer-Encoding'))
  test('Transfer-Encoding in HTTP/1.0', () =>
    bad('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'Transfer-Encoding in an HTTP/1.0 response'))
  test('an error after good responses keeps them', () => bad('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nGARBAGE\r\n', 'malformed status line', ['200']))
})

describe('limits', () => {
  test('a head larger than maxHeadBytes is refused, at any split', () => {
    const head = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}\r\nContent-Length: 0\r\n\r\n`
    assert.deepEqual(parseAllWays(head, { maxHeadBytes: head.length }).responses, ['200'])
    assert.equal(parseAllWays(head, { maxHeadBytes: head.length - 1 }).error, 'response head too large')
  })
  test('a never-ending head line is refused without buffering it all', () => {
    const parser = new ResponseParser({ maxHeadBytes: 1024 })
    const chunk = Buffer.alloc(300, 0x61)
    parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nX: '), 0, 21)
    let reads = 0
    while (parser.error === null && reads < 100) {
      parser.execute(chunk, 0, chunk.length)
      reads++
    }
    assert.equal(parser.error, 'response head too large')
    assert.ok(reads <= 4, `refused after ${reads} reads`)
  })
  test('a chunk-size line that never ends is refused', () => {
    const parser = new ResponseParser()
    const head = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;')
    parser.execute(head, 0, head.length)
    const ext = Buffer.alloc(1000, 0x61)
    for (let i = 0; i < 10 && parser.error === null; i++) parser.execute(ext, 0, ext.length)
    assert.equal(parser.error, 'chunk-size line too long')
  })
  test('a trailer section larger than maxHeadBytes is refused', () => {
    const input = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ${'b'.repeat(100)}\r\n\r\n`
    assert.equal(parseAllWays(input, { maxHeadBytes: 64 }).error, 'trailer section too large')
  })
  test('a large body is skipped by counting', () => {
    const parser = new ResponseParser()
    const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n')
    assert.equal(parser.execute(head, 0, head.length), head.length)
    const body = Buffer.alloc(65536)
    let left = 10_000_000
    while (left > 0) {
      const n = Math.min(left, body.length)
      assert.equal(parser.execute(body, 0, n), n)
      left -= n
    }
    assert.equal(parser.complete, true)
    assert.equal(parser.status, 200)
  })
})

/** The input is refused with `code` (and the same code at every split), after `responsesBefore`. */
function refused(input: string, code: ErrorCode, options?: ResponseParserOptions, responsesBefore: string[] = []): void {
  const t = parseAllWays(input, options)
  assert.equal(t.errorCode, code, `error ${t.error}`)
  assert.deepEqual(t.responses, responsesBefore)
}

describe('bare LF line ends are refused unless allowBareLf (a proxy must not frame differently from its peers)', () => {
  const cases: Array<[string, string, string[]]> = [
    ['status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', []],
    ['a field line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n', []],
    ['the end of the head', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok', []],
    ['a blank line before the status line', '\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', []],
    ['a chunk-size line', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n', []],
    ['the end of chunk data', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n', []],
    ['a trailer line', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n', []],
    ['the second response', 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', ['204']],
  ]
  for (const [where, input, before] of cases) {
    test(`in ${where}`, () => refused(input, 'PETREL_ERR_UPSTREAM_BARE_LF', undefined, before))
  }
  test('a CR that arrives in the read before its LF still makes a CRLF', () => {
    const parser = new ResponseParser()
    for (const piece of ['HTTP/1.1 200 OK\r', '\nContent-Length: 0\r', '\n\r', '\n']) parser.execute(Buffer.from(piece), 0, piece.length)
    assert.equal(parser.errorCode, null)
    assert.equal(parser.complete, true)
  })
})

describe('error codes come from the one table', () => {
  test('each kind of malformed response has its code, answered 502 by a proxy', () => {
    const cases: Array<[string, ErrorCode]> = [
      ['SSH-2.0-OpenSSH_9.2\r\n', 'PETREL_ERR_UPSTREAM_INVALID_STATUS_LINE'],
      ['HTTP/1.1 2x0 OK\r\n\r\n', 'PETREL_ERR_UPSTREAM_INVALID_STATUS_LINE'],
      ['HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n', 'PETREL_ERR_UPSTREAM_INVALID_HEADER'],
      ['HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok', 'PETREL_ERR_UPSTREAM_INVALID_HEADER'],
      ['HTTP/1.1 200 OK\r\nnonsense\r\n\r\n', 'PETREL_ERR_UPSTREAM_INVALID_HEADER'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx', 'PETREL_ERR_UPSTREAM_INVALID_FRAMING'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'PETREL_ERR_UPSTREAM_INVALID_FRAMING'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK'],
    ]
    for (const [input, code] of cases) {
      refused(input, code)
      assert.equal(ERRORS[code].status, 502, code)
    }
    refused(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}\r\n\r\n`, 'PETREL_ERR_UPSTREAM_HEADERS_TOO_LARGE', { maxHeadBytes: 100 })
  })
})

describe('field count limit', () => {
  const head = (fields: number): string => `HTTP/1.1 200 OK\r\n${'X-F: v\r\n'.repeat(fields)}Content-Length: 0\r\n\r\n`
  test('a head with maxFieldCount fields passes, one more is refused (Content-Length counts too)', () => {
    ok(head(9), ['200'], { maxFieldCount: 10 })
    refused(head(10), 'PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS', { maxFieldCount: 10 })
  })
  test('a 5,000-field head is refused with the default limit, however small its fields', () => {
    const parser = new ResponseParser()
    const input = Buffer.from(head(5000))
    assert.ok(input.length < 64 * 1024, 'under the byte limit: only the count stops it')
    parser.execute(input, 0, input.length)
    assert.equal(parser.errorCode, 'PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS')
  })
  test('each interim head and the trailer section count on their own', () => {
    ok(`HTTP/1.1 103 Early Hints\r\n${'Link: <a>\r\n'.repeat(4)}\r\n${head(3)}`, ['200'], { maxFieldCount: 4 })
    const trailers = (n: number): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-T: 1\r\n'.repeat(n)}\r\n`
    ok(trailers(4), ['200'], { maxFieldCount: 4 })
    refused(trailers(5), 'PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS', { maxFieldCount: 4 })
  })
})
