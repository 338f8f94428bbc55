// Fuzzing the two HTTP/1.1 parsers (issue 17, "Also"): random valid messages from small models,
// and mutations of them, fed to RequestParser and ResponseParser whole and cut at random points.
// Whatever a parser decides about an input — its events, its error — it must decide at every cut,
// and it must never throw. Valid requests must also parse to the model's transcript, and every
// path a request parser hands to the router must be normal (normalising it again changes nothing)
// and agree with the plain model of normalisation in helpers/parse.ts.
//
// Bounded: each test stops after its case budget or its time budget, whichever comes first. The
// seed is random per run and printed with any failure; PETREL_FUZZ_SEED=N runs that case first.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { ERRORS } from '../src/core/errors.ts'
import { ResponseParser, type ResponseHandler } from '../src/protocol/http1/response-parser.ts'
import { normalizePath } from '../src/protocol/http1/target.ts'
import { byteAtATime, limits, modelPath, modelTarget, msg, ok, parse, random, randomSplits } from './helpers/parse.ts'
import type { Message, ParserLimits, Transcript } from './helpers/parse.ts'

const BASE_SEED = process.env.PETREL_FUZZ_SEED !== undefined ? Number(process.env.PETREL_FUZZ_SEED) : Math.floor(Math.random() * 0x7fffffff)
/** Per parser: at most this many cases, and no more cases once this much time has gone. */
const MAX_CASES = 4000
const BUDGET_MS = 8000

/** Run `check(seed)` for case seeds BASE_SEED, BASE_SEED + 1, … within the budgets; a failure names its seed. */
function fuzz(name: string, check: (seed: number) => void): number {
  const deadline = performance.now() + BUDGET_MS
  let cases = 0
  for (; cases < MAX_CASES && performance.now() < deadline; cases++) {
    const seed = (BASE_SEED + cases) | 0
    try {
      check(seed)
    } catch (err) {
      const message = `${name}: case seed ${seed} failed (replay with PETREL_FUZZ_SEED=${seed}): ${(err as Error).message}`
      console.error(message)
      throw Object.assign(err as Error, { message })
    }
  }
  return cases
}

