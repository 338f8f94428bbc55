// `petrel serve`: the web server program. Without a ROOT it serves the bundled demo site and
// the two benchmark routes every HTTP server is measured on.

import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { createServer, type HttpServer } from '../../server/server.ts'
import type { Limits, Timeouts } from '../../core/limits.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { staticFiles, type StaticOptions } from './static.ts'
import { cgiGateway, CGI_PREFIX, type CgiOptions } from './cgi.ts'
import { internalRequest } from '../../server/internal-request.ts'
import { PETREL_VERSION } from '../../core/version.ts'
import { PetrelError } from '../../core/errors.ts'
import { ThreadPool, type ThreadPoolOptions } from '../../process/pool/thread-pool.ts'
import hashPassword, { SCRYPT } from './demo-work.ts'
import { LogFile } from '../../core/log-file.ts'
import { ErrorLog, type ErrorLogLevel } from '../../core/error-log.ts'
import { AccessLog, jsonDroppedLine, type AccessLogFormat } from '../../server/access-log.ts'
import { HttpMetrics, takeSnapshot, type ProcessSnapshot } from '../../monitor/metrics.ts'
import { MetricsBoard } from '../../monitor/board.ts'
import { startAdmin, type Admin } from '../../monitor/admin.ts'
import { accountRoutes, PASSWORD_WORK } from '../accounts/accounts.ts'
import { parseDatabase, type AccountStore } from '../accounts/store.ts'
import { SqliteStore } from '../accounts/sqlite-store.ts'
import { PgStore } from '../accounts/pg-store.ts'
import { ReverseProxy, type ProxyOptions, type ProxyRoute } from '../proxy/reverse.ts'

export const DEMO_SITE = fileURLToPath(new URL('../../../site/', import.meta.url))
const DEMO_WORK = new URL('./demo-work.ts', import.meta.url)
/** The demo site's sample CGI scripts, run for /cgi-bin/ when no ROOT is given. */
export const DEMO_CGI_BIN = fileURLToPath(new URL('../../../site/cgi-bin/', import.meta.url))

export interface ServeOptions {
  /** Directory to serve; null serves the bundled demo site plus /plaintext and /json. */
  root: string | null
  host: string
  port: number
  limits?: Partial<Limits>
  timeouts?: Partial<Timeouts>
  /** Static file behaviour: listing, symlinks, Cache-Control, the open-file cache. */
  files?: Omit<StaticOptions, 'root'>
  /** Run the executables of a directory for URLs under /cgi-bin/. */
  cgi?: CgiOptions
  /** The demo's thread pool (for /scrypt/pool): threads, queue, task timeout. */
  pool?: Omit<ThreadPoolOptions, 'filename'>
  logs?: LogOptions
  /** Count metrics and serve the admin listener (dashboard, /metrics) here; off when absent. */
  admin?: { host: string; port: number }
  /** The accounts demo (/account/…) on this database; off when absent. */
  accounts?: AccountsSettings
  /** Reverse proxy: requests under each prefix go to its upstream group. */
  proxy?: { routes: ProxyRoute[]; options?: Omit<ProxyOptions, 'log'> }
}

export interface AccountsSettings {
  /** postgres://… or sqlite:PATH (or a plain path: SQLite). */
  database: string
  poolMax?: number
  acquireTimeoutMs?: number
  /** Where scrypt runs (default: the thread pool). */
  hashing?: 'pool' | 'inline'
  /** Login and register attempts per client address per minute. */
  attemptsPerWindow?: number
}

/** Expired sessions are deleted this often. */
const SESSION_SWEEP_MS = 10 * 60_000

export interface LogOptions {
  /** Access log file, or "-" for stdout; none when absent. */
  accessLog?: string
  accessLogFormat?: AccessLogFormat
  /** Error log file, or "-" for stdout; stderr when absent. */
  errorLog?: string
  logLevel?: ErrorLogLevel
}

