// `petrel serve`: the web server program. Without a ROOT it serves the bundled demo site and
// the two benchmark routes every HTTP server is measured on.

import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { createServer, type Handler, type HttpServer } from '../../server/server.ts'
import type { WebSocket } from '../../server/websocket.ts'
import type { Http2Limits, Limits, Timeouts } from '../../core/limits.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { STATIC_DEFAULTS, staticFiles, type StaticOptions } from './static.ts'
import { MemoryBudget } from './memory-budget.ts'
import type { CgiContext, CgiOptions } from './cgi.ts'
import type { SiteParts } from './sites.ts'
import type { BasicAuth } from './basic-auth.ts'
import { internalRequest } from '../../server/internal-request.ts'
import { PETREL_VERSION } from '../../core/version.ts'
import { hostPort, systemFailure } from '../../core/system-failure.ts'
import { PetrelError } from '../../core/errors.ts'
import { moduleUrl } from '../../core/module-url.ts'
import type { ThreadPool, ThreadPoolOptions } from '../../process/pool/thread-pool.ts'
import type { LogFile } from '../../core/log-file.ts'
import { escapeMessage, type ErrorLog, type ErrorLogLevel } from '../../core/error-log.ts'
import type { AccessLog, AccessLogFormat } from '../../server/access-log.ts'
import type { ProcessSnapshot } from '../../monitor/metrics.ts'
import type { Admin, AdminSettings } from '../../monitor/admin.ts'
import type { AccountStore } from '../accounts/store.ts'
import type { ReverseProxy } from '../proxy/reverse.ts'
import type { ProxyOptions, ProxyRoute } from '../proxy/settings.ts'
import type { TlsOptions } from '../../server/tls.ts'
import type { SiteSettings } from './site-settings.ts'
import type { ContentCoding } from '../../server/compression.ts'
import { COMPRESS_DEFAULTS, CompressedVariants, DynamicCompression } from './compress.ts'

export const DEMO_SITE = fileURLToPath(new URL('../../../site/', import.meta.url))
const DEMO_WORK = moduleUrl('./demo-work.ts', import.meta.url)
/** The demo site's sample CGI scripts, run for /cgi-bin/ when no ROOT is given. */
export const DEMO_CGI_BIN = fileURLToPath(new URL('../../../site/cgi-bin/', import.meta.url))
/** The worker module `petrel serve --workers` gives the master (process/master.ts), which imports no application. */
export const SERVE_WORKER_MODULE = moduleUrl('./worker.ts', import.meta.url)

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
  admin?: AdminSettings
  /** The accounts demo (/account/…) on this database; off when absent. */
  accounts?: AccountsSettings
  /** Reverse proxy: requests under each prefix go to its upstream group. */
  proxy?: { routes: ProxyRoute[]; options?: Omit<ProxyOptions, 'log'> }
  /** HTTPS on `port`: certificates (PEM text, read by the caller) and settings (server/tls.ts). */
  tls?: TlsOptions
  /** With tls: a cleartext listener here answers every request with 308 to its https:// URL. */
  httpPort?: number
  /**
   * Sites (virtual hosts) from the --config file: each request is answered by the site its Host
   * names (docs/sites.md). `root`, `cgi` and `proxy.routes` are then unused; `files` are every
   * site's defaults and `proxy.options` set every site's proxy.
   */
  sites?: SiteSettings[]
  /** With sites: the limits of every site's CGI gateway (their `dir` is the site's cgiBin). */
  cgiLimits?: Omit<CgiOptions, 'dir'>
  /** With tls: Strict-Transport-Security: max-age=SECONDS on every handler's response. */
  hstsSeconds?: number
  /** HTTP Basic authentication against an htpasswd file, before every route, file, CGI script and proxy. */
  auth?: AuthSettings
  /** Password checks per client address per minute before 429, shared by `auth` and every site's auth. */
  authAttemptsPerWindow?: number
  /**
   * Levels of compression for CGI and proxied responses, where `files.compress` (or a site's
   * `compress`) turns it on; the defaults are compress.ts's DYNAMIC_LEVELS.
   */
  compressLevels?: Partial<Record<ContentCoding, number>>
  /** HTTP/2 (server/h2-connection.ts), on unless false: ALPN h2 with tls, prior knowledge on cleartext; an object sets its limits. */
  http2?: boolean | Partial<Http2Limits>
}