class Draw {
  readonly rnd: () => number
  constructor(seed: number) {
    this.rnd = random(seed)
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n)
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!
  }
  chance(p: number): boolean {
    return this.rnd() < p
  }
  text(n: number, alphabet: string): string {
    let s = ''
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)]!
    return s
  }
  bytes(n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(256))
    return s
  }
  randomCase(s: string): string {
    return [...s].map((c) => (this.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('')
  }
}

const VISIBLE = 'abcXYZ019-_.~!$&()*+,;=:@/?\'"<>{}[]|^`\x80\xe9\xff'
const HOSTS = ['h', 'example.com', 'EXAMPLE.com:8080', '127.0.0.1', '127.0.0.1:3000', '[::1]', '[::1]:443', 'a_b~c', 'xn--caf-dma.example', '']
const PATH_PIECES = [
  'a',
  'bc',
  'j9',
  '-',
  '_',
  '~',
  '.',
  '..',
  '%2e',
  '%2E%2e',
  '%41',
  '%7e',
  '%2F',
  '%5c',
  '%20',
  '%C3%A9',
  ';',
  '=',
  '\xe9',
  '/',
  '/',
  '/',
  '//',
]

/** A path the model accepts: dot-segments, "//" and percent-encodings included. */
function drawPath(d: Draw): string {
  for (;;) {
    const path = '/' + Array.from({ length: d.int(8) }, () => d.pick(PATH_PIECES)).join('')
    if (modelPath(path).startsWith('/')) return path
  }
}

/** One valid request: its bytes and what the parser must report for it. */
function drawRequest(d: Draw): { wire: string; expect: Message } {
  const http11 = d.chance(0.85)
  const version = `HTTP/1.${http11 ? 1 : 0}`
  const form = d.int(10)
  let method = d.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'M-SEARCH'])
  let target: string
  let host: string | undefined
  const query = d.chance(0.3) ? `?${d.text(d.int(12), 'xyz&=/.%?')}` : ''
  if (form === 0) {
    method = 'OPTIONS'
    target = '*'
  } else if (form === 1) {
    method = 'CONNECT'
    target = `${d.pick(['example.com', '10.0.0.1', '[::1]', 'a-b.test'])}:${d.pick(['443', '8080', '1'])}`
  } else if (form <= 3) {
    host = d.pick(HOSTS.filter((h) => h !== ''))
    const path = d.chance(0.2) ? '' : drawPath(d)
    target = `${d.randomCase(d.pick(['http', 'https']))}://${host}${path}${query}`
  } else {
    target = drawPath(d) + query
  }
  const headers: Array<[string, string]> = []
  const lines: string[] = []
  const ows = (): string => d.pick(['', ' ', '  ', '\t', ' \t '])
  const add = (name: string, value: string): void => {
    lines.push(`${d.randomCase(name)}:${ows()}${value}${ows()}\r\n`)
    headers.push([name.toLowerCase(), value])
  }
  if (http11 || d.chance(0.5)) add('Host', d.pick(HOSTS))
  for (let i = d.int(4); i > 0; i--) add(d.pick(['X-Foo', 'Accept', 'User-Agent', 'Cookie']), d.text(1 + d.int(10), VISIBLE))
  let keepAlive = http11
  const connection = d.int(4)
  if (connection === 1) {
    add('Connection', 'close')
    keepAlive = false
  } else if (connection === 2) {
    add('Connection', 'keep-alive')
    keepAlive = true
  }
  const bodyKind = method === 'CONNECT' ? 0 : http11 ? d.int(3) : d.int(2)
  let body = ''
  let wire = ''
  let trailers: Array<[string, string]> | null = null
  if (bodyKind === 1) {
    body = d.bytes(d.int(60))
    add('Content-Length', `${d.chance(0.1) ? '000' : ''}${body.length}`)
    wire = body
  } else if (bodyKind === 2) {
    add('Transfer-Encoding', d.pick(['chunked', 'Chunked', 'chunked;q=1']))
    for (let c = d.int(4); c > 0; c--) {
      const chunk = d.bytes(1 + d.int(20))
      const size = chunk.length.toString(16)
      wire += `${d.chance(0.5) ? size.toUpperCase() : size}${d.chance(0.3) ? `${d.pick(['', ' '])};ext=${d.text(d.int(5), 'abc')}` : ''}\r\n${chunk}\r\n`
      body += chunk
    }
    wire += '0\r\n'
    if (d.chance(0.4)) {
      trailers = []
      for (let t = 1 + d.int(2); t > 0; t--) {
        const value = d.text(1 + d.int(8), VISIBLE)
        wire += `X-Trailer${t}:${ows()}${value}${ows()}\r\n`
        trailers.push([`x-trailer${t}`, value])
      }
    }
    wire += '\r\n'
  }
  const leading = d.chance(0.1) ? '\r\n' : ''
  const expect = msg({
    method,
    target,
    version,
    headers,
    keepAlive,
    chunked: bodyKind === 2,
    body,
    trailers,
    ...(host !== undefined ? { host } : {}),
  })
  return { wire: `${leading}${method} ${target} ${version}\r\n${lines.join('')}\r\n${wire}`, expect }
}

/** Bytes and fragments that tend to matter to an HTTP parser. */
const INTERESTING_BYTES = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2c, 0x2e, 0x2f, 0x30, 0x3a, 0x3b, 0x3f, 0x40, 0x41, 0x5c, 0x7f, 0x80, 0xff]
const INTERESTING_TEXT = [
  '\r\n',
  '\r\n\r\n',
  ' ',
  ':',
  'Content-Length: 5\r\n',
  'Content-Length: 99999999999999999999',
  'Transfer-Encoding: chunked\r\n',
  'Host: x\r\n',
  'Host: a b',
  'HTTP/1.1',
  'HTTP/2',
  '/..',
  '%2e%2e',
  '%2f',
  '%',
  '//',
  'http://',
  '[',
  ']',
  '@',
  '0\r\n\r\n',
  'ffffffffffffff\r\n',
  ';',
  '\\',
]

