// `petrel serve [ROOT]`: flags (serve-flags.ts) → ServeOptions. No logic of its own beyond translation.

import { statSync } from 'node:fs'
import path from 'node:path'
import type { Limits, Timeouts } from '../core/limits.ts'
import { DEMO_CGI_BIN, SERVE_WORKER_MODULE, type AuthSettings, type ServeOptions } from '../apps/serve/serve.ts'
import { describeDatabase, parseDatabase } from '../apps/accounts/store.ts'
import { allowList } from '../core/allow-list.ts'
import { availableParallelism } from 'node:os'
import { httpUrl } from '../process/listener.ts'
import { SIGNAL_ACTIONS, signalFor } from '../process/signals.ts'
import { readPid, isAlive, identify } from '../process/pidfile.ts'
import { parseRunAs, describeOpenFilesLimit, type RunAs } from '../process/privileges.ts'
import { daemonize, isDaemonChild, reportDaemonFailed, reportDaemonReady } from '../process/daemon.ts'
import { errorMessage, systemErrorCode } from '../core/errors.ts'
import { hostPort } from '../core/system-failure.ts'
import { parseArgs, oneOf, UsageError, type Flags } from './args.ts'
import { loadConfig, mergeFlags } from './config.ts'
import { parseSites, SiteConfigError } from './site-config.ts'
import type { SiteSettings } from '../apps/serve/site-settings.ts'
import { parseHostPort } from './address.ts'
import { adminTokenFromFlags } from './admin-flags.ts'
import { adminHostProblem } from '../monitor/access.ts'
import type { AdminSettings } from '../monitor/admin.ts'
import { readFlagFile, tlsSettings, watchTlsFiles } from './tls-flags.ts'
import { Router } from '../server/router.ts'
import { parseHtpasswd } from '../apps/serve/htpasswd.ts'
import { realmProblem } from '../apps/serve/auth-limits.ts'
import { http2Settings } from './http2-flags.ts'
import { LIMIT_FLAGS, refuseFlags, SERVE_FLAGS, SERVE_USAGE, TIMEOUT_FLAGS, type ServeFlags } from './serve-flags.ts'
import { proxySettings } from './serve-proxy-flags.ts'

/** Keys that make no sense in a configuration file. */
const NOT_IN_CONFIG = ['help', 'config', 'signal', 'max-config-bytes']

interface Settings {
  flags: ServeFlags
  positionals: string[]
  /** The --config file's `sites`, checked; null without. */
  sites: SiteSettings[] | null
}

