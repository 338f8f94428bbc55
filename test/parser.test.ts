// RequestParser (RFC 9112) as a black box: byte inputs in, handler events out. Every table input is
// parsed whole and compared with a hand-written transcript, then parsed again cut at every split
// point, byte at a time and at random 2- to 6-way splits (all 3-way splits for a few), and each of
// those transcripts must equal the unsplit one — including, for malformed input, the error code.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { RequestParser } from '../src/protocol/http1/parser.ts'
import type { RequestParserHandler } from '../src/protocol/http1/parser.ts'
import type { RequestHead } from '../src/protocol/http1/request-head.ts'
import { ERRORS } from '../src/core/errors.ts'
import type { ErrorCode } from '../src/core/errors.ts'
import { DEFAULT_LIMITS } from '../src/core/limits.ts'
import { bytes, checkSplits, failed, limits, modelPath, msg, ok, parse, pieces, random, randomSplits } from './helpers/parse.ts'
import type { Message, ParserLimits, SplitCheck, Transcript } from './helpers/parse.ts'

// ---------------------------------------------------------------------------------------------
// Valid requests

interface OkCase {
  name: string
  input: string
  expect: Message[]
  /** Parser state after the input; 'idle' unless the input ends inside a message. */
  state?: Transcript['state']
  limits?: ParserLimits
  check?: SplitCheck
}

const PIPELINE =
  'GET /a HTTP/1.1\r\nHost: h\r\n\r\n' +
  'POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc' +
  '\r\n' +
  'PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: 1\r\n\r\n' +
  'GET /d HTTP/1.0\r\n\r\n' +
  'DELETE /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'

const PIPELINE_MESSAGES = [
  msg({ method: 'GET', target: '/a', headers: [['host', 'h']] }),
  msg({
    method: 'POST',
    target: '/b',
    headers: [
      ['host', 'h'],
      ['content-length', '3'],
    ],
    body: 'abc',
  }),
  msg({
    method: 'PUT',
    target: '/c',
    headers: [
      ['host', 'h'],
      ['transfer-encoding', 'chunked'],
    ],
    chunked: true,
    body: 'xyz',
    trailers: [['t', '1']],
  }),
  msg({ method: 'GET', target: '/d', version: 'HTTP/1.0', keepAlive: false }),
  msg({
    method: 'DELETE',
    target: '/e',
    headers: [
      ['host', 'h'],
      ['connection', 'close'],
    ],
    keepAlive: false,
  }),
]

const OK_CASES: OkCase[] = [
  {
    name: 'minimal GET',
    input: 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/', headers: [['host', 'example.com']] })],
    check: { allThreeWay: true },
  },
  {
    name: 'header names are lower-cased, values trimmed of OWS on both sides',
    input: 'GET /index.html?q=1 HTTP/1.1\r\nHOST: a.example\r\nX-Foo:   bar \t baz  \t\r\nx-EMPTY:\r\nX-Only-Space: \t \r\nAccept:*/*\r\n\r\n',
    expect: [
      msg({
        method: 'GET',
        target: '/index.html?q=1',
        headers: [
          ['host', 'a.example'],
          ['x-foo', 'bar \t baz'],
          ['x-empty', ''],
          ['x-only-space', ''],
          ['accept', '*/*'],
        ],
      }),
    ],
    check: { allThreeWay: true },
  },
  {
    name: 'obs-text bytes are allowed in field values',
    input: 'GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9 \x80\xff\r\n\r\n',
    expect: [
      msg({
        method: 'GET',
        target: '/',
        headers: [
          ['host', 'h'],
          ['x-latin', 'caf\xe9 \x80\xff'],
        ],
      }),
    ],
  },
  {
    name: 'every tchar in the method and in a header name',
    input: "M-SEARCH!#$%&'*+.^_`|~09 / HTTP/1.1\r\nHost: h\r\nX!#$%&'*+-.^_`|~Az09: v\r\n\r\n",
    expect: [
      msg({
        method: "M-SEARCH!#$%&'*+.^_`|~09",
        target: '/',
        headers: [
          ['host', 'h'],
          ["x!#$%&'*+-.^_`|~az09", 'v'],
        ],
      }),
    ],
  },
  {
    name: 'asterisk, authority and absolute forms of the target',
    input:
      'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n' +
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n' +
      'GET http://example.com:8080/p/a%20t/h?x=1&y=%C3%A9 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
    expect: [
      msg({ method: 'OPTIONS', target: '*', headers: [['host', 'h']] }),
      msg({ method: 'CONNECT', target: 'example.com:443', headers: [['host', 'example.com:443']] }),
      msg({ method: 'GET', target: 'http://example.com:8080/p/a%20t/h?x=1&y=%C3%A9', headers: [['host', 'example.com:8080']] }),
    ],
  },
  {
    name: 'HTTP/1.0 without Host is fine and not keep-alive by default',
    input: 'GET /old HTTP/1.0\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/old', version: 'HTTP/1.0', keepAlive: false })],
  },
  {
    name: 'HTTP/1.0 with Connection: Keep-Alive stays open',
    input: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/', version: 'HTTP/1.0', headers: [['connection', 'Keep-Alive']], keepAlive: true })],
  },
  {
    name: 'HTTP/1.0 with keep-alive and close closes',
    input: 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/', version: 'HTTP/1.0', headers: [['connection', 'keep-alive, close']], keepAlive: false })],
  },
  {
    name: 'HTTP/1.1 is keep-alive by default; Connection: close (any case, in a list) closes',
    input:
      'GET /1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n' +
      'GET /2 HTTP/1.1\r\nHost: h\r\nConnection: foo,CLOSE\r\n\r\n' +
      'GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
    expect: [
      msg({
        method: 'GET',
        target: '/1',
        headers: [
          ['host', 'h'],
          ['connection', 'keep-alive'],
        ],
        keepAlive: true,
      }),
      msg({
        method: 'GET',
        target: '/2',
        headers: [
          ['host', 'h'],
          ['connection', 'foo,CLOSE'],
        ],
        keepAlive: false,
      }),
      msg({
        method: 'GET',
        target: '/3',
        headers: [
          ['host', 'h'],
          ['connection', 'close'],
        ],
        keepAlive: false,
      }),
    ],
  },
  {
    name: 'HTTP/1.0 POST with a Content-Length body',
    input: 'POST /form HTTP/1.0\r\nHost: h\r\nContent-Length: 7\r\n\r\na=1&b=2',
    expect: [
      msg({
        method: 'POST',
        target: '/form',
        version: 'HTTP/1.0',
        headers: [
          ['host', 'h'],
          ['content-length', '7'],
        ],
        keepAlive: false,
        body: 'a=1&b=2',
      }),
    ],
  },
  {
    name: 'Expect: 100-continue (case-insensitive value)',
    input:
      'PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc' +
      'PUT /g HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n' +
      'PUT /i HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-please\r\nContent-Length: 0\r\n\r\n',
    expect: [
      msg({
        method: 'PUT',
        target: '/f',
        headers: [
          ['host', 'h'],
          ['expect', '100-continue'],
          ['content-length', '3'],
        ],
        expectContinue: true,
        body: 'abc',
      }),
      msg({
        method: 'PUT',
        target: '/g',
        headers: [
          ['host', 'h'],
          ['expect', '100-Continue'],
          ['content-length', '0'],
        ],
        expectContinue: true,
      }),
      msg({
        method: 'PUT',
        target: '/i',
        headers: [
          ['host', 'h'],
          ['expect', '100-continue-please'],
          ['content-length', '0'],
        ],
        expectContinue: false,
      }),
    ],
  },
  {
    name: 'Content-Length body',
    input: 'POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world',
    expect: [
      msg({
        method: 'POST',
        target: '/upload',
        headers: [
          ['host', 'h'],
          ['content-length', '11'],
        ],
        body: 'hello world',
      }),
    ],
    check: { allThreeWay: true },
  },
  {
    name: 'Content-Length: 0 completes at the head',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['content-length', '0'],
        ],
      }),
    ],
  },
  {
    name: 'identical duplicate Content-Length, OWS around it, leading zeros',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: \t5 \r\nContent-Length: 005\r\n\r\nhello',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['content-length', '5'],
          ['content-length', '5'],
          ['content-length', '005'],
        ],
        contentLength: 5,
        body: 'hello',
      }),
    ],
  },
  {
    name: 'body bytes that look like a request are body',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['content-length', '18'],
        ],
        body: 'GET / HTTP/1.1\r\n\r\n',
      }),
    ],
  },
  {
    name: 'chunked body',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', 'chunked'],
        ],
        chunked: true,
        body: 'hello world',
      }),
    ],
    check: { allThreeWay: true },
  },
  {
    name: 'chunked with extensions, hex sizes in both cases, leading zeros, CRLF inside data',
    input:
      'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;name=value\r\nhello\r\n' +
      '6 ; foo ; bar="b;a z"\r\n world\r\n' +
      'A\r\n0123456789\r\n' +
      '000b\r\nabcdefghijk\r\n' +
      '4\r\n\r\n\r\n\r\n' +
      '0000000000005\r\nvwxyz\r\n' +
      '0;last\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', 'chunked'],
        ],
        chunked: true,
        body: 'hello world0123456789abcdefghijk\r\n\r\nvwxyz',
      }),
    ],
  },
  {
    name: 'chunked trailers end up in head.trailers (names lower-cased, values trimmed)',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n' + 'X-Checksum:  abc \r\nEXPIRES:\tnever\r\nX-Empty:\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', 'chunked'],
        ],
        chunked: true,
        body: 'abc',
        trailers: [
          ['x-checksum', 'abc'],
          ['expires', 'never'],
          ['x-empty', ''],
        ],
      }),
    ],
    check: { allThreeWay: true },
  },
  {
    name: 'empty chunked body',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', 'chunked'],
        ],
        chunked: true,
      }),
    ],
  },
  {
    name: 'Transfer-Encoding over two fields, any case',
    input: 'POST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nB\r\n0\r\n\r\n',
    expect: [
      msg({
        method: 'POST',
        target: '/2',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', ''],
          ['transfer-encoding', 'Chunked'],
        ],
        chunked: true,
        body: 'B',
      }),
    ],
  },
  {
    name: 'leading empty lines before a request line are skipped (8 of them)',
    input: '\r\n'.repeat(8) + 'GET / HTTP/1.1\r\nHost: h\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/', headers: [['host', 'h']] })],
  },
  {
    name: 'pipelined requests, with a stray CRLF between two of them',
    input: PIPELINE,
    expect: PIPELINE_MESSAGES,
    check: { random: 200 },
  },
  {
    name: 'Connection: Upgrade with an Upgrade header',
    input:
      'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n' +
      'GET /no HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n',
    expect: [
      msg({
        method: 'GET',
        target: '/ws',
        headers: [
          ['host', 'h'],
          ['connection', 'keep-alive, Upgrade'],
          ['upgrade', 'websocket'],
        ],
        upgrade: true,
      }),
      msg({
        method: 'GET',
        target: '/no',
        headers: [
          ['host', 'h'],
          ['upgrade', 'websocket'],
        ],
        upgrade: false,
      }),
    ],
  },
  {
    name: 'empty Host value',
    input: 'GET / HTTP/1.1\r\nHost:\r\n\r\n',
    expect: [msg({ method: 'GET', target: '/', headers: [['host', '']], host: '' })],
  },
  {
    name: 'input ending inside a head gives no event',
    input: 'GET / HTTP/1.1\r\nHost: h\r\n',
    expect: [],
    state: 'head',
  },
  {
    name: 'input ending inside a body gives the head and the bytes so far',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['content-length', '10'],
        ],
        body: 'hello',
        complete: false,
      }),
    ],
    state: 'body',
  },
  {
    name: 'input ending inside a chunked body',
    input: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel',
    expect: [
      msg({
        method: 'POST',
        target: '/',
        headers: [
          ['host', 'h'],
          ['transfer-encoding', 'chunked'],
        ],
        chunked: true,
        body: 'hel',
        complete: false,
      }),
    ],
    state: 'body',
  },
]