function mutate(input: Buffer, d: Draw): Buffer {
  let out = input
  for (let n = 1 + d.int(3); n > 0; n--) {
    const at = d.int(out.length + 1)
    switch (d.int(6)) {
      case 0: {
        if (out.length === 0) break
        const copy = Buffer.from(out)
        copy[Math.min(at, out.length - 1)] = d.pick(INTERESTING_BYTES)
        out = copy
        break
      }
      case 1:
        out = Buffer.concat([out.subarray(0, at), Buffer.of(d.chance(0.5) ? d.pick(INTERESTING_BYTES) : d.int(256)), out.subarray(at)])
        break
      case 2:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + d.int(4)))])
        break
      case 3:
        out = Buffer.concat([out.subarray(0, at), Buffer.from(d.pick(INTERESTING_TEXT), 'latin1'), out.subarray(at)])
        break
      case 4: {
        const from = d.int(out.length + 1)
        const length = d.int(16)
        out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + length), out.subarray(at)])
        break
      }
      default:
        out = out.subarray(0, at)
    }
  }
  return out
}

/** What every transcript must satisfy, whatever the input. */
function checkTranscript(t: Transcript, input: Buffer): void {
  assert.deepStrictEqual(t.anomalies, [], `anomalies for ${JSON.stringify(input.toString('latin1'))}`)
  if (t.error !== null) {
    assert.ok(t.error in ERRORS, `unknown error code ${t.error}`)
    assert.ok(ERRORS[t.error].status >= 400 && ERRORS[t.error].status < 600, `${t.error} is not an HTTP error`)
  }
  for (const m of t.messages) {
    if (m.path === '' || m.path === '*') continue
    assert.ok(m.path.startsWith('/'), `path ${JSON.stringify(m.path)} of ${JSON.stringify(m.target)}`)
    const again = normalizePath(Buffer.from(m.path, 'latin1'), 0, m.path.length)
    assert.ok(
      typeof again !== 'string' && again.toString('latin1') === m.path,
      `path ${JSON.stringify(m.path)} of ${JSON.stringify(m.target)} is not normal: ${String(again)}`,
    )
    assert.equal(m.path, modelTarget(m.target).path, `the parser and the model disagree on ${JSON.stringify(m.target)}`)
  }
}

/** The transcript of `input` whole; asserts the same at random cuts and (short inputs) byte at a time. */
function sameAtEveryCut(input: Buffer, seed: number, l: ParserLimits, pause: boolean): Transcript {
  const base = parse(input, { limits: l, pause })
  const json = JSON.stringify(base)
  const cuts = randomSplits(input.length, 6, 6, seed)
  if (input.length <= 400) cuts.push(byteAtATime(input.length))
  for (const splits of cuts) {
    const t = parse(input, { limits: l, pause, splits })
    if (JSON.stringify(t) !== json) assert.deepStrictEqual(t, base, `input ${JSON.stringify(input.toString('latin1'))} cut at [${splits.join(', ')}]`)
  }
  return base
}

const SMALL_LIMITS = limits({ maxHeaderBytes: 160, maxHeaderCount: 5, maxUriBytes: 40, maxBodyBytes: 100 })

describe('request parser fuzz', () => {
  test('valid pipelines parse to the model at every cut; mutations of them give the same answer at every cut and never throw', (t) => {
    const cases = fuzz('request parser', (seed) => {
      const d = new Draw(seed)
      const drawn = Array.from({ length: 1 + d.int(3) }, () => drawRequest(d))
      const input = Buffer.from(drawn.map((r) => r.wire).join(''), 'latin1')
      const valid = sameAtEveryCut(input, seed, limits(), false)
      checkTranscript(valid, input)
      assert.deepStrictEqual(valid, ok(drawn.map((r) => r.expect)), `valid input ${JSON.stringify(input.toString('latin1'))}`)
      const mutated = mutate(input, d)
      const l = d.chance(0.2) ? SMALL_LIMITS : limits()
      checkTranscript(sameAtEveryCut(mutated, seed, l, d.chance(0.3)), mutated)
    })
    t.diagnostic(`${cases} cases from seed ${BASE_SEED}`)
    assert.ok(cases > 0)
  })
})