export interface AuthSettings {
  /** The file's name, for messages. */
  htpasswdFile: string
  /** Its text, read by the caller (a worker may not be able to read the file). */
  htpasswd: string
  /** Paths that need a password (default /*: everything). */
  path?: string
  realm?: string
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
  /** Addresses and CIDR blocks of the proxies in front: their X-Forwarded-For names the client the login limit counts. */
  trustProxy?: string[]
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
  /** The cleartext listener that redirects to HTTPS (ServeOptions.httpPort), or null. */
  redirect: HttpServer | null
  root: string
  /** The admin listener of a single process (a worker reports to its master instead). */
  admin: Admin | null
  /** The accounts demo's store, to close after the server. */
  accounts: AccountStore | null
  /** The reverse proxy (health checks, idle upstream connections), to close with the server. */
  proxy: ReverseProxy | null
  /** With `adminElsewhere`: this process's figures, for the admin listener its caller keeps; else null. */
  snapshot: ((worker: number | null) => ProcessSnapshot) | null
  /**
   * Reopen log files (SIGUSR1, after logrotate moved them). A file that cannot be opened again
   * stays in use on its old descriptor, and a line says so in the error log (which is still
   * open, on its old file if need be) besides stderr: a failed reopen is never silent.
   */
  reopenLogs(): Promise<void>
  /** Write out every buffered log line and close the files: call after server.close(). */
  closeLogs(): Promise<void>
  /**
   * Stop serving and release everything: 'quit' lets in-flight requests finish (up to
   * timeouts.shutdownMs; idle keep-alive connections get `idleGraceMs`, see HttpServer.close),
   * 'stop' cuts every connection. Then the admin listener, the proxy, the accounts store, the
   * thread pools and timers, and last the logs, every buffered line written. 'stop' during a
   * 'quit' cuts what is left; every call resolves when all is closed.
   */
  close(how: 'quit' | 'stop', idleGraceMs?: number): Promise<void>
}

const HELLO = 'Hello, World!'

function echoMessage(ws: WebSocket, data: string | Buffer, binary: boolean): void {
  ws.send(data, { binary })
}

function plaintext(_req: Request, res: Response): void {
  res.setHeader('Content-Type', 'text/plain')
  res.end(HELLO)
}

function json(_req: Request, res: Response): void {
  res.json({ message: HELLO })
}

/** The demo's CPU-heavy routes: the same scrypt hash inline (blocking the loop) and on the pool. */
function scryptRoutes(server: HttpServer, work: typeof import('./demo-work.ts'), pool: () => ThreadPool): void {
  const { default: hashPassword, SCRYPT } = work
  const answer = (res: Response, where: string, hash: string): void => res.json({ algorithm: 'scrypt', ...SCRYPT, where, hash })
  server.get('/scrypt/inline', (req, res) => answer(res, 'inline', hashPassword({ password: req.query.get('password') ?? '' })))
  server.get('/scrypt/pool', async (req, res) => {
    const hash = await pool().run<string>({ password: req.query.get('password') ?? '' }, { signal: res.signal })
    answer(res, 'pool', hash)
  })
}

/**
 * Every request answered by its site (sites.ts): each site gets its own file server, CGI gateway
 * and reverse proxy, made here as the single-site server makes its own.
 */
