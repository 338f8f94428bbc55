// A raw-byte HTTP/1.x client for tests: connect, write exact bytes (optionally split over many
// writes), and read back either a number of complete responses or everything until the server
// closes. The small response parser understands Content-Length, chunked and close-delimited
// bodies, 1xx interim responses and bodiless responses (HEAD, 204, 304).

import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export class HttpResponse {
  /** "HTTP/1.1" */
  version = ''
  status = 0
  reason = ''
  /** Lower-case name → value; repeated fields joined with ", ". */
  headers: Record<string, string> = {}
  rawHeaders: Array<[string, string]> = []
  body: Buffer = Buffer.alloc(0)
  /** Whether the body was sent with Transfer-Encoding: chunked. */
  chunked = false
  /** Trailer fields of a chunked body (lower-case names). */
  trailers: Record<string, string> = {}
  /** The exact bytes of this response. */
  raw: Buffer = Buffer.alloc(0)

  /** The body as UTF-8 text. */
  get text(): string {
    return this.body.toString('utf8')
  }
}

export class ResponseParseError extends Error {}

export interface ParseOptions {
  /** The response answers a HEAD request: it has no body whatever its headers say. */
  head?: boolean
  /** The server has closed: a response without framing ends here. */
  eof?: boolean
}

/**
 * Parse one response at `buf[start…]`. Returns null when more bytes are needed, or the response
 * and the offset just past it. Throws ResponseParseError on bytes that are not a response.
 */