// ---------------------------------------------------------------------------------------------
// Response parser

interface ResponseTranscript {
  /** Per final response: its fields, head, body, status and keep-alive, in order. */
  events: string[]
  error: string | null
  /** What finish() said at the end of the input. */
  finished: boolean
}

/** Feed `pieces` to a ResponseParser with a handler; every event is written down as text. */
function runResponses(pieces: readonly Buffer[], headRequests: boolean): ResponseTranscript {
  const events: string[] = []
  let body = ''
  const handler: ResponseHandler = {
    onField(buf, nameStart, nameEnd, valueStart, valueEnd) {
      events.push(`field ${buf.toString('latin1', nameStart, nameEnd)}: ${buf.toString('latin1', valueStart, valueEnd)}`)
    },
    onHead(status, bodyLength) {
      events.push(`head ${status} ${bodyLength}`)
    },
    onBody(buf, start, end) {
      if (!(start >= 0 && start <= end && end <= buf.length)) throw new Error(`onBody range [${start}, ${end}) outside a buffer of ${buf.length}`)
      body += buf.toString('latin1', start, end)
    },
  }
  const parser = new ResponseParser({ handler, headRequests, maxHeadBytes: 2048 })
  const done = (): void => {
    events.push(`done ${parser.status} ${parser.keepAlive ? 'keep-alive' : 'close'} body ${JSON.stringify(body)}`)
    body = ''
  }
  outer: for (const piece of pieces) {
    let pos = 0
    while (pos < piece.length) {
      const next = parser.execute(piece, pos, piece.length)
      if (next < pos || next > piece.length) throw new Error(`execute returned ${next} for [${pos}, ${piece.length})`)
      if (parser.error !== null) break outer
      if (parser.complete) {
        done()
        parser.next()
      } else if (next === pos) {
        throw new Error(`execute made no progress at ${pos} without completing or failing`)
      }
      pos = next
    }
  }
  let finished = false
  if (parser.error === null && parser.finish()) {
    finished = true
    done()
  }
  return { events, error: parser.error, finished }
}

function cutResponses(input: Buffer, splits: readonly number[]): Buffer[] {
  const points = [...new Set(splits)].filter((p) => p > 0 && p < input.length).sort((a, b) => a - b)
  const out: Buffer[] = []
  let from = 0
  for (const p of points) {
    // A copy per piece, as a socket read would give: the parser must not keep views into it.
    out.push(Buffer.from(input.subarray(from, p)))
    from = p
  }
  out.push(Buffer.from(input.subarray(from)))
  return out
}