async function serveSites(
  server: HttpServer,
  options: ServeOptions,
  sites: readonly SiteSettings[],
  parts: Parts,
  cgiContext: CgiContext,
  proxyLog: (line: string) => void,
  makeAuth: ((settings: AuthSettings) => BasicAuth) | null,
): Promise<void> {
  const [{ siteHandler }, { cgiGateway }, { ReverseProxy }] = await Promise.all([
    import('./sites.ts'),
    sites.some((s) => s.cgiBin !== null) ? import('./cgi.ts') : { cgiGateway: null },
    sites.some((s) => s.proxy.length > 0) ? import('../proxy/reverse.ts') : { ReverseProxy: null },
  ])
  const log = cgiContext.log
  const compressing = sites.some((s) => s.compress ?? options.files?.compress === true) ? dynamicCompression(options) : null
  // One budget for the file contents every site holds, and one for the compressed variants: the
  // process holds at most --file-cache-bytes and --compress-cache-bytes, however many sites.
  const shared = {
    memory: new MemoryBudget(options.files?.fileCacheBytes ?? STATIC_DEFAULTS.fileCacheBytes),
    variants: new CompressedVariants(options.files?.compressCacheBytes ?? COMPRESS_DEFAULTS.cacheBytes),
  }
  server.fallback(
    siteHandler(sites, (site) => {
      const compress = site.compress ?? options.files?.compress === true
      const files =
        site.root === null
          ? null
          : staticFiles({
              ...options.files,
              root: site.root,
              log,
              compress,
              compressLevels: options.compressLevels,
              shared,
              ...(site.list === null ? {} : { list: site.list }),
              ...(site.maxAgeSeconds === null ? {} : { maxAgeSeconds: site.maxAgeSeconds }),
            })
      const dynamic = compress ? compressing : null
      const gateway = site.cgiBin === null || cgiGateway === null ? null : cgiGateway({ ...options.cgiLimits, dir: site.cgiBin }, cgiContext)
      const cgi = gateway === null || dynamic === null ? gateway : dynamic.around(gateway)
      const proxy: SiteParts['proxy'] = []
      if (site.proxy.length > 0 && ReverseProxy !== null) {
        const reverse = new ReverseProxy(site.proxy, { ...options.proxy?.options, log: proxyLog })
        parts.siteProxies.push(reverse)
        for (const group of reverse.groups) {
          const handle: Handler = (req, res) => reverse.handle(group, req, res)
          proxy.push({ prefix: group.prefix, handle: dynamic === null ? handle : dynamic.around(handle) })
        }
      }
      const auth = site.auth === null || makeAuth === null ? null : makeAuth(site.auth)
      return { files, cgi, proxy, auth }
    }),
  )
}

/** Compression of CGI and proxied responses at the configured levels (node:zlib is loaded on first use). */
function dynamicCompression(options: ServeOptions): DynamicCompression {
  return new DynamicCompression(options.compressLevels, options.files?.compressMinBytes)
}

/** How a worker process gets connections: its own reusePort socket, or handed over by a master listening at `handedOver`. */
export interface ListenMode {
  reusePort?: boolean
  handedOver?: AddressInfo
  /** A worker under a master: with admin on, send a metrics snapshot each second instead of serving the admin listener. */
  report?: { worker: number; send: (snapshot: ProcessSnapshot) => void }
  /** A single process keeps one admin listener across reloads: with admin on, count and offer Serving.snapshot, but listen on nothing. */
  adminElsewhere?: boolean
  /** A single process keeps the --http-port socket too, and hands its connections to Serving.redirect. */
  redirectHandedOver?: AddressInfo
}

export async function startServe(options: ServeOptions, mode: ListenMode = {}): Promise<Serving> {
  const logs = options.logs ?? {}
  const files: LogFile[] = []
  // Everything made so far, released in reverse order when start-up fails half-way: a reload
  // that fails must leave no descriptor, thread or timer behind.
  const parts: Parts = { server: null, redirect: null, admin: null, accounts: null, proxy: null, siteProxies: [], pools: [], timers: [], files }
  try {
    return await assemble(options, mode, logs, parts)
  } catch (err) {
    await closeParts(parts, 'stop', 0)
    throw err
  }
}

/** What a Serving holds that must be closed, in the order it is closed. */
interface Parts {
  server: HttpServer | null
  redirect: HttpServer | null
  admin: Admin | null
  accounts: AccountStore | null
  proxy: ReverseProxy | null
  /** One reverse proxy per site that has "proxy" rules. */
  siteProxies: ReverseProxy[]
  pools: Array<ThreadPool | null>
  timers: NodeJS.Timeout[]
  files: LogFile[]
}

