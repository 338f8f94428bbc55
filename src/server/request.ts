// The request a handler sees. It wraps the parser's RequestHead and turns offsets into strings
// only when the handler reads them: a handler that looks at nothing but the path allocates
// nothing else.

import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import { PetrelError } from '../core/errors.ts'
import type { RequestHead } from '../protocol/http1/request-head.ts'

/** Where the body is going: not asked for yet, collected for body(), streamed, or dropped. */
const BodyMode = { UNREAD: 0, BUFFER: 1, STREAM: 2, DISCARD: 3 } as const
type BodyMode = (typeof BodyMode)[keyof typeof BodyMode]

/** What a Request needs from its connection, kept small so requests can be made without sockets. */
export interface BodySource {
  /** The handler wants the body: send 100 Continue if the client waits for it. */
  bodyWanted(req: Request): void
  /** The body stream is full: stop reading the socket until resumeBody(). */
  pauseBody(): void
  resumeBody(): void
  readonly remoteAddress: string | undefined
  readonly remotePort: number | undefined
  /** The connection is TLS (HTTPS). */
  readonly secure: boolean
}

export class Request {
  readonly head: RequestHead
  readonly method: string
  /** Route parameters, percent-decoded. */
  params: Record<string, string>
  private readonly source: BodySource
  private urlCache: string | null = null
  private pathCache: string | null = null
  /** Set by rewrite(): the path no longer comes from the target. */
  private rewritten = false
  private queryCache: URLSearchParams | null = null
  private headersCache: Record<string, string> | null = null
  private bodyMode: BodyMode = BodyMode.UNREAD
  private chunks: Buffer[] | null = null
  private bodyLength = 0
  private bodyComplete = false
  private bodyError: Error | null = null
  private bodyStream: Readable | null = null
  private waiters: Array<{ resolve: (b: Buffer) => void; reject: (e: Error) => void }> | null = null

  constructor(head: RequestHead, source: BodySource) {
    this.head = head
    this.method = head.method
    this.source = source
    this.params = EMPTY_PARAMS
    if (!head.hasBody) this.bodyComplete = true
  }

  get httpVersion(): string {
    if (this.head.versionMajor === 2) return '2.0'
    return this.head.versionMinor === 1 ? '1.1' : '1.0'
  }

  get remoteAddress(): string | undefined {
    return this.source.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.source.remotePort
  }

  /** True when the request came over TLS: the scheme a client used is https. */
  get secure(): boolean {
    return this.source.secure
  }

  /** The request target exactly as sent, e.g. "/search?q=petrel" or "http://host/a/../b": for logs, not for routing. */
  get url(): string {
    return (this.urlCache ??= this.head.target())
  }

  /**
   * The path the server routed on, normalised (protocol/http1/target.ts): percent-encoded
   * unreserved characters decoded, "." and ".." segments resolved, "//" merged; other
   * percent-encodings as sent. "/" for "http://host"; "*" for OPTIONS *; "" for CONNECT.
   */
  get path(): string {
    const head = this.head
    return (this.pathCache ??= head.pathBuffer().toString('latin1', head.pathStart(), head.pathEnd()))
  }

  /**
   * Answer this request as if it had asked for `normalisedPath` (a site's rewrite rule): the
   * handlers after it see the new path in `path` and `pathAndQuery`; `url` stays as sent, for logs.
   */
  rewrite(normalisedPath: string): void {
    this.pathCache = normalisedPath
    this.rewritten = true
  }

  /** The raw query string without "?", or "". */
  get search(): string {
    const queryStart = this.head.queryStart
    return queryStart < 0 ? '' : this.head.buf.toString('latin1', queryStart + 1, this.head.targetEnd)
  }

  /**
   * The target in origin-form, as a proxy passes it on: the normalised path and the query as it
   * came ("/b?x" for "http://host/a/../b?x"). The target itself when it is that already.
   */
  get pathAndQuery(): string {
    const head = this.head
    if (head.normalizedPath === null && !this.rewritten) return this.url
    return head.queryStart < 0 ? this.path : `${this.path}${head.buf.toString('latin1', head.queryStart, head.targetEnd)}`
  }

  get query(): URLSearchParams {
    return (this.queryCache ??= new URLSearchParams(this.search))
  }

  /** First value of a header; the name is matched case-insensitively. */
  header(name: string): string | undefined {
    return this.head.header(name.toLowerCase())
  }

