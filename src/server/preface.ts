// Cleartext with HTTP/2 on: a connection's first bytes say which protocol it speaks. "PRI" begins
// HTTP/2's client preface (RFC 9113 §3.3: prior knowledge, as h2load, `curl --http2-prior-knowledge`
// and balancers that terminate TLS send it) and no HTTP/1.1 method, so three bytes decide, on the
// first read, as nginx decides there. The HTTP/1.1 connection asks this check until it has decided.

import { Buffer } from 'node:buffer'
import type { Connection } from './connection.ts'

const PRI = Buffer.from('PRI', 'latin1')

export class PrefaceCheck {
  /** Fewer than 3 first bytes, all of "PRI": held until the next read tells. */
  private held: Buffer | null = null

  /**
   * The bytes read so far when they are HTTP/1.1 (the check is then over), or null: they were
   * HTTP/2's preface, and HTTP/2 took the connection's socket with them (HttpServer.takeHttp2),
   * or there are too few to tell yet.
   */
  http1Bytes(chunk: Buffer, conn: Connection): Buffer | null {
    const bytes = this.held === null ? chunk : Buffer.concat([this.held, chunk])
    this.held = null
    const n = Math.min(bytes.length, PRI.length)
    if (bytes.compare(PRI, 0, n, 0, n) !== 0) return bytes
    if (n < PRI.length) this.held = bytes
    else conn.server.takeHttp2(conn, bytes)
    return null
  }
}
