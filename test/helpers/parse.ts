// Drives RequestParser over a byte input cut at chosen split points and returns a normalized
// transcript: strings and flags only, no offsets, so that the transcript of every split of an input
// can be compared with the transcript of the unsplit input.
//
// Each piece is copied into a buffer of its own, between padding bytes the parser must not read or
// write, and is scribbled over after execute() returns, as a socket's reused read buffer would be:
// a parser that kept a reference to bytes it had been handed would show up as a different
// transcript. Everything a handler sees is copied out inside the callback.

import assert from 'node:assert/strict'
import { RequestParser } from '../../src/protocol/http1/parser.ts'
import type { RequestParserHandler } from '../../src/protocol/http1/parser.ts'
import type { RequestHead } from '../../src/protocol/http1/request-head.ts'
import { ERRORS } from '../../src/core/errors.ts'
import type { ErrorCode } from '../../src/core/errors.ts'
import { DEFAULT_LIMITS } from '../../src/core/limits.ts'
import type { Limits } from '../../src/core/limits.ts'

export type ParserLimits = Pick<Limits, 'maxHeaderBytes' | 'maxHeaderCount' | 'maxUriBytes' | 'maxBodyBytes'>

/** One request as the handler saw it. */
export interface Message {
  method: string
  target: string
  /** The normalised path a router sees (head.normalizedPath, or the path's bytes in the target). */
  path: string
  /** The query without "?", or null. */
  query: string | null
  version: string
  /** [name, value] in arrival order, as the head holds them. */
  headers: Array<[string, string]>
  host: string | null
  contentLength: number
  chunked: boolean
  keepAlive: boolean
  expectContinue: boolean
  upgrade: boolean
  /** Decoded body bytes, latin1, all onBody pieces concatenated. */
  body: string
  trailers: Array<[string, string]> | null
  /** onMessageComplete was called for this message. */
  complete: boolean
}

export interface Transcript {
  messages: Message[]
  error: ErrorCode | null
  status: number | null
  /** Offsets into the whole input at which execute() stopped because onMessageComplete asked to. */
  paused: number[]
  /** Parser state after the input was consumed. */
  state: 'idle' | 'head' | 'body' | 'error'
  /** Violations of the handler/execute contract noticed while driving the parser. */
  anomalies: string[]
}

export interface ParseOptions {
  limits?: ParserLimits
  /** Offsets into the input where it is cut into separate execute() calls. */
  splits?: readonly number[]
  /** Return value of onMessageComplete: true for every message, or per message index. */
  pause?: boolean | ((index: number) => boolean)
}

/** Padding around each piece; the parser must neither read nor write it. */
const PAD = 4
const PAD_BYTE = 0x00
const SCRIBBLE = 0xee

export function limits(overrides: Partial<ParserLimits> = {}): ParserLimits {
  return { ...DEFAULT_LIMITS, ...overrides }
}

export function bytes(input: Buffer | string): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'latin1') : input
}

function readHead(h: RequestHead, anomalies: string[]): Message {
  const headers: Array<[string, string]> = []
  const q = h.headers
  if (q.length % 4 !== 0) anomalies.push(`head.headers has length ${q.length}, not a multiple of 4`)
  for (let i = 0; i + 3 < q.length; i += 4) {
    headers.push([h.buf.toString('latin1', q[i]!, q[i + 1]!), h.buf.toString('latin1', q[i + 2]!, q[i + 3]!)])
  }
  if (h.headerCount !== headers.length) anomalies.push(`headerCount ${h.headerCount} != ${headers.length}`)
  const host = h.hostStart >= 0 ? h.buf.toString('latin1', h.hostStart, h.hostEnd) : null
  for (const [name] of headers) {
    // header('host') is the request's host, which an absolute-form target's authority replaces.
    const first = name === 'host' ? host : headers.find((e) => e[0] === name)![1]
    const got = h.header(name.toLowerCase())
    if (got !== first) anomalies.push(`header(${JSON.stringify(name)}) gave ${JSON.stringify(got)}, expected ${JSON.stringify(first)}`)
  }
  if (h.queryStart >= 0 && (h.queryStart <= h.targetStart || h.queryStart >= h.targetEnd || h.buf[h.queryStart] !== 0x3f))
    anomalies.push(`queryStart ${h.queryStart} is not a "?" in the target`)
  if (h.hasBody !== (h.chunked || h.contentLength > 0)) anomalies.push('hasBody disagrees with chunked/contentLength')
  return {
    method: h.method,
    target: h.target(),
    path: h.pathBuffer().toString('latin1', h.pathStart(), h.pathEnd()),
    query: h.queryStart < 0 ? null : h.buf.toString('latin1', h.queryStart + 1, h.targetEnd),
    version: `HTTP/1.${h.versionMinor}`,
    headers,
    host,
    contentLength: h.contentLength,
    chunked: h.chunked,
    keepAlive: h.keepAlive,
    expectContinue: h.expectContinue,
    upgrade: h.upgrade,
    body: '',
    trailers: null,
    complete: false,
  }
}

