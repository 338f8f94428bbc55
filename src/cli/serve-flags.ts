// The flags of `petrel serve`, declared once: they parse the command line and a --config file,
// print --help, and type what serve.ts reads (cli/args.ts). Each default shown is the library's own
// constant, so the help cannot drift from what runs.

import { DEFAULT_MAX_CONFIG_BYTES } from '../core/config-file.ts'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Limits, type Timeouts } from '../core/limits.ts'
import { STATIC_DEFAULTS } from '../apps/serve/static.ts'
import { COMPRESS_DEFAULTS, DYNAMIC_LEVELS, STATIC_LEVELS } from '../apps/serve/compress.ts'
import { CONTENT_CODINGS, LEVEL_RANGES } from '../server/compression.ts'
import { CGI_DEFAULTS } from '../apps/serve/cgi-message.ts'
import { POOL_DEFAULTS } from '../process/pool/thread-pool.ts'
import { STORE_DEFAULTS } from '../apps/accounts/store.ts'
import { ACCOUNT_LIMITS } from '../apps/accounts/limits.ts'
import { AUTH_DEFAULTS } from '../apps/serve/auth-limits.ts'
import { PROXY_DEFAULTS } from '../apps/proxy/settings.ts'
import { DEFAULT_START_TIMEOUT_MS } from '../process/supervisor.ts'
import { defineFlags, formatFlags, formatDuration, TIME_HELP, UsageError, type FlagMap, type FlagSpec, type Flags } from './args.ts'
import { adminTokenFlags } from './admin-flags.ts'
import { TLS_FLAGS } from './tls-flags.ts'
import { HTTP2_FLAGS } from './http2-flags.ts'

