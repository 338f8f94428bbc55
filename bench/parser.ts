// Parser throughput alone: ns per request for wrk's plaintext request and for a browser-like
// request with a dozen headers, one request per buffer and 16 pipelined per buffer; then the
// chunked decoder (chunked.ts) through both of its owners, a chunked upload through the request
// parser and a chunked response through the response parser.
// Run: node bench/parser.ts

import { RequestParser, type RequestParserHandler } from '../src/protocol/http1/parser.ts'
import { ResponseParser } from '../src/protocol/http1/response-parser.ts'
import { DEFAULT_LIMITS } from '../src/core/limits.ts'

const WRK = 'GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n'
const BROWSER =
  'GET /docs/index.html?lang=en HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n' +
  'Accept-Language: en-US,en;q=0.9\r\nCache-Control: max-age=0\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n' +
  'Sec-Fetch-Site: none\r\nUpgrade-Insecure-Requests: 1\r\nCookie: session=abc123; theme=dark\r\n\r\n'
/** Eight chunks of 64 bytes, one with an extension, and the last chunk: the framing is most of the work. */
const CHUNKS = `${'40\r\n' + 'x'.repeat(64) + '\r\n'}`.repeat(7) + '40;ext=1\r\n' + 'y'.repeat(64) + '\r\n0\r\n\r\n'
const CHUNKED_UPLOAD = 'POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n' + CHUNKS
const CHUNKED_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' + CHUNKS

let heads = 0
const handler: RequestParserHandler = {
  onHead() {
    heads++
  },
  onBody() {},
  onMessageComplete() {
    return false
  },
}

function measure(name: string, text: string, depth: number): void {
  const parser = new RequestParser(handler, DEFAULT_LIMITS)
  // A small ring of buffers stays in cache, as a read the kernel just wrote does. Names are
  // lower-cased in place on the first pass; parsing the same bytes again is otherwise the same work.
  const ring = Array.from({ length: 64 }, () => Buffer.from(text.repeat(depth), 'latin1'))
  const reads = Math.max(1, Math.floor(2_000_000 / depth))
  for (let i = 0; i < 100_000; i++) parser.execute(ring[i & 63]!, 0, ring[0]!.length)
  heads = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < reads; i++) parser.execute(ring[i & 63]!, 0, ring[0]!.length)
  const ns = Number(process.hrtime.bigint() - start)
  if (heads !== reads * depth) throw new Error(`parsed ${heads} of ${reads * depth}`)
  console.log(`${name.padEnd(28)} ${(ns / heads).toFixed(0).padStart(5)} ns/request  ${((text.length * heads) / (ns / 1e9) / 1e6).toFixed(0).padStart(5)} MB/s`)
}

measure('wrk plaintext, 1/read', WRK, 1)
measure('wrk plaintext, 16/read', WRK, 16)
measure('browser (13 headers), 1/read', BROWSER, 1)
measure('browser (13 headers), 16/read', BROWSER, 16)
measure('chunked upload, 1/read', CHUNKED_UPLOAD, 1)

/** The response parser over the same ring of reads, as the load generator and the proxy run it. */
function measureResponses(name: string, text: string): void {
  const parser = new ResponseParser()
  const ring = Array.from({ length: 64 }, () => Buffer.from(text, 'latin1'))
  const length = ring[0]!.length
  const parseOne = (buf: Buffer): void => {
    if (parser.execute(buf, 0, length) !== length || !parser.complete) throw new Error(`response not parsed: ${parser.error}`)
    parser.next()
  }
  for (let i = 0; i < 100_000; i++) parseOne(ring[i & 63]!)
  const reads = 1_000_000
  const start = process.hrtime.bigint()
  for (let i = 0; i < reads; i++) parseOne(ring[i & 63]!)
  const ns = Number(process.hrtime.bigint() - start)
  console.log(`${name.padEnd(28)} ${(ns / reads).toFixed(0).padStart(5)} ns/response ${((length * reads) / (ns / 1e9) / 1e6).toFixed(0).padStart(5)} MB/s`)
}

measureResponses('chunked response', CHUNKED_RESPONSE)
