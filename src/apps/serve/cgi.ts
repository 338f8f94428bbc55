// CGI/1.1 (RFC 3875): `petrel serve ROOT --cgi-bin DIR` runs the executables in DIR for URLs
// under /cgi-bin/, the book's CGI server (ch. 6, 15) grown up.
//
// - The script is named by the first segment after /cgi-bin/; the rest of the path is PATH_INFO
//   (the translations of RFC 3875 — path, meta-variables, the script's head — are cgi-message.ts).
//   Only a regular, executable file directly inside DIR runs (no symlink out of it, no dotfile,
//   no traversal through the name or PATH_INFO), and it runs without a shell, in its own process
//   group, with the RFC's meta-variables as its whole environment (request fields only when
//   their names are letters, digits and '-'). A small spawner process starts it
//   (cgi-spawner.ts): forking the server itself would copy its page tables each time.
// - Concurrency is bounded (`--cgi-max`), with a bounded queue behind it (`--cgi-queue`); a full
//   queue answers 503 with Retry-After.
// - The script's head is parsed (Status, Content-Type, Location, other fields passed on); a local
//   Location is an internal redirect, an absolute one a 302. The body streams to the client with
//   backpressure both ways: the spawner sends output on credit, which is given back only as the
//   client takes it, so a script whose client does not read is held after a window of bytes;
//   without a Content-Length the body goes chunked.
// - `--cgi-timeout` kills the whole process group, answering 504 if no head was sent yet; a
//   client that leaves kills its script the same way. The spawner reaps every child; stderr goes
//   to the error log a line at a time, escaped as the access log escapes a client's text.

import { Buffer } from 'node:buffer'
import { constants, promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import type { Handler } from '../../server/server.ts'
import { PetrelError } from '../../core/errors.ts'
import { escapeLogValue } from '../../core/log-escape.ts'
import { CgiSpawner, type ScriptProcess } from './cgi-spawner.ts'
import { CGI_DEFAULTS, headEnd, metaVariables, parseCgiHead, parseCgiPath, quoted } from './cgi-message.ts'

// The prefix is the server's to route on (serve.ts): it comes with the gateway.
export { CGI_DEFAULTS, CGI_PREFIX } from './cgi-message.ts'

export interface CgiOptions {
  /** Directory whose executables are the scripts. */
  dir: string
  maxProcesses?: number
  queueLength?: number
  timeoutMs?: number
  /** See CGI_DEFAULTS.outputWindowBytes. */
  outputWindowBytes?: number
}

export interface CgiContext {
  /** The port the request came in on (SERVER_PORT). */
  serverPort(): number
  /** SERVER_SOFTWARE, e.g. "petrel/0.1.0". */
  software: string
  /** A line for the error log: a script's stderr, or why a script failed. */
  log(line: string): void
  /** Answer `req` (an internal GET) through the server's routes: for a local Location. */
  dispatch(req: Request, res: Response): void
  /** An internal GET for `target`, or null when the target is not valid. */
  internalRequest(original: Request, target: string): Request | null
}

/** Fields a script may not set: they belong to the connection, which Petrel frames itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'status', 'date'])

/** Bounded concurrency with a bounded FIFO queue behind it. */
export class Slots {
  private active = 0
  private readonly waiting: Array<() => void> = []
  private readonly max: number
  private readonly queueLength: number

  constructor(max: number, queueLength: number) {
    this.max = max
    this.queueLength = queueLength
  }

  get running(): number {
    return this.active
  }

  get queued(): number {
    return this.waiting.length
  }

  /**
   * Take a slot: true at once when one is free; a promise of one when there is room to queue;
   * false when the queue is full. `signal` aborting takes a queued request out of the queue.
   */
  acquire(signal: AbortSignal): boolean | Promise<boolean> {
    if (this.active < this.max) {
      this.active++
      return true
    }
    if (this.waiting.length >= this.queueLength || signal.aborted) return false
    return new Promise((resolve) => {
      const grant = (): void => {
        signal.removeEventListener('abort', leave)
        resolve(true)
      }
      const leave = (): void => {
        const at = this.waiting.indexOf(grant)
        if (at >= 0) this.waiting.splice(at, 1)
        resolve(false)
      }
      this.waiting.push(grant)
      signal.addEventListener('abort', leave, { once: true })
    })
  }

  release(): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.active--
  }
}

