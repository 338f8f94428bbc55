// `petrel serve [ROOT]`: flags → ServeOptions. No logic of its own beyond translation.

import { DEFAULT_MAX_CONFIG_BYTES } from '../core/config-file.ts'
import { statSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Limits, type Timeouts } from '../core/limits.ts'
import { DEMO_CGI_BIN, SERVE_WORKER_MODULE, type ServeOptions } from '../apps/serve/serve.ts'
import { STATIC_DEFAULTS } from '../apps/serve/static.ts'
import { CGI_DEFAULTS } from '../apps/serve/cgi-message.ts'
import { POOL_DEFAULTS } from '../process/pool/thread-pool.ts'
import { describeDatabase, parseDatabase, STORE_DEFAULTS } from '../apps/accounts/store.ts'
import { allowList } from '../core/allow-list.ts'
import { ACCOUNT_LIMITS } from '../apps/accounts/limits.ts'
import { parseProxyRoute, protocolNames, PROXY_DEFAULTS } from '../apps/proxy/settings.ts'
import { availableParallelism } from 'node:os'
import { httpUrl } from '../process/listener.ts'
import { SIGNAL_ACTIONS, signalFor } from '../process/signals.ts'
import { readPid, isAlive, identify } from '../process/pidfile.ts'
import { parseRunAs, describeOpenFilesLimit, type RunAs } from '../process/privileges.ts'
import { daemonize, isDaemonChild, reportDaemonFailed, reportDaemonReady } from '../process/daemon.ts'
import { DEFAULT_START_TIMEOUT_MS } from '../process/supervisor.ts'
import { errorMessage, systemErrorCode } from '../core/errors.ts'
import { defineFlags, parseArgs, oneOf, formatFlags, formatDuration, TIME_HELP, UsageError, type FlagMap, type FlagSpec, type Flags } from './args.ts'
import { loadConfig, mergeFlags } from './config.ts'
import { parseHostPort } from './address.ts'
import { adminTokenFlags, adminTokenFromFlags } from './admin-flags.ts'
import { adminHostProblem } from '../monitor/access.ts'
import type { AdminSettings } from '../monitor/admin.ts'

/** Each limit and timeout knob of the library, as a flag. */
const LIMIT_FLAGS = [
  ['maxConnections', 'max-connections', 'open connections before new ones get 503'],
  ['maxHeaderBytes', 'max-header-bytes', 'bytes of request line + headers (431 beyond)'],
  ['maxHeaderCount', 'max-header-count', 'header fields per request (431 beyond)'],
  ['maxUriBytes', 'max-uri-bytes', 'bytes of the request target (414 beyond)'],
  ['maxBodyBytes', 'max-body-bytes', 'bytes of a request body (413 beyond)'],
  ['maxRequestsPerConnection', 'max-requests-per-connection', 'requests on one keep-alive connection'],
  ['writeHighWaterMark', 'write-high-water-mark', 'queued response bytes before reading pauses'],
  ['maxDrainBytes', 'max-drain-bytes', 'unread body bytes drained to keep a connection'],
] as const satisfies ReadonlyArray<readonly [keyof Limits, string, string]>
const TIMEOUT_FLAGS = [
  ['headersMs', 'headers-timeout', 'to receive a whole request head (408)'],
  ['keepAliveMs', 'keepalive-timeout', 'idle time between requests'],
  ['bodyMs', 'body-timeout', 'longest stall while reading a body (408)'],
  ['sendMs', 'send-timeout', 'longest stall while the client reads a response'],
  ['handlerMs', 'handler-timeout', 'for a handler to start its response (503)'],
  ['lingerMs', 'linger-timeout', 'draining input after closing our side'],
  ['shutdownMs', 'shutdown-timeout', 'for in-flight requests on a graceful stop (SIGQUIT) and on the old server after a reload'],
] as const satisfies ReadonlyArray<readonly [keyof Timeouts, string, string]>