/** One valid response: its bytes and the events it must give. The last may run to the close. */
function drawResponse(d: Draw, last: boolean, headRequests: boolean): { wire: string; events: string[]; toClose: boolean } {
  let wire = ''
  const events: string[] = []
  // Interim responses are skipped: no events.
  for (let i = d.int(3) === 0 ? 1 + d.int(2) : 0; i > 0; i--)
    wire += `HTTP/1.1 ${d.pick(['100 Continue', '103 Early Hints'])}\r\n${d.chance(0.5) ? 'Link: </a>; rel=preload\r\n' : ''}\r\n`
  const http11 = d.chance(0.85)
  const status = d.pick([200, 200, 201, 204, 301, 304, 404, 500])
  wire += `HTTP/1.${http11 ? 1 : 0} ${status}${d.pick([' OK', ' Whatever Reason', ' ', ''])}\r\n`
  const add = (name: string, value: string): void => {
    wire += `${name}:${d.pick(['', ' ', '\t'])}${value}${d.pick(['', ' '])}\r\n`
    events.push(`field ${name}: ${value}`)
  }
  // Values as the parser reports them: without the whitespace around them.
  for (let i = d.int(4); i > 0; i--) add(d.pick(['X-A', 'Server', 'Cache-Control', 'Set-Cookie']), `v${d.text(d.int(10), 'abc 019=;,/\x80')}v`)
  let keepAlive = http11
  if (d.chance(0.2)) {
    add('Connection', 'close')
    keepAlive = false
  } else if (!http11 && d.chance(0.5)) {
    add('Connection', 'keep-alive')
    keepAlive = true
  }
  const bodiless = headRequests || status === 204 || status === 304
  const framing = last ? d.int(3) : d.int(2) // 0: length, 1: chunked (1.1 only), 2: to the close
  let body = ''
  let bodyWire = ''
  let bodyLength = -1
  let toClose = false
  if (framing === 1 && http11) {
    add('Transfer-Encoding', 'chunked')
    for (let c = d.int(4); c > 0; c--) {
      const chunk = d.bytes(1 + d.int(30))
      bodyWire += `${chunk.length.toString(16)}${d.chance(0.2) ? ';x=1' : ''}\r\n${chunk}\r\n`
      body += chunk
    }
    bodyWire += `0\r\n${d.chance(0.3) ? 'X-T: 1\r\n' : ''}\r\n`
  } else if (framing === 2 && !bodiless) {
    body = d.bytes(d.int(100))
    bodyWire = body
    keepAlive = false
    toClose = true
  } else {
    body = d.bytes(d.int(100))
    add('Content-Length', String(body.length))
    bodyWire = body
    bodyLength = body.length
  }
  wire += '\r\n'
  if (bodiless) {
    events.push(`head ${status} -1`)
    events.push(`done ${status} ${keepAlive ? 'keep-alive' : 'close'} body ""`)
    return { wire, events, toClose: false }
  }
  events.push(`head ${status} ${bodyLength}`)
  events.push(`done ${status} ${keepAlive ? 'keep-alive' : 'close'} body ${JSON.stringify(body)}`)
  return { wire: wire + bodyWire, events, toClose }
}

function sameResponsesAtEveryCut(input: Buffer, seed: number, headRequests: boolean): ResponseTranscript {
  const base = runResponses([Buffer.from(input)], headRequests)
  const json = JSON.stringify(base)
  const cuts = randomSplits(input.length, 6, 6, seed)
  if (input.length <= 700) cuts.push(byteAtATime(input.length))
  for (const splits of cuts) {
    const t = runResponses(cutResponses(input, splits), headRequests)
    if (JSON.stringify(t) !== json) assert.deepStrictEqual(t, base, `input ${JSON.stringify(input.toString('latin1'))} cut at [${splits.join(', ')}]`)
  }
  return base
}

describe('response parser fuzz', () => {
  test('valid response streams parse to the model at every cut; mutations give the same answer at every cut and never throw', (t) => {
    const cases = fuzz('response parser', (seed) => {
      const d = new Draw(seed)
      const headRequests = d.chance(0.15)
      const count = 1 + d.int(3)
      const drawn = Array.from({ length: count }, (_, i) => drawResponse(d, i === count - 1, headRequests))
      // A response delimited by the close ends the stream: nothing after it is a response.
      const input = Buffer.from(drawn.map((r) => r.wire).join(''), 'latin1')
      const valid = sameResponsesAtEveryCut(input, seed, headRequests)
      assert.deepStrictEqual(
        valid,
        { events: drawn.flatMap((r) => r.events), error: null, finished: drawn.at(-1)!.toClose },
        `valid input ${JSON.stringify(input.toString('latin1'))}`,
      )
      sameResponsesAtEveryCut(mutate(input, d), seed, d.chance(0.15))
    })
    t.diagnostic(`${cases} cases from seed ${BASE_SEED}`)
    assert.ok(cases > 0)
  })
})