export interface Serving {
  server: HttpServer
  address: AddressInfo
  root: string
  /** The admin listener of a single process (a worker reports to its master instead). */
  admin: Admin | null
  /** The accounts demo's store, to close after the server. */
  accounts: AccountStore | null
  /** The reverse proxy (health checks, idle upstream connections), to close with the server. */
  proxy: ReverseProxy | null
  /** Reopen log files (SIGUSR1, after logrotate moved them). */
  reopenLogs(): Promise<void>
  /** Write out every buffered log line and close the files: call after server.close(). */
  closeLogs(): Promise<void>
}

const HELLO = 'Hello, World!'

function plaintext(_req: Request, res: Response): void {
  res.setHeader('Content-Type', 'text/plain')
  res.end(HELLO)
}

function json(_req: Request, res: Response): void {
  res.json({ message: HELLO })
}

/** The demo's CPU-heavy routes: the same scrypt hash inline (blocking the loop) and on the pool. */
function scryptRoutes(server: HttpServer, pool: () => ThreadPool): void {
  const answer = (res: Response, where: string, hash: string): void => res.json({ algorithm: 'scrypt', ...SCRYPT, where, hash })
  server.get('/scrypt/inline', (req, res) => answer(res, 'inline', hashPassword({ password: req.query.get('password') ?? '' })))
  server.get('/scrypt/pool', async (req, res) => {
    const hash = await pool().run<string>({ password: req.query.get('password') ?? '' }, { signal: res.signal })
    answer(res, 'pool', hash)
  })
}

/** How a worker process gets connections: its own reusePort socket, or handed over by a master listening at `handedOver`. */
export interface ListenMode {
  reusePort?: boolean
  handedOver?: AddressInfo
  /** A worker under a master: with admin on, send a metrics snapshot each second instead of serving the admin listener. */
  report?: { worker: number; send: (snapshot: ProcessSnapshot) => void }
}

/** How often a worker reports its figures to the master. */
const REPORT_EVERY_MS = 1000

