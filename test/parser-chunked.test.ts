// The one chunked decoder (src/protocol/http1/chunked.ts) driven through both of its owners: the
// same chunked bodies go to RequestParser (a client's request) and ResponseParser (an upstream's
// response), whole and cut at every split point, and both must decode the same bytes, refuse the
// same framing (each with its own code from the one table) and hold the same line limit.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { ResponseParser, MAX_CHUNK_LINE_BYTES, type ResponseParserOptions } from '../src/protocol/http1/response-parser.ts'
import { ERRORS, type ErrorCode } from '../src/core/errors.ts'
import { byteAtATime, checkSplits, limits, type ParserLimits } from './helpers/parse.ts'

const REQUEST_HEAD = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'
const RESPONSE_HEAD = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
/** Small enough that the request head (56 bytes) nearly fills maxHeaderBytes, the chunk line's bound. */
const REQUEST_LIMITS = limits({ maxHeaderBytes: 64, maxHeaderCount: 4, maxUriBytes: 16, maxBodyBytes: 1000 })

interface Outcome {
  /** The decoded body, as the handler received it. */
  body: string
  /** The message completed (for a request: onMessageComplete; for a response: `complete`). */
  complete: boolean
  error: ErrorCode | null
}

/** The request parser's outcome for a chunked body: the same at every split, or the test fails. */
function request(body: string, l: ParserLimits = REQUEST_LIMITS): Outcome {
  const t = checkSplits(REQUEST_HEAD + body, { limits: l }, { random: 8 })
  assert.deepEqual(t.anomalies, [])
  const m = t.messages[0]
  return { body: m?.body ?? '', complete: m?.complete ?? false, error: t.error }
}

function responseOnce(input: Buffer, cuts: readonly number[], options: ResponseParserOptions): Outcome {
  let body = ''
  const parser = new ResponseParser({
    ...options,
    handler: {
      onField() {},
      onHead() {},
      onBody(buf, start, end) {
        body += buf.toString('latin1', start, end)
      },
    },
  })
  let complete = false
  let from = 0
  for (const to of [...cuts, input.length]) {
    // Each piece in a buffer of its own, as reads arrive.
    const piece = Buffer.from(input.subarray(from, to))
    from = to
    let pos = 0
    while (pos < piece.length && !complete && parser.errorCode === null) {
      pos = parser.execute(piece, pos, piece.length)
      if (parser.complete) complete = true
    }
    if (complete || parser.errorCode !== null) break
  }
  return { body, complete, error: parser.errorCode }
}

/** The response parser's outcome for a chunked body: the same at every 2-way split and byte at a time. */
function response(body: string, options: ResponseParserOptions = {}): Outcome {
  const input = Buffer.from(RESPONSE_HEAD + body, 'latin1')
  const whole = responseOnce(input, [], options)
  for (let i = 1; i < input.length; i++) assert.deepEqual(responseOnce(input, [i], options), whole, `response cut at ${i}`)
  assert.deepEqual(responseOnce(input, byteAtATime(input.length), options), whole, 'response byte at a time')
  return whole
}