async function closeParts(parts: Parts, how: 'quit' | 'stop', idleGraceMs: number): Promise<void> {
  for (const timer of parts.timers) clearInterval(timer)
  // A tunnel (an upgrade through the proxy) has left HTTP, yet the listener's close still waits for
  // its socket (net.Server counts every socket it accepted): a fast stop cuts tunnels at once, a
  // graceful one gives them timeouts.shutdownMs, as the server gives its own connections.
  const proxies = parts.proxy === null ? parts.siteProxies : [parts.proxy, ...parts.siteProxies]
  const closeProxies = (): void => {
    for (const proxy of proxies) proxy.close()
  }
  let tunnelsCut: NodeJS.Timeout | null = null
  if (how === 'stop') closeProxies()
  else if (proxies.length > 0) {
    tunnelsCut = setTimeout(closeProxies, parts.server?.timeouts.shutdownMs ?? 0)
    tunnelsCut.unref()
  }
  const closing = how === 'stop' ? { destroy: true } : { idleGraceMs }
  await Promise.all([parts.server?.close(closing), parts.redirect?.close(closing), parts.admin?.close()])
  if (tunnelsCut !== null) clearTimeout(tunnelsCut)
  if (how !== 'stop') closeProxies()
  await parts.accounts?.close()
  // No request is left to wait for a task: what is queued finishes, then the threads stop.
  await Promise.all(parts.pools.map((pool) => pool?.close()))
  await Promise.all(parts.files.map((f) => f.close()))
}