export async function startServe(options: ServeOptions, mode: ListenMode = {}): Promise<Serving> {
  const logs = options.logs ?? {}
  const files: LogFile[] = []
  const open = async (path: string, droppedLine?: (count: number) => string): Promise<LogFile> => {
    const file = new LogFile(path, { droppedLine, onError: (err) => console.error(`petrel: log ${path}: ${err.message}`) })
    await file.open()
    files.push(file)
    return file
  }
  const format = logs.accessLogFormat ?? 'combined'
  const accessLog = logs.accessLog === undefined ? null : new AccessLog(await open(logs.accessLog, format === 'json' ? jsonDroppedLine : undefined), format)
  const errorLog = logs.errorLog === undefined ? null : new ErrorLog(await open(logs.errorLog), logs.logLevel ?? 'error')
  const metrics = options.admin === undefined ? null : new HttpMetrics()
  const server = createServer({
    ...(metrics === null ? {} : { metrics }),
    limits: options.limits,
    timeouts: options.timeouts,
    onError: errorLog === null ? undefined : (err, req) => errorLog.error(req === undefined ? err : new Error(`${req.method} ${req.url}: ${err.message}`, { cause: err })),
    onResponse: accessLog === null ? undefined : (req, res, startedAtMs) =>
      accessLog.record({
        remoteAddress: req.remoteAddress,
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        status: res.statusCode,
        bodyBytes: res.bodyBytes,
        referer: req.header('referer'),
        userAgent: req.header('user-agent'),
        startedAtMs,
        endedAtMs: Date.now(),
      }),
    onServerAnswer: accessLog === null ? undefined : (answer) => accessLog.record({ ...answer, endedAtMs: Date.now() }),
  })
  const root = options.root ?? DEMO_SITE
  let pool: ThreadPool | null = null
  if (options.root === null) {
    server.get('/plaintext', plaintext)
    server.get('/json', json)
    // Made on first use: a worker process that never gets the route starts no threads.
    scryptRoutes(server, () => (pool ??= new ThreadPool({ filename: DEMO_WORK, ...options.pool })))
  }
  let accounts: AccountStore | null = null
  if (options.accounts !== undefined) {
    const settings = options.accounts
    const target = parseDatabase(settings.database)
    const storeOptions = { poolMax: settings.poolMax, acquireTimeoutMs: settings.acquireTimeoutMs }
    accounts = target.kind === 'postgres' ? await PgStore.open(target.url, storeOptions) : await SqliteStore.open(target.file, storeOptions)
    let passwordPool: ThreadPool | null = null
    accountRoutes(server, { store: accounts, hashing: settings.hashing, attemptsPerWindow: settings.attemptsPerWindow, pool: () => (passwordPool ??= new ThreadPool({ filename: PASSWORD_WORK, ...options.pool })) })
    const store = accounts
    setInterval(() => {
      store.deleteExpiredSessions(Date.now()).catch((err: Error) => server.reportError(err))
    }, SESSION_SWEEP_MS).unref()
  }
  const fileHandler = staticFiles({ ...options.files, root })
  if (options.cgi === undefined) {
    server.fallback(fileHandler)
  } else {
    const cgi = cgiGateway(options.cgi, {
      serverPort: () => server.address()?.port ?? 0,
      software: `petrel/${PETREL_VERSION}`,
      log: errorLog === null ? (line) => console.error(`petrel: ${line}`) : (line) => errorLog.error(line),
      dispatch: (req, res) => server.dispatch(req, res),
      internalRequest: (original, target) => internalRequest(original, target, server.limits),
    })
    // req.path is normalised by the server, so every other spelling of a /cgi-bin/ URL
    // (/cgi%2Dbin/x, /a/../cgi-bin/x, //cgi-bin/x) is /cgi-bin/x here and never reaches the file
    // handler, which would serve the script's source when DIR is ROOT/cgi-bin.
    server.fallback((req, res) => (req.path.startsWith(CGI_PREFIX) ? cgi(req, res) : fileHandler(req, res)))
  }
  let proxy: ReverseProxy | null = null
  if (options.proxy !== undefined) {
    const reverse = new ReverseProxy(options.proxy.routes, { ...options.proxy.options, log: errorLog === null ? (line) => console.error(`petrel: ${line}`) : (line) => errorLog.warn(line) })
    proxy = reverse
    for (const group of reverse.groups) server.mount(group.prefix, (req, res) => reverse.handle(group, req, res))
  }
  const address = mode.handedOver !== undefined ? server.serveHandedOver(mode.handedOver) : await server.listen({ host: options.host, port: options.port, reusePort: mode.reusePort })
  let admin: Admin | null = null
  if (metrics !== null) {
    const report = mode.report
    if (report !== undefined) {
      setInterval(() => report.send(takeSnapshot(metrics, server, report.worker)), REPORT_EVERY_MS).unref()
    } else {
      const board = new MetricsBoard()
      try {
        admin = await startAdmin({
          host: options.admin!.host,
          port: options.admin!.port,
          board,
          pids: () => [process.pid],
          refresh: () => board.update('self', takeSnapshot(metrics, server, null)),
        })
      } catch (err) {
        await server.close()
        throw new PetrelError('PETREL_ERR_LISTEN', `admin listener ${options.admin!.host}:${options.admin!.port}: ${(err as Error).message}`)
      }
    }
  }
  return {
    server,
    address,
    root,
    admin,
    accounts,
    proxy,
    reopenLogs: async () => {
      await Promise.all(files.map((f) => f.reopen()))
    },
    closeLogs: async () => {
      await Promise.all(files.map((f) => f.close()))
    },
  }
}

/**
 * Stop gracefully on SIGTERM or SIGINT: stop accepting, finish what is in flight, exit 0.
 * A second signal exits at once. Node delivers signals on the event loop, so acting here is
 * what nginx's "the handler sets a flag, the loop acts" achieves in C.
 */
export function stopOnSignals(serving: Serving, log: (line: string) => void): void {
  const { server } = serving
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log(`petrel: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    log(`petrel: ${signal}, finishing in-flight requests (up to ${server.timeouts.shutdownMs} ms)`)
    Promise.all([server.close(), serving.admin?.close()])
      .then(() => {
        serving.proxy?.close()
        return serving.accounts?.close()
      })
      .then(() => serving.closeLogs())
      .then(() => process.exit(0))
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGUSR1', () => void serving.reopenLogs())
}