describe('one chunked decoder for requests and responses', () => {
  const bodies: Array<[string, string, string]> = [
    ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 'hello'],
    ['several chunks, hex in both cases, leading zeros', 'a\r\n0123456789\r\nB\r\n0123456789a\r\n0001\r\nz\r\n0\r\n\r\n', '01234567890123456789az'],
    ['CRLF inside the data is data', '4\r\n\r\n\r\n\r\n0\r\n\r\n', '\r\n\r\n'],
    ['extensions, with BWS before the semicolon', '5;name=value\r\nhello\r\n3 \t;a;b="x"\r\nabc\r\n0;last\r\n\r\n', 'helloabc'],
    ['an empty body', '0\r\n\r\n', ''],
    ['a trailer field', '3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n', 'abc'],
  ]
  for (const [name, body, decoded] of bodies) {
    test(`decoded alike: ${name}`, () => {
      const expected: Outcome = { body: decoded, complete: true, error: null }
      assert.deepEqual(request(body), expected, 'request')
      assert.deepEqual(response(body), expected, 'response')
    })
  }

  // Each refusal in the request's code and in the response's: 400 (413 for the body limit) to a
  // client, 502 from a proxy. The data before the fault has been passed on by then.
  const refusals: Array<[string, string, ErrorCode, ErrorCode, string]> = [
    ['a size that is not hex', 'Z\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['a negative size', '-5\r\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['an empty size', '\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['14 hex digits of size', '00000000000005\r\nhello\r\n0\r\n\r\n', 'PETREL_ERR_CHUNK_SIZE_OVERFLOW', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['junk after the size', '5 x\r\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_BARE_LF', ''],
    ['a bare CR after the size', '5\rhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    // A CR that does not end the line is where two readers of the line can disagree: some end it
    // there. The response parser accepted one inside an extension until the decoder was shared.
    ['a bare CR inside an extension', '5;a\rb\r\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', ''],
    ['a bare LF ending an extension', '5;a\nhello\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_BARE_LF', ''],
    ['data longer than its size', '5\r\nhello!\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'hello'],
    ['data followed by a bare LF', '5\r\nhello\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_BARE_LF', 'hello'],
    ['data followed by a bare CR', '5\r\nhello\rX\r\n0\r\n\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'hello'],
    ['a bad second chunk after a good one', '5\r\nhello\r\nZ\r\n', 'PETREL_ERR_INVALID_CHUNK', 'PETREL_ERR_UPSTREAM_INVALID_CHUNK', 'hello'],
  ]
  for (const [name, body, requestCode, responseCode, before] of refusals) {
    test(`refused alike: ${name}`, () => {
      assert.deepEqual(request(body), { body: before, complete: false, error: requestCode }, 'request')
      assert.deepEqual(response(body), { body: before, complete: false, error: responseCode }, 'response')
      assert.equal(ERRORS[requestCode].status, 400)
      assert.equal(ERRORS[responseCode].status, 502)
    })
  }

  test('where the directions differ, on purpose: the response side reads what nginx reads from an upstream', () => {
    // Whitespace after a size without an extension, and control bytes in an extension: a client's
    // request is held to the grammar, an upstream's response is read as nginx reads it.
    for (const body of ['5 \r\nhello\r\n0\r\n\r\n', '5;a\x00b\r\nhello\r\n0\r\n\r\n']) {
      assert.equal(request(body).error, 'PETREL_ERR_INVALID_CHUNK', JSON.stringify(body))
      assert.deepEqual(response(body), { body: 'hello', complete: true, error: null }, JSON.stringify(body))
    }
    // A load generator may accept bare LF line ends (RFC 9112 §2.2); a request never.
    const bareLf = '5\nhello\n0\n\n'
    assert.equal(request(bareLf).error, 'PETREL_ERR_INVALID_CHUNK')
    assert.deepEqual(response(bareLf, { allowBareLf: true }), { body: 'hello', complete: true, error: null })
  })

  test('the request body limit is checked at each size, before that chunk is read', () => {
    const l = limits({ ...REQUEST_LIMITS, maxBodyBytes: 10 })
    assert.deepEqual(request('5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n', l), { body: 'helloworld', complete: true, error: null })
    assert.deepEqual(request('5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n', l), { body: 'hello', complete: false, error: 'PETREL_ERR_BODY_TOO_LARGE' })
  })
})

describe('the chunk-size line limit, one rule for both', () => {
  // The line counts its size, whitespace, extensions and CRLF: "5;" + extension + CRLF.
  const line = (bytes: number): string => `5;${'e'.repeat(bytes - 4)}\r\nhello\r\n0\r\n\r\n`

  test('a request chunk line of maxHeaderBytes passes; one byte more is refused', () => {
    const max = REQUEST_LIMITS.maxHeaderBytes
    assert.deepEqual(request(line(max)), { body: 'hello', complete: true, error: null })
    assert.deepEqual(request(line(max + 1)), { body: '', complete: false, error: 'PETREL_ERR_INVALID_CHUNK' })
  })

  test('a response chunk line of maxChunkLineBytes passes; one byte more is refused', () => {
    assert.deepEqual(response(line(40), { maxChunkLineBytes: 40 }), { body: 'hello', complete: true, error: null })
    assert.deepEqual(response(line(41), { maxChunkLineBytes: 40 }), { body: '', complete: false, error: 'PETREL_ERR_UPSTREAM_INVALID_CHUNK' })
  })

  test('the response default is MAX_CHUNK_LINE_BYTES', () => {
    assert.equal(MAX_CHUNK_LINE_BYTES, 4096)
    const parser = new ResponseParser()
    const at = (bytes: number): boolean => {
      parser.reset()
      const input = Buffer.from(RESPONSE_HEAD + line(bytes), 'latin1')
      parser.execute(input, 0, input.length)
      return parser.errorCode === null && parser.complete
    }
    assert.equal(at(MAX_CHUNK_LINE_BYTES), true)
    assert.equal(at(MAX_CHUNK_LINE_BYTES + 1), false)
    assert.equal(parser.error, 'chunk-size line too long')
  })
})
