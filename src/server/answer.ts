// The answers the server gives itself rather than a handler: a malformed request (400, 413, 414,
// 431, 501, 505), a timeout (408, 503), a full server (503), a handler that failed (500), no
// route (404), a method a route does not take (405). They all read the same way — the status,
// its reason and what to do — so one function writes them, and the ones written straight to the
// socket share one head.

import { Buffer } from 'node:buffer'
import { dateHeaderLine, statusLine, statusText } from './status.ts'
import type { Request } from './request.ts'
import type { HttpServer } from './server.ts'

/** "408 Request Timeout: request head not received within timeouts.headersMs\n". */
export function answerBody(status: number, message: string): string {
  return `${status} ${statusText(status)}: ${message}\n`
}

/**
 * An answer written to the socket by the connection or the listener, after which the connection
 * closes: the status line, Date, the text body's type and length, `extraFields` (whole lines),
 * `Connection: close`, and the body — left out for a HEAD request (RFC 9110 §9.3.2), whose
 * Content-Length still says what a GET would get.
 */
export function closingAnswer(status: number, body: string, sendBody: boolean, extraFields = ''): string {
  return `${statusLine(status)}${dateHeaderLine()}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraFields}Connection: close\r\n\r\n${sendBody ? body : ''}`
}

/**
 * A connection's own answer to an exchange (a malformed request, a timeout, a 431 on an HTTP/2
 * stream): counted in the server's metrics (`startedAt`: when the request arrived, monotonic ms;
 * 0: no request was made) and reported as reportServerAnswer() does. Returns the body; `head`: a
 * HEAD request, which is sent none.
 */
export function ownAnswer(
  server: HttpServer,
  remoteAddress: string | undefined,
  status: number,
  message: string,
  req: Request | null,
  head: boolean,
  startedAt: number,
  startedAtMs: number,
): string {
  const body = answerBody(status, message)
  if (server.metrics !== null) server.metrics.observe(status, req !== null && startedAt > 0 ? performance.now() - startedAt : 0)
  reportServerAnswer(server, remoteAddress, status, head ? 0 : Buffer.byteLength(body), req, startedAtMs)
  return body
}

/**
 * Tell the server's onServerAnswer hook (the access log) of an answer it wrote itself; `req` is
 * null when no request head was parsed, and `startedAtMs` 0 when none arrived (then: now).
 */
export function reportServerAnswer(
  server: HttpServer,
  remoteAddress: string | undefined,
  status: number,
  bodyBytes: number,
  req: Request | null,
  startedAtMs: number,
): void {
  const hook = server.onServerAnswer
  if (hook === undefined) return
  hook({
    remoteAddress,
    status,
    bodyBytes,
    method: req?.method ?? '',
    url: req?.url ?? '',
    httpVersion: req?.httpVersion ?? '',
    startedAtMs: startedAtMs > 0 ? startedAtMs : Date.now(),
  })
}
