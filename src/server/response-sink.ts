// What a Response needs from its connection: an HTTP/1.1 Connection (connection.ts) and an
// HTTP/2 stream (h2-exchange.ts) each implement it. response.ts re-exports it.

import type { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import type { Response } from './response.ts'

/** What a Response needs from its connection. */
export interface ResponseSink {
  /**
   * Queue bytes for the client; `more` says another piece follows at once. `onFlushed` is called
   * once the socket no longer needs `data` (handed to the kernel, or the connection is gone) —
   * not at all if the connection was already closed. Returns false when the client is behind.
   */
  send(data: string | Buffer, more?: boolean, onFlushed?: (err?: Error | null) => void): boolean
  /** send() for a string known to be ASCII, which may then be written without UTF-8 encoding. */
  sendAscii(text: string, more?: boolean): boolean
  /** Asked when the head is serialized: may the connection stay open after this response? */
  mayKeepAlive(): boolean
  /**
   * The head as fields (response-fields.ts h2HeadFields()), for a protocol that frames bodies
   * itself (HTTP/2): present, it takes every head instead of send(); `body`, when not empty, is
   * the whole body (UTF-8), sent with it. Returns what send() would.
   */
  sendFields?(fields: Array<[string, string]>, body: string, more: boolean): boolean
  /** Trailer fields ("name: value\r\n" lines) after the body, for a protocol that carries them without chunks (HTTP/2). */
  trailers?(lines: string): void
  /** The response is complete. */
  responseDone(res: Response): void
  /** Resolves when the client has caught up; rejects once the connection is gone. */
  waitDrain(): Promise<void>
  /** The response cannot be completed: close the connection without a clean end. */
  abort(): void
  reportError(err: Error): void
  /** The handler failed after it returned: answer as for an error it threw (see Response.fail()). */
  fail(err: Error, res: Response): void
  /** False once the connection is closed. */
  readonly open: boolean
  /** Hand the raw connection over (a CONNECT tunnel): see Response.detach(). */
  detach?(): { socket: Socket; head: Buffer }
  /**
   * Hold writes until uncork(), then send them as one (see Response.corked()). True when this
   * call put the cork on; false when one was on already (or the connection is closed), and then
   * uncork() is not called for it.
   */
  cork(): boolean
  uncork(): void
}