export function parseResponse(buf: Buffer, start: number, options: ParseOptions = {}): { response: HttpResponse; end: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1')
  if (headEnd < 0) {
    if (buf.length - start > 64 * 1024) throw new ResponseParseError('response head longer than 64 KiB')
    if (buf.length > start && !'HTTP/'.startsWith(buf.toString('latin1', start, Math.min(buf.length, start + 5)))) {
      throw new ResponseParseError(`not a response: ${JSON.stringify(buf.toString('latin1', start, Math.min(buf.length, start + 40)))}`)
    }
    return null
  }
  const headText = buf.toString('latin1', start, headEnd)
  const lines = headText.split('\r\n')
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!)
  if (m === null) throw new ResponseParseError(`bad status line: ${JSON.stringify(lines[0])}`)
  const status = Number(m[2])
  const headers: Record<string, string> = {}
  const rawHeaders: Array<[string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) throw new ResponseParseError(`bad header line: ${JSON.stringify(line)}`)
    const name = line.slice(0, colon)
    const value = line.slice(colon + 1).trim()
    rawHeaders.push([name, value])
    const lower = name.toLowerCase()
    headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`
  }
  let pos = headEnd + 4
  const make = (body: Buffer, chunked: boolean, trailers: Record<string, string>, end: number) => ({
    response: Object.assign(new HttpResponse(), {
      version: m[1]!,
      status,
      reason: m[3]!,
      headers,
      rawHeaders,
      body,
      chunked,
      trailers,
      raw: buf.subarray(start, end),
    }),
    end,
  })
  const noBody = options.head === true || (status >= 100 && status < 200) || status === 204 || status === 304
  if (noBody) return make(Buffer.alloc(0), false, {}, pos)
  const te = headers['transfer-encoding']
  if (te !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new ResponseParseError(`unsupported transfer-encoding ${te}`)
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos, 'latin1')
      if (lineEnd < 0) return null
      const sizeText = buf.toString('latin1', pos, lineEnd).split(';')[0]!.trim()
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new ResponseParseError(`bad chunk size line ${JSON.stringify(buf.toString('latin1', pos, lineEnd))}`)
      const size = parseInt(sizeText, 16)
      pos = lineEnd + 2
      if (size === 0) break
      if (buf.length < pos + size + 2) return null
      parts.push(buf.subarray(pos, pos + size))
      if (buf[pos + size] !== 0x0d || buf[pos + size + 1] !== 0x0a) throw new ResponseParseError('chunk data not followed by CRLF')
      pos += size + 2
    }
    const trailers: Record<string, string> = {}
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos, 'latin1')
      if (lineEnd < 0) return null
      const line = buf.toString('latin1', pos, lineEnd)
      pos = lineEnd + 2
      if (line === '') break
      const colon = line.indexOf(':')
      trailers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    return make(Buffer.concat(parts), true, trailers, pos)
  }
  const cl = headers['content-length']
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new ResponseParseError(`bad content-length ${cl}`)
    const length = Number(cl)
    if (buf.length < pos + length) return null
    return make(buf.subarray(pos, pos + length), false, {}, pos + length)
  }
  // Close-delimited.
  if (options.eof !== true) return null
  return make(buf.subarray(pos), false, {}, buf.length)
}

/** Parse every complete response in `buf`; `head[i]` says whether final response i answers a HEAD. */
export function parseAll(buf: Buffer, options: { head?: boolean[] | boolean; eof?: boolean } = {}): { responses: HttpResponse[]; end: number } {
  const responses: HttpResponse[] = []
  let pos = 0
  let finals = 0
  while (pos < buf.length) {
    const head = Array.isArray(options.head) ? options.head[finals] === true : options.head === true
    const r = parseResponse(buf, pos, { head, eof: options.eof })
    if (r === null) break
    responses.push(r.response)
    if (r.response.status >= 200) finals++
    pos = r.end
  }
  return { responses, end: pos }
}

export interface ReadOptions {
  /** Give up after this long (ms). Default 5000. */
  timeoutMs?: number
  /** Which final responses answer HEAD requests (index among final responses read by this call), or all. */
  head?: boolean[] | boolean
  /** Also return 1xx interim responses (default false: they are skipped but recorded in `interim`). */
  includeInterim?: boolean
}

export interface ConnectOptions {
  host?: string
  /** Set the socket's receive buffer small and pause reading: for clients that do not read. */
  paused?: boolean
}

/**
 * One raw TCP connection. All received bytes are kept in `received`; responses are parsed from a
 * cursor that advances as they are read, so interleaving writes and reads works.
 */
export class RawClient {
  readonly socket: net.Socket
  private store: Buffer = Buffer.allocUnsafe(64 * 1024)
  private length = 0
  /** Number of 'data' events (socket reads) so far. */
  reads = 0
  /** The server half-closed (FIN received). */
  ended = false
  /** The socket is closed. */
  closed = false
  /** Socket error, e.g. ECONNRESET. */
  error: NodeJS.ErrnoException | null = null
  /** 1xx responses skipped by readResponses(). */
  interim: HttpResponse[] = []
  /** Offset in `received` up to which responses have been parsed. */
  cursor = 0
  readonly connectedAt: number
  /** performance.now() of the socket's 'close' event, or -1. */
  closedAt = -1
  /** performance.now() of the first sign that the connection is over (FIN, error or close), or -1. */
  closedByServerAt = -1
  private waiters: Array<() => void> = []

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.connectedAt = performance.now()
    socket.on('data', (chunk: Buffer) => {
      this.reads++
      if (this.length + chunk.length > this.store.length) {
        // Grow by doubling, so that receiving n bytes costs O(n) copying. Views handed out
        // earlier keep pointing at the old store, whose bytes never change.
        const grown = Buffer.allocUnsafe(Math.max(this.store.length * 2, this.length + chunk.length))
        this.store.copy(grown, 0, 0, this.length)
        this.store = grown
      }
      chunk.copy(this.store, this.length)
      this.length += chunk.length
      this.wake()
    })
    const over = (): void => {
      if (this.closedByServerAt < 0) this.closedByServerAt = performance.now()
    }
    socket.on('end', () => {
      this.ended = true
      over()
      this.wake()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err
      over()
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.closedAt = performance.now()
      over()
      this.wake()
    })
  }

  static connect(port: number, options: ConnectOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: options.host ?? '127.0.0.1', allowHalfOpen: false, noDelay: true })
      if (options.paused === true) socket.pause()
      const client = new RawClient(socket)
      const onError = (err: Error): void => reject(err)
      socket.once('error', onError)
      socket.once('connect', () => {
        socket.off('error', onError)
        resolve(client)
      })
    })
  }

  /** The server closed the connection (FIN or reset). */
  get closedByServer(): boolean {
    return this.ended || this.closed || this.error !== null
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Every byte received so far (a view; later bytes are not in it). */
  get received(): Buffer {
    return this.store.subarray(0, this.length)
  }

  /** Number of bytes received so far. */
  get bytesReceived(): number {
    return this.length
  }

  private gather(): Buffer {
    return this.received
  }

  /** Wait until `predicate` holds (checked on every socket event) or the deadline passes. */
  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (!predicate()) {
      const left = deadline - performance.now()
      if (left <= 0)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; received ${JSON.stringify(this.gather().toString('latin1').slice(0, 600))}${this.closedByServer ? ' (closed)' : ''}`,
        )
      await new Promise<void>((resolve) => {
        // Socket events wake us at once; a short poll covers predicates on other state.
        const t = setTimeout(resolve, Math.min(left, 10))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) return reject(new Error('socket destroyed'))
      this.socket.write(data, (err) => (err ? reject(err) : resolve()))
    })
  }

  /** Write `data` in pieces of `chunkSize` bytes, waiting `delayMs` between them. */
  async writeSplit(data: string | Buffer, chunkSize = 1, delayMs = 0): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
    for (let i = 0; i < buf.length; i += chunkSize) {
      await this.write(buf.subarray(i, i + chunkSize))
      if (delayMs > 0) await sleep(delayMs)
      else await new Promise<void>((r) => setImmediate(r))
    }
  }

  /** Read `n` final responses (1xx are skipped into `interim` unless includeInterim). */
  async readResponses(n: number, options: ReadOptions = {}): Promise<HttpResponse[]> {
    const out: HttpResponse[] = []
    let finals = 0
    const step = (): boolean => {
      const buf = this.gather()
      const eof = this.closedByServer
      while (finals < n) {
        const head = Array.isArray(options.head) ? options.head[finals] === true : options.head === true
        const r = parseResponse(buf, this.cursor, { head, eof })
        if (r === null) break
        this.cursor = r.end
        if (r.response.status < 200) {
          this.interim.push(r.response)
          if (options.includeInterim === true) out.push(r.response)
          continue
        }
        out.push(r.response)
        finals++
      }
      if (finals < n && eof) {
        throw new Error(
          `connection closed after ${finals} of ${n} responses; unparsed: ${JSON.stringify(buf.toString('latin1', this.cursor, this.cursor + 300))}`,
        )
      }
      return finals >= n
    }
    await this.until(step, options.timeoutMs ?? 5000, `${n} response(s)`)
    return out
  }

  async readResponse(options: ReadOptions = {}): Promise<HttpResponse> {
    return (await this.readResponses(1, options))[0]!
  }

  /** Wait for the server to close (FIN or reset) and return everything received. */
  async readUntilClose(timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.closedByServer, timeoutMs, 'the server to close')
    // Give a FIN-then-close a moment to deliver anything still in flight.
    if (!this.closed) await this.until(() => this.closed, 1000, 'close').catch(() => {})
    return this.gather()
  }

  /** Parse all responses received so far (from the start). */
  allResponses(options: { head?: boolean[] | boolean } = {}): HttpResponse[] {
    return parseAll(this.gather(), { ...options, eof: this.closedByServer }).responses
  }

  /** Resolves true when the server closes within `timeoutMs`, false otherwise. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    try {
      await this.until(() => this.closedByServer, timeoutMs, 'close')
      return true
    } catch {
      return false
    }
  }

  /** Bytes received and not yet parsed as a response. */
  unparsed(): Buffer {
    return this.gather().subarray(this.cursor)
  }

  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Connect, send `data`, and read until the server closes; returns the client for inspection. */
