// `petrel serve [ROOT]`: flags → ServeOptions. No logic of its own beyond translation.

import { statSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Limits, type Timeouts } from '../core/limits.ts'
import { startServe, stopOnSignals, DEMO_CGI_BIN, type ServeOptions } from '../apps/serve/serve.ts'
import { STATIC_DEFAULTS } from '../apps/serve/static.ts'
import { CGI_DEFAULTS } from '../apps/serve/cgi.ts'
import { POOL_DEFAULTS } from '../process/pool/thread-pool.ts'
import { parseDatabase, STORE_DEFAULTS } from '../apps/accounts/store.ts'
import { ACCOUNT_LIMITS } from '../apps/accounts/accounts.ts'
import { parseProxyRoute, PROXY_DEFAULTS } from '../apps/proxy/reverse.ts'
import { availableParallelism } from 'node:os'
import { Master } from '../process/master.ts'
import { readPid, isAlive, writePidfile, removePidfile } from '../process/pidfile.ts'
import { parseRunAs, describeOpenFilesLimit, type RunAs } from '../process/privileges.ts'
import { daemonize, isDaemonChild, reportDaemonReady } from '../process/daemon.ts'
import { parseArgs, formatFlags, UsageError, type FlagSpec, type FlagValue } from './args.ts'
import { loadConfig, mergeFlags } from './config.ts'

/** Each limit and timeout knob of the library, as a flag. */
const LIMIT_FLAGS: ReadonlyArray<readonly [keyof Limits, string, string]> = [
  ['maxConnections', 'max-connections', 'open connections before new ones get 503'],
  ['maxHeaderBytes', 'max-header-bytes', 'bytes of request line + headers (431 beyond)'],
  ['maxHeaderCount', 'max-header-count', 'header fields per request (431 beyond)'],
  ['maxUriBytes', 'max-uri-bytes', 'bytes of the request target (414 beyond)'],
  ['maxBodyBytes', 'max-body-bytes', 'bytes of a request body (413 beyond)'],
  ['maxRequestsPerConnection', 'max-requests-per-connection', 'requests on one keep-alive connection'],
  ['writeHighWaterMark', 'write-high-water-mark', 'queued response bytes before reading pauses'],
  ['maxDrainBytes', 'max-drain-bytes', 'unread body bytes drained to keep a connection'],
]
const TIMEOUT_FLAGS: ReadonlyArray<readonly [keyof Timeouts, string, string]> = [
  ['headersMs', 'headers-timeout', 'to receive a whole request head (408)'],
  ['keepAliveMs', 'keepalive-timeout', 'idle time between requests'],
  ['bodyMs', 'body-timeout', 'longest stall while reading a body (408)'],
  ['sendMs', 'send-timeout', 'longest stall while the client reads a response'],
  ['handlerMs', 'handler-timeout', 'for a handler to start its response (503)'],
  ['lingerMs', 'linger-timeout', 'draining input after closing our side'],
  ['shutdownMs', 'shutdown-timeout', 'for in-flight requests on a graceful stop (SIGQUIT; also SIGTERM/SIGINT without --workers)'],
]