/** The CGI handler for URLs under /cgi-bin/. */
export function cgiGateway(options: CgiOptions, context: CgiContext): Handler {
  const dir = path.resolve(options.dir)
  const slots = new Slots(options.maxProcesses ?? CGI_DEFAULTS.maxProcesses, options.queueLength ?? CGI_DEFAULTS.queueLength)
  const timeoutMs = options.timeoutMs ?? CGI_DEFAULTS.timeoutMs
  const outputWindowBytes = options.outputWindowBytes ?? CGI_DEFAULTS.outputWindowBytes
  const redirects = new WeakMap<Response, number>()
  const spawner = new CgiSpawner()

  /** The script's file, or the status that answers: 404 when absent, 403 when not runnable. */
  async function locate(name: string): Promise<string | 403 | 404> {
    const file = path.join(dir, name)
    let real: string
    try {
      real = await fsp.realpath(file)
    } catch {
      return 404
    }
    // Resolved per request: a CGI directory that is a symlink may be switched by a deployment.
    let inside: string
    try {
      inside = await fsp.realpath(dir)
    } catch {
      return 404
    }
    if (path.dirname(real) !== inside) return 403
    try {
      const stat = await fsp.stat(real)
      if (!stat.isFile()) return 403
      await fsp.access(real, constants.X_OK)
    } catch {
      return 403
    }
    return real
  }

  async function handle(req: Request, res: Response): Promise<void> {
    const target = parseCgiPath(req.path)
    if ('status' in target) return plain(res, target.status, target.status === 400 ? '400 Bad Request: the path is not acceptable\n' : '404 Not Found\n')
    const file = await locate(target.name)
    if (file === 404 || file === 403) return plain(res, file, file === 404 ? '404 Not Found\n' : '403 Forbidden\n')
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      res.setHeader('Allow', 'GET, HEAD, POST')
      return plain(res, 405, `405 Method Not Allowed: ${req.method} is not one of GET, HEAD, POST\n`)
    }
    // A chunked body is read whole first: RFC 3875 wants CONTENT_LENGTH, and so do scripts.
    let body: Buffer | null = null
    if (req.head.chunked) body = await req.body()
    const granted = await slots.acquire(res.signal)
    if (!granted) {
      if (res.closed) return
      res.setHeader('Retry-After', String(CGI_DEFAULTS.retryAfterSeconds))
      return plain(res, 503, '503 Service Unavailable: every CGI slot is busy and the queue is full\n')
    }
    try {
      await run(req, res, file, target.name, target.pathInfo, body)
    } finally {
      slots.release()
    }
  }

  function run(req: Request, res: Response, file: string, name: string, pathInfo: string, body: Buffer | null): Promise<void> {
    return new Promise<void>((resolve) => {
      if (res.closed) return resolve()
      const child = spawner.spawn(file, metaVariables(req, name, pathInfo, body, context), dir, outputWindowBytes)
      let finished = false
      // The whole group: a shell script's children die with it.
      const kill = (): void => child.killGroup()
      const finish = (): void => {
        if (finished) return
        finished = true
        if (timer !== null) clearTimeout(timer)
        res.signal.removeEventListener('abort', onClientGone)
        kill()
        if (bodyStream !== null && !bodyStream.readableEnded) {
          // Whatever of the body the script did not read is dropped, so the connection goes on.
          bodyStream.unpipe()
          bodyStream.resume()
        }
        resolve()
      }
      const fail = (status: 502 | 504, why: string): void => {
        context.log(`cgi ${name}: ${why}`)
        if (!res.headersSent && !res.closed)
          plain(
            res,
            status,
            status === 504 ? '504 Gateway Timeout: the script did not answer in time\n' : '502 Bad Gateway: the script did not produce a valid answer\n',
          )
        else res.abort()
        finish()
      }
      const onClientGone = (): void => {
        context.log(`cgi ${name}: client went away; script killed`)
        finish()
        // End the exchange (nginx's 499): a client that only half-closed gets no half answer.
        res.abort()
      }
      // The script's own time: the clock stops while the script is held because its client reads
      // slowly (a slow client is the send timeout's business), so a large answer to a slow
      // client is not cut for it.
      const onTimeout = (): void => fail(504, `no complete answer within ${timeoutMs} ms; process group killed`)
      let timeLeftMs = timeoutMs
      let clockStartedAt = performance.now()
      let timer: NodeJS.Timeout | null = setTimeout(onTimeout, timeoutMs)
      res.signal.addEventListener('abort', onClientGone, { once: true })
      child.on('error', (err: Error) => fail(502, `cannot run: ${err.message}`))
      child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        if (code !== 0 && !finished) context.log(`cgi ${name}: exited with ${signal ?? `status ${code}`}`)
      })
      forwardStderr(child, name, context)
      const bodyStream = feedStdin(child, req, body)

      // The head, then the body.
      const headChunks: Buffer[] = []
      let headBytes = 0
      let declaredLength = -1
      let sent = 0
      let headDone = false
      // Stdout bytes handled but not yet acknowledged to the spawner because the client is
      // behind: they are acknowledged when it catches up. The spawner sends at most a window of
      // unacknowledged bytes, so this is what holds the script while nobody reads.
      let heldBytes = 0
      let waitingForDrain = false
      const caughtUp = (): void => {
        waitingForDrain = false
        child.tookStdout(heldBytes)
        heldBytes = 0
      }
      const waitForClient = (): void => {
        waitingForDrain = true
        clearTimeout(timer!)
        timer = null
        timeLeftMs -= performance.now() - clockStartedAt
        res.drain().then(clientCaughtUp, finish)
      }
      const clientCaughtUp = (): void => {
        if (finished) return
        clockStartedAt = performance.now()
        timer = setTimeout(onTimeout, Math.max(0, timeLeftMs))
        caughtUp()
      }
      child.on('stdout', (chunk: Buffer) => {
        if (finished) return
        // The server answered for us (its handler timeout): nothing more may be written.
        if (res.finished) return finish()
        let body = chunk
        if (!headDone) {
          headChunks.push(chunk)
          headBytes += chunk.length
          const all = headChunks.length === 1 ? chunk : Buffer.concat(headChunks, headBytes)
          const end = headEnd(all)
          if (end === null) {
            if (headBytes > CGI_DEFAULTS.maxHeadBytes) return fail(502, `head larger than ${CGI_DEFAULTS.maxHeadBytes} bytes`)
            if (headChunks.length > 1) headChunks.splice(0, headChunks.length, all)
            // A partial head is held here, bounded by maxHeadBytes: taken at once.
            child.tookStdout(chunk.length)
            return
          }
          const head = parseCgiHead(all.toString('latin1', 0, end.headLength))
          if (typeof head === 'string') return fail(502, head)
          if (head.location !== null && head.location.startsWith('/') && head.fields.length === 0 && !head.statusGiven) {
            // Local redirect: the script's body, if any, is not the answer.
            finish()
            return redirectLocally(req, res, head.location, name)
          }
          try {
            res.status(head.status)
            if (head.location !== null) res.setHeader('Location', head.location)
            for (const [field, value] of head.fields) {
              const lower = field.toLowerCase()
              if (HOP_BY_HOP.has(lower)) continue
              if (lower === 'content-length') {
                if (!/^\d+$/.test(value)) return fail(502, `malformed Content-Length ${quoted(value)}`)
                declaredLength = Number(value)
              }
              res.appendHeader(field, value)
            }
          } catch (err) {
            return fail(502, (err as Error).message)
          }
          headDone = true
          body = all.subarray(end.bodyStart)
        }
        // Never send more than the script declared: the framing is the client's to trust. What is
        // past it is dropped (and taken, so that the script runs on to its end).
        if (declaredLength >= 0 && sent + body.length > declaredLength) body = body.subarray(0, Math.max(0, declaredLength - sent))
        sent += body.length
        heldBytes += chunk.length
        if (body.length > 0 && !res.write(body) && !waitingForDrain) waitForClient()
        if (!waitingForDrain) caughtUp()
      })
      child.on('stdoutEnd', () => {
        if (finished) return
        if (res.finished) return finish()
        if (!headDone) {
          const all = Buffer.concat(headChunks, headBytes)
          if (all.length === 0) return fail(502, 'exited without printing a head')
          return fail(502, 'output ended inside the head (no blank line after the header fields)')
        }
        res.end()
        finish()
      })
    })
  }

  function redirectLocally(req: Request, res: Response, location: string, name: string): void {
    const depth = (redirects.get(res) ?? 0) + 1
    redirects.set(res, depth)
    if (depth > CGI_DEFAULTS.maxRedirects) {
      context.log(`cgi ${name}: more than ${CGI_DEFAULTS.maxRedirects} local redirects`)
      return plain(res, 500, '500 Internal Server Error: too many internal redirects\n')
    }
    const internal = context.internalRequest(req, location)
    if (internal === null) {
      context.log(`cgi ${name}: local redirect to an invalid path ${quoted(location)}`)
      return plain(res, 502, '502 Bad Gateway: the script did not produce a valid answer\n')
    }
    context.dispatch(internal, res)
  }

  return (req, res) =>
    handle(req, res).catch((err: Error) => {
      if ((err as PetrelError).code === 'PETREL_ERR_CONNECTION_CLOSED') return
      context.log(`cgi: ${err.message}`)
      if (!res.headersSent && !res.closed) plain(res, 500, '500 Internal Server Error\n')
      else res.abort()
    })
}

