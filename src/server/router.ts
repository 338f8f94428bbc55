// Routes by path, then by method. Static paths — the common case — are one Map lookup; paths
// with `:param` or a trailing `*` segment walk a small segment tree. A path that exists with
// other methods answers 405 with the Allow list computed when routes are added.

import { Buffer } from 'node:buffer'
import { PetrelError } from '../core/errors.ts'
import { isNormalPath } from '../protocol/http1/target.ts'
import { InvalidOptionError } from '../core/option-error.ts'

/** Whether buf holds `bytes` at `start` (the caller knows they fit): a path compared without making a string. */
export function bytesAt(buf: Uint8Array, start: number, bytes: Uint8Array): boolean {
  // From the end: paths that differ mostly differ late ("/api/users" against "/api/posts").
  for (let k = bytes.length - 1; k >= 0; k--) if (buf[start + k] !== bytes[k]) return false
  return true
}

export class RouteNode<H> {
  readonly handlers = new Map<string, H>()
  /** handlers.get('GET'), the common case, without the Map lookup. */
  private getHandler: H | undefined = undefined
  /** Value of the Allow header for this path. */
  allow = ''
  /** Parameter names of this route, in the order their values are captured. */
  paramNames: string[] = []

  /** Handler for the method; HEAD falls back to GET (the response layer drops the body). */
  handlerFor(method: string): H | undefined {
    if (method === 'GET') return this.getHandler
    const h = this.handlers.get(method)
    if (h !== undefined || method !== 'HEAD') return h
    return this.getHandler
  }

  add(method: string, handler: H): void {
    if (this.handlers.has(method)) throw new PetrelError('PETREL_ERR_ROUTE_CONFLICT', method)
    this.handlers.set(method, handler)
    if (method === 'GET') this.getHandler = handler
    const methods = [...this.handlers.keys()]
    if (this.handlers.has('GET') && !this.handlers.has('HEAD')) methods.push('HEAD')
    this.allow = methods.join(', ')
  }
}

class SegmentNode<H> {
  readonly children = new Map<string, SegmentNode<H>>()
  param: SegmentNode<H> | null = null
  wildcard: RouteNode<H> | null = null
  route: RouteNode<H> | null = null
}

export class Router<H> {
  private readonly exact = new Map<string, RouteNode<H>>()
  /** The same static routes by path length, with their bytes: matched without making a string. */
  private readonly exactBytes: Array<Array<{ path: Buffer; node: RouteNode<H> }> | undefined> = []
  private readonly tree = new SegmentNode<H>()

  /** Register `handler` for `method` on `pattern` ("/users/:id", "/files/*", "/plaintext"). */
  add(method: string, pattern: string, handler: H): void {
    if (!pattern.startsWith('/')) throw new InvalidOptionError(`route pattern must start with "/": ${pattern}`)
    // Requests are routed on their normalised path: a pattern that normalising would change could never match.
    if (!isNormalPath(pattern))
      throw new InvalidOptionError(
        `route pattern must be a normalised path (no "." or ".." segments, no "//", unreserved characters not percent-encoded): ${pattern}`,
      )
    const segments = pattern.split('/').slice(1)
    if (!segments.some((s) => s.startsWith(':') || s === '*')) {
      let node = this.exact.get(pattern)
      if (node === undefined) {
        this.exact.set(pattern, (node = new RouteNode<H>()))
        const path = Buffer.from(pattern, 'latin1')
        ;(this.exactBytes[path.length] ??= []).push({ path, node })
      }
      node.add(method, handler)
      return
    }
    let at = this.tree
    const names: string[] = []
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!
      if (segment === '*') {
        if (i !== segments.length - 1) throw new InvalidOptionError(`"*" must be the last segment: ${pattern}`)
        names.push('*')
        at.wildcard ??= new RouteNode<H>()
        at.wildcard.paramNames = names
        at.wildcard.add(method, handler)
        return
      }
      if (segment.startsWith(':')) {
        names.push(segment.slice(1))
        at = at.param ??= new SegmentNode<H>()
      } else {
        let next = at.children.get(segment)
        if (next === undefined) at.children.set(segment, (next = new SegmentNode<H>()))
        at = next
      }
    }
    at.route ??= new RouteNode<H>()
    at.route.paramNames = names
    at.route.add(method, handler)
  }

  /** The static route whose path is exactly buf[start, end), or null. */
  findStatic(buf: Buffer, start: number, end: number): RouteNode<H> | null {
    const candidates = this.exactBytes[end - start]
    if (candidates === undefined) return null
    for (let i = 0; i < candidates.length; i++) {
      const { path, node } = candidates[i]!
      if (bytesAt(buf, start, path)) return node
    }
    return null
  }

  /** Whether any route has parameters or a wildcard (else findStatic is the whole answer). */
  get hasPatterns(): boolean {
    return this.tree.children.size > 0 || this.tree.param !== null || this.tree.wildcard !== null
  }

  /**
   * The route for `path`, with captured parameter values (still percent-encoded) pushed onto
   * `values`, or null when no route has this path.
   */
  find(path: string, values: string[]): RouteNode<H> | null {
    const exact = this.exact.get(path)
    if (exact !== undefined) return exact
    return walk(this.tree, path, 1, values)
  }
}

function walk<H>(node: SegmentNode<H>, path: string, start: number, values: string[]): RouteNode<H> | null {
  if (start > path.length) return node.route
  let end = path.indexOf('/', start)
  if (end < 0) end = path.length
  const segment = path.slice(start, end)
  const child = node.children.get(segment)
  if (child !== undefined) {
    const found = walk(child, path, end + 1, values)
    if (found !== null) return found
  }
  if (node.param !== null && segment.length > 0) {
    values.push(segment)
    const found = walk(node.param, path, end + 1, values)
    if (found !== null) return found
    values.pop()
  }
  if (node.wildcard !== null) {
    values.push(path.slice(start))
    return node.wildcard
  }
  return null
}