/** Cut [0, length) at `splits` (sorted, duplicates and out-of-range points dropped). */
export function pieces(length: number, splits: readonly number[]): Array<[number, number]> {
  const points = [...new Set(splits)].filter((p) => p > 0 && p < length).sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  let from = 0
  for (const p of points) {
    out.push([from, p])
    from = p
  }
  out.push([from, length])
  return out
}

/** Run `input` through a fresh parser, cut at `opts.splits`, and return what the handler saw. */
export function parse(input: Buffer | string, opts: ParseOptions = {}): Transcript {
  const data = bytes(input)
  const t: Transcript = { messages: [], error: null, status: null, paused: [], state: 'idle', anomalies: [] }
  let current: Message | null = null
  let head: RequestHead | null = null
  let completed = 0
  let pauseRequested = false

  const handler: RequestParserHandler = {
    onHead(h) {
      if (current !== null) t.anomalies.push('onHead while the previous message is incomplete')
      head = h
      current = readHead(h, t.anomalies)
      t.messages.push(current)
    },
    onBody(buf, start, end) {
      if (current === null) {
        t.anomalies.push('onBody outside a message')
        return
      }
      if (!(start >= 0 && start <= end && end <= buf.length)) {
        t.anomalies.push(`onBody range [${start}, ${end}) outside buffer of ${buf.length}`)
        return
      }
      current.body += buf.toString('latin1', start, end)
    },
    onMessageComplete() {
      if (pauseRequested) t.anomalies.push('a message completed after the previous one asked to pause')
      if (current === null || head === null) {
        t.anomalies.push('onMessageComplete without onHead')
      } else {
        const tr = head.trailers
        if (tr !== null) {
          const pairs: Array<[string, string]> = []
          for (let i = 0; i < tr.length; i += 2) pairs.push([tr[i]!, tr[i + 1]!])
          current.trailers = pairs
        }
        current.complete = true
      }
      current = null
      head = null
      const index = completed++
      const stop = typeof opts.pause === 'function' ? opts.pause(index) : opts.pause === true
      if (stop) pauseRequested = true
      return stop
    },
  }

  const parser = new RequestParser(handler, opts.limits ?? DEFAULT_LIMITS)
  feed: for (const [from, to] of pieces(data.length, opts.splits ?? [])) {
    const len = to - from
    const buf = Buffer.alloc(len + 2 * PAD, PAD_BYTE)
    data.copy(buf, PAD, from, to)
    const original = Buffer.from(buf)
    const end = PAD + len
    let start = PAD
    for (;;) {
      pauseRequested = false
      let r: number
      try {
        r = parser.execute(buf, start, end)
      } catch (err) {
        t.anomalies.push(`execute threw on piece [${from}, ${to}): ${String(err)}`)
        break feed
      }
      if (r === -1) {
        t.error = parser.errorCode
        if (t.error === null) t.anomalies.push('execute returned -1 without an errorCode')
        else t.status = ERRORS[t.error].status
        break feed
      }
      if (r < start || r > end) {
        t.anomalies.push(`execute(${start - PAD}, ${len}) of piece [${from}, ${to}) returned ${r - PAD}`)
        break feed
      }
      if (pauseRequested) {
        t.paused.push(from + r - PAD)
      } else if (r !== end) {
        t.anomalies.push(`execute consumed ${r - start} of ${end - start} bytes of piece [${from}, ${to}) without a pause`)
        break feed
      }
      if (r === end) break
      start = r
    }
    checkUntouched(original, buf, from, t.anomalies)
    buf.fill(SCRIBBLE)
  }

  if (t.error !== null) {
    t.state = 'error'
    if (parser.execute(Buffer.from('GET / HTTP/1.1\r\n'), 0, 16) !== -1) t.anomalies.push('execute after an error did not return -1')
  } else {
    t.state = parser.idle ? 'idle' : parser.inHead ? 'head' : parser.inBody ? 'body' : 'error'
  }
  return t
}