async function assemble(options: ServeOptions, mode: ListenMode, logs: LogOptions, parts: Parts): Promise<Serving> {
  const files = parts.files
  // The log modules are loaded only when a log file is asked for; HTTPS's likewise below.
  const logModules = async () => {
    const [{ LogFile, logOpenError }, { AccessLog, jsonDroppedLine }, { ErrorLog }] = await Promise.all([
      import('../../core/log-file.ts'),
      import('../../server/access-log.ts'),
      import('../../core/error-log.ts'),
    ])
    return { LogFile, logOpenError, AccessLog, jsonDroppedLine, ErrorLog }
  }
  const logging = logs.accessLog === undefined && logs.errorLog === undefined ? null : await logModules()
  const open = async (path: string, droppedLine?: (count: number) => string): Promise<LogFile> => {
    const { LogFile, logOpenError } = logging!
    const file = new LogFile(path, { droppedLine, onError: (err) => console.error(`petrel: log ${path}: ${err.message}`) })
    files.push(file)
    try {
      await file.open()
    } catch (err) {
      throw logOpenError(path, err)
    }
    return file
  }
  const format = logs.accessLogFormat ?? 'combined'
  const accessLog: AccessLog | null =
    logs.accessLog === undefined ? null : new logging!.AccessLog(await open(logs.accessLog, format === 'json' ? logging!.jsonDroppedLine : undefined), format)
  const errorLog: ErrorLog | null = logs.errorLog === undefined ? null : new logging!.ErrorLog(await open(logs.errorLog), logs.logLevel ?? 'error')
  const https = options.tls === undefined ? null : await Promise.all([import('./https-redirect.ts'), import('./tickets.ts')])
  const metrics = options.admin === undefined ? null : new (await import('../../monitor/metrics.ts')).HttpMetrics()
  const server = createServer({
    ...(metrics === null ? {} : { metrics }),
    limits: options.limits,
    timeouts: options.timeouts,
    onError: errorLog === null ? undefined : (err, req) => errorLog.error(err, req === undefined ? undefined : `${req.method} ${req.url}`),
    onResponse:
      accessLog === null
        ? undefined
        : (req, res, startedAtMs) =>
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
    ...(https === null ? {} : { tls: https[1].withTicketSecret(options).tls }),
    http2: options.http2 ?? true,
    ...(options.hstsSeconds === undefined ? {} : { responseHeaders: { 'Strict-Transport-Security': `max-age=${options.hstsSeconds}` } }),
  })
  parts.server = server
  const root = options.root ?? DEMO_SITE
  const siteAuth = options.sites?.some((s) => s.auth !== null) ?? false
  let makeAuth: ((settings: AuthSettings) => BasicAuth) | null = null
  if (options.auth !== undefined || siteAuth) {
    const [{ BasicAuth, HTPASSWD_WORK, authLimiter }, { parseHtpasswd }, { ThreadPool }] = await Promise.all([
      import('./basic-auth.ts'),
      import('./htpasswd.ts'),
      import('../../process/pool/thread-pool.ts'),
    ])
    // One pool and one limiter for the server's auth and every site's: a client gets one allowance
    // of password checks per process, however many sites it asks. The pool is made on first
    // check: a process that is never asked for a password starts no threads.
    const slot = parts.pools.push(null) - 1
    const pool = (): ThreadPool => (parts.pools[slot] ??= new ThreadPool({ filename: HTPASSWD_WORK, ...options.pool }))
    const verify = (task: { password: string; hash: string }, signal: AbortSignal): Promise<boolean> => pool().run<boolean>(task, { signal })
    const limiter = authLimiter({ attemptsPerWindow: options.authAttemptsPerWindow })
    makeAuth = (settings) =>
      new BasicAuth({ users: parseHtpasswd(settings.htpasswd, settings.htpasswdFile), path: settings.path, realm: settings.realm, limiter, verify })
  }
  if (options.auth !== undefined && makeAuth !== null) {
    const auth = makeAuth(options.auth)
    server.guard((req, res) => auth.check(req, res))
  }
  // What a configuration does not use is not loaded: a worker serving files holds the code of a
  // file server, not that of the thread pool, the database drivers, the proxy, CGI or the admin
  // (docs/process.md, "Memory").
  if (options.root === null && options.sites === undefined) {
    server.get('/plaintext', plaintext)
    server.get('/json', json)
    // A WebSocket that answers every message with itself (site/echo.html talks to it).
    server.websocket('/ws/echo', { message: echoMessage }, { compress: true })
    const [work, { ThreadPool }] = await Promise.all([import('./demo-work.ts'), import('../../process/pool/thread-pool.ts')])
    // Made on first use: a worker process that never gets the route starts no threads.
    const slot = parts.pools.push(null) - 1
    scryptRoutes(server, work, () => (parts.pools[slot] ??= new ThreadPool({ filename: DEMO_WORK, ...options.pool })))
  }
  if (options.accounts !== undefined) {
    const settings = options.accounts
    const [{ accountRoutes, PASSWORD_WORK }, { parseDatabase }, { allowList }, { ThreadPool }] = await Promise.all([
      import('../accounts/accounts.ts'),
      import('../accounts/store.ts'),
      import('../../core/allow-list.ts'),
      import('../../process/pool/thread-pool.ts'),
    ])
    const target = parseDatabase(settings.database)
    const storeOptions = { poolMax: settings.poolMax, acquireTimeoutMs: settings.acquireTimeoutMs }
    const store =
      target.kind === 'postgres'
        ? await (await import('../accounts/pg-store.ts')).PgStore.open(target.url, storeOptions)
        : await (await import('../accounts/sqlite-store.ts')).SqliteStore.open(target.file, storeOptions)
    parts.accounts = store
    const slot = parts.pools.push(null) - 1
    const trustProxy = settings.trustProxy === undefined ? null : allowList(settings.trustProxy)
    accountRoutes(server, {
      store,
      hashing: settings.hashing,
      attemptsPerWindow: settings.attemptsPerWindow,
      trustProxy,
      pool: () => (parts.pools[slot] ??= new ThreadPool({ filename: PASSWORD_WORK, ...options.pool })),
    })
    const sweep = setInterval(() => {
      store.deleteExpiredSessions(Date.now()).catch((err: Error) => server.reportError(err))
    }, SESSION_SWEEP_MS)
    sweep.unref()
    parts.timers.push(sweep)
  }
  // Lines for the error log from the file server and the CGI gateway.
  // Without an error log, lines go to stderr escaped as the log would escape them: they quote clients and upstreams.
  const toStderr = (line: string): void => console.error(`petrel: ${escapeMessage(line)}`)
  const logError = errorLog === null ? toStderr : (line: string) => errorLog.error(line)
  const cgiContext = {
    serverPort: () => server.address()?.port ?? 0,
    software: `petrel/${PETREL_VERSION}`,
    log: logError,
    dispatch: (req: Request, res: Response) => server.dispatch(req, res),
    internalRequest: (original: Request, target: string) => internalRequest(original, target, server.limits),
  }
  // Single-site --compress: CGI and proxied responses too (files have their own cached variants).
  const compressing = options.sites === undefined && options.files?.compress === true ? dynamicCompression(options) : null
  if (options.sites !== undefined) {
    await serveSites(server, options, options.sites, parts, cgiContext, errorLog === null ? toStderr : (line) => errorLog.warn(line), makeAuth)
  } else if (options.cgi === undefined) {
    const fileHandler = staticFiles({ ...options.files, compressLevels: options.compressLevels, root, log: logError })
    server.fallback(fileHandler)
  } else {
    const fileHandler = staticFiles({ ...options.files, compressLevels: options.compressLevels, root, log: logError })
    const { cgiGateway, CGI_PREFIX } = await import('./cgi.ts')
    const gateway = cgiGateway(options.cgi, cgiContext)
    const cgi = compressing === null ? gateway : compressing.around(gateway)
    // req.path is normalised by the server, so every other spelling of a /cgi-bin/ URL
    // (/cgi%2Dbin/x, /a/../cgi-bin/x, //cgi-bin/x) is /cgi-bin/x here and never reaches the file
    // handler, which would serve the script's source when DIR is ROOT/cgi-bin.
    server.fallback((req, res) => (req.path.startsWith(CGI_PREFIX) ? cgi(req, res) : fileHandler(req, res)))
  }
  if (options.proxy !== undefined && options.proxy.routes.length > 0 && options.sites === undefined) {
    const { ReverseProxy } = await import('../proxy/reverse.ts')
    const reverse = new ReverseProxy(options.proxy.routes, { ...options.proxy.options, log: errorLog === null ? toStderr : (line) => errorLog.warn(line) })
    parts.proxy = reverse
    for (const group of reverse.groups) {
      const handle: Handler = (req, res) => reverse.handle(group, req, res)
      server.mount(group.prefix, compressing === null ? handle : compressing.around(handle))
    }
  }
  const address =
    mode.handedOver !== undefined
      ? server.serveHandedOver(mode.handedOver)
      : await server.listen({ host: options.host, port: options.port, reusePort: mode.reusePort })
  if (options.httpPort !== undefined) {
    // A single process hands connections over from the socket it keeps across reloads; each
    // worker listens itself, beside the others, as a rolling reload needs.
    const redirect = https![0].redirectToHttps(options, address.port)
    parts.redirect = redirect
    if (mode.redirectHandedOver !== undefined) redirect.serveHandedOver(mode.redirectHandedOver)
    else await redirect.listen({ host: options.host, port: options.httpPort, reusePort: true })
  }
  let snapshot: Serving['snapshot'] = null
  if (metrics !== null) {
    const { takeSnapshot } = await import('../../monitor/metrics.ts')
    const report = mode.report
    if (report !== undefined) {
      // Several times a second: see monitor/board.ts.
      const { REPORTS_PER_SECOND } = await import('../../monitor/board.ts')
      const reporter = setInterval(() => report.send(takeSnapshot(metrics, server, report.worker)), 1000 / REPORTS_PER_SECOND)
      reporter.unref()
      parts.timers.push(reporter)
    } else if (mode.adminElsewhere === true) {
      snapshot = (worker) => takeSnapshot(metrics, server, worker)
    } else {
      const [{ MetricsBoard }, { startAdmin }] = await Promise.all([import('../../monitor/board.ts'), import('../../monitor/admin.ts')])
      const board = new MetricsBoard()
      try {
        parts.admin = await startAdmin({
          ...options.admin!,
          board,
          log: (line) => console.error(`petrel: ${line}`),
          pids: () => [process.pid],
          refresh: () => board.update('self', takeSnapshot(metrics, server, null)),
        })
      } catch (err) {
        throw (
          systemFailure(err, `open the admin listener on ${hostPort(options.admin!.host, options.admin!.port)}`) ??
          new PetrelError('PETREL_ERR_LISTEN', `admin listener ${hostPort(options.admin!.host, options.admin!.port)}: ${(err as Error).message}`)
        )
      }
    }
  }
  let closing: Promise<void> | null = null
  return {
    server,
    address,
    redirect: parts.redirect,
    root,
    admin: parts.admin,
    accounts: parts.accounts,
    proxy: parts.proxy,
    snapshot,
    reopenLogs: async () => {
      const failures = await Promise.all(files.map((f) => f.reopen()))
      failures.forEach((err, i) => {
        // stderr has it already (the file's onError); the error log may be where the operator looks.
        if (err !== null) errorLog?.error(`cannot reopen log ${files[i]!.path}, still writing to the old file: ${err.message}`)
      })
    },
    closeLogs: async () => {
      await Promise.all(files.map((f) => f.close()))
    },
    close: (how, idleGraceMs = 0) => {
      // A fast stop asked for during a graceful one: HttpServer.close() is already under way, so
      // cut the connections it is waiting for; its promise then resolves as they go.
      if (closing !== null && how === 'stop') {
        for (const conn of server.connections) conn.destroy()
        void parts.redirect?.close({ destroy: true })
      }
      return (closing ??= closeParts(parts, how, idleGraceMs))
    },
  }
}
