// What counts as serving a file correctly: status 200, a Content-Length equal to the file's
// size, and exactly the file's bytes as the body. Checked on every peer before it is measured,
// so a fast wrong answer (an error page, a truncated body) is never reported as throughput.

import { gunzipSync } from 'node:zlib'
import type { AnswerCheck } from '../lib/measure.ts'

/** A check for lib/measure.ts: undefined if `response` (raw, latin1) is `content` served right. */
export function servesFile(urlPath: string, content: Buffer): AnswerCheck {
  return (response) => {
    const headEnd = response.indexOf('\r\n\r\n')
    if (headEnd === -1) return `GET ${urlPath}: no complete response head (${response.length} bytes received)`
    const head = response.slice(0, headEnd)
    const statusLine = head.slice(0, head.indexOf('\r\n') === -1 ? head.length : head.indexOf('\r\n'))
    // HTTP/2 answers (the h2 suite asks over HTTP/2) are rendered with the status line `HTTP/2 200`.
    if (!/^HTTP\/(?:1\.[01]|2) 200 /.test(`${statusLine} `)) return `GET ${urlPath}: ${JSON.stringify(statusLine)}, expected 200`
    const lengths = [...head.matchAll(/^content-length:[ \t]*(\S*)[ \t]*$/gim)].map((match) => match[1])
    if (lengths.length === 0) {
      const chunked = /^transfer-encoding:.*chunked/im.test(head)
      return `GET ${urlPath}: no Content-Length${chunked ? ' (sent chunked)' : ''}, expected ${content.length}`
    }
    if (lengths.length > 1 || lengths[0] !== String(content.length)) {
      return `GET ${urlPath}: Content-Length ${lengths.join(', ')}, expected ${content.length}`
    }
    const body = Buffer.from(response.slice(headEnd + 4), 'latin1')
    if (body.length !== content.length) return `GET ${urlPath}: body of ${body.length} bytes, expected ${content.length}`
    if (!body.equals(content)) return `GET ${urlPath}: body differs from the file`
    return undefined
  }
}

/** Any HTTP answer at all: the server is up, whether or not it serves the file right. */
export const answersHttp: AnswerCheck = (response) =>
  /^HTTP\/1\.[01] \d{3}/.test(response) ? undefined : `not an HTTP response: ${JSON.stringify(response.slice(0, 80))}`

/**
 * A check that `response` is `content` gzip-compressed: status 200, `Content-Encoding: gzip`, and
 * a body (with a length or chunked) that gunzips to exactly the file's bytes.
 */
export function servesGzipped(urlPath: string, content: Buffer): AnswerCheck {
  return (response) => {
    const headEnd = response.indexOf('\r\n\r\n')
    if (headEnd === -1) return `GET ${urlPath}: no complete response head (${response.length} bytes received)`
    const head = response.slice(0, headEnd)
    if (!/^HTTP\/1\.[01] 200 /.test(head)) return `GET ${urlPath}: ${JSON.stringify(head.slice(0, head.indexOf('\r\n')))}, expected 200`
    if (!/^content-encoding:[ \t]*gzip[ \t]*$/im.test(head)) return `GET ${urlPath} with Accept-Encoding: gzip: not compressed (no Content-Encoding: gzip)`
    let body: Buffer = Buffer.from(response.slice(headEnd + 4), 'latin1')
    if (/^transfer-encoding:.*chunked/im.test(head)) body = dechunk(body)
    try {
      if (!gunzipSync(body).equals(content)) return `GET ${urlPath}: the gunzipped body differs from the file`
    } catch (error) {
      return `GET ${urlPath}: the body is not gzip: ${(error as Error).message}`
    }
    return undefined
  }
}

/** A chunked body's data, without the framing. */
function dechunk(framed: Buffer): Buffer {
  const parts: Buffer[] = []
  let p = 0
  for (;;) {
    const lineEnd = framed.indexOf('\r\n', p)
    if (lineEnd < 0) break
    const size = Number.parseInt(framed.toString('latin1', p, lineEnd), 16)
    if (!(size > 0)) break
    parts.push(framed.subarray(lineEnd + 2, lineEnd + 2 + size))
    p = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}
