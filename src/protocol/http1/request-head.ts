// What the parser knows about one request once its head is complete. Everything the server
// needs to frame the message is decoded here; everything else stays as offsets into `buf`
// until a handler asks for it.

export class RequestHead {
  /** Holds the request line and header lines; all offsets below index into it. */
  buf: Buffer
  method = ''
  targetStart = 0
  targetEnd = 0
  /** Offset of the "?" that starts the query, or -1. */
  queryStart = -1
  /**
   * The normalised path (target.ts) when it is not the target's own bytes up to the "?" — a path
   * with dot-segments, "%2e" or "//"; every absolute-form target's ("/" for "http://host"); empty
   * for CONNECT — or null when it is (nearly always: no copy is made). See pathBuffer().
   */
  normalizedPath: Buffer | null = null
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor = 1
  /** 2 for a request that came over HTTP/2 (server/h2-request.ts), else 1. */
  versionMajor = 1
  /** Flat quadruples [nameStart, nameEnd, valueStart, valueEnd]; names are lower-cased in place. */
  headers: number[] = []
  /**
   * The request's host: the authority of an absolute-form target, which replaces the Host field
   * (RFC 9112 §3.2.2), else the Host field's value; -1 when there is neither (HTTP/1.0 only).
   */
  hostStart = -1
  hostEnd = -1
  /** Declared body length, or -1 when the request has no Content-Length. */
  contentLength = -1
  chunked = false
  /** Whether the client allows the connection to stay open after this exchange. */
  keepAlive = true
  expectContinue = false
  /** `Connection: upgrade` was present together with an Upgrade header. */
  upgrade = false
  /** Chunked trailer fields as flat [name, value] pairs (names lower-case), once the body is complete. */
  trailers: string[] | null = null

  constructor(buf: Buffer) {
    this.buf = buf
  }

  get headerCount(): number {
    return this.headers.length >> 2
  }

  /** True when the message carries a body (by Content-Length > 0 or chunked). */
  get hasBody(): boolean {
    return this.chunked || this.contentLength > 0
  }

  target(): string {
    return this.buf.toString('latin1', this.targetStart, this.targetEnd)
  }

  /** The normalised path is pathBuffer()[pathStart(), pathEnd()): routes match it without a string. */
  pathBuffer(): Buffer {
    return this.normalizedPath ?? this.buf
  }

  pathStart(): number {
    return this.normalizedPath === null ? this.targetStart : 0
  }

  pathEnd(): number {
    const normalized = this.normalizedPath
    if (normalized !== null) return normalized.length
    return this.queryStart < 0 ? this.targetEnd : this.queryStart
  }

  /**
   * First value of the header `lowerName`, or undefined. Compares bytes; allocates only the
   * result. "host" is the request's host (hostStart), which an absolute-form target sets.
   */
  header(lowerName: string): string | undefined {
    if (lowerName === 'host') return this.hostStart < 0 ? undefined : this.buf.toString('latin1', this.hostStart, this.hostEnd)
    const i = this.indexOf(lowerName, 0)
    if (i < 0) return undefined
    const h = this.headers
    return this.buf.toString('latin1', h[i + 2]!, h[i + 3]!)
  }

  /** Index into `headers` of the first field named `lowerName` at or after `from`, or -1. */
  indexOf(lowerName: string, from: number): number {
    const h = this.headers
    const buf = this.buf
    const len = lowerName.length
    outer: for (let i = from; i < h.length; i += 4) {
      const start = h[i]!
      if (h[i + 1]! - start !== len) continue
      for (let k = 0; k < len; k++) {
        if (buf[start + k] !== lowerName.charCodeAt(k)) continue outer
      }
      return i
    }
    return -1
  }
}