export const SERVE_FLAGS: FlagSpec[] = [
  { name: 'host', type: 'string', valueName: 'HOST', description: 'address to listen on (default 127.0.0.1)' },
  { name: 'port', short: 'p', type: 'integer', valueName: 'PORT', min: 0, max: 65535, description: 'port to listen on (default 8080; 0 picks a free one)' },
  ...LIMIT_FLAGS.map(([key, name, what]): FlagSpec => ({ name, type: 'integer', valueName: 'N', min: 1, description: `${what} (default ${DEFAULT_LIMITS[key]})` })),
  ...TIMEOUT_FLAGS.map(([key, name, what]): FlagSpec => ({ name, type: 'duration', valueName: 'TIME', min: 1, description: `${what} (default ${DEFAULT_TIMEOUTS[key]}ms)` })),
  { name: 'list', type: 'boolean', description: 'HTML listing of directories without index.html (default: 403)' },
  { name: 'follow-symlinks', type: 'boolean', description: 'follow symlinks that lead outside ROOT (default: only inside)' },
  { name: 'max-age', type: 'integer', valueName: 'SECONDS', min: 0, description: 'send Cache-Control: public, max-age=SECONDS with files' },
  { name: 'open-file-cache-valid', type: 'duration', valueName: 'TIME', min: 0, description: `trust cached file metadata this long (default ${STATIC_DEFAULTS.cacheValidMs}ms)` },
  { name: 'small-file-bytes', type: 'integer', valueName: 'N', min: 0, description: `serve files up to N bytes from memory (default ${STATIC_DEFAULTS.smallFileBytes})` },
  { name: 'max-open-files', type: 'integer', valueName: 'N', min: 0, description: `descriptors the file cache keeps open (default ${STATIC_DEFAULTS.maxOpenFiles})` },
  { name: 'cgi-bin', type: 'string', valueName: 'DIR', description: 'run the executables in DIR for URLs under /cgi-bin/ (CGI/1.1); the demo site has its own' },
  { name: 'cgi-max', type: 'integer', valueName: 'N', min: 1, description: `CGI scripts running at once (default ${CGI_DEFAULTS.maxProcesses})` },
  { name: 'cgi-queue', type: 'integer', valueName: 'N', min: 0, description: `CGI requests waiting for a slot before 503 (default ${CGI_DEFAULTS.queueLength})` },
  { name: 'cgi-timeout', type: 'duration', valueName: 'TIME', min: 1, bareUnit: 's', description: `kill a CGI script's process group after TIME of its own (waiting for a slow client does not count); 504 if it sent no head (default ${CGI_DEFAULTS.timeoutMs / 1000}s)` },
  { name: 'pool-threads', type: 'integer', valueName: 'N', min: 1, max: 1024, description: 'threads of the demo\'s pool for /scrypt/pool (default: one per CPU)' },
  { name: 'pool-queue', type: 'integer', valueName: 'N', min: 0, description: `tasks waiting for a pool thread before 503 (default ${POOL_DEFAULTS.queuePerThread} per thread)` },
  { name: 'pool-timeout', type: 'duration', valueName: 'TIME', min: 1, bareUnit: 's', description: `a pool task running longer fails with 503 (default ${POOL_DEFAULTS.taskTimeoutMs / 1000}s)` },
  { name: 'access-log', type: 'string', valueName: 'FILE', description: 'access log (combined format) to FILE, or - for stdout; off by default' },
  { name: 'access-log-format', type: 'string', valueName: 'FORMAT', description: 'combined (default) or json' },
  { name: 'error-log', type: 'string', valueName: 'FILE', description: 'error log to FILE, or - for stdout (default: stderr)' },
  { name: 'log-level', type: 'string', valueName: 'LEVEL', description: 'debug, info, warn or error (default error)' },
  { name: 'database', type: 'string', valueName: 'URL', description: 'the accounts demo (/account/) on postgres://USER@HOST/DB or sqlite:FILE (default for the demo site: sqlite:petrel-data/accounts.db)' },
  { name: 'db-pool', type: 'integer', valueName: 'N', min: 1, max: 1000, description: `database connections at most (default ${STORE_DEFAULTS.poolMax})` },
  { name: 'db-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `a request waits this long for a free connection, then 503 (default ${STORE_DEFAULTS.acquireTimeoutMs}ms)` },
  { name: 'password-hashing', type: 'string', valueName: 'WHERE', description: 'where the accounts demo runs scrypt: pool (default, worker threads) or inline (on the event loop, to compare)' },
  { name: 'login-attempts', type: 'integer', valueName: 'N', min: 1, description: `login and register attempts per client address per minute before 429 (default ${ACCOUNT_LIMITS.attemptsPerWindow})` },
  { name: 'proxy', type: 'list', valueName: 'PREFIX=URL[,URL…]', description: 'reverse proxy: requests under PREFIX go to these upstreams (repeatable), e.g. /api/=http://127.0.0.1:3000,http://127.0.0.1:3001' },
  { name: 'proxy-balance', type: 'string', valueName: 'HOW', description: 'round-robin (default) or least-conn' },
  { name: 'proxy-connect-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `connecting to an upstream, then 504 (default ${PROXY_DEFAULTS.connectTimeoutMs}ms)` },
  { name: 'proxy-read-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `an upstream silent this long, then 504 (default ${PROXY_DEFAULTS.readTimeoutMs}ms)` },
  { name: 'proxy-keepalive', type: 'integer', valueName: 'N', min: 0, description: `idle connections kept per upstream (default ${PROXY_DEFAULTS.keepAlive})` },
  { name: 'proxy-fail-timeout', type: 'duration', valueName: 'TIME', min: 0, description: `an upstream that failed is skipped this long (default ${PROXY_DEFAULTS.failTimeoutMs}ms)` },
  { name: 'proxy-health-interval', type: 'duration', valueName: 'TIME', min: 0, description: `active health checks this often, 0 for none (default ${PROXY_DEFAULTS.healthIntervalMs}ms)` },
  { name: 'proxy-health-path', type: 'string', valueName: 'PATH', description: `what the health check GETs (default ${PROXY_DEFAULTS.healthPath})` },
  { name: 'admin', type: 'string', valueName: 'HOST:PORT', description: 'admin listener: live dashboard at /, Prometheus /metrics, /api/snapshot for `petrel top`; counts metrics (off by default)' },
  { name: 'config', short: 'c', type: 'string', valueName: 'FILE', description: 'JSON file with any of these flags as keys (and "root"); flags given here win' },
  { name: 'workers', short: 'w', type: 'string', valueName: 'N|auto', description: 'run a master and N worker processes (auto: one per CPU); without it, one process serves' },
  { name: 'user', short: 'u', type: 'string', valueName: 'NAME[:GROUP]', description: 'workers switch to this user after binding (a root master requires it; --user root runs them as root on purpose)' },
  { name: 'daemon', type: 'boolean', description: 'detach into the background (new session; output to --daemon-log); needs --pid' },
  { name: 'daemon-log', type: 'string', valueName: 'FILE', description: 'where a daemon\'s output goes (default: /dev/null)' },
  { name: 'pid', type: 'string', valueName: 'FILE', description: 'write the process id to FILE; refuse to start if a running server holds it' },
  { name: 'signal', short: 's', type: 'string', valueName: 'NAME', description: 'send reload|stop|quit|reopen to the server in --pid FILE, and exit' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
]

const SIGNALS: Record<string, NodeJS.Signals> = { reload: 'SIGHUP', stop: 'SIGTERM', quit: 'SIGQUIT', reopen: 'SIGUSR1' }

export const SERVE_USAGE = `Usage: petrel serve [ROOT] [flags]

Serve the files under ROOT over HTTP/1.1. Without ROOT, serve the bundled demo site
plus GET /plaintext and GET /json. TIME values: 500ms, 5s, 1m (a bare number is ms).

Flags:
${formatFlags(SERVE_FLAGS)}`

/** Keys that make no sense in a configuration file. */
const NOT_IN_CONFIG = ['help', 'config', 'signal']

/** The command line, over the --config file when there is one. */
async function readSettings(argv: readonly string[]): Promise<{ flags: Map<string, FlagValue>; positionals: string[] }> {
  const cli = parseArgs(argv, SERVE_FLAGS, 'serve')
  const file = cli.flags.get('config') as string | undefined
  if (file === undefined) return cli
  const fromFile = await loadConfig(file, SERVE_FLAGS, { exclude: NOT_IN_CONFIG })
  const root = fromFile.get('root') as string | undefined
  fromFile.delete('root')
  return { flags: mergeFlags(fromFile, cli.flags), positionals: cli.positionals.length === 0 && root !== undefined ? [root] : cli.positionals }
}

export async function serveCommand(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    parseArgs(argv, SERVE_FLAGS, 'serve')
    console.log(SERVE_USAGE)
    return
  }
  const { flags, positionals } = await readSettings(argv)
  const pidFile = flags.get('pid') as string | undefined
  if (flags.has('signal')) return sendSignal(flags.get('signal') as string, pidFile)
  if (flags.has('daemon') && !isDaemonChild()) {
    if (pidFile === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--daemon needs --pid FILE, so that `petrel serve --signal stop --pid FILE` can find the server')
    // Check everything before detaching: errors belong on the terminal, not in a log file.
    buildOptions(flags, positionals)
    process.exit(await daemonize(flags.get('daemon-log') as string | undefined))
  }
  if (flags.has('workers')) {
    const workers = parseWorkers(flags.get('workers') as string)
    const runAs = resolveRunAs(flags.get('user') as string | undefined)
    const master = new Master({
      workers,
      runAs,
      onReady: reportDaemonReady,
      options: buildOptions(flags, positionals),
      // A reload reads the --config file and checks ROOT again; any error keeps the old workers.
      reload: async () => {
        const again = await readSettings(argv)
        return buildOptions(again.flags, again.positionals)
      },
      pidFile,
      log: (line) => console.error(line),
    })
    process.exit(await master.run())
  }
  const options = buildOptions(flags, positionals)
  if (pidFile !== undefined) {
    writePidfile(pidFile)
    process.on('exit', () => removePidfile(pidFile))
  }
  const serving = await startServe(options)
  const { server, address, root: served } = serving
  console.log(`petrel: serving ${options.root === null ? 'the demo site' : served} on ${httpUrl(address)} (pid ${process.pid}; ${describeOpenFilesLimit(server.limits.maxConnections)})`)
  if (serving.admin !== null) console.log(`petrel: admin (dashboard, /metrics) on ${httpUrl(serving.admin.address)}`)
  stopOnSignals(serving, (line) => console.error(line))
  reportDaemonReady()
}

/** Who workers run as. A root master must be told: a name to drop to, or root on purpose. */
function resolveRunAs(value: string | undefined): RunAs | null {
  if (value !== undefined) {
    try {
      return parseRunAs(value)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', (err as Error).message)
    }
  }
  if (process.getuid?.() === 0) {
    throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', 'workers would run as root; give --user NAME[:GROUP] to drop privileges after binding, or --user root to run them as root on purpose')
  }
  return null
}

export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism()
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --workers: ${JSON.stringify(value)}; expected a number from 1 to 256, or auto`)
  }
  return Number(value)
}

/** `petrel serve --signal NAME --pid FILE`, like `nginx -s`. */
function httpUrl(address: { address: string; family: string; port: number }): string {
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`
}

/** Flags that mean nothing without another: the first one given is an error, `--NAME why`. */
function refuseFlags(flags: Map<string, unknown>, names: readonly string[], why: string): void {
  for (const name of names) if (flags.has(name)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `--${name} ${why}`)
}

/** Where the demo site keeps its accounts when no --database is given (relative to the working directory). */
const DEMO_DATABASE = 'sqlite:petrel-data/accounts.db'

/** "HOST:PORT" (or "[V6]:PORT") for --admin. */
export function parseHostPort(flag: string, value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':')
  const host = value.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || host === '' || !/^\d+$/.test(value.slice(colon + 1)) || port > 65535) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --${flag}: ${JSON.stringify(value)}; expected HOST:PORT, e.g. 127.0.0.1:8081`)
  }
  return { host, port }
}

function sendSignal(name: string, pidFile: string | undefined): void {
  const signal = SIGNALS[name]
  if (signal === undefined) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --signal: ${JSON.stringify(name)}; expected one of ${Object.keys(SIGNALS).join(', ')}`)
  if (pidFile === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--signal needs --pid FILE: the pidfile of the server to signal')
  const pid = readPid(pidFile)
  if (pid === null || !isAlive(pid)) throw new UsageError('PETREL_ERR_NO_SERVER', `no running server in ${pidFile}${pid === null ? '' : ` (process ${pid} is gone)`}`)
  process.kill(pid, signal)
}

/** Flags and ROOT → ServeOptions; throws UsageError naming what is wrong. */
function buildOptions(flags: Map<string, unknown>, positionals: string[]): ServeOptions {
  if (positionals.length > 1) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel serve\` takes one ROOT directory, got ${positionals.length}: ${positionals.join(' ')}`)
  let root: string | null = null
  if (positionals.length === 1) {
    root = path.resolve(positionals[0]!)
    let isDir = false
    try {
      isDir = statSync(root).isDirectory()
    } catch {}
    if (!isDir) throw new UsageError('PETREL_ERR_ROOT_NOT_DIRECTORY', `ROOT ${JSON.stringify(positionals[0])} is not a directory; give an existing directory or none for the demo site`)
  }
  const limits: Partial<Limits> = {}
  for (const [key, name] of LIMIT_FLAGS) if (flags.has(name)) limits[key] = flags.get(name) as number
  const timeouts: Partial<Timeouts> = {}
  for (const [key, name] of TIMEOUT_FLAGS) if (flags.has(name)) timeouts[key] = flags.get(name) as number
  const options: ServeOptions = {
    root,
    host: (flags.get('host') as string | undefined) ?? '127.0.0.1',
    port: (flags.get('port') as number | undefined) ?? 8080,
    limits,
    timeouts,
    files: {
      list: flags.has('list'),
      followSymlinks: flags.has('follow-symlinks'),
      maxAgeSeconds: flags.get('max-age') as number | undefined,
      cacheValidMs: flags.get('open-file-cache-valid') as number | undefined,
      smallFileBytes: flags.get('small-file-bytes') as number | undefined,
      maxOpenFiles: flags.get('max-open-files') as number | undefined,
    },
  }
  const cgiDir = flags.get('cgi-bin') as string | undefined
  if (cgiDir !== undefined) {
    let isDir = false
    try {
      isDir = statSync(cgiDir).isDirectory()
    } catch {}
    if (!isDir) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --cgi-bin: ${JSON.stringify(cgiDir)} is not a directory; give the directory that holds the scripts`)
  }
  if (cgiDir === undefined && root !== null) refuseFlags(flags, ['cgi-max', 'cgi-queue', 'cgi-timeout'], 'needs --cgi-bin DIR')
  if (cgiDir !== undefined || root === null) {
    options.cgi = {
      dir: cgiDir === undefined ? DEMO_CGI_BIN : path.resolve(cgiDir),
      maxProcesses: flags.get('cgi-max') as number | undefined,
      queueLength: flags.get('cgi-queue') as number | undefined,
      timeoutMs: flags.get('cgi-timeout') as number | undefined,
    }
  }
  if (root !== null) refuseFlags(flags, ['pool-threads', 'pool-queue', 'pool-timeout'], "applies to the demo site's /scrypt/pool route; drop it or ROOT")
  if (root === null) {
    options.pool = {
      threads: flags.get('pool-threads') as number | undefined,
      maxQueue: flags.get('pool-queue') as number | undefined,
      taskTimeoutMs: flags.get('pool-timeout') as number | undefined,
    }
  }
  const format = flags.get('access-log-format') as string | undefined
  if (format !== undefined && format !== 'combined' && format !== 'json') throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --access-log-format: ${JSON.stringify(format)}; expected combined or json`)
  const level = flags.get('log-level') as string | undefined
  if (level !== undefined && !['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --log-level: ${JSON.stringify(level)}; expected debug, info, warn or error`)
  if (flags.has('admin')) options.admin = parseHostPort('admin', flags.get('admin') as string)
  const proxyRoutes = (flags.get('proxy') as string[] | undefined) ?? []
  if (proxyRoutes.length > 0) {
    const routes = proxyRoutes.map((text) => {
      try {
        return parseProxyRoute(text)
      } catch (err) {
        throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy: ${(err as Error).message}`)
      }
    })
    const balance = flags.get('proxy-balance') as string | undefined
    if (balance !== undefined && balance !== 'round-robin' && balance !== 'least-conn') throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy-balance: ${JSON.stringify(balance)}; expected round-robin or least-conn`)
    const healthPath = flags.get('proxy-health-path') as string | undefined
    if (healthPath !== undefined && !healthPath.startsWith('/')) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy-health-path: ${JSON.stringify(healthPath)}; a path starts with /`)
    options.proxy = {
      routes,
      options: {
        balance: balance as 'round-robin' | 'least-conn' | undefined,
        connectTimeoutMs: flags.get('proxy-connect-timeout') as number | undefined,
        readTimeoutMs: flags.get('proxy-read-timeout') as number | undefined,
        keepAlive: flags.get('proxy-keepalive') as number | undefined,
        failTimeoutMs: flags.get('proxy-fail-timeout') as number | undefined,
        healthIntervalMs: flags.get('proxy-health-interval') as number | undefined,
        healthPath,
      },
    }
  } else {
    refuseFlags(flags, ['proxy-balance', 'proxy-connect-timeout', 'proxy-read-timeout', 'proxy-keepalive', 'proxy-fail-timeout', 'proxy-health-interval', 'proxy-health-path'], 'applies to the reverse proxy: give --proxy PREFIX=URL too')
  }
  const database = (flags.get('database') as string | undefined) ?? (root === null ? DEMO_DATABASE : undefined)
  const hashing = flags.get('password-hashing') as string | undefined
  if (hashing !== undefined && hashing !== 'pool' && hashing !== 'inline') throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --password-hashing: ${JSON.stringify(hashing)}; expected pool or inline`)
  if (database !== undefined) {
    try {
      parseDatabase(database)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --database: ${(err as Error).message}`)
    }
    options.accounts = {
      database,
      poolMax: flags.get('db-pool') as number | undefined,
      acquireTimeoutMs: flags.get('db-timeout') as number | undefined,
      hashing: hashing as 'pool' | 'inline' | undefined,
      attemptsPerWindow: flags.get('login-attempts') as number | undefined,
    }
  } else {
    refuseFlags(flags, ['db-pool', 'db-timeout', 'password-hashing', 'login-attempts'], 'applies to the accounts demo: give --database URL too')
  }
  options.logs = {
    accessLog: flags.get('access-log') as string | undefined,
    accessLogFormat: format as 'combined' | 'json' | undefined,
    errorLog: flags.get('error-log') as string | undefined,
    logLevel: level as 'debug' | 'info' | 'warn' | 'error' | undefined,
  }
  return options
}