/** The parser may lower-case header-name bytes in place, and must not change anything else. */
function checkUntouched(before: Buffer, after: Buffer, from: number, anomalies: string[]): void {
  if (before.equals(after)) return
  for (let i = 0; i < before.length; i++) {
    const a = before[i]!
    const b = after[i]!
    if (a === b) continue
    const inPiece = i >= PAD && i < before.length - PAD
    if (!inPiece || !(a >= 0x41 && a <= 0x5a && b === a + 0x20)) {
      anomalies.push(`input byte ${inPiece ? from + i - PAD : 'in padding'} changed from 0x${a.toString(16)} to 0x${b.toString(16)}`)
      return
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Expected transcripts

/**
 * A plain model of target.ts's path normalisation — strings, split and a stack, written apart
 * from the byte loop it checks: unreserved percent-encodings decoded (the rest kept, in upper-case
 * hex), "" and "." segments
 * dropped, ".." popping (an error at "/"), a segment hiding ".." behind "/", "\" or ";" (raw or
 * encoded) refused; the result ends in "/" when the path did in effect.
 */
export function modelPath(rawPath: string): string | ErrorCode {
  const raw = rawPath.split('/').slice(1)
  const out: string[] = []
  for (const rawSegment of raw) {
    let segment = ''
    for (let i = 0; i < rawSegment.length; i++) {
      if (rawSegment[i] !== '%') {
        segment += rawSegment[i]
        continue
      }
      const hex = rawSegment.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex) || parseInt(hex, 16) === 0) return 'PETREL_ERR_INVALID_PATH_ENCODING'
      const c = String.fromCharCode(parseInt(hex, 16))
      segment += /^[A-Za-z0-9._~-]$/.test(c) ? c : `%${hex.toUpperCase()}`
      i += 2
    }
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (out.length === 0) return 'PETREL_ERR_PATH_ABOVE_ROOT'
      out.pop()
      continue
    }
    const decoded = segment.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    if (decoded.split(/[/\\;]/).includes('..')) return 'PETREL_ERR_AMBIGUOUS_PATH'
    out.push(segment)
  }
  const last = raw[raw.length - 1]!.replace(/%2e/gi, '.')
  const endsInSlash = last === '' || last === '.' || last === '..'
  return `/${out.join('/')}${endsInSlash && out.length > 0 ? '/' : ''}`
}

/** The path and query a target stands for (see Message), by the model; throws on a target the model refuses. */
export function modelTarget(target: string): { path: string; query: string | null; authority: string | null } {
  const q = target.indexOf('?')
  const query = q < 0 ? null : target.slice(q + 1)
  const beforeQuery = q < 0 ? target : target.slice(0, q)
  if (target === '*') return { path: '*', query: null, authority: null }
  const absolute = /^https?:\/\/([^/?]*)(.*)$/i.exec(beforeQuery)
  let rawPath: string
  let authority: string | null = null
  if (absolute !== null) {
    authority = absolute[1]!
    rawPath = absolute[2] === '' ? '/' : absolute[2]!
  } else if (beforeQuery.startsWith('/')) {
    rawPath = beforeQuery
  } else {
    return { path: '', query: null, authority: null } // authority-form (CONNECT)
  }
  const path = modelPath(rawPath)
  if (!path.startsWith('/')) throw new Error(`the model refuses ${JSON.stringify(target)}: ${path}`)
  return { path, query, authority }
}