export const SERVE_FLAGS = defineFlags([
  { name: 'host', type: 'string', valueName: 'HOST', description: 'address to listen on (default 127.0.0.1)' },
  { name: 'port', short: 'p', type: 'integer', valueName: 'PORT', min: 0, max: 65535, description: 'port to listen on (default 8080; 0 picks a free one)' },
  ...LIMIT_FLAGS.map(([key, name, what]): FlagSpec<typeof name, 'integer'> => ({ name, type: 'integer', valueName: 'N', min: 1, description: `${what} (default ${DEFAULT_LIMITS[key]})` })),
  ...TIMEOUT_FLAGS.map(([key, name, what]): FlagSpec<typeof name, 'duration'> => ({ name, type: 'duration', valueName: 'TIME', min: 1, description: `${what} (default ${formatDuration(DEFAULT_TIMEOUTS[key])})` })),
  { name: 'list', type: 'boolean', description: 'HTML listing of directories without index.html (default: 403)' },
  { name: 'follow-symlinks', type: 'boolean', description: 'follow symlinks that lead outside ROOT (default: only inside)' },
  { name: 'max-age', type: 'integer', valueName: 'SECONDS', min: 0, description: 'send Cache-Control: public, max-age=SECONDS with files' },
  { name: 'open-file-cache-valid', type: 'duration', valueName: 'TIME', min: 0, description: `trust cached file metadata this long (default ${formatDuration(STATIC_DEFAULTS.cacheValidMs)})` },
  { name: 'small-file-bytes', type: 'integer', valueName: 'N', min: 0, description: `serve files up to N bytes from memory (default ${STATIC_DEFAULTS.smallFileBytes})` },
  { name: 'max-open-files', type: 'integer', valueName: 'N', min: 0, description: `descriptors the file cache keeps open (default ${STATIC_DEFAULTS.maxOpenFiles})` },
  { name: 'cgi-bin', type: 'string', valueName: 'DIR', description: 'run the executables in DIR for URLs under /cgi-bin/ (CGI/1.1); the demo site has its own' },
  { name: 'cgi-max', type: 'integer', valueName: 'N', min: 1, description: `CGI scripts running at once (default ${CGI_DEFAULTS.maxProcesses})` },
  { name: 'cgi-queue', type: 'integer', valueName: 'N', min: 0, description: `CGI requests waiting for a slot before 503 (default ${CGI_DEFAULTS.queueLength})` },
  { name: 'cgi-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `kill a CGI script's process group after TIME of its own (waiting for a slow client does not count); 504 if it sent no head (default ${formatDuration(CGI_DEFAULTS.timeoutMs)})` },
  { name: 'pool-threads', type: 'integer', valueName: 'N', min: 1, max: 1024, description: 'threads of the demo\'s pool for /scrypt/pool (default: one per CPU)' },
  { name: 'pool-queue', type: 'integer', valueName: 'N', min: 0, description: `tasks waiting for a pool thread before 503 (default ${POOL_DEFAULTS.queuePerThread} per thread)` },
  { name: 'pool-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `a pool task running longer fails with 503 (default ${formatDuration(POOL_DEFAULTS.taskTimeoutMs)})` },
  { name: 'access-log', type: 'string', valueName: 'FILE', description: 'access log (combined format) to FILE, or - for stdout; off by default' },
  { name: 'access-log-format', type: 'string', valueName: 'FORMAT', description: 'combined (default) or json' },
  { name: 'error-log', type: 'string', valueName: 'FILE', description: 'error log to FILE, or - for stdout (default: stderr)' },
  { name: 'log-level', type: 'string', valueName: 'LEVEL', description: 'debug, info, warn or error (default error)' },
  { name: 'database', type: 'string', valueName: 'URL', description: 'the accounts demo (/account/) on postgres://USER@HOST/DB or sqlite:FILE (default for the demo site: sqlite:petrel-data/accounts.db)' },
  { name: 'db-pool', type: 'integer', valueName: 'N', min: 1, max: 1000, description: `database connections at most (default ${STORE_DEFAULTS.poolMax})` },
  { name: 'db-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `a request waits this long for a free connection, then 503 (default ${formatDuration(STORE_DEFAULTS.acquireTimeoutMs)})` },
  { name: 'password-hashing', type: 'string', valueName: 'WHERE', description: 'where the accounts demo runs scrypt: pool (default, worker threads) or inline (on the event loop, to compare)' },
  { name: 'login-attempts', type: 'integer', valueName: 'N', min: 1, description: `login and register attempts per client address per minute before 429 (default ${ACCOUNT_LIMITS.attemptsPerWindow})` },
  { name: 'trust-proxy', type: 'list', valueName: 'CIDR[,CIDR…]', description: 'the proxies in front (addresses or CIDR blocks, repeatable): from them, the login limit counts the client X-Forwarded-For names. Default: none, the peer\'s address counts' },
  { name: 'proxy', type: 'list', valueName: 'PREFIX=URL[,URL…]', description: 'reverse proxy: requests under PREFIX go to these upstreams (repeatable), e.g. /api/=http://127.0.0.1:3000,http://127.0.0.1:3001' },
  { name: 'proxy-balance', type: 'string', valueName: 'HOW', description: 'round-robin (default) or least-conn' },
  { name: 'proxy-connect-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `connecting to an upstream, then the next one (504 when none is left; default ${formatDuration(PROXY_DEFAULTS.connectTimeoutMs)})` },
  { name: 'proxy-read-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `an upstream silent this long, then 504 (default ${formatDuration(PROXY_DEFAULTS.readTimeoutMs)})` },
  { name: 'proxy-keepalive', type: 'integer', valueName: 'N', min: 0, description: `idle connections kept per upstream (default ${PROXY_DEFAULTS.keepAlive})` },
  { name: 'proxy-fail-timeout', type: 'duration', valueName: 'TIME', min: 0, description: `an upstream that failed is skipped this long (default ${formatDuration(PROXY_DEFAULTS.failTimeoutMs)})` },
  { name: 'proxy-health-path', type: 'string', valueName: 'PATH', description: 'active health checks: GET PATH on each upstream; not 2xx → down until a check passes (default: no active checks)' },
  { name: 'proxy-health-interval', type: 'duration', valueName: 'TIME', min: 0, description: `how often the --proxy-health-path checks run, 0 for none (default ${formatDuration(PROXY_DEFAULTS.healthIntervalMs)})` },
  { name: 'proxy-health-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `a --proxy-health-path check not answered 2xx within TIME fails (default ${formatDuration(PROXY_DEFAULTS.healthTimeoutMs)})` },
  { name: 'proxy-max-response-header-bytes', type: 'integer', valueName: 'N', min: 1, description: `bytes of an upstream's response head (502 beyond; default ${PROXY_DEFAULTS.maxResponseHeaderBytes})` },
  { name: 'proxy-max-response-header-count', type: 'integer', valueName: 'N', min: 1, description: `header fields of an upstream's response (502 beyond; default ${PROXY_DEFAULTS.maxResponseHeaderCount})` },
  { name: 'proxy-upgrade-protocols', type: 'string', valueName: 'LIST', description: `protocols a client may switch to through the proxy (Upgrade), comma-separated; '' for none (default ${PROXY_DEFAULTS.upgradeProtocols.join(',')})` },
  { name: 'proxy-underscores-in-headers', type: 'boolean', description: 'pass on request header fields whose names hold _ (default: dropped, as nginx does, since X_Real-IP and X-Real-IP read the same to many upstreams)' },
  { name: 'admin', type: 'string', valueName: 'HOST:PORT', description: 'admin listener: live dashboard at /, Prometheus /metrics, /api/snapshot for `petrel top`; counts metrics (off by default)' },
  { name: 'admin-host', type: 'list', valueName: 'NAME', description: 'a Host name the admin listener also answers to (repeatable); it always answers to IP addresses, localhost and the --admin HOST, any other name gets 421 (DNS rebinding)' },
  ...adminTokenFlags('the admin listener\'s /events, /api/snapshot and /metrics need Authorization: Bearer TOKEN (16+ characters)'),
  { name: 'config', short: 'c', type: 'string', valueName: 'FILE', description: 'JSON file with any of these flags as keys (and "root"); flags given here win' },
  { name: 'max-config-bytes', type: 'integer', valueName: 'BYTES', min: 1, description: `largest --config file read, at start and on SIGHUP (default ${DEFAULT_MAX_CONFIG_BYTES})` },
  { name: 'workers', short: 'w', type: 'string', valueName: 'N|auto', wholeNumber: true, description: 'run a master and N worker processes (auto: one per CPU); without it, one process serves' },
  { name: 'user', short: 'u', type: 'string', valueName: 'NAME[:GROUP]', description: 'workers switch to this user after binding (needs --workers; a root master requires it; --user root runs them as root on purpose)' },
  { name: 'worker-start-timeout', type: 'duration', valueName: 'TIME', min: 1, description: `with --workers: a worker not listening after TIME is killed; at start the server does not start, on a reload the reload is refused (default ${formatDuration(DEFAULT_START_TIMEOUT_MS)})` },
  { name: 'daemon', type: 'boolean', description: 'detach into the background (new session; output to --daemon-log); needs --pid' },
  { name: 'daemon-log', type: 'string', valueName: 'FILE', description: 'where a daemon\'s output goes (default: /dev/null)' },
  { name: 'pid', type: 'string', valueName: 'FILE', description: 'write the process id to FILE; refuse to start if a running server holds it' },
  { name: 'signal', short: 's', type: 'string', valueName: 'NAME', description: 'send reload|stop|quit|reopen to the server in --pid FILE, and exit' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

/** The flags of `petrel serve`, typed by their specs. */
type ServeFlags = FlagMap<Flags<typeof SERVE_FLAGS>>
type ServeFlagName = (typeof SERVE_FLAGS)[number]['name']

export const SERVE_USAGE = `Usage: petrel serve [ROOT] [flags]

Serve the files under ROOT over HTTP/1.1. Without ROOT, serve the bundled demo site
plus GET /plaintext and GET /json.
${TIME_HELP}

Flags:
${formatFlags(SERVE_FLAGS)}`

/** Keys that make no sense in a configuration file. */
const NOT_IN_CONFIG = ['help', 'config', 'signal', 'max-config-bytes']

/** The command line, over the --config file when there is one. */
async function readSettings(argv: readonly string[]): Promise<{ flags: ServeFlags; positionals: string[] }> {
  const cli = parseArgs(argv, SERVE_FLAGS, 'serve')
  const file = cli.flags.get('config')
  if (file === undefined) return cli
  const fromFile = await loadConfig(file, SERVE_FLAGS, { exclude: NOT_IN_CONFIG, maxBytes: cli.flags.get('max-config-bytes') })
  const root = fromFile.get('root')
  return { flags: mergeFlags(fromFile, cli.flags), positionals: cli.positionals.length === 0 && root !== undefined ? [root] : cli.positionals }
}

export async function serveCommand(argv: readonly string[]): Promise<void> {
  try {
    await serve(argv)
  } catch (err) {
    // A daemon's output may go nowhere: the parent waiting on the terminal prints the line.
    await reportDaemonFailed(err)
    throw err
  }
}

async function serve(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    parseArgs(argv, SERVE_FLAGS, 'serve')
    console.log(SERVE_USAGE)
    return
  }
  const { flags, positionals } = await readSettings(argv)
  const pidFile = flags.get('pid')
  const signal = flags.get('signal')
  if (signal !== undefined) return sendSignal(signal, pidFile)
  // A single process keeps root to rebind and reopen logs on a reload, which is what a master is for.
  if (!flags.has('workers')) refuseFlags(flags, ['user'], 'needs --workers: only worker processes give up root (a single process must keep it to rebind and reopen its logs on a reload)')
  if (!flags.has('workers')) refuseFlags(flags, ['worker-start-timeout'], 'applies to worker processes; give --workers N too')
  if (flags.has('daemon') && !isDaemonChild()) {
    if (pidFile === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--daemon needs --pid FILE, so that `petrel serve --signal stop --pid FILE` can find the server')
    // Check everything before detaching: errors belong on the terminal, not in a log file.
    buildOptions(flags, positionals)
    process.exit(await daemonize(flags.get('daemon-log')))
  }
  // A reload reads the --config file and checks ROOT again; any error keeps the running servers.
  const reload = async (): Promise<ServeOptions> => {
    const again = await readSettings(argv)
    return buildOptions(again.flags, again.positionals)
  }
  const log = (line: string): void => console.error(line)
  const workersGiven = flags.get('workers')
  if (workersGiven !== undefined) {
    const workers = parseWorkers(workersGiven)
    const runAs = resolveRunAs(flags.get('user'))
    const options = buildOptions(flags, positionals)
    const onReady = (): void => {
      if (options.accounts !== undefined) log(`petrel[master]: accounts (/account/) on ${describeDatabase(options.accounts.database)}`)
      reportDaemonReady()
    }
    const { Master } = await import('../process/master.ts')
    const startTimeoutMs = flags.get('worker-start-timeout') as number | undefined
    const master = new Master({ workerModule: SERVE_WORKER_MODULE, workers, startTimeoutMs, runAs, onReady, options, reload, pidFile, log })
    process.exit(await master.run())
  }
  const options = buildOptions(flags, positionals)
  const { SingleProcess } = await import('../apps/serve/single.ts')
  const single = new SingleProcess({
    options,
    reload,
    pidFile,
    log,
    onReady: (serving, admin) => {
      const { server, address, root: served } = serving
      console.log(`petrel: serving ${options.root === null ? 'the demo site' : served} on ${httpUrl(address)} (pid ${process.pid}; ${describeOpenFilesLimit(server.limits.maxConnections)})`)
      if (admin !== null) console.log(`petrel: admin (dashboard, /metrics) on ${httpUrl(admin.address)}`)
      if (options.accounts !== undefined) console.log(`petrel: accounts (/account/) on ${describeDatabase(options.accounts.database)}`)
      reportDaemonReady()
    },
  })
  process.exit(await single.run())
}

/** Who workers run as. A root master must be told: a name to drop to, or root on purpose. */
function resolveRunAs(value: string | undefined): RunAs | null {
  if (value !== undefined) {
    try {
      return parseRunAs(value)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', errorMessage(err))
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

/** Flags that mean nothing without another: the first one given is an error, `--NAME why`. */
function refuseFlags(flags: ServeFlags, names: readonly ServeFlagName[], why: string): void {
  for (const name of names) if (flags.has(name)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `--${name} ${why}`)
}

/** Where the demo site keeps its accounts when no --database is given (relative to the working directory). */
const DEMO_DATABASE = 'sqlite:petrel-data/accounts.db'

/** `petrel serve --signal NAME --pid FILE`, like `nginx -s`: only ever to a running Petrel server. */
function sendSignal(name: string, pidFile: string | undefined): void {
  const signal = signalFor(name)
  if (signal === undefined) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --signal: ${JSON.stringify(name)}; expected one of ${[...new Set(SIGNAL_ACTIONS.map(([, action]) => action))].join(', ')}`)
  if (pidFile === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--signal needs --pid FILE: the pidfile of the server to signal')
  const pid = readPid(pidFile)
  if (pid === null) throw new UsageError('PETREL_ERR_NO_SERVER', `no running server in ${pidFile} (no such file, or it holds no process id)`)
  if (!isAlive(pid)) throw new UsageError('PETREL_ERR_NO_SERVER', `no running server in ${pidFile} (process ${pid} is gone); remove the stale file`)
  const { isPetrelServer, command } = identify(pid)
  if (isPetrelServer === false) {
    throw new UsageError('PETREL_ERR_NOT_PETREL', `${pidFile} names process ${pid}, which is not a Petrel server${command === '' ? '' : ` (it runs \`${command}\`)`}: the file is stale and its pid was reused; nothing was signalled. Remove the file`)
  }
  try {
    process.kill(pid, signal)
  } catch (err) {
    if (systemErrorCode(err) !== 'EPERM') throw err
    throw new UsageError('PETREL_ERR_NO_SERVER', `not permitted to signal process ${pid} (from ${pidFile}): run this as the server's user or as root`)
  }
}

/** --trust-proxy's entries, checked (the list itself is made where it is used: it does not cross IPC). */
function trustedProxies(given: string[] | undefined): string[] | undefined {
  if (given === undefined) return undefined
  const entries = given.flatMap((value) => value.split(',')).map((entry) => entry.trim()).filter((entry) => entry !== '')
  try {
    allowList(entries)
  } catch (err) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --trust-proxy: ${errorMessage(err)}`)
  }
  return entries
}

/** --admin and the flags that go with it. The token file is read here, once: a reload does not restart the admin listener. */
function adminSettings(flags: ServeFlags, admin: string): AdminSettings {
  const settings: AdminSettings = parseHostPort('--admin', admin)
  const names = flags.get('admin-host') ?? []
  for (const name of names) {
    const problem = adminHostProblem(name)
    if (problem !== null) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --admin-host: ${JSON.stringify(name)}; ${problem}`)
  }
  if (names.length > 0) settings.allowedHosts = names
  const token = adminTokenFromFlags(flags)
  if (token !== undefined) settings.token = token
  return settings
}

/** Flags and ROOT → ServeOptions; throws UsageError naming what is wrong. */
function buildOptions(flags: ServeFlags, positionals: readonly string[]): ServeOptions {
  if (positionals.length > 1) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel serve\` takes one ROOT directory, got ${positionals.length}: ${positionals.join(' ')}`)
  let root: string | null = null
  const given = positionals[0]
  if (given !== undefined) {
    root = path.resolve(given)
    let isDir = false
    try {
      isDir = statSync(root).isDirectory()
    } catch {}
    if (!isDir) throw new UsageError('PETREL_ERR_ROOT_NOT_DIRECTORY', `ROOT ${JSON.stringify(given)} is not a directory; give an existing directory or none for the demo site`)
  }
  const limits: Partial<Limits> = {}
  for (const [key, name] of LIMIT_FLAGS) {
    const value = flags.get(name)
    if (value !== undefined) limits[key] = value
  }
  const timeouts: Partial<Timeouts> = {}
  for (const [key, name] of TIMEOUT_FLAGS) {
    const value = flags.get(name)
    if (value !== undefined) timeouts[key] = value
  }
  const options: ServeOptions = {
    root,
    host: flags.get('host') ?? '127.0.0.1',
    port: flags.get('port') ?? 8080,
    limits,
    timeouts,
    files: {
      list: flags.get('list') === true,
      followSymlinks: flags.get('follow-symlinks') === true,
      maxAgeSeconds: flags.get('max-age'),
      cacheValidMs: flags.get('open-file-cache-valid'),
      smallFileBytes: flags.get('small-file-bytes'),
      maxOpenFiles: flags.get('max-open-files'),
    },
  }
  const cgiDir = flags.get('cgi-bin')
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
      maxProcesses: flags.get('cgi-max'),
      queueLength: flags.get('cgi-queue'),
      timeoutMs: flags.get('cgi-timeout'),
    }
  }
  if (root !== null) refuseFlags(flags, ['pool-threads', 'pool-queue', 'pool-timeout'], "applies to the demo site's /scrypt/pool route; drop it or ROOT")
  if (root === null) {
    options.pool = {
      threads: flags.get('pool-threads'),
      maxQueue: flags.get('pool-queue'),
      taskTimeoutMs: flags.get('pool-timeout'),
    }
  }
  const format = oneOf('access-log-format', flags.get('access-log-format'), ['combined', 'json'])
  const level = oneOf('log-level', flags.get('log-level'), ['debug', 'info', 'warn', 'error'])
  const admin = flags.get('admin')
  if (admin !== undefined) options.admin = adminSettings(flags, admin)
  else refuseFlags(flags, ['admin-host', 'admin-token', 'admin-token-file'], 'applies to the admin listener: give --admin HOST:PORT too')
  const proxyRoutes = flags.get('proxy') ?? []
  if (proxyRoutes.length > 0) {
    const routes = proxyRoutes.map((text) => {
      try {
        return parseProxyRoute(text)
      } catch (err) {
        throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy: ${errorMessage(err)}`)
      }
    })
    const balance = oneOf('proxy-balance', flags.get('proxy-balance'), ['round-robin', 'least-conn'])
    const healthPath = flags.get('proxy-health-path')
    if (healthPath !== undefined && (!healthPath.startsWith('/') || /[\x00-\x20\x7f]/.test(healthPath))) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy-health-path: ${JSON.stringify(healthPath)}; a path starts with / and holds no spaces or control characters`)
    // Without a path there are no active checks: an interval or timeout would do nothing, so it is
    // refused — except an interval of 0, which says just that.
    if (healthPath === undefined) {
      if ((flags.get('proxy-health-interval') ?? 0) > 0) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', '--proxy-health-interval needs --proxy-health-path PATH: active health checks are off without the path to check')
      refuseFlags(flags, ['proxy-health-timeout'], 'needs --proxy-health-path PATH: active health checks are off without the path to check')
    }
    const upgrades = flags.get('proxy-upgrade-protocols')
    const upgradeProtocols = upgrades === undefined ? undefined : upgrades.split(',').map((p) => p.trim()).filter((p) => p !== '')
    if (upgradeProtocols !== undefined) {
      try {
        protocolNames(upgradeProtocols)
      } catch {
        throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy-upgrade-protocols: ${JSON.stringify(upgrades)}; expected protocol names separated by commas, e.g. websocket,h2c ('' for none)`)
      }
    }
    options.proxy = {
      routes,
      options: {
        balance,
        connectTimeoutMs: flags.get('proxy-connect-timeout'),
        readTimeoutMs: flags.get('proxy-read-timeout'),
        keepAlive: flags.get('proxy-keepalive'),
        failTimeoutMs: flags.get('proxy-fail-timeout'),
        healthIntervalMs: flags.get('proxy-health-interval'),
        healthTimeoutMs: flags.get('proxy-health-timeout'),
        healthPath,
        maxResponseHeaderBytes: flags.get('proxy-max-response-header-bytes'),
        maxResponseHeaderCount: flags.get('proxy-max-response-header-count'),
        upgradeProtocols,
        underscoresInHeaders: flags.get('proxy-underscores-in-headers') === true,
      },
    }
  } else {
    refuseFlags(flags, ['proxy-balance', 'proxy-connect-timeout', 'proxy-read-timeout', 'proxy-keepalive', 'proxy-fail-timeout', 'proxy-health-interval', 'proxy-health-path', 'proxy-health-timeout', 'proxy-max-response-header-bytes', 'proxy-max-response-header-count', 'proxy-upgrade-protocols', 'proxy-underscores-in-headers'], 'applies to the reverse proxy: give --proxy PREFIX=URL too')
  }
  const database = flags.get('database') ?? (root === null ? DEMO_DATABASE : undefined)
  const hashing = oneOf('password-hashing', flags.get('password-hashing'), ['pool', 'inline'])
  if (database !== undefined) {
    try {
      parseDatabase(database)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --database: ${errorMessage(err)}`)
    }
    options.accounts = {
      database,
      poolMax: flags.get('db-pool'),
      acquireTimeoutMs: flags.get('db-timeout'),
      hashing,
      attemptsPerWindow: flags.get('login-attempts'),
      trustProxy: trustedProxies(flags.get('trust-proxy')),
    }
  } else {
    refuseFlags(flags, ['db-pool', 'db-timeout', 'password-hashing', 'login-attempts', 'trust-proxy'], 'applies to the accounts demo: give --database URL too')
  }
  options.logs = {
    accessLog: flags.get('access-log'),
    accessLogFormat: format,
    errorLog: flags.get('error-log'),
    logLevel: level,
  }
  return options
}
