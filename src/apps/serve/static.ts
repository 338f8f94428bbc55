// Serves the files under a root directory. This is the safe core — path resolution that can
// never leave ROOT, directories and index files, types, streaming with backpressure — on which
// validators, ranges, precompressed variants and the open-file cache are built.

import { createReadStream } from 'node:fs'
import { stat, realpath } from 'node:fs/promises'
import path from 'node:path'
import type { Handler } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { contentTypeFor } from './mime.ts'

export interface StaticOptions {
  /** Directory whose files are served. */
  root: string
  /** File served for a directory request. */
  index?: string
}

/** Outcome of mapping a URL path to a file path: the file, or the status that answers the request. */
export type Resolved = { file: string } | { status: 400 | 404 }

/**
 * Map a percent-encoded URL path to a path under `root`, or refuse. Decodes once; an encoded
 * "/" or "\" or a NUL in a segment is refused (400), dot-segments are resolved and may not climb
 * above the root (400), and dotfiles are hidden (404) except under /.well-known/.
 */
export function resolveUrlPath(root: string, urlPath: string): Resolved {
  const segments: string[] = []
  const raw = urlPath.split('/')
  for (let i = 1; i < raw.length; i++) {
    let segment: string
    try {
      segment = decodeURIComponent(raw[i]!)
    } catch {
      return { status: 400 }
    }
    if (segment.includes('/') || segment.includes('\\') || segment.includes('\0')) return { status: 400 }
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.length === 0) return { status: 400 }
      segments.pop()
      continue
    }
    if (segment.startsWith('.') && !(segments.length === 0 && segment === '.well-known')) return { status: 404 }
    segments.push(segment)
  }
  return { file: path.join(root, ...segments) }
}

export function staticFiles(options: StaticOptions): Handler {
  const root = path.resolve(options.root)
  const index = options.index ?? 'index.html'
  let realRoot: Promise<string> | null = null
  return async function serveStatic(req: Request, res: Response): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      res.status(405).end('405 Method Not Allowed: files are served with GET and HEAD\n')
      return
    }
    const resolved = resolveUrlPath(root, req.path)
    if ('status' in resolved) return sendStatus(res, resolved.status)
    let file = resolved.file
    let info = await statOrNull(file)
    if (info !== null && info.isDirectory()) {
      if (!req.path.endsWith('/')) {
        res.setHeader('Location', `${req.path}/${req.search === '' ? '' : `?${req.search}`}`)
        res.status(301).end()
        return
      }
      file = path.join(file, index)
      info = await statOrNull(file)
    }
    if (info === null || !info.isFile()) return sendStatus(res, 404)
    // A symlink may point anywhere; only what really lies under the root is served.
    realRoot ??= realpath(root)
    const real = await realpath(file).catch(() => null)
    const base = await realRoot
    if (real === null || (real !== base && !real.startsWith(base + path.sep))) return sendStatus(res, 404)
    res.setHeader('Content-Type', contentTypeFor(file))
    res.setHeader('Content-Length', info.size)
    if (req.method === 'HEAD' || info.size === 0) {
      res.end()
      return
    }
    res.end(createReadStream(real, { highWaterMark: 64 * 1024 }))
  }
}

async function statOrNull(file: string) {
  try {
    return await stat(file)
  } catch {
    return null
  }
}

function sendStatus(res: Response, status: 400 | 404): void {
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.status(status).end(status === 404 ? '404 Not Found\n' : '400 Bad Request: the path is not acceptable\n')
}