/** The command line, over the --config file when there is one. */
async function readSettings(argv: readonly string[]): Promise<Settings> {
  const cli = parseArgs(argv, SERVE_FLAGS, 'serve')
  const file = cli.flags.get('config')
  if (file === undefined) return { ...cli, sites: null }
  let sites: SiteSettings[] | null = null
  const fromSites = (value: unknown): void => {
    try {
      sites = parseSites(value, file)
    } catch (err) {
      if (!(err instanceof SiteConfigError)) throw err
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `config file ${file}: ${err.message}`)
    }
  }
  const fromFile = await loadConfig(file, SERVE_FLAGS, { exclude: NOT_IN_CONFIG, maxBytes: cli.flags.get('max-config-bytes'), sections: { sites: fromSites } })
  const root = fromFile.get('root')
  if (sites !== null && (root !== undefined || cli.positionals.length > 0))
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_ARGUMENT',
      `config file ${file} has "sites": give each site its "root" there, not a ROOT ${root !== undefined ? 'key' : 'argument'}`,
    )
  return { flags: mergeFlags(fromFile, cli.flags), positionals: cli.positionals.length === 0 && root !== undefined ? [root] : cli.positionals, sites }
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
  const { flags, positionals, sites } = await readSettings(argv)
  const pidFile = flags.get('pid')
  const signal = flags.get('signal')
  if (signal !== undefined) return sendSignal(signal, pidFile)
  // A single process keeps root to rebind and reopen logs on a reload, which is what a master is for.
  if (!flags.has('workers'))
    refuseFlags(
      flags,
      ['user'],
      'needs --workers: only worker processes give up root (a single process must keep it to rebind and reopen its logs on a reload)',
    )
  if (!flags.has('workers')) refuseFlags(flags, ['worker-start-timeout'], 'applies to worker processes; give --workers N too')
  if (flags.has('daemon') && !isDaemonChild()) {
    if (pidFile === undefined)
      throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--daemon needs --pid FILE, so that `petrel serve --signal stop --pid FILE` can find the server')
    // Check everything before detaching: errors belong on the terminal, not in a log file.
    buildOptions(flags, positionals, sites)
    process.exit(await daemonize(flags.get('daemon-log')))
  }
  // A reload reads the --config file and checks ROOT again; any error keeps the running servers.
  const reload = async (): Promise<ServeOptions> => {
    const again = await readSettings(argv)
    const options = buildOptions(again.flags, again.positionals, again.sites)
    // A --config file may name other certificate files (or turn the watch on or off) from now on.
    watchCertificates(watchedFiles(again.flags))
    return options
  }
  const log = (line: string): void => console.error(line)
  // The files are watched by the process that reads them: the master, or the single process.
  // Only once the server runs: its signal loop then takes the SIGHUP (before, it would end the process).
  let unwatch: (() => void) | null = null
  let watched = ''
  const watchCertificates = (files: string[] = watchedFiles(flags)): void => {
    if (files.join('\n') === watched) return
    unwatch?.()
    unwatch = null
    watched = files.join('\n')
    if (files.length > 0) unwatch = watchTlsFiles(files, () => process.kill(process.pid, 'SIGHUP'))
  }
  const workersGiven = flags.get('workers')
  if (workersGiven !== undefined) {
    const workers = parseWorkers(workersGiven)
    const runAs = resolveRunAs(flags.get('user'))
    const options = buildOptions(flags, positionals, sites)
    const onReady = (): void => {
      if (options.httpPort !== undefined) log(`petrel[master]: workers redirect http://${hostPort(options.host, options.httpPort)}/ to https`)
      if (options.accounts !== undefined) log(`petrel[master]: accounts (/account/) on ${describeDatabase(options.accounts.database)}`)
      watchCertificates()
      reportDaemonReady()
    }
    const { Master } = await import('../process/master.ts')
    const startTimeoutMs = flags.get('worker-start-timeout')
    const { withTicketSecret } = await import('../apps/serve/tickets.ts')
    const master = new Master({
      workerModule: SERVE_WORKER_MODULE,
      workers,
      startTimeoutMs,
      runAs,
      onReady,
      options,
      workerOptions: withTicketSecret,
      reload,
      pidFile,
      log,
    })
    process.exit(await master.run())
  }
  const options = buildOptions(flags, positionals, sites)
  const { SingleProcess } = await import('../apps/serve/single.ts')
  const single = new SingleProcess({
    options,
    reload,
    pidFile,
    log,
    onReady: (serving, admin) => {
      const { server, address, root: served } = serving
      // One write: a reader of the pipe sees every start-up line together, never the first alone.
      const lines = [
        `petrel: serving ${options.sites !== undefined ? `${options.sites.length} site${options.sites.length === 1 ? '' : 's'}` : options.root === null ? 'the demo site' : served} on ${httpUrl(address, options.tls === undefined ? 'http' : 'https')} (pid ${process.pid}; ${describeOpenFilesLimit(server.limits.maxConnections)})`,
      ]
      // With --http-port 0 this line is the only place the chosen port is told.
      const redirect = serving.redirect?.address()
      if (redirect != null) lines.push(`petrel: redirecting ${httpUrl(redirect)} to https`)
      if (admin !== null) lines.push(`petrel: admin (dashboard, /metrics) on ${httpUrl(admin.address, options.admin?.tls === undefined ? 'http' : 'https')}`)
      if (options.accounts !== undefined) lines.push(`petrel: accounts (/account/) on ${describeDatabase(options.accounts.database)}`)
      console.log(lines.join('\n'))
      watchCertificates()
      reportDaemonReady()
    },
  })
  process.exit(await single.run())
}

