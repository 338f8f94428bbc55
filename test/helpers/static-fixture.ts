// Fixtures for the static file server tests: a file tree made in a temp dir (removed after the
// test file), a server running staticFiles() on it, a one-request raw-TCP client that checks
// every error body for leaked file system paths, a curl runner and a multipart/byteranges parser.

import { test, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { staticFiles, type StaticOptions } from '../../src/apps/serve/static.ts'
import { serve } from './serve.ts'
import { requireDebianPackage } from './debian.ts'
import { req, type HttpResponse, type RawClient } from './tcp.ts'

export type SpecStaticOptions = StaticOptions

/** A file tree: a string or Buffer is a file, `{ symlink }` a symbolic link, a nested object a directory. */
export type Tree = { [name: string]: string | Buffer | { symlink: string } | Tree }

export function isLink(v: unknown): v is { symlink: string } {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && typeof (v as { symlink?: unknown }).symlink === 'string'
}

export function writeTree(dir: string, tree: Tree): void {
  fs.mkdirSync(dir, { recursive: true })
  for (const [name, value] of Object.entries(tree)) {
    const p = path.join(dir, name)
    if (typeof value === 'string' || Buffer.isBuffer(value)) fs.writeFileSync(p, value)
    else if (isLink(value)) fs.symlinkSync(value.symlink, p)
    else writeTree(p, value as Tree)
  }
}

/**
 * Make a temp dir for this test file, removed when the file's tests end. Its name carries a
 * marker that must never show up in a response.
 */
export function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-static-${label}-LEAKMARK-`))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Strings that no response body may contain: the file system layout around ROOT. */
export function leakMarkers(root: string): string[] {
  const out = new Set<string>([root, 'LEAKMARK', os.tmpdir() + '/', 'ENOENT', 'EACCES', 'ENOTDIR', 'ELOOP', '    at '])
  try {
    out.add(fs.realpathSync(root))
  } catch {}
  return [...out]
}

export function assertNoLeak(r: HttpResponse, root: string, what = ''): void {
  const raw = r.raw.toString('latin1')
  for (const m of leakMarkers(root)) {
    assert.ok(!raw.includes(m), `${what} response (${r.status}) must not reveal ${JSON.stringify(m)}: ${JSON.stringify(raw.slice(0, 400))}`)
  }
}

export interface StaticServer {
  port: number
  root: string
  errors: Error[]
  connect: () => Promise<RawClient>
  /** One request on a fresh connection; error responses are checked for leaked paths. */
  get: (target: string, headers?: Record<string, string | number>, method?: string) => Promise<HttpResponse>
  /** Send exact bytes on a fresh connection and read one response. */
  raw: (bytes: string | Buffer, head?: boolean) => Promise<HttpResponse>
  url: (target: string) => string
}

export async function startStatic(t: TestContext, options: SpecStaticOptions): Promise<StaticServer> {
  const handler = staticFiles(options)
  const { port, errors, connect } = await serve(t, {}, (s) => s.fallback(handler))
  const raw = async (bytes: string | Buffer, head = false): Promise<HttpResponse> => {
    const c = await connect()
    try {
      await c.write(bytes)
      const r = await c.readResponse({ head, timeoutMs: 10_000 })
      if (r.status >= 400) assertNoLeak(r, options.root, JSON.stringify(bytes.toString().split('\r\n')[0]))
      return r
    } finally {
      c.destroy()
    }
  }
  const get = (target: string, headers: Record<string, string | number> = {}, method = 'GET') => raw(req(method, target, headers), method === 'HEAD')
  return { port, root: options.root, errors, connect, get, raw, url: (target) => `http://127.0.0.1:${port}${target}` }
}

export interface CurlResult {
  code: number
  stdout: Buffer
  stderr: string
}