function plain(res: Response, status: number, text: string): void {
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.status(status).end(text)
}

/**
 * The request body to the script's stdin; a script that does not read it is not an error.
 * Returns the body stream when the body is streamed.
 */
function feedStdin(child: ScriptProcess, req: Request, body: Buffer | null): Readable | null {
  const stdin = child.stdin
  stdin.on('error', () => {})
  if (body !== null || req.head.contentLength <= 0) {
    stdin.end(body ?? undefined)
    return null
  }
  const stream = req.stream()
  stream.on('error', () => stdin.destroy())
  stream.pipe(stdin)
  return stream
}

/**
 * The script's stderr to the error log, a line at a time, each line bounded, escaped as the access
 * log escapes a client's values: a script (or whoever feeds it input) cannot forge log lines or
 * send ESC, CR or C1 controls to the terminal of whoever reads the log.
 */
function forwardStderr(child: ScriptProcess, name: string, context: Pick<CgiContext, 'log'>): void {
  const MAX_LINE = 4096
  let pending = ''
  const logLine = (line: string): void => {
    // A CRLF line ends at its LF like any other: the CR is not part of what the script said.
    const text = line.endsWith('\r') ? line.slice(0, -1) : line
    context.log(`cgi ${name}: ${escapeLogValue(text)}`)
  }
  child.on('stderr', (chunk: Buffer) => {
    // latin1: one character per byte, so a character split across reads is never mangled, and
    // every byte from 0x7F up is escaped as itself.
    pending += chunk.toString('latin1')
    let newline: number
    while ((newline = pending.indexOf('\n')) >= 0) {
      logLine(pending.slice(0, Math.min(newline, MAX_LINE)))
      pending = pending.slice(newline + 1)
    }
    if (pending.length > MAX_LINE) {
      logLine(pending.slice(0, MAX_LINE))
      pending = ''
    }
  })
  child.on('stderrEnd', () => {
    if (pending !== '') logLine(pending)
    pending = ''
  })
}