export async function exchange(port: number, data: string | Buffer, timeoutMs = 5000): Promise<{ client: RawClient; responses: HttpResponse[]; raw: Buffer }> {
  const client = await RawClient.connect(port)
  try {
    await client.write(data).catch(() => {})
    const raw = await client.readUntilClose(timeoutMs)
    return { client, responses: parseAll(raw, { eof: true }).responses, raw }
  } finally {
    client.destroy()
  }
}

/** Build a request: `req('GET', '/x', { Host: 'a' }, body)`; Host defaults to "t" for HTTP/1.1. */
export function req(method: string, target: string, headers: Record<string, string | number> = {}, body?: string | Buffer, version = '1.1'): Buffer {
  let head = `${method} ${target} HTTP/${version}\r\n`
  const names = Object.keys(headers).map((k) => k.toLowerCase())
  if (version === '1.1' && !names.includes('host')) head += 'Host: t\r\n'
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  if (body !== undefined && !names.includes('content-length') && !names.includes('transfer-encoding')) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`
  head += '\r\n'
  return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), typeof body === 'string' ? Buffer.from(body) : body])
}

/** Encode `parts` as a chunked body (with the last chunk and optional trailers). */
export function chunked(parts: Array<string | Buffer>, trailers = ''): Buffer {
  const out: Buffer[] = []
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p
    if (b.length === 0) continue
    out.push(Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n'))
  }
  out.push(Buffer.from(`0\r\n${trailers}\r\n`))
  return Buffer.concat(out)
}

/** A port free on TCP right now (bound at 0 and released): the benchmarks' helper. */
export { freePort } from '../../bench/lib/ports.ts'