/** Run /usr/bin/curl without blocking the event loop (the server runs in this process). */
export function curl(args: string[]): Promise<CurlResult> {
  requireDebianPackage('curl')
  return new Promise((resolve) => {
    execFile('/usr/bin/curl', ['-sS', '--max-time', '10', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr: stderr.toString('utf8') })
    })
  })
}

/** Parse curl -i / -I / -D - output: the last response head (after any 1xx) and the body. */
export function parseCurlHead(text: string): { status: number; headers: Record<string, string> } {
  const heads = text.split(/\r\n\r\n/).filter((h) => /^HTTP\/\S+ \d{3}/.test(h))
  const last = heads[heads.length - 1] ?? ''
  const lines = last.split('\r\n')
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status, headers }
}

export interface Part {
  headers: Record<string, string>
  body: Buffer
}

/** Parse a multipart/byteranges body given its Content-Type; throws when it is malformed. */
export function parseMultipart(contentType: string, body: Buffer): Part[] {
  const m = /^multipart\/byteranges;\s*boundary=("?)([^";]+)\1\s*$/i.exec(contentType)
  assert.ok(m, `multipart/byteranges with a boundary, got ${JSON.stringify(contentType)}`)
  const delimiter = Buffer.from(`--${m[2]}`, 'latin1')
  const parts: Part[] = []
  let pos = body.indexOf(delimiter)
  assert.ok(pos >= 0, 'first boundary present')
  for (;;) {
    pos += delimiter.length
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break // close delimiter
    assert.equal(body.toString('latin1', pos, pos + 2), '\r\n', 'CRLF after boundary')
    pos += 2
    const headEnd = body.indexOf('\r\n\r\n', pos, 'latin1')
    assert.ok(headEnd >= 0, 'part head ends')
    const headers: Record<string, string> = {}
    for (const line of body.toString('latin1', pos, headEnd).split('\r\n')) {
      const i = line.indexOf(':')
      assert.ok(i > 0, `part header line ${JSON.stringify(line)}`)
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
    }
    const start = headEnd + 4
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers['content-range'] ?? '')
    assert.ok(cr, `part has a Content-Range: ${JSON.stringify(headers)}`)
    const length = Number(cr[2]) - Number(cr[1]) + 1
    parts.push({ headers, body: body.subarray(start, start + length) })
    pos = start + length
    assert.equal(body.toString('latin1', pos, pos + 2), '\r\n', 'CRLF before the next boundary')
    pos += 2
    assert.ok(body.subarray(pos, pos + delimiter.length).equals(delimiter), `boundary after part ${parts.length}`)
  }
  return parts
}

/** A deterministic byte pattern of `n` bytes, so any slice is recognisable. */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff
  return b
}

/** A fixed mtime (whole seconds) for deterministic Last-Modified values. */
export const FIXED_MTIME = new Date('2024-01-15T12:00:00Z')

export function setMtime(file: string, when: Date = FIXED_MTIME): void {
  fs.utimesSync(file, when, when)
}

/** `petrel serve ROOT` started as a user starts it, on a free port. */
export interface ServeCli {
  child: ChildProcess
  port: number
  url: (p: string) => string
}

const PETREL_BIN = fileURLToPath(new URL('../../bin/petrel.js', import.meta.url))

/** Start `petrel serve ROOT --port 0 ARGS...` and wait for the line that names its URL (http or https); the caller kills it. */
export async function startServeCli(root: string, args: string[]): Promise<ServeCli> {
  const child = spawn(process.execPath, [PETREL_BIN, 'serve', root, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.setEncoding('utf8')
  for await (const chunk of child.stdout!) {
    out += chunk
    const m = /on (https?):\/\/127\.0\.0\.1:(\d+)\//.exec(out)
    if (m) {
      const scheme = m[1]
      const port = Number(m[2])
      return { child, port, url: (p) => `${scheme}://127.0.0.1:${port}${p}` }
    }
  }
  throw new Error(`petrel serve did not start: ${out}`)
}

export { test }
