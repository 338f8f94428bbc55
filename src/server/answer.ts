// The answers the server gives itself rather than a handler: a malformed request (400, 413, 414,
// 431, 501, 505), a timeout (408, 503), a full server (503), a handler that failed (500), no
// route (404), a method a route does not take (405). They all read the same way — the status,
// its reason and what to do — so one function writes them, and the ones written straight to the
// socket share one head.

import { Buffer } from 'node:buffer'
import { dateHeaderLine, statusLine, statusText } from './status.ts'

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