/** A completed message with defaults filled in; path, query, host and contentLength follow from the target and `headers`. */
export function msg(m: Partial<Message> & Pick<Message, 'method' | 'target'>): Message {
  const headers = m.headers ?? []
  const host = headers.find((h) => h[0] === 'host')
  const cl = headers.find((h) => h[0] === 'content-length')
  const modelled = m.path === undefined || m.query === undefined || m.host === undefined ? modelTarget(m.target) : null
  return {
    method: m.method,
    target: m.target,
    path: m.path ?? modelled!.path,
    query: m.query !== undefined ? m.query : modelled!.query,
    version: m.version ?? 'HTTP/1.1',
    headers,
    host: m.host !== undefined ? m.host : modelled!.authority !== null ? modelled!.authority : host === undefined ? null : host[1],
    contentLength: m.contentLength ?? (cl === undefined ? -1 : Number(cl[1].trim())),
    chunked: m.chunked ?? false,
    keepAlive: m.keepAlive ?? true,
    expectContinue: m.expectContinue ?? false,
    upgrade: m.upgrade ?? false,
    body: m.body ?? '',
    trailers: m.trailers ?? null,
    complete: m.complete ?? true,
  }
}

export function ok(messages: Message[], rest: Partial<Transcript> = {}): Transcript {
  return { messages, error: null, status: null, paused: [], state: 'idle', anomalies: [], ...rest }
}

export function failed(code: ErrorCode, messages: Message[] = []): Transcript {
  return { messages, error: code, status: ERRORS[code].status, paused: [], state: 'error', anomalies: [] }
}

// ---------------------------------------------------------------------------------------------
// Split sets and the invariance check

/** Small deterministic PRNG (mulberry32). */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function byteAtATime(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1)
}

export function randomSplits(length: number, count: number, maxCuts: number, seed: number): number[][] {
  const rnd = random(seed)
  const out: number[][] = []
  for (let k = 0; k < count; k++) {
    const cuts = 1 + Math.floor(rnd() * maxCuts)
    out.push(Array.from({ length: cuts }, () => 1 + Math.floor(rnd() * Math.max(1, length - 1))))
  }
  return out
}

export interface SplitCheck {
  /** Every 3-way split (all pairs of cut points) — quadratic, for short inputs only. */
  allThreeWay?: boolean
  /** Random splits into 2 to 6 pieces (default 24 of them). */
  random?: number
  /** Only these 2-way split points instead of all of them (for long inputs). */
  points?: readonly number[]
  /** Skip byte-at-a-time (for long inputs). */
  noByteAtATime?: boolean
}

function sameAs(base: Transcript, baseJson: string, input: Buffer, opts: ParseOptions, splits: readonly number[]): void {
  const t = parse(input, { ...opts, splits })
  if (JSON.stringify(t) !== baseJson) {
    assert.deepStrictEqual(t, base, `transcript differs when the input is cut at [${splits.join(', ')}]`)
  }
}

/**
 * Parse `input` whole, then cut at every single point, byte at a time, and as `check` asks, and
 * assert that every transcript equals the unsplit one. Returns the unsplit transcript.
 */
export function checkSplits(input: Buffer | string, opts: ParseOptions = {}, check: SplitCheck = {}): Transcript {
  const data = bytes(input)
  const n = data.length
  const base = parse(data, opts)
  const baseJson = JSON.stringify(base)
  const points = check.points ?? byteAtATime(n)
  for (const p of points) sameAs(base, baseJson, data, opts, [p])
  if (!check.noByteAtATime) sameAs(base, baseJson, data, opts, byteAtATime(n))
  if (check.allThreeWay) {
    for (let i = 1; i < n; i++) for (let j = i + 1; j < n; j++) sameAs(base, baseJson, data, opts, [i, j])
  }
  for (const s of randomSplits(n, check.random ?? 24, 5, n * 7919 + 1)) sameAs(base, baseJson, data, opts, s)
  return base
}