  /**
   * All headers as lower-case name → value; repeated fields are joined with ", " (Cookie with
   * "; "). "host" is the request's host: an absolute-form target's authority replaces the field.
   */
  get headers(): Record<string, string> {
    if (this.headersCache !== null) return this.headersCache
    const out: Record<string, string> = Object.create(null)
    const { buf, headers, hostStart, hostEnd } = this.head
    if (hostStart >= 0) out.host = buf.toString('latin1', hostStart, hostEnd)
    for (let i = 0; i < headers.length; i += 4) {
      const name = buf.toString('latin1', headers[i]!, headers[i + 1]!)
      if (name === 'host') continue
      const value = buf.toString('latin1', headers[i + 2]!, headers[i + 3]!)
      const prior = out[name]
      out[name] = prior === undefined ? value : `${prior}${name === 'cookie' ? '; ' : ', '}${value}`
    }
    return (this.headersCache = out)
  }

  /** Trailer fields of a chunked body (lower-case names), available once the body is complete. */
  get trailers(): Record<string, string> {
    const out: Record<string, string> = Object.create(null)
    const t = this.head.trailers
    if (t !== null) for (let i = 0; i < t.length; i += 2) out[t[i]!] = t[i + 1]!
    return out
  }

  /** The whole body as one Buffer (at most limits.maxBodyBytes). */
  body(): Promise<Buffer> {
    if (this.bodyMode === BodyMode.STREAM) return Promise.reject(new PetrelError('PETREL_ERR_BODY_ALREADY_READ'))
    if (this.bodyMode === BodyMode.UNREAD) {
      this.bodyMode = BodyMode.BUFFER
      if (!this.bodyComplete) this.source.bodyWanted(this)
    }
    if (this.bodyError !== null) return Promise.reject(this.bodyError)
    if (this.bodyComplete) return Promise.resolve(this.collected())
    return new Promise((resolve, reject) => (this.waiters ??= []).push({ resolve, reject }))
  }

  async text(): Promise<string> {
    return (await this.body()).toString('utf8')
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }

  /** The body as a Readable stream, with backpressure to the client's socket. */
  stream(): Readable {
    if (this.bodyStream !== null) return this.bodyStream
    if (this.bodyMode === BodyMode.BUFFER) throw new PetrelError('PETREL_ERR_BODY_ALREADY_READ')
    const source = this.source
    const stream = new Readable({ read: () => source.resumeBody() })
    this.bodyStream = stream
    this.bodyMode = BodyMode.STREAM
    if (this.chunks !== null) for (const chunk of this.chunks) stream.push(chunk)
    this.chunks = null
    if (this.bodyError !== null) stream.destroy(this.bodyError)
    else if (this.bodyComplete) stream.push(null)
    else source.bodyWanted(this)
    return stream
  }

  /** Whether the handler asked for the body (so unread bytes need not be kept). */
  get bodyRequested(): boolean {
    return this.bodyMode === BodyMode.BUFFER || this.bodyMode === BodyMode.STREAM
  }

  // ---- called by the connection ----

  /** A piece of body, kept as a view: Node gives every socket read a buffer of its own. */
  pushBody(buf: Buffer, start: number, end: number): void {
    const mode = this.bodyMode
    if (mode === BodyMode.DISCARD) return
    const chunk = buf.subarray(start, end)
    if (mode === BodyMode.STREAM) {
      if (!this.bodyStream!.push(chunk)) this.source.pauseBody()
      return
    }
    ;(this.chunks ??= []).push(chunk)
    this.bodyLength += chunk.length
  }

  endBody(): void {
    this.bodyComplete = true
    if (this.bodyMode === BodyMode.STREAM) {
      this.bodyStream!.push(null)
      return
    }
    const waiters = this.waiters
    if (waiters !== null) {
      this.waiters = null
      const body = this.collected()
      for (const w of waiters) w.resolve(body)
    }
  }

  /** The response is done before the body was read: drop what comes. */
  discardBody(): void {
    if (this.bodyMode === BodyMode.UNREAD) {
      this.bodyMode = BodyMode.DISCARD
      this.chunks = null
    }
  }

  /** The connection failed before the body was complete. */
  abortBody(err: Error): void {
    if (this.bodyComplete) return
    this.bodyError = err
    if (this.bodyStream !== null) this.bodyStream.destroy(err)
    const waiters = this.waiters
    if (waiters !== null) {
      this.waiters = null
      for (const w of waiters) w.reject(err)
    }
  }

  private collected(): Buffer {
    const chunks = this.chunks
    if (chunks === null) return EMPTY_BUFFER
    if (chunks.length === 1) return chunks[0]!
    const body = Buffer.concat(chunks, this.bodyLength)
    this.chunks = [body]
    return body
  }
}

const EMPTY_PARAMS: Record<string, string> = Object.freeze(Object.create(null))
const EMPTY_BUFFER = Buffer.alloc(0)