describe('valid requests: hand-written transcript, same at every split', () => {
  for (const c of OK_CASES) {
    test(c.name, () => {
      const opts = c.limits === undefined ? {} : { limits: c.limits }
      const base = checkSplits(c.input, opts, c.check)
      assert.deepStrictEqual(base, ok(c.expect, { state: c.state ?? 'idle' }))
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Malformed requests

interface ErrorCase {
  name: string
  input: string
  status: number
  /** The exact code, where it matters; otherwise only the status is asserted. */
  code?: ErrorCode
  /** Messages completed (or begun) before the error. */
  before?: Message[]
  limits?: ParserLimits
}

const get = (headers: string): string => `GET / HTTP/1.1\r\n${headers}\r\n`
const post = (headers: string, body: string): string => `POST / HTTP/1.1\r\nHost: h\r\n${headers}\r\n${body}`
const chunked = (body: string): string => post('Transfer-Encoding: chunked\r\n', body)
const chunkedHead = msg({
  method: 'POST',
  target: '/',
  headers: [
    ['host', 'h'],
    ['transfer-encoding', 'chunked'],
  ],
  chunked: true,
  complete: false,
})

const ERROR_CASES: ErrorCase[] = [
  // Framing: Content-Length and Transfer-Encoding.
  {
    name: 'Content-Length with Transfer-Encoding',
    input: post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
  },
  {
    name: 'Transfer-Encoding with Content-Length',
    input: post('Transfer-Encoding: chunked\r\nContent-Length: 0\r\n', ''),
    status: 400,
    code: 'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
  },
  {
    name: 'differing duplicate Content-Length',
    input: post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!'),
    status: 400,
    code: 'PETREL_ERR_CONFLICTING_CONTENT_LENGTH',
  },
  {
    name: 'differing duplicate Content-Length, 0 then 5',
    input: post('Content-Length: 0\r\nContent-Length: 5\r\n', 'hello'),
    status: 400,
    code: 'PETREL_ERR_CONFLICTING_CONTENT_LENGTH',
  },
  ...['+5', '-5', '5 5', '0x5', '5,5', '5, 5', '', ' \t ', '5.0', '1e3', '5a', '\xb5', '"5"'].map(
    (v): ErrorCase => ({
      name: `Content-Length ${JSON.stringify(v)}`,
      input: post(`Content-Length: ${v}\r\n`, 'hello'),
      status: 400,
      code: 'PETREL_ERR_INVALID_CONTENT_LENGTH',
    }),
  ),
  {
    name: 'Transfer-Encoding whose last coding is not chunked',
    input: post('Transfer-Encoding: chunked, gzip\r\n', ''),
    status: 400,
    code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED',
  },
  { name: 'Transfer-Encoding: gzip alone', input: post('Transfer-Encoding: gzip\r\n', ''), status: 400, code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED' },
  {
    name: 'Transfer-Encoding: chunked then gzip over two fields',
    input: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n', ''),
    status: 400,
    code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED',
  },
  {
    name: 'Transfer-Encoding: chunked, chunked',
    input: post('Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED',
  },
  {
    name: 'Transfer-Encoding: chunked twice over two fields',
    input: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED',
  },
  { name: 'Transfer-Encoding: empty', input: post('Transfer-Encoding:\r\n', ''), status: 400 },
  {
    name: 'gzip before chunked: registered, but request bodies are not decoded',
    input: post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'),
    status: 501,
    code: 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING',
  },
  {
    name: 'deflate and chunked over two fields',
    input: post('Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    status: 501,
    code: 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING',
  },
  { name: 'unknown transfer coding', input: post('Transfer-Encoding: foo\r\n', ''), status: 501, code: 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING' },
  {
    name: 'unknown transfer coding before chunked',
    input: post('Transfer-Encoding: foo, chunked\r\n', '0\r\n\r\n'),
    status: 501,
    code: 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING',
  },
  { name: 'xchunked is not chunked', input: post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), status: 501, code: 'PETREL_ERR_UNKNOWN_TRANSFER_ENCODING' },
  {
    name: 'Transfer-Encoding on HTTP/1.0',
    input: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    status: 400,
    code: 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED',
  },
  {
    name: 'Transfer-Encoding in a vertical-tab disguise',
    input: post('Transfer-Encoding:\x0bchunked\r\n', '0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_INVALID_HEADER_VALUE',
  },

  // Line structure of the head.
  { name: 'obs-fold (SP) in a header', input: get('Host: h\r\nX-Foo: a\r\n b\r\n'), status: 400, code: 'PETREL_ERR_OBS_FOLD' },
  { name: 'obs-fold (HTAB) in a header', input: get('Host: h\r\nX-Foo: a\r\n\tb\r\n'), status: 400, code: 'PETREL_ERR_OBS_FOLD' },
  { name: 'whitespace line right after the request line', input: get(' Host: h\r\n'), status: 400, code: 'PETREL_ERR_OBS_FOLD' },
  { name: 'SP before the colon', input: get('Host : h\r\n'), status: 400, code: 'PETREL_ERR_WHITESPACE_BEFORE_COLON' },
  { name: 'HTAB before the colon', input: get('Host: h\r\nX-Foo\t: v\r\n'), status: 400, code: 'PETREL_ERR_WHITESPACE_BEFORE_COLON' },
  { name: 'NUL in a header value', input: get('Host: h\r\nX: a\x00b\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_VALUE' },
  { name: 'NUL in a header name', input: get('Host: h\r\nX\x00Y: a\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME' },
  { name: 'NUL in the target', input: 'GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_TARGET' },
  { name: 'NUL in the method', input: 'G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_METHOD' },
  { name: 'NUL after the version', input: 'GET / HTTP/1.1\x00\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_VERSION' },
  { name: 'control byte 0x01 in a value', input: get('Host: h\r\nX: a\x01\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_VALUE' },
  { name: 'DEL in a value', input: get('Host: h\r\nX: a\x7f\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_VALUE' },
  { name: 'bare CR ending the request line', input: 'GET / HTTP/1.1\rHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_BARE_CR' },
  { name: 'bare CR inside a value', input: get('Host: h\r\nX: a\rb\r\n'), status: 400, code: 'PETREL_ERR_BARE_CR' },
  { name: 'bare CR ending a header line', input: get('Host: h\r\nX: a\r\rY: b\r\n'), status: 400, code: 'PETREL_ERR_BARE_CR' },
  { name: 'bare CR in the empty line', input: 'GET / HTTP/1.1\r\nHost: h\r\n\r\r\n', status: 400, code: 'PETREL_ERR_BARE_CR' },
  { name: 'bare CR in a header name', input: get('Host: h\r\nX\rY: a\r\n'), status: 400 },
  { name: 'bare CR in the target', input: 'GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n', status: 400 },
  { name: 'bare LF ending the request line', input: 'GET / HTTP/1.1\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_BARE_LF' },
  { name: 'bare LF ending a header line', input: 'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', status: 400, code: 'PETREL_ERR_BARE_LF' },
  { name: 'bare LF as the empty line', input: 'GET / HTTP/1.1\r\nHost: h\r\n\n', status: 400, code: 'PETREL_ERR_BARE_LF' },
  { name: 'bare LF inside a value', input: get('Host: h\r\nX: a\nb\r\n'), status: 400, code: 'PETREL_ERR_BARE_LF' },
  { name: 'bare LF in a header name', input: get('Host: h\r\nX\nY: a\r\n'), status: 400 },
  { name: 'bare LF in the target', input: 'GET /a\nb HTTP/1.1\r\nHost: h\r\n\r\n', status: 400 },
  { name: 'too many leading empty lines', input: '\r\n'.repeat(9) + 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_REQUEST_LINE' },

  // Method and header-name characters.
  ...['G(ET', 'GE@T', 'GET{', 'GE"T', 'G\xe9T', 'GE/T', 'GE:T', 'GE,T'].map(
    (m): ErrorCase => ({
      name: `method ${JSON.stringify(m)}`,
      input: `${m} / HTTP/1.1\r\nHost: h\r\n\r\n`,
      status: 400,
      code: 'PETREL_ERR_INVALID_METHOD',
    }),
  ),
  { name: 'HTAB after the method', input: 'GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_METHOD' },
  { name: 'empty method', input: ' / HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_METHOD' },
  { name: 'two spaces before the target', input: 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n', status: 400 },
  { name: 'no version', input: 'GET /\r\nHost: h\r\n\r\n', status: 400 },
  { name: 'empty version', input: 'GET / \r\nHost: h\r\n\r\n', status: 400, code: 'PETREL_ERR_INVALID_VERSION' },
  ...['X(Foo', 'X@', 'X\xe9', 'X"Y', 'X/Y', 'X=Y', 'X[Y]', 'X{Y}', 'X\\Y', 'X?Y', 'X,Y', 'X;Y'].map(
    (n): ErrorCase => ({
      name: `header name ${JSON.stringify(n)}`,
      input: get(`Host: h\r\n${n}: v\r\n`),
      status: 400,
      code: 'PETREL_ERR_INVALID_HEADER_NAME',
    }),
  ),
  { name: 'empty header name', input: get('Host: h\r\n: v\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME' },
  { name: 'header line without a colon', input: get('Host: h\r\nNoColon\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME' },

  // Host.
  { name: 'HTTP/1.1 without Host', input: 'GET / HTTP/1.1\r\nX: y\r\n\r\n', status: 400, code: 'PETREL_ERR_MISSING_HOST' },
  { name: 'HTTP/1.1 with no header at all', input: 'GET / HTTP/1.1\r\n\r\n', status: 400, code: 'PETREL_ERR_MISSING_HOST' },
  { name: 'repeated Host', input: get('Host: a\r\nHost: a\r\n'), status: 400, code: 'PETREL_ERR_DUPLICATE_HOST' },
  { name: 'repeated Host, other case, other value', input: get('Host: a\r\nhOST: b\r\n'), status: 400, code: 'PETREL_ERR_DUPLICATE_HOST' },

  // Versions.
  ...['HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/3.0', 'HTTP/9.9', 'HTTP/1.9'].map(
    (v): ErrorCase => ({
      name: `unsupported version ${v}`,
      input: `GET / ${v}\r\nHost: h\r\n\r\n`,
      status: 505,
      code: 'PETREL_ERR_UNSUPPORTED_VERSION',
    }),
  ),
  ...[
    'HTTP/1.1x',
    'HTTP/11.1',
    'HTTP/1.10',
    'http/1.1',
    'HTTP/1',
    'HTTP/1.',
    'HTTP/1.1 ',
    'HTTP 1.1',
    'HTTPS/1.1',
    'HTTP/a.1',
    'HTTP/1.a',
    'HTTP/1,1',
    'HTTP/+1.1',
    ' HTTP/1.1',
  ].map(
    (v): ErrorCase => ({
      name: `malformed version ${JSON.stringify(v)}`,
      input: `GET / ${v}\r\nHost: h\r\n\r\n`,
      status: 400,
      code: 'PETREL_ERR_INVALID_VERSION',
    }),
  ),

  // Chunked framing.
  { name: 'chunk size that is not hex', input: chunked('Z\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: 'empty chunk size', input: chunked('\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: 'negative chunk size', input: chunked('-5\r\nhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: '0x prefix on a chunk size', input: chunked('0x5\r\nhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  {
    name: 'whitespace after a chunk size without an extension',
    input: chunked('5 \r\nhello\r\n0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_INVALID_CHUNK',
    before: [chunkedHead],
  },
  { name: 'bare LF after a chunk size', input: chunked('5\nhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: 'bare CR after a chunk size', input: chunked('5\rhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: 'NUL in a chunk extension', input: chunked('5;a\x00\r\nhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  { name: 'bare LF ending a chunk extension', input: chunked('5;a\nhello\r\n0\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_CHUNK', before: [chunkedHead] },
  {
    name: 'chunk data longer than its size',
    input: chunked('5\r\nhello!\r\n0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_INVALID_CHUNK',
    before: [{ ...chunkedHead, body: 'hello' }],
  },
  {
    name: 'chunk data followed by a bare LF',
    input: chunked('5\r\nhello\n0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_INVALID_CHUNK',
    before: [{ ...chunkedHead, body: 'hello' }],
  },
  {
    name: 'bad second chunk after a good first one',
    input: chunked('5\r\nhello\r\nZ\r\n'),
    status: 400,
    code: 'PETREL_ERR_INVALID_CHUNK',
    before: [{ ...chunkedHead, body: 'hello' }],
  },
  {
    name: '14 hex digits of chunk size',
    input: chunked('00000000000005\r\nhello\r\n0\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_CHUNK_SIZE_OVERFLOW',
    before: [chunkedHead],
  },
  { name: 'chunk size FFFFFFFFFFFFFFFF', input: chunked('FFFFFFFFFFFFFFFF\r\n'), status: 400, code: 'PETREL_ERR_CHUNK_SIZE_OVERFLOW', before: [chunkedHead] },
  {
    name: '13 hex digits of chunk size over maxBodyBytes',
    input: chunked('FFFFFFFFFFFFF\r\n'),
    status: 413,
    code: 'PETREL_ERR_BODY_TOO_LARGE',
    before: [chunkedHead],
  },

  // Trailers.
  { name: 'obs-fold in the trailer section', input: chunked('0\r\nX: a\r\n b\r\n\r\n'), status: 400, code: 'PETREL_ERR_OBS_FOLD', before: [chunkedHead] },
  { name: 'trailer section starting with whitespace', input: chunked('0\r\n X: a\r\n\r\n'), status: 400, code: 'PETREL_ERR_OBS_FOLD', before: [chunkedHead] },
  {
    name: 'whitespace before a trailer colon',
    input: chunked('0\r\nX : a\r\n\r\n'),
    status: 400,
    code: 'PETREL_ERR_WHITESPACE_BEFORE_COLON',
    before: [chunkedHead],
  },
  { name: 'non-token trailer name', input: chunked('0\r\nX@: a\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME', before: [chunkedHead] },
  { name: 'trailer line without a colon', input: chunked('0\r\nNoColon\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME', before: [chunkedHead] },
  { name: 'empty trailer name', input: chunked('0\r\n: a\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_NAME', before: [chunkedHead] },
  { name: 'NUL in a trailer value', input: chunked('0\r\nX: a\x00\r\n\r\n'), status: 400, code: 'PETREL_ERR_INVALID_HEADER_VALUE', before: [chunkedHead] },
  { name: 'bare LF in a trailer', input: chunked('0\r\nX: a\nY: b\r\n\r\n'), status: 400, code: 'PETREL_ERR_BARE_LF', before: [chunkedHead] },
  { name: 'bare CR in a trailer', input: chunked('0\r\nX: a\rb\r\n\r\n'), status: 400, code: 'PETREL_ERR_BARE_CR', before: [chunkedHead] },
  { name: 'bare CR ending the trailer section', input: chunked('0\r\n\r\r\n'), status: 400, code: 'PETREL_ERR_BARE_CR', before: [chunkedHead] },
  { name: 'bare LF ending the trailer section', input: chunked('0\r\n\n'), status: 400, code: 'PETREL_ERR_BARE_LF', before: [chunkedHead] },

  // An error after good pipelined requests keeps what came before.
  {
    name: 'malformed request after two good ones',
    input: 'GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\nHost : h\r\n\r\n',
    status: 400,
    code: 'PETREL_ERR_WHITESPACE_BEFORE_COLON',
    before: [
      msg({ method: 'GET', target: '/1', headers: [['host', 'h']] }),
      msg({
        method: 'POST',
        target: '/2',
        headers: [
          ['host', 'h'],
          ['content-length', '2'],
        ],
        body: 'ok',
      }),
    ],
  },
]

function checkError(c: ErrorCase): void {
  const base = checkSplits(c.input, c.limits === undefined ? {} : { limits: c.limits })
  assert.equal(base.status, c.status, `status for ${JSON.stringify(c.input)} (code ${base.error})`)
  assert.equal(base.state, 'error')
  assert.deepStrictEqual(base.anomalies, [])
  assert.deepStrictEqual(base.messages, c.before ?? [])
  if (c.code !== undefined) assert.equal(base.error, c.code)
}

describe('malformed requests: error status (and code) at every split', () => {
  for (const c of ERROR_CASES) test(c.name, () => checkError(c))
})

// ---------------------------------------------------------------------------------------------
// Limits

/** A GET with one padding header, exactly `size` bytes of head. */
function headOfSize(size: number, extra = ''): string {
  const fixed = `GET / HTTP/1.1\r\nHost: h\r\n${extra}X: \r\n\r\n`
  assert.ok(size >= fixed.length, `a head of ${size} bytes is too small for ${JSON.stringify(fixed)}`)
  const s = `GET / HTTP/1.1\r\nHost: h\r\n${extra}X: ${'v'.repeat(size - fixed.length)}\r\n\r\n`
  assert.equal(s.length, size)
  return s
}

const SMALL = limits({ maxHeaderBytes: 64, maxHeaderCount: 4, maxUriBytes: 16, maxBodyBytes: 10 })

describe('limits with small custom values, at the boundary, at every split', () => {
  test('a head of exactly maxHeaderBytes passes, body bytes after it do not count', () => {
    const head = headOfSize(64, 'Content-Length: 3\r\n')
    const value = 'v'.repeat(64 - 'GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: \r\n\r\n'.length)
    const base = checkSplits(head + 'abc', { limits: SMALL }, { allThreeWay: true })
    assert.deepStrictEqual(
      base,
      ok([
        msg({
          method: 'GET',
          target: '/',
          headers: [
            ['host', 'h'],
            ['content-length', '3'],
            ['x', value],
          ],
          body: 'abc',
        }),
      ]),
    )
  })

  test('a head of maxHeaderBytes + 1 is 431', () => {
    const base = checkSplits(headOfSize(65, 'Content-Length: 3\r\n') + 'abc', { limits: SMALL }, { allThreeWay: true })
    assert.deepStrictEqual(base, failed('PETREL_ERR_HEADERS_TOO_LARGE'))
  })

  test('a head over the limit is 431 whichever part of it is long', () => {
    const big = limits({ ...SMALL, maxUriBytes: 1000 })
    for (const input of [
      `GET /${'a'.repeat(70)} HTTP/1.1\r\nHost: h\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: h\r\nX-${'n'.repeat(60)}: v\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: h\r\nX:${' '.repeat(60)}v\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nX: v${' '.repeat(40)}\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: h\r\nX: ${'v'.repeat(60)}`,
    ]) {
      const base = checkSplits(input, { limits: big })
      assert.deepStrictEqual(base, failed('PETREL_ERR_HEADERS_TOO_LARGE'), JSON.stringify(input))
    }
  })

  test('a URI of exactly maxUriBytes passes, one byte more is 414', () => {
    const target = '/' + 'a'.repeat(15)
    const base = checkSplits(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`, { limits: SMALL }, { allThreeWay: true })
    assert.deepStrictEqual(base, ok([msg({ method: 'GET', target, headers: [['host', 'h']] })]))
    const over = checkSplits(`GET ${target}b HTTP/1.1\r\nHost: h\r\n\r\n`, { limits: SMALL }, { allThreeWay: true })
    assert.deepStrictEqual(over, failed('PETREL_ERR_URI_TOO_LONG'))
    const far = checkSplits(`GET /${'x'.repeat(50)} HTTP/1.1\r\nHost: h\r\n\r\n`, { limits: SMALL })
    assert.deepStrictEqual(far, failed('PETREL_ERR_URI_TOO_LONG'))
  })

  test('maxHeaderCount headers pass, one more is 431', () => {
    const four = 'GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n'
    const base = checkSplits(four, { limits: SMALL }, { allThreeWay: true })
    assert.deepStrictEqual(
      base,
      ok([
        msg({
          method: 'GET',
          target: '/',
          headers: [
            ['host', 'h'],
            ['a', '1'],
            ['b', '2'],
            ['c', '3'],
          ],
        }),
      ]),
    )
    const five = 'GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n'
    assert.ok(five.length <= SMALL.maxHeaderBytes)
    assert.deepStrictEqual(checkSplits(five, { limits: SMALL }, { allThreeWay: true }), failed('PETREL_ERR_TOO_MANY_HEADERS'))
  })

  test('Content-Length of maxBodyBytes passes; one more is 413 at the head, before any body byte', () => {
    const base = checkSplits(post('Content-Length: 10\r\n', '0123456789'), { limits: SMALL })
    assert.deepStrictEqual(
      base,
      ok([
        msg({
          method: 'POST',
          target: '/',
          headers: [
            ['host', 'h'],
            ['content-length', '10'],
          ],
          body: '0123456789',
        }),
      ]),
    )
    // No body byte is sent at all: the answer must not wait for one.
    assert.deepStrictEqual(checkSplits(post('Content-Length: 11\r\n', ''), { limits: SMALL }), failed('PETREL_ERR_BODY_TOO_LARGE'))
    assert.deepStrictEqual(checkSplits(post('Content-Length: 11\r\n', '0123456789A'), { limits: SMALL }), failed('PETREL_ERR_BODY_TOO_LARGE'))
    const roomy = limits({ ...SMALL, maxHeaderBytes: 128 })
    assert.deepStrictEqual(checkSplits(post('Content-Length: 99999999999999999999999\r\n', ''), { limits: roomy }), failed('PETREL_ERR_BODY_TOO_LARGE'))
  })

  test('a chunked body of maxBodyBytes passes; one byte more is 413 before that chunk', () => {
    const head = msg({
      method: 'POST',
      target: '/',
      headers: [
        ['host', 'h'],
        ['transfer-encoding', 'chunked'],
      ],
      chunked: true,
    })
    const okBody = checkSplits(chunked('5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n'), { limits: SMALL })
    assert.deepStrictEqual(okBody, ok([{ ...head, body: 'helloworld' }]))
    const over = checkSplits(chunked('5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n'), { limits: SMALL })
    assert.deepStrictEqual(over, failed('PETREL_ERR_BODY_TOO_LARGE', [{ ...head, body: 'hello', complete: false }]))
    const single = checkSplits(chunked('B;ext\r\nhello world\r\n0\r\n\r\n'), { limits: SMALL })
    assert.deepStrictEqual(single, failed('PETREL_ERR_BODY_TOO_LARGE', [{ ...head, complete: false }]))
  })

  test('trailers count against maxHeaderCount together with the headers', () => {
    const l = limits({ ...SMALL, maxHeaderCount: 4 })
    const head = msg({
      method: 'POST',
      target: '/',
      headers: [
        ['host', 'h'],
        ['transfer-encoding', 'chunked'],
      ],
      chunked: true,
    })
    const two = checkSplits(chunked('0\r\nA: 1\r\nB: 2\r\n\r\n'), { limits: l })
    assert.deepStrictEqual(
      two,
      ok([
        {
          ...head,
          trailers: [
            ['a', '1'],
            ['b', '2'],
          ],
        },
      ]),
    )
    const three = checkSplits(chunked('0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n'), { limits: l })
    assert.deepStrictEqual(three, failed('PETREL_ERR_TOO_MANY_HEADERS', [{ ...head, complete: false }]))
  })

  test('a trailer section larger than maxHeaderBytes is 431', () => {
    const head = msg({
      method: 'POST',
      target: '/',
      headers: [
        ['host', 'h'],
        ['transfer-encoding', 'chunked'],
      ],
      chunked: true,
    })
    const base = checkSplits(chunked(`0\r\nX: ${'t'.repeat(80)}\r\n\r\n`), { limits: SMALL })
    assert.deepStrictEqual(base, failed('PETREL_ERR_HEADERS_TOO_LARGE', [{ ...head, complete: false }]))
  })

  test('a chunk extension cannot grow without end', () => {
    const head = msg({
      method: 'POST',
      target: '/',
      headers: [
        ['host', 'h'],
        ['transfer-encoding', 'chunked'],
      ],
      chunked: true,
    })
    const base = checkSplits(chunked(`5;${'e'.repeat(200)}\r\nhello\r\n0\r\n\r\n`), { limits: SMALL })
    assert.equal(base.status, 400)
    assert.deepStrictEqual(base.messages, [{ ...head, complete: false }])
  })

  test('a URI of exactly maxUriBytes whose request line overruns maxHeaderBytes is 431, not 414', () => {
    // 'GET ' + 16 bytes of target = 20 bytes = maxHeaderBytes: the URI is within its limit, the head is not.
    const l = limits({ maxHeaderBytes: 20, maxHeaderCount: 4, maxUriBytes: 16, maxBodyBytes: 10 })
    const base = checkSplits(`GET /${'a'.repeat(15)} HTTP/1.1\r\nHost: h\r\n\r\n`, { limits: l })
    assert.deepStrictEqual(base, failed('PETREL_ERR_HEADERS_TOO_LARGE'))
  })

  // With maxHeaderBytes at or below the method-length cap (32), the method scan runs past the head limit.
  test('a method running past a tiny head limit gives the same 431 at every split', () => {
    const tiny = limits({ maxHeaderBytes: 24, maxHeaderCount: 4, maxUriBytes: 16, maxBodyBytes: 10 })
    for (const input of ['A'.repeat(30) + ' / HTTP/1.1\r\nHost: h\r\n\r\n', 'B'.repeat(40) + ' / HTTP/1.1\r\nHost: h\r\n\r\n']) {
      assert.deepStrictEqual(checkSplits(input, { limits: tiny }), failed('PETREL_ERR_HEADERS_TOO_LARGE'), input)
    }
    const eight = limits({ maxHeaderBytes: 8, maxHeaderCount: 4, maxUriBytes: 16, maxBodyBytes: 10 })
    const input = '\r\nM-SEARCH * HTTP/1.0\r\n\r\n'
    assert.deepStrictEqual(checkSplits(input, { limits: eight }), failed('PETREL_ERR_HEADERS_TOO_LARGE'))
  })
})

describe('limits with the default values', () => {
  /** Split points near the interesting offsets plus a coarse sample elsewhere, for long inputs. */
  function sample(n: number, near: number[]): number[] {
    const out: number[] = []
    for (let p = 1; p < n; p += 97) out.push(p)
    for (const x of near) for (let d = -3; d <= 3; d++) out.push(x + d)
    return out.filter((p) => p > 0 && p < n)
  }
  const few: SplitCheck = { noByteAtATime: true, random: 8 }

  test('URI of exactly 8192 bytes passes, 8193 is 414', () => {
    assert.equal(DEFAULT_LIMITS.maxUriBytes, 8192)
    const target = '/' + 'u'.repeat(8191)
    const input = `GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`
    const base = checkSplits(input, {}, { ...few, points: sample(input.length, [4 + 8192]) })
    assert.deepStrictEqual(base, ok([msg({ method: 'GET', target, headers: [['host', 'h']] })]))
    const over = `GET ${target}u HTTP/1.1\r\nHost: h\r\n\r\n`
    assert.deepStrictEqual(checkSplits(over, {}, { ...few, points: sample(over.length, [4 + 8192]) }), failed('PETREL_ERR_URI_TOO_LONG'))
  })

  test('head of exactly 16384 bytes passes, 16385 is 431', () => {
    assert.equal(DEFAULT_LIMITS.maxHeaderBytes, 16384)
    const head = headOfSize(16384)
    const base = checkSplits(head, {}, { ...few, points: sample(head.length, [16384]) })
    assert.equal(base.messages.length, 1)
    assert.equal(base.messages[0]!.headers[1]![1].length, 16384 - 'GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n'.length)
    assert.deepStrictEqual({ ...base, messages: [] }, ok([]))
    const over = headOfSize(16385)
    assert.deepStrictEqual(checkSplits(over, {}, { ...few, points: sample(over.length, [16384]) }), failed('PETREL_ERR_HEADERS_TOO_LARGE'))
  })

  test('100 headers pass, 101 is 431', () => {
    assert.equal(DEFAULT_LIMITS.maxHeaderCount, 100)
    const lines = (n: number) => Array.from({ length: n - 1 }, (_, i) => `H${i}: ${i}\r\n`).join('')
    const hundred = `GET / HTTP/1.1\r\nHost: h\r\n${lines(100)}\r\n`
    const base = checkSplits(hundred, {}, { ...few, points: sample(hundred.length, []) })
    assert.equal(base.messages[0]!.headers.length, 100)
    assert.equal(base.error, null)
    const more = `GET / HTTP/1.1\r\nHost: h\r\n${lines(101)}\r\n`
    assert.deepStrictEqual(checkSplits(more, {}, { ...few, points: sample(more.length, []) }), failed('PETREL_ERR_TOO_MANY_HEADERS'))
  })

  test('Content-Length of exactly 1 MiB passes, one more is 413 without reading the body', () => {
    assert.equal(DEFAULT_LIMITS.maxBodyBytes, 1024 * 1024)
    const body = Buffer.alloc(1024 * 1024, 'b').toString('latin1')
    const input = post(`Content-Length: ${1024 * 1024}\r\n`, body)
    const t = parse(input, { splits: [10, 50, 70, 1000, 500_000, 1_000_000] })
    assert.equal(t.error, null)
    assert.equal(t.messages[0]!.body.length, 1024 * 1024)
    assert.ok(t.messages[0]!.complete)
    assert.deepStrictEqual(checkSplits(post(`Content-Length: ${1024 * 1024 + 1}\r\n`, '')), failed('PETREL_ERR_BODY_TOO_LARGE'))
  })
})

// ---------------------------------------------------------------------------------------------
// Finer points of RFC 9110/9112 where a lenient parser opens a gap

describe('RFC details', () => {
  test('Expect: 100-continue in an HTTP/1.0 request is ignored (RFC 9110 §10.1.1)', () => {
    const base = checkSplits('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx')
    assert.deepStrictEqual(
      base,
      ok([
        msg({
          method: 'POST',
          target: '/',
          version: 'HTTP/1.0',
          headers: [
            ['expect', '100-continue'],
            ['content-length', '1'],
          ],
          keepAlive: false,
          expectContinue: false,
          body: 'x',
        }),
      ]),
    )
  })

  test('a bare CR before the request line is rejected, not skipped as an empty line', () => {
    for (const input of ['\rGET / HTTP/1.1\r\nHost: h\r\n\r\n', '\r\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n']) {
      const base = checkSplits(input)
      assert.equal(base.status, 400, `${JSON.stringify(input)} gave ${base.error ?? 'no error'}`)
    }
  })

  test('a Content-Length past 2^53 - 1 is malformed, as nginx refuses one that overflows', () => {
    const big = limits({ maxBodyBytes: Number.MAX_SAFE_INTEGER })
    assert.deepStrictEqual(checkSplits(post('Content-Length: 9007199254740992\r\n', ''), { limits: big }), failed('PETREL_ERR_INVALID_CONTENT_LENGTH'))
    assert.deepStrictEqual(
      checkSplits(post('Content-Length: 99999999999999999\r\nContent-Length: 99999999999999998\r\n', ''), { limits: big }),
      failed('PETREL_ERR_INVALID_CONTENT_LENGTH'),
    )
    // Leading zeros are digits like any other: the value is what counts.
    assert.equal(checkSplits(post(`Content-Length: ${'0'.repeat(40)}2\r\n`, 'ab'), { limits: big }).messages[0]!.body, 'ab')
  })

  // transfer-coding = token *( OWS ";" OWS transfer-parameter ) (RFC 9110 §10.1.4): anything else
  // after "chunked" makes the field something other than chunked, and the request must not be
  // framed as chunked (an obfuscated Transfer-Encoding is the classic smuggling lever).
  test('a Transfer-Encoding with junk after "chunked" is not framed as chunked', () => {
    const accepted: string[] = []
    for (const te of ['chunked x', 'chunked/1', 'chunked =x', 'chunked"', 'chunked@']) {
      const base = checkSplits(post(`Transfer-Encoding: ${te}\r\n`, '0\r\n\r\n'))
      if (base.messages.length > 0 || (base.status !== 400 && base.status !== 501)) accepted.push(te)
    }
    assert.deepStrictEqual(accepted, [], 'framed as chunked')
  })
})

// ---------------------------------------------------------------------------------------------
// Pausing

/** A handler that records events and pauses after every message. */
function pausingParser(): { parser: RequestParser; events: string[] } {
  const events: string[] = []
  const handler: RequestParserHandler = {
    onHead(h) {
      events.push(`head ${h.method} ${h.target()}`)
    },
    onBody(buf, start, end) {
      events.push(`body ${buf.toString('latin1', start, end)}`)
    },
    onMessageComplete() {
      events.push('complete')
      return true
    },
  }
  return { parser: new RequestParser(handler, DEFAULT_LIMITS), events }
}

describe('pausing from onMessageComplete', () => {
  test('execute stops just past each message and continues on the rest', () => {
    const buf = bytes(PIPELINE)
    const { parser, events } = pausingParser()
    const stops: number[] = []
    let pos = 0
    while (pos < buf.length) {
      const r = parser.execute(buf, pos, buf.length)
      assert.ok(r > pos, `execute(${pos}) returned ${r}`)
      stops.push(r)
      pos = r
    }
    // Hand-counted: 28 = 'GET /a HTTP/1.1\r\n' (17) + 'Host: h\r\n' (9) + '\r\n' (2).
    assert.equal(stops[0], 28)
    // Then 51 (POST with 'abc'), 2 + 75 (stray CRLF, chunked PUT), 19 (HTTP/1.0 GET), 50 (DELETE).
    assert.equal(PIPELINE.length, 225)
    assert.deepStrictEqual(stops, [28, 79, 156, 175, 225])
    assert.deepStrictEqual(events, [
      'head GET /a',
      'complete',
      'head POST /b',
      'body abc',
      'complete',
      'head PUT /c',
      'body xyz',
      'complete',
      'head GET /d',
      'complete',
      'head DELETE /e',
      'complete',
    ])
    assert.ok(parser.idle)
  })

  test('pause points and events are the same at every split (pause after every message)', () => {
    const base = checkSplits(PIPELINE, { pause: true }, { random: 100 })
    assert.deepStrictEqual(base, ok(PIPELINE_MESSAGES, { paused: [28, 79, 156, 175, 225] }))
  })

  test('pausing only after the second message', () => {
    const base = checkSplits(PIPELINE, { pause: (i) => i === 1 })
    assert.deepStrictEqual(base, ok(PIPELINE_MESSAGES, { paused: [79] }))
  })

  test('a pause at the end of a message whose head arrived in pieces', () => {
    const { parser, events } = pausingParser()
    const a = bytes('GET /x HTTP/1.1\r\nHo')
    const b = bytes('st: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n')
    assert.equal(parser.execute(a, 0, a.length), a.length)
    assert.ok(parser.inHead)
    const r = parser.execute(b, 0, b.length)
    assert.equal(r, 9)
    assert.deepStrictEqual(events, ['head GET /x', 'complete'])
    assert.equal(parser.execute(b, r, b.length), b.length)
    assert.deepStrictEqual(events, ['head GET /x', 'complete', 'head GET /y', 'complete'])
  })
})

// ---------------------------------------------------------------------------------------------
// The head, the input buffer and the parser's state

function recordingParser(l: ParserLimits = DEFAULT_LIMITS): { parser: RequestParser; heads: RequestHead[]; completions: number } {
  const out = { parser: null as unknown as RequestParser, heads: [] as RequestHead[], completions: 0 }
  out.parser = new RequestParser(
    {
      onHead: (h) => void out.heads.push(h),
      onBody: () => {},
      onMessageComplete: () => {
        out.completions++
        return false
      },
    },
    l,
  )
  return out
}

describe('head, buffers and state', () => {
  test('header names are lower-cased in the input buffer; values and the rest are untouched', () => {
    const text = 'GET /Path HTTP/1.1\r\nHost: H\r\nX-Foo: Bar\r\nACCEPT: Text/HTML\r\n\r\n'
    const buf = Buffer.from(text, 'latin1')
    const r = recordingParser()
    assert.equal(r.parser.execute(buf, 0, buf.length), buf.length)
    assert.equal(buf.toString('latin1', 0, buf.length), 'GET /Path HTTP/1.1\r\nhost: H\r\nx-foo: Bar\r\naccept: Text/HTML\r\n\r\n')
    const h = r.heads[0]!
    assert.equal(h.header('x-foo'), 'Bar')
    assert.equal(h.header('accept'), 'Text/HTML')
    assert.equal(h.header('host'), 'H')
    assert.equal(h.header('x-missing'), undefined)
    assert.equal(h.target(), '/Path')
    assert.equal(h.method, 'GET')
  })

  test('header() gives the first of repeated fields; indexOf walks the others', () => {
    const r = recordingParser()
    const buf = bytes('GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\nX-A: 4\r\n\r\n')
    r.parser.execute(buf, 0, buf.length)
    const h = r.heads[0]!
    assert.equal(h.header('x-a'), '1')
    const seen: string[] = []
    for (let i = h.indexOf('x-a', 0); i >= 0; i = h.indexOf('x-a', i + 4)) seen.push(h.buf.toString('latin1', h.headers[i + 2]!, h.headers[i + 3]!))
    assert.deepStrictEqual(seen, ['1', '2', '4'])
    assert.equal(h.headerCount, 5)
  })

  test('a head split across reads stays valid after the next reads and the next head', () => {
    const r = recordingParser()
    const parts = ['GET /first HTTP/1.1\r\nHo', 'st: one\r\nX-K: v1\r\n\r\nGET /sec', 'ond HTTP/1.1\r\nHost: two\r\n\r\n']
    const buf = Buffer.alloc(64)
    for (const p of parts) {
      buf.fill(0)
      const n = buf.write(p, 'latin1')
      assert.equal(r.parser.execute(buf, 0, n), n)
    }
    buf.fill(0x41)
    assert.equal(r.heads.length, 2)
    assert.equal(r.heads[0]!.target(), '/first')
    assert.equal(r.heads[0]!.header('host'), 'one')
    assert.equal(r.heads[0]!.header('x-k'), 'v1')
    assert.equal(r.heads[1]!.target(), '/second')
    assert.equal(r.heads[1]!.header('host'), 'two')
  })

  test('execute honours start and end inside a larger buffer', () => {
    const r = recordingParser()
    const buf = bytes('XXXXGET /a HTTP/1.1\r\nHost: h\r\n\r\nYYYY')
    assert.equal(r.parser.execute(buf, 4, buf.length - 4), buf.length - 4)
    assert.equal(r.completions, 1)
    assert.ok(r.parser.idle)
  })

  test('idle, inHead and inBody follow the message', () => {
    const r = recordingParser()
    const p = r.parser
    assert.ok(p.idle && !p.inHead && !p.inBody)
    const feed = (s: string) => {
      const b = bytes(s)
      assert.equal(p.execute(b, 0, b.length), b.length)
    }
    feed('\r\n')
    assert.ok(p.idle)
    feed('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n')
    assert.ok(!p.idle && p.inHead && !p.inBody)
    feed('\r\nab')
    assert.ok(!p.idle && !p.inHead && p.inBody)
    feed('cd')
    assert.ok(p.idle && !p.inHead && !p.inBody)
    assert.equal(r.completions, 1)
  })

  test('an error is sticky until reset(); reset() starts a new request', () => {
    const r = recordingParser()
    const bad = bytes('GET / HTTP/1.1\r\nHost : h\r\n\r\n')
    assert.equal(r.parser.execute(bad, 0, bad.length), -1)
    assert.equal(r.parser.errorCode, 'PETREL_ERR_WHITESPACE_BEFORE_COLON')
    const good = bytes('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    assert.equal(r.parser.execute(good, 0, good.length), -1)
    r.parser.reset()
    assert.equal(r.parser.errorCode, null)
    assert.equal(r.parser.execute(good, 0, good.length), good.length)
    assert.equal(r.completions, 1)
  })

  test('reset() in the middle of a split head forgets it', () => {
    const r = recordingParser()
    const a = bytes('GET /lost HTTP/1.1\r\nHo')
    r.parser.execute(a, 0, a.length)
    r.parser.reset()
    const b = bytes('GET /kept HTTP/1.1\r\nHost: h\r\n\r\n')
    assert.equal(r.parser.execute(b, 0, b.length), b.length)
    assert.deepStrictEqual(
      r.heads.map((h) => h.target()),
      ['/kept'],
    )
  })

  test('every error code the parser produced maps to a 4xx/5xx status', () => {
    for (const c of ERROR_CASES) {
      const t = parse(c.input, c.limits === undefined ? {} : { limits: c.limits })
      assert.ok(t.error !== null && ERRORS[t.error].status >= 400, `${c.name}: ${t.error}`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Helper self-checks: the transcript must notice what it claims to notice.

describe('transcript helper', () => {
  test('pieces() cuts at sorted, distinct, in-range points', () => {
    assert.deepStrictEqual(pieces(10, [7, 3, 3, 0, 10, 12]), [
      [0, 3],
      [3, 7],
      [7, 10],
    ])
    assert.deepStrictEqual(pieces(5, []), [[0, 5]])
  })

  test('a hand-written transcript of a pipelined input, including the body pieces', () => {
    const t = parse('POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab', { splits: [40] })
    assert.deepStrictEqual(t.messages, [
      {
        method: 'POST',
        target: '/p',
        path: '/p',
        query: null,
        version: 'HTTP/1.1',
        headers: [
          ['host', 'h'],
          ['content-length', '4'],
        ],
        host: 'h',
        contentLength: 4,
        chunked: false,
        keepAlive: true,
        expectContinue: false,
        upgrade: false,
        body: 'ab',
        trailers: null,
        complete: false,
      },
    ])
    assert.equal(t.state, 'body')
  })

  test('different inputs give different transcripts', () => {
    assert.notDeepStrictEqual(parse('GET /a HTTP/1.1\r\nHost: h\r\n\r\n'), parse('GET /b HTTP/1.1\r\nHost: h\r\n\r\n'))
    assert.notDeepStrictEqual(parse(post('Content-Length: 2\r\n', 'ab')), parse(post('Content-Length: 2\r\n', 'ac')))
  })
})

// ---------------------------------------------------------------------------------------------
// Generated pipelines: a small model writes random valid requests and the transcript it expects.

function generatePipeline(rnd: () => number): { input: string; expect: Message[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const int = (n: number): number => Math.floor(rnd() * n)
  const randomCase = (x: string): string => [...x].map((ch) => (rnd() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('')
  const text = (n: number, alphabet: string): string => Array.from({ length: n }, () => alphabet[int(alphabet.length)]!).join('')
  const VISIBLE = 'abcXYZ019-_.~!$&()*+,;=:@/?\'"<>{}[]|^`\x80\xe9\xff'
  const ows = (): string => pick(['', ' ', '  ', '\t', ' \t '])
  let input = ''
  const expect: Message[] = []
  const count = 1 + int(4)
  for (let k = 0; k < count; k++) {
    input += '\r\n'.repeat(int(3) === 0 ? 1 : 0)
    const http11 = rnd() < 0.8
    const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'M-SEARCH'])
    // Paths with dot-segments, "//" and percent-encodings too; the model (modelPath) says what
    // they normalise to, and one it refuses (above "/", ".." hidden behind "%2F") is drawn again.
    const PATH_PIECES = ['a', 'bc', 'j9', '-', '_', '~', '.', '..', '%2e', '%2E%2e', '%41', '%7e', '%2F', '%20', '%C3%A9', ';', '/', '/', '/', '//']
    let path: string
    do path = '/' + Array.from({ length: int(8) }, () => pick(PATH_PIECES)).join('')
    while (!modelPath(path).startsWith('/'))
    const target = path + (rnd() < 0.3 ? '?q=' + text(int(10), 'xyz&=/.%') : '')
    const headers: Array<[string, string]> = []
    const lines: string[] = []
    const add = (name: string, value: string): void => {
      lines.push(`${randomCase(name)}:${ows()}${value}${ows()}\r\n`)
      headers.push([name.toLowerCase(), value])
    }
    if (http11 || rnd() < 0.5) add('Host', pick(['h', 'example.com', 'example.com:8080', '[::1]:80']))
    for (let i = int(5); i > 0; i--)
      add(
        pick(['X-Foo', 'Accept', 'User-Agent', 'X-Trace-Id', 'Cookie']),
        text(1 + int(12), VISIBLE) + (rnd() < 0.5 ? pick([' ', '\t', ' \t ']) + text(1 + int(6), VISIBLE) : ''),
      )
    let keepAlive = http11
    const conn = int(4)
    if (conn === 1) {
      add('Connection', 'close')
      keepAlive = false
    } else if (conn === 2) {
      add('Connection', 'keep-alive')
      keepAlive = true
    }
    const bodyKind = http11 ? int(3) : int(2)
    let body = ''
    let wire = ''
    let trailers: Array<[string, string]> | null = null
    if (bodyKind === 1) {
      body = Array.from({ length: int(300) }, () => String.fromCharCode(int(256))).join('')
      add('Content-Length', String(body.length))
      wire = body
    } else if (bodyKind === 2) {
      add('Transfer-Encoding', 'chunked')
      for (let c = int(4); c > 0; c--) {
        const chunk = Array.from({ length: 1 + int(40) }, () => String.fromCharCode(int(256))).join('')
        const size = chunk.length.toString(16)
        wire += `${rnd() < 0.5 ? size.toUpperCase() : size}${rnd() < 0.3 ? ';ext=' + text(int(5), 'abc') : ''}\r\n${chunk}\r\n`
        body += chunk
      }
      wire += '0\r\n'
      if (rnd() < 0.4) {
        trailers = []
        for (let t = 1 + int(2); t > 0; t--) {
          const value = text(1 + int(8), VISIBLE)
          wire += `${randomCase('X-Trailer')}${t}:${ows()}${value}${ows()}\r\n`
          trailers.push([`x-trailer${t}`, value])
        }
      }
      wire += '\r\n'
    }
    input += `${method} ${target} HTTP/1.${http11 ? 1 : 0}\r\n${lines.join('')}\r\n${wire}`
    expect.push(msg({ method, target, version: `HTTP/1.${http11 ? 1 : 0}`, headers, keepAlive, chunked: bodyKind === 2, body, trailers }))
  }
  return { input, expect }
}

describe('generated pipelines', () => {
  test('random valid pipelines parse to the model transcript at every split', () => {
    const rnd = random(20240611)
    for (let i = 0; i < 40; i++) {
      const { input, expect } = generatePipeline(rnd)
      const points = Array.from({ length: 40 }, () => 1 + Math.floor(rnd() * (input.length - 1)))
      const base = checkSplits(input, {}, { points, random: 30 })
      assert.deepStrictEqual(base, ok(expect), JSON.stringify(input))
      const paused = checkSplits(input, { pause: true }, { points: points.slice(0, 10), random: 10, noByteAtATime: true })
      assert.equal(paused.paused.length, expect.length)
      assert.equal(paused.paused.at(-1), input.length)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Mutations of valid inputs: whatever the parser decides, it must decide it at every split.

describe('split invariance of mutated inputs', () => {
  const corpus = OK_CASES.map((c) => c.input).filter((s) => s.length < 400)
  const interesting = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x30, 0x3a, 0x3b, 0x41, 0x7a, 0x7f, 0xff]

  function mutate(s: Buffer, rnd: () => number): Buffer {
    const i = Math.floor(rnd() * s.length)
    const kind = rnd()
    const b = interesting[Math.floor(rnd() * interesting.length)]!
    if (kind < 0.5) {
      const out = Buffer.from(s)
      out[i] = b
      return out
    }
    if (kind < 0.8) return Buffer.concat([s.subarray(0, i), Buffer.of(b), s.subarray(i)])
    return Buffer.concat([s.subarray(0, i), s.subarray(i + 1)])
  }

  const limitSets: Array<[string, ParserLimits]> = [
    ['default limits', DEFAULT_LIMITS],
    ['small limits', limits({ maxHeaderBytes: 48, maxHeaderCount: 3, maxUriBytes: 8, maxBodyBytes: 8 })],
  ]
  for (const [label, l] of limitSets) {
    test(label, () => {
      const rnd = random(label.length * 1000 + 7)
      for (const input of corpus) {
        for (let k = 0; k < 25; k++) {
          const m = mutate(bytes(input), rnd)
          const base = parse(m, { limits: l })
          const json = JSON.stringify(base)
          assert.deepStrictEqual(base.anomalies, [], `anomalies for ${JSON.stringify(m.toString('latin1'))}`)
          const splits = [...randomSplits(m.length, 6, 5, k + 1), Array.from({ length: m.length - 1 }, (_, i) => i + 1)]
          for (const s of splits) {
            const t = parse(m, { limits: l, splits: s })
            if (JSON.stringify(t) !== json) {
              assert.deepStrictEqual(t, base, `input ${JSON.stringify(m.toString('latin1'))} cut at [${s.join(', ')}]`)
            }
          }
        }
      }
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Request targets (issue 17, items 3 and 5): the forms, the host an absolute-form target names,
// and the normalised path that every route, mount, proxy and static file sees.

describe('request targets: forms, normalised path, query and host', () => {
  const head = (method: string, target: string, host = 'h'): string => `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`
  const PATHS: Array<[string, string, string | null]> = [
    ['/api/../private/secret.txt', '/private/secret.txt', null],
    ['/api/%2e%2e/private/secret.txt', '/private/secret.txt', null],
    ['/api/%2E%2E/private/secret.txt', '/private/secret.txt', null],
    ['/api/.%2e/private/secret.txt', '/private/secret.txt', null],
    ['/api/%2e./private/secret.txt', '/private/secret.txt', null],
    ['/a/./b/', '/a/b/', null],
    ['/a//b', '/a/b', null],
    ['//a///b//', '/a/b/', null],
    ['/a/b/..', '/a/', null],
    ['/a/b/.', '/a/b/', null],
    ['/a/b/%2E', '/a/b/', null],
    ['/.', '/', null],
    ['/a/..', '/', null],
    ['/%41%7e%2D%5f%2e%30', '/A~-_.0', null],
    // Only unreserved characters are decoded: the rest stay encoded, with upper-case hex
    // (RFC 3986 §6.2.2.1), so every spelling of one path is one path.
    ['/a%2fb/c%20d/%c3%A9', '/a%2Fb/c%20d/%C3%A9', null],
    ['/.well-known/x', '/.well-known/x', null],
    ['/a;b/c;d=1', '/a;b/c;d=1', null],
    ['/...', '/...', null],
    ['/..a/a..', '/..a/a..', null],
    // The query is not a path: it is kept whole, dots and all.
    ['/a/../b?x=/../..&y=%zz', '/b', 'x=/../..&y=%zz'],
    ['/?', '/', ''],
    ['/p/?q', '/p/', 'q'],
  ]
  for (const [target, path, query] of PATHS) {
    test(`GET ${target} is routed as ${path}`, () => {
      const base = checkSplits(head('GET', target), {}, { random: 8 })
      assert.deepStrictEqual(base, ok([msg({ method: 'GET', target, path, query, headers: [['host', 'h']] })]))
    })
  }

  const REFUSED: Array<[string, ErrorCode]> = [
    ['/..', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['/../secret.txt', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['/a/../../b', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['/%2e%2e/x', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['/./../x', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['/%', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/%2', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/%zz', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/%uff0e', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/a%00b', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/%00/../x', 'PETREL_ERR_INVALID_PATH_ENCODING'],
    ['/a/..%2fsecret', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/a/%2e%2e%2Fsecret', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/a/..%5csecret', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/a/..\\secret', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/api/..;/private', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/api/x%3b..', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/api/;../private', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/api/x\\..\\private', 'PETREL_ERR_AMBIGUOUS_PATH'],
    ['/sub%2f..%2f..%2fsecret', 'PETREL_ERR_AMBIGUOUS_PATH'],
  ]
  for (const [target, code] of REFUSED) {
    test(`GET ${target} is refused: ${code}`, () => {
      assert.deepStrictEqual(checkSplits(head('GET', target)), failed(code))
    })
  }

  test('absolute-form: the path ends at "?", an empty path is "/", and the authority is the host (RFC 9112 §3.2.2)', () => {
    const input =
      'GET http://h?/sub/a.txt HTTP/1.1\r\nHost: front\r\n\r\n' +
      'GET http://H.example:8080 HTTP/1.1\r\nHost: front\r\n\r\n' +
      'GET HTTPS://[::1]:443/a/../b?q HTTP/1.1\r\nHost: front\r\n\r\n' +
      'GET http://evil.example/api/x HTTP/1.0\r\n\r\n'
    assert.deepStrictEqual(
      checkSplits(input, {}, { random: 16 }),
      ok([
        msg({ method: 'GET', target: 'http://h?/sub/a.txt', path: '/', query: '/sub/a.txt', host: 'h', headers: [['host', 'front']] }),
        msg({ method: 'GET', target: 'http://H.example:8080', path: '/', query: null, host: 'H.example:8080', headers: [['host', 'front']] }),
        msg({ method: 'GET', target: 'HTTPS://[::1]:443/a/../b?q', path: '/b', query: 'q', host: '[::1]:443', headers: [['host', 'front']] }),
        msg({ method: 'GET', target: 'http://evil.example/api/x', version: 'HTTP/1.0', keepAlive: false, path: '/api/x', query: null, host: 'evil.example' }),
      ]),
    )
  })

  test('a "#" anywhere in a target is refused: a request has no fragment, and an upstream would end the path there', () => {
    for (const target of ['/api/..#', '/a#b', '/a?b#c', '/#', 'http://h/x#y']) {
      assert.equal(parse(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`).error, 'PETREL_ERR_INVALID_TARGET', target)
    }
  })

  test('absolute-form with a bad scheme or authority is refused', () => {
    const cases: Array<[string, ErrorCode]> = [
      ['ftp://h/x', 'PETREL_ERR_INVALID_TARGET'],
      ['httpx://h/x', 'PETREL_ERR_INVALID_TARGET'],
      ['http:/h/x', 'PETREL_ERR_INVALID_TARGET'],
      ['http:h/x', 'PETREL_ERR_INVALID_TARGET'],
      ['h/x', 'PETREL_ERR_INVALID_TARGET'],
      ['http', 'PETREL_ERR_INVALID_TARGET'],
      ['http:///x', 'PETREL_ERR_INVALID_HOST'],
      ['http://', 'PETREL_ERR_INVALID_HOST'],
      ['http://:80/x', 'PETREL_ERR_INVALID_HOST'],
      ['http://user:pass@h/x', 'PETREL_ERR_INVALID_HOST'],
      ['http://h:8o/x', 'PETREL_ERR_INVALID_HOST'],
      ['http://[::1/x', 'PETREL_ERR_INVALID_HOST'],
      ['http://h#f/x', 'PETREL_ERR_INVALID_TARGET'], // no '#' anywhere in a target
      ['http://h\\x/', 'PETREL_ERR_INVALID_HOST'],
      ['http://h/../x', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ]
    for (const [target, code] of cases) assert.deepStrictEqual(checkSplits(head('GET', target)), failed(code), target)
  })

  test('asterisk-form only for OPTIONS, authority-form only for CONNECT (RFC 9112 §3.2.3, §3.2.4)', () => {
    assert.deepStrictEqual(
      checkSplits(head('OPTIONS', '*') + head('CONNECT', 'example.com:443') + head('CONNECT', '[::1]:8443')),
      ok([
        msg({ method: 'OPTIONS', target: '*', path: '*', query: null, headers: [['host', 'h']] }),
        msg({ method: 'CONNECT', target: 'example.com:443', path: '', query: null, headers: [['host', 'h']] }),
        msg({ method: 'CONNECT', target: '[::1]:8443', path: '', query: null, headers: [['host', 'h']] }),
      ]),
    )
    for (const [method, target] of [
      ['GET', '*'],
      ['OPTIONS', '**'],
      ['GET', 'example.com:443'],
      ['CONNECT', 'example.com'],
      ['CONNECT', 'example.com:'],
      ['CONNECT', ':443'],
      ['CONNECT', '/x'],
      ['CONNECT', 'http://h/'],
      ['CONNECT', 'a@b:443'],
    ] as const) {
      assert.deepStrictEqual(checkSplits(head(method, target)), failed('PETREL_ERR_INVALID_TARGET'), `${method} ${target}`)
    }
  })

  test('the path of a head that arrives in pieces survives the copy into the side buffer', () => {
    const input = 'GET /a/./b/../c?x=1 HTTP/1.1\r\nHost: h\r\nX-Pad: ' + 'p'.repeat(300) + '\r\n\r\n' + 'GET http://q.example/d HTTP/1.1\r\nHost: h\r\n\r\n'
    const t = checkSplits(input, {}, { random: 24 })
    assert.deepStrictEqual(
      t.messages.map((m) => [m.path, m.query, m.host]),
      [
        ['/a/c', 'x=1', 'h'],
        ['/d', null, 'q.example'],
      ],
    )
  })
})

describe('Host values (RFC 9112 §3.2): host = uri-host [":" port]', () => {
  const withHost = (value: string): string => `GET / HTTP/1.1\r\nHost: ${value}\r\n\r\n`
  const VALID = [
    '',
    'h',
    'h:',
    'h:80',
    'example.com:8080',
    'example.com.',
    '1.2.3.4:8080',
    '[::1]',
    '[::1]:443',
    '[v1.x]',
    'xn--caf-dma.example',
    'a_b~c-d',
    "a!$&'()*+,;=b",
    'EXAMPLE.COM',
  ]
  test('valid values are accepted, an empty one too (a target without authority, §3.2)', () => {
    for (const value of VALID) {
      const t = checkSplits(withHost(value), {}, { random: 4 })
      assert.deepStrictEqual(t, ok([msg({ method: 'GET', target: '/', headers: [['host', value]] })]), JSON.stringify(value))
    }
  })
  // Stricter than RFC 3986, as nginx is: no pct-encoding in a name, no two dots in a row ("..",
  // "%2e%2e": a host that becomes a path must not climb out of it).
  const INVALID = [
    'a b',
    'a@b/c',
    'evil.com/x?',
    'a\tb, c',
    'h:80x',
    'h:-1',
    'h:8:8',
    '[::1',
    '[]',
    '[::1]x',
    '[::1]:x',
    '[::1 ]',
    'a%zz',
    'a%4',
    'a%41b',
    '%2e%2e',
    '..',
    'a..b',
    'example.com..',
    'caf\xe9',
    'a/b',
    'a?b',
    'a#b',
    'a\\b',
    '[fe80::1%25eth0]',
    'user@h',
    '"h"',
    'h:80 , h:81',
  ]
  test('invalid values are 400 PETREL_ERR_INVALID_HOST', () => {
    for (const value of INVALID) assert.deepStrictEqual(checkSplits(withHost(value)), failed('PETREL_ERR_INVALID_HOST'), JSON.stringify(value))
  })
  test('the Host field is validated even when an absolute-form target replaces it', () => {
    assert.deepStrictEqual(checkSplits('GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n'), failed('PETREL_ERR_INVALID_HOST'))
    assert.deepStrictEqual(checkSplits('GET http://a.example/ HTTP/1.1\r\nX: y\r\n\r\n'), failed('PETREL_ERR_MISSING_HOST'))
  })
})

// ---------------------------------------------------------------------------------------------
// Early rejection: a request is refused at the byte that makes it invalid, not at the end of its
// head. Each input below stops before its head ends: an error at all proves the parser did not wait.

describe('early rejection: refused before the rest of the head arrives', () => {
  const big = limits({ maxBodyBytes: Number.MAX_SAFE_INTEGER })
  const CASES: Array<[string, string, ErrorCode, ParserLimits?]> = [
    ['a Content-Length overflowing 2^53', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740993', 'PETREL_ERR_INVALID_CONTENT_LENGTH', big],
    ['an over-long Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ' + '9'.repeat(40), 'PETREL_ERR_INVALID_CONTENT_LENGTH', big],
    ['a Content-Length over maxBodyBytes', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577', 'PETREL_ERR_BODY_TOO_LARGE'],
    ['a letter in a Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a', 'PETREL_ERR_INVALID_CONTENT_LENGTH'],
    ['a digit after OWS in a Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2', 'PETREL_ERR_INVALID_CONTENT_LENGTH'],
    [
      'Content-Length after Transfer-Encoding, at its first byte',
      'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5',
      'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    [
      'Transfer-Encoding after Content-Length, at its line end',
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n',
      'PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    ['Transfer-Encoding in HTTP/1.0, at its line end', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n', 'PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED'],
    ['HTTP/2 at its major digit', 'GET / HTTP/2', 'PETREL_ERR_UNSUPPORTED_VERSION'],
    ['HTTP/1.2 at its minor digit', 'GET / HTTP/1.2', 'PETREL_ERR_UNSUPPORTED_VERSION'],
    ['a bad version byte', 'GET / HTTQ', 'PETREL_ERR_INVALID_VERSION'],
    ['a path above "/", at the end of the target', 'GET /../etc/passwd ', 'PETREL_ERR_PATH_ABOVE_ROOT'],
    ['a bad Host, at the end of its line', 'GET / HTTP/1.1\r\nHost: a b\r\n', 'PETREL_ERR_INVALID_HOST'],
  ]
  for (const [name, input, code, l] of CASES) {
    test(name, () => {
      assert.deepStrictEqual(checkSplits(input, l === undefined ? {} : { limits: l }), failed(code))
    })
  }
})