/** Each limit and timeout knob of the library, as a flag. */
export const LIMIT_FLAGS = [
  ['maxConnections', 'max-connections', 'open connections before new ones get 503'],
  ['maxHeaderBytes', 'max-header-bytes', 'bytes of request line + headers (431 beyond)'],
  ['maxHeaderCount', 'max-header-count', 'header fields per request (431 beyond)'],
  ['maxUriBytes', 'max-uri-bytes', 'bytes of the request target (414 beyond)'],
  ['maxBodyBytes', 'max-body-bytes', 'bytes of a request body (413 beyond)'],
  ['maxRequestsPerConnection', 'max-requests-per-connection', 'requests on one keep-alive connection'],
  ['writeHighWaterMark', 'write-high-water-mark', 'queued response bytes before reading pauses'],
  ['maxDrainBytes', 'max-drain-bytes', 'unread body bytes drained to keep a connection'],
] as const satisfies ReadonlyArray<readonly [keyof Limits, string, string]>
export const TIMEOUT_FLAGS = [
  ['handshakeMs', 'tls-handshake-timeout', 'to finish a TLS handshake (then closed, without an answer)'],
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
  ...LIMIT_FLAGS.map(
    ([key, name, what]): FlagSpec<typeof name, 'integer'> => ({
      name,
      type: 'integer',
      valueName: 'N',
      min: 1,
      description: `${what} (default ${DEFAULT_LIMITS[key]})`,
    }),
  ),
  ...TLS_FLAGS,
  ...HTTP2_FLAGS,
  ...TIMEOUT_FLAGS.map(
    ([key, name, what]): FlagSpec<typeof name, 'duration'> => ({
      name,
      type: 'duration',
      valueName: 'TIME',
      min: 1,
      description: `${what} (default ${formatDuration(DEFAULT_TIMEOUTS[key])})`,
    }),
  ),
  { name: 'list', type: 'boolean', description: 'HTML listing of directories without index.html (default: 403)' },
  { name: 'follow-symlinks', type: 'boolean', description: 'follow symlinks that lead outside ROOT (default: only inside)' },
  { name: 'max-age', type: 'integer', valueName: 'SECONDS', min: 0, description: 'send Cache-Control: public, max-age=SECONDS with files' },
  {
    name: 'open-file-cache-valid',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `trust cached file metadata this long (default ${formatDuration(STATIC_DEFAULTS.cacheValidMs)})`,
  },
  {
    name: 'small-file-bytes',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `serve files up to N bytes from memory, within --file-cache-bytes; larger files are streamed from disk (default ${STATIC_DEFAULTS.smallFileBytes})`,
  },
  {
    name: 'file-cache-bytes',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `bytes of file contents held in memory per process; the least recently used files make room (default ${STATIC_DEFAULTS.fileCacheBytes})`,
  },
  {
    name: 'compress',
    type: 'boolean',
    description:
      'compress text, JSON, JS, SVG, XML, wasm... on the fly (zstd, br or gzip, by Accept-Encoding): files with no .br/.gz sibling once each (kept in memory; larger files as they stream from disk), CGI and proxied responses as they stream',
  },
  {
    name: 'compress-min-bytes',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `with --compress: leave files smaller than N bytes uncompressed (default ${COMPRESS_DEFAULTS.minBytes})`,
  },
  {
    name: 'compress-cache-bytes',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `with --compress: bytes of compressed files kept in memory per process (every site together); the least recently used make room (default ${COMPRESS_DEFAULTS.cacheBytes})`,
  },
  ...CONTENT_CODINGS.map((coding) => ({
    name: `compress-${coding}-level` as const,
    type: 'integer' as const,
    valueName: 'N',
    min: LEVEL_RANGES[coding][0],
    max: LEVEL_RANGES[coding][1],
    description: `with --compress: ${coding} level for CGI, proxied and streamed-file responses, ${LEVEL_RANGES[coding][0]}-${LEVEL_RANGES[coding][1]} (default ${DYNAMIC_LEVELS[coding]}; files held in memory are compressed once at ${STATIC_LEVELS[coding]})`,
  })),
  {
    name: 'max-open-files',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `descriptors the file cache keeps open (default ${STATIC_DEFAULTS.maxOpenFiles})`,
  },
  {
    name: 'cgi-bin',
    type: 'string',
    valueName: 'DIR',
    description: 'run the executables in DIR for URLs under /cgi-bin/ (CGI/1.1); the demo site has its own',
  },
  { name: 'cgi-max', type: 'integer', valueName: 'N', min: 1, description: `CGI scripts running at once (default ${CGI_DEFAULTS.maxProcesses})` },
  {
    name: 'cgi-queue',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `CGI requests waiting for a slot before 503 (default ${CGI_DEFAULTS.queueLength})`,
  },
  {
    name: 'cgi-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `kill a CGI script's process group after TIME of its own (waiting for a slow client does not count); 504 if it sent no head (default ${formatDuration(CGI_DEFAULTS.timeoutMs)})`,
  },
  {
    name: 'pool-threads',
    type: 'integer',
    valueName: 'N',
    min: 1,
    max: 1024,
    description: 'threads of the pool for the demo\'s /scrypt/pool and the password checks of --auth-htpasswd and the sites\' "auth" (default: one per CPU)',
  },
  {
    name: 'pool-queue',
    type: 'integer',
    valueName: 'N',
    min: 0,
    description: `tasks waiting for a pool thread before 503 (default ${POOL_DEFAULTS.queuePerThread} per thread)`,
  },
  {
    name: 'pool-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `a pool task running longer fails with 503 (default ${formatDuration(POOL_DEFAULTS.taskTimeoutMs)})`,
  },
  {
    name: 'auth-htpasswd',
    type: 'string',
    valueName: 'FILE',
    description:
      'HTTP Basic authentication against FILE, made by `htpasswd -B` (bcrypt) or `htpasswd -m` (apr1-MD5), before files, CGI and proxy; re-read on reload (docs/auth.md)',
  },
  {
    name: 'auth-path',
    type: 'string',
    valueName: 'PATTERN',
    description: `paths that need a password, a route pattern (default ${AUTH_DEFAULTS.path}: everything; /admin/* covers /admin too)`,
  },
  { name: 'auth-realm', type: 'string', valueName: 'NAME', description: `the realm a browser shows in its prompt (default ${AUTH_DEFAULTS.realm})` },
  {
    name: 'auth-attempts',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `password checks per client address per minute before 429, for --auth-htpasswd and the sites' "auth" together (default ${AUTH_DEFAULTS.attemptsPerWindow}; credentials already checked are not checked again)`,
  },
  { name: 'access-log', type: 'string', valueName: 'FILE', description: 'access log (combined format) to FILE, or - for stdout; off by default' },
  { name: 'access-log-format', type: 'string', valueName: 'FORMAT', description: 'combined (default) or json' },
  { name: 'error-log', type: 'string', valueName: 'FILE', description: 'error log to FILE, or - for stdout (default: stderr)' },
  { name: 'log-level', type: 'string', valueName: 'LEVEL', description: 'debug, info, warn or error (default error)' },
  {
    name: 'database',
    type: 'string',
    valueName: 'URL',
    description: 'the accounts demo (/account/) on postgres://USER@HOST/DB or sqlite:FILE (default for the demo site: sqlite:petrel-data/accounts.db)',
  },
  { name: 'db-pool', type: 'integer', valueName: 'N', min: 1, max: 1000, description: `database connections at most (default ${STORE_DEFAULTS.poolMax})` },
  {
    name: 'db-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `a request waits this long for a free connection, then 503 (default ${formatDuration(STORE_DEFAULTS.acquireTimeoutMs)})`,
  },
  {
    name: 'password-hashing',
    type: 'string',
    valueName: 'WHERE',
    description: 'where the accounts demo runs scrypt: pool (default, worker threads) or inline (on the event loop, to compare)',
  },
  {
    name: 'login-attempts',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `login and register attempts per client address per minute before 429 (default ${ACCOUNT_LIMITS.attemptsPerWindow})`,
  },
  {
    name: 'trust-proxy',
    type: 'list',
    valueName: 'CIDR[,CIDR…]',
    description:
      "the proxies in front (addresses or CIDR blocks, repeatable): from them, the login limit counts the client X-Forwarded-For names. Default: none, the peer's address counts",
  },
  {
    name: 'proxy',
    type: 'list',
    valueName: 'PREFIX=URL[,URL…]',
    description: 'reverse proxy: requests under PREFIX go to these upstreams (repeatable), e.g. /api/=http://127.0.0.1:3000,http://127.0.0.1:3001',
  },
  { name: 'proxy-balance', type: 'string', valueName: 'HOW', description: 'round-robin (default) or least-conn' },
  {
    name: 'proxy-connect-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `connecting to an upstream, then the next one (504 when none is left; default ${formatDuration(PROXY_DEFAULTS.connectTimeoutMs)})`,
  },
  {
    name: 'proxy-read-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `an upstream silent this long, then 504 (default ${formatDuration(PROXY_DEFAULTS.readTimeoutMs)})`,
  },
  { name: 'proxy-keepalive', type: 'integer', valueName: 'N', min: 0, description: `idle connections kept per upstream (default ${PROXY_DEFAULTS.keepAlive})` },
  {
    name: 'proxy-fail-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `an upstream that failed is skipped this long (default ${formatDuration(PROXY_DEFAULTS.failTimeoutMs)})`,
  },
  {
    name: 'proxy-health-path',
    type: 'string',
    valueName: 'PATH',
    description: 'active health checks: GET PATH on each upstream; not 2xx → down until a check passes (default: no active checks)',
  },
  {
    name: 'proxy-health-interval',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `how often the --proxy-health-path checks run, 0 for none (default ${formatDuration(PROXY_DEFAULTS.healthIntervalMs)})`,
  },
  {
    name: 'proxy-health-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `a --proxy-health-path check not answered 2xx within TIME fails (default ${formatDuration(PROXY_DEFAULTS.healthTimeoutMs)})`,
  },
  {
    name: 'proxy-max-response-header-bytes',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `bytes of an upstream's response head (502 beyond; default ${PROXY_DEFAULTS.maxResponseHeaderBytes})`,
  },
  {
    name: 'proxy-max-response-header-count',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `header fields of an upstream's response (502 beyond; default ${PROXY_DEFAULTS.maxResponseHeaderCount})`,
  },
  {
    name: 'proxy-upgrade-protocols',
    type: 'string',
    valueName: 'LIST',
    description: `protocols a client may switch to through the proxy (Upgrade), comma-separated; '' for none (default ${PROXY_DEFAULTS.upgradeProtocols.join(',')})`,
  },
  {
    name: 'proxy-underscores-in-headers',
    type: 'boolean',
    description:
      'pass on request header fields whose names hold _ (default: dropped, as nginx does, since X_Real-IP and X-Real-IP read the same to many upstreams)',
  },
  {
    name: 'proxy-ca',
    type: 'string',
    valueName: 'FILE',
    description: 'PEM certificates (one or more) trusted for https:// upstreams besides the system CAs: the CA of upstreams with private certificates',
  },
  {
    name: 'proxy-tls-insecure',
    type: 'boolean',
    description:
      'do not verify the certificates of https:// upstreams (anyone on the path can then read and change the traffic; logs a warning). Default: verified',
  },
  {
    name: 'admin',
    type: 'string',
    valueName: 'HOST:PORT',
    description: 'admin listener: live dashboard at /, Prometheus /metrics, /api/snapshot for `petrel top`; counts metrics (off by default)',
  },
  {
    name: 'admin-host',
    type: 'list',
    valueName: 'NAME',
    description:
      'a Host name the admin listener also answers to (repeatable); it always answers to IP addresses, localhost and the --admin HOST, any other name gets 421 (DNS rebinding)',
  },
  {
    name: 'admin-tls-cert',
    type: 'string',
    valueName: 'FILE',
    description: 'serve the admin listener over HTTPS with this PEM certificate (with --admin-tls-key)',
  },
  { name: 'admin-tls-key', type: 'string', valueName: 'FILE', description: 'the PEM private key of --admin-tls-cert' },
  ...adminTokenFlags("the admin listener's /events, /api/snapshot and /metrics need Authorization: Bearer TOKEN (16+ characters)"),
  {
    name: 'config',
    short: 'c',
    type: 'string',
    valueName: 'FILE',
    description: 'JSON file with any of these flags as keys (and "root", or "sites": virtual hosts and their rules, docs/sites.md); flags given here win',
  },
  {
    name: 'max-config-bytes',
    type: 'integer',
    valueName: 'BYTES',
    min: 1,
    description: `largest --config file read, at start and on SIGHUP (default ${DEFAULT_MAX_CONFIG_BYTES})`,
  },
  {
    name: 'workers',
    short: 'w',
    type: 'string',
    valueName: 'N|auto',
    wholeNumber: true,
    description: 'run a master and N worker processes (auto: one per CPU); without it, one process serves',
  },
  {
    name: 'user',
    short: 'u',
    type: 'string',
    valueName: 'NAME[:GROUP]',
    description: 'workers switch to this user after binding (needs --workers; a root master requires it; --user root runs them as root on purpose)',
  },
  {
    name: 'worker-start-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `with --workers: a worker not listening after TIME is killed; at start the server does not start, on a reload the reload is refused (default ${formatDuration(DEFAULT_START_TIMEOUT_MS)})`,
  },
  { name: 'daemon', type: 'boolean', description: 'detach into the background (new session; output to --daemon-log); needs --pid' },
  { name: 'daemon-log', type: 'string', valueName: 'FILE', description: "where a daemon's output goes (default: /dev/null)" },
  { name: 'pid', type: 'string', valueName: 'FILE', description: 'write the process id to FILE; refuse to start if a running server holds it' },
  { name: 'signal', short: 's', type: 'string', valueName: 'NAME', description: 'send reload|stop|quit|reopen to the server in --pid FILE, and exit' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

/** The flags of `petrel serve`, typed by their specs. */
export type ServeFlags = FlagMap<Flags<typeof SERVE_FLAGS>>
export type ServeFlagName = (typeof SERVE_FLAGS)[number]['name']

export const SERVE_USAGE = `Usage: petrel serve [ROOT] [flags]

Serve the files under ROOT over HTTP/1.1, or over HTTPS with --tls-cert and --tls-key.
Without ROOT, serve the bundled demo site plus GET /plaintext and GET /json.
${TIME_HELP}

Flags:
${formatFlags(SERVE_FLAGS)}`

/** Flags that mean nothing without another: the first one given is an error, `--NAME why`. */
export function refuseFlags(flags: ServeFlags, names: readonly ServeFlagName[], why: string): void {
  for (const name of names) if (flags.has(name)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `--${name} ${why}`)
}