/** The certificate and key files --tls-watch watches: none without it. */
function watchedFiles(flags: ServeFlags): string[] {
  return flags.get('tls-watch') === true ? [...(flags.get('tls-cert') ?? []), ...(flags.get('tls-key') ?? [])] : []
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
    throw new UsageError(
      'PETREL_ERR_CLI_MISSING_VALUE',
      'workers would run as root; give --user NAME[:GROUP] to drop privileges after binding, or --user root to run them as root on purpose',
    )
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

/** Where the demo site keeps its accounts when no --database is given (relative to the working directory). */
const DEMO_DATABASE = 'sqlite:petrel-data/accounts.db'

/** `petrel serve --signal NAME --pid FILE`, like `nginx -s`: only ever to a running Petrel server. */
function sendSignal(name: string, pidFile: string | undefined): void {
  const signal = signalFor(name)
  if (signal === undefined)
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_VALUE',
      `bad value for --signal: ${JSON.stringify(name)}; expected one of ${[...new Set(SIGNAL_ACTIONS.map(([, action]) => action))].join(', ')}`,
    )
  if (pidFile === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', '--signal needs --pid FILE: the pidfile of the server to signal')
  const pid = readPid(pidFile)
  if (pid === null) throw new UsageError('PETREL_ERR_NO_SERVER', `no running server in ${pidFile} (no such file, or it holds no process id)`)
  if (!isAlive(pid)) throw new UsageError('PETREL_ERR_NO_SERVER', `no running server in ${pidFile} (process ${pid} is gone); remove the stale file`)
  const { isPetrelServer, command } = identify(pid)
  if (isPetrelServer === false) {
    throw new UsageError(
      'PETREL_ERR_NOT_PETREL',
      `${pidFile} names process ${pid}, which is not a Petrel server${command === '' ? '' : ` (it runs \`${command}\`)`}: the file is stale and its pid was reused; nothing was signalled. Remove the file`,
    )
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
  const entries = given
    .flatMap((value) => value.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
  try {
    allowList(entries)
  } catch (err) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --trust-proxy: ${errorMessage(err)}`)
  }
  return entries
}

/**
 * --auth-htpasswd and the flags that go with it. The file is read and checked here, at start and
 * on every reload, so a missing file stops the start (exit 2) and a bad line refuses the reload,
 * named; the text, not the path, goes to the workers (they may not be able to read it).
 */
function authSettings(flags: ServeFlags, siteAuth: boolean): AuthSettings | undefined {
  const file = flags.get('auth-htpasswd')
  if (file === undefined) {
    refuseFlags(flags, ['auth-path', 'auth-realm'], 'applies to HTTP Basic authentication: give --auth-htpasswd FILE too')
    // --auth-attempts also limits the checks of the sites' "auth".
    if (!siteAuth) refuseFlags(flags, ['auth-attempts'], 'applies to HTTP Basic authentication: give --auth-htpasswd FILE or a site an "auth" too')
    return undefined
  }
  const htpasswd = readFlagFile('--auth-htpasswd', file, 'utf8', 'PETREL_ERR_HTPASSWD')
  try {
    parseHtpasswd(htpasswd, file)
  } catch (err) {
    throw new UsageError('PETREL_ERR_HTPASSWD', `--auth-htpasswd ${errorMessage(err)}`)
  }
  const settings: AuthSettings = { htpasswdFile: file, htpasswd }
  const pattern = flags.get('auth-path')
  if (pattern !== undefined) {
    try {
      new Router<true>().add('GET', pattern, true)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --auth-path: ${errorMessage(err)}`)
    }
    settings.path = pattern
  }
  const realm = flags.get('auth-realm')
  if (realm !== undefined) {
    const problem = realmProblem(realm)
    if (problem !== null) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --auth-realm: ${JSON.stringify(realm)}; ${problem}`)
    settings.realm = realm
  }
  return settings
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
  const cert = flags.get('admin-tls-cert')
  const key = flags.get('admin-tls-key')
  const https = tlsSettings(
    {
      certs: cert === undefined ? undefined : [cert],
      keys: key === undefined ? undefined : [key],
      min: undefined,
      ciphers: undefined,
      rotateMs: undefined,
      sessionTimeoutMs: undefined,
    },
    '--admin-tls-cert',
    '--admin-tls-key',
  )
  if (https !== null) settings.tls = https
  return settings
}

/** Flags, ROOT and the config file's sites → ServeOptions; throws UsageError naming what is wrong. */
function buildOptions(flags: ServeFlags, positionals: readonly string[], sites: SiteSettings[] | null): ServeOptions {
  if (positionals.length > 1)
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel serve\` takes one ROOT directory, got ${positionals.length}: ${positionals.join(' ')}`)
  let root: string | null = null
  const given = positionals[0]
  if (given !== undefined) {
    root = path.resolve(given)
    let isDir = false
    try {
      isDir = statSync(root).isDirectory()
    } catch {}
    if (!isDir)
      throw new UsageError(
        'PETREL_ERR_ROOT_NOT_DIRECTORY',
        `ROOT ${JSON.stringify(given)} is not a directory; give an existing directory or none for the demo site`,
      )
  }
  // With sites, each site says what it serves: the flags for one root, one CGI directory and one
  // proxy would say it a second time, and the demo site's routes are not served.
  if (sites !== null) refuseFlags(flags, ['cgi-bin', 'proxy'], 'with "sites" in the config file: give each site its "cgiBin" and "proxy" there')
  const demo = root === null && sites === null
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
      fileCacheBytes: flags.get('file-cache-bytes'),
      maxOpenFiles: flags.get('max-open-files'),
      compress: flags.get('compress') === true,
      compressMinBytes: flags.get('compress-min-bytes'),
      compressCacheBytes: flags.get('compress-cache-bytes'),
    },
    compressLevels: { gzip: flags.get('compress-gzip-level'), br: flags.get('compress-br-level'), zstd: flags.get('compress-zstd-level') },
  }
  const cgiDir = flags.get('cgi-bin')
  if (cgiDir !== undefined) {
    let isDir = false
    try {
      isDir = statSync(cgiDir).isDirectory()
    } catch {}
    if (!isDir)
      throw new UsageError(
        'PETREL_ERR_CLI_BAD_VALUE',
        `bad value for --cgi-bin: ${JSON.stringify(cgiDir)} is not a directory; give the directory that holds the scripts`,
      )
  }
  const siteCgi = sites !== null && sites.some((s) => s.cgiBin !== null)
  if (cgiDir === undefined && !demo && !siteCgi) refuseFlags(flags, ['cgi-max', 'cgi-queue', 'cgi-timeout'], 'needs --cgi-bin DIR')
  if (siteCgi) options.cgiLimits = { maxProcesses: flags.get('cgi-max'), queueLength: flags.get('cgi-queue'), timeoutMs: flags.get('cgi-timeout') }
  if (cgiDir !== undefined || demo) {
    options.cgi = {
      dir: cgiDir === undefined ? DEMO_CGI_BIN : path.resolve(cgiDir),
      maxProcesses: flags.get('cgi-max'),
      queueLength: flags.get('cgi-queue'),
      timeoutMs: flags.get('cgi-timeout'),
    }
  }
  const siteAuth = sites !== null && sites.some((s) => s.auth !== null)
  const auth = authSettings(flags, siteAuth)
  if (auth !== undefined) options.auth = auth
  const attempts = flags.get('auth-attempts')
  if (attempts !== undefined) options.authAttemptsPerWindow = attempts
  if (!demo && auth === undefined && !siteAuth)
    refuseFlags(
      flags,
      ['pool-threads', 'pool-queue', 'pool-timeout'],
      'applies to the demo site\'s /scrypt/pool route, to --auth-htpasswd and to the sites\' "auth"; drop it or ROOT',
    )
  if (demo || auth !== undefined || siteAuth) {
    options.pool = {
      threads: flags.get('pool-threads'),
      maxQueue: flags.get('pool-queue'),
      taskTimeoutMs: flags.get('pool-timeout'),
    }
  }
  options.http2 = http2Settings(flags)
  const https = tlsSettings({
    certs: flags.get('tls-cert'),
    keys: flags.get('tls-key'),
    min: flags.get('tls-min'),
    ciphers: flags.get('tls-ciphers'),
    groups: flags.get('tls-groups'),
    rotateMs: flags.get('tls-ticket-rotate'),
    sessionTimeoutMs: flags.get('tls-session-timeout'),
  })
  if (https === null) {
    refuseFlags(
      flags,
      ['tls-min', 'tls-ciphers', 'tls-groups', 'tls-ticket-rotate', 'tls-session-timeout', 'tls-watch', 'tls-handshake-timeout', 'http-port', 'hsts'],
      'applies to HTTPS: give --tls-cert FILE --tls-key FILE too',
    )
  } else {
    options.tls = https
    const httpPort = flags.get('http-port')
    if (httpPort !== undefined) {
      // Every server generation (a worker, a reload's new server) binds the redirect listener
      // itself beside the others (SO_REUSEPORT): a port 0 would be another free port each time,
      // none of them the one a client was told.
      if (httpPort === 0)
        throw new UsageError(
          'PETREL_ERR_CLI_BAD_VALUE',
          '--http-port 0: every worker and every reload would pick a free port of its own; give a port number (80, say)',
        )
      if (httpPort === options.port)
        throw new UsageError(
          'PETREL_ERR_CLI_BAD_VALUE',
          `--http-port ${httpPort} is --port too: give the cleartext redirect listener a port of its own (80, say)`,
        )
      options.httpPort = httpPort
    }
    const hsts = flags.get('hsts')
    if (hsts !== undefined) options.hstsSeconds = hsts
  }
  const format = oneOf('access-log-format', flags.get('access-log-format'), ['combined', 'json'])
  const level = oneOf('log-level', flags.get('log-level'), ['debug', 'info', 'warn', 'error'])
  const admin = flags.get('admin')
  if (admin !== undefined) options.admin = adminSettings(flags, admin)
  else
    refuseFlags(
      flags,
      ['admin-host', 'admin-token', 'admin-token-file', 'admin-tls-cert', 'admin-tls-key'],
      'applies to the admin listener: give --admin HOST:PORT too',
    )
  const proxy = proxySettings(flags, sites)
  if (proxy !== undefined) options.proxy = proxy
  const database = flags.get('database') ?? (demo ? DEMO_DATABASE : undefined)
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
  if (sites !== null) options.sites = sites
  options.logs = {
    accessLog: flags.get('access-log'),
    accessLogFormat: format,
    errorLog: flags.get('error-log'),
    logLevel: level,
  }
  return options
}
