// Internal redirects, as nginx makes them: a GET for another local path, made inside the server
// from the fields of the request being answered, and answered through the same routes. A CGI
// script's local `Location: /path` (RFC 3875 §6.2.2) is the first user.
//
// The new request goes through the same parser as one from the network, so a target that could
// not arrive from a client cannot be made here either.

import { Buffer } from 'node:buffer'
import { DEFAULT_LIMITS, type Limits } from '../core/limits.ts'
import { RequestParser, type RequestParserHandler } from '../protocol/http1/parser.ts'
import type { RequestHead } from '../protocol/http1/request-head.ts'
import { Request, type BodySource } from './request.ts'

/** Fields that describe the original request's body, which the internal GET does not have. */
const BODY_FIELDS = new Set(['content-length', 'transfer-encoding', 'content-type', 'expect', 'trailer'])

class HeadCatcher implements RequestParserHandler {
  head: RequestHead | null = null
  onHead(head: RequestHead): void {
    this.head = head
  }
  onBody(): void {}
  onMessageComplete(): boolean {
    return true
  }
}

/**
 * A GET for `target` (origin-form: "/path?query") carrying `original`'s HTTP version and fields,
 * except those about its body, parsed under `limits` (the server's); null when `target` is not a
 * valid origin-form target.
 */
export function internalRequest(original: Request, target: string, limits: Limits = DEFAULT_LIMITS): Request | null {
  if (!target.startsWith('/')) return null
  let text = `GET ${target} HTTP/${original.httpVersion}\r\n`
  for (const [name, value] of Object.entries(original.headers)) {
    if (!BODY_FIELDS.has(name)) text += `${name}: ${value}\r\n`
  }
  const bytes = Buffer.from(`${text}\r\n`, 'latin1')
  const catcher = new HeadCatcher()
  const parser = new RequestParser(catcher, limits)
  if (parser.execute(bytes, 0, bytes.length) < 0 || catcher.head === null) return null
  const source: BodySource = {
    bodyWanted() {},
    pauseBody() {},
    resumeBody() {},
    remoteAddress: original.remoteAddress,
    remotePort: original.remotePort,
    secure: original.secure,
  }
  return new Request(catcher.head, source)
}
