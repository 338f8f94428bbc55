// `petrel serve [ROOT]`: flags → ServeOptions. No logic of its own beyond translation.

import { statSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Limits, type Timeouts } from '../core/limits.ts'
import { startServe, stopOnSignals, type ServeOptions } from '../apps/serve/serve.ts'
import { STATIC_DEFAULTS } from '../apps/serve/static.ts'
import { parseArgs, formatFlags, UsageError, type FlagSpec } from './args.ts'

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
  ['lingerMs', 'linger-timeout', 'draining input after closing our side'],
  ['shutdownMs', 'shutdown-timeout', 'for in-flight requests on SIGTERM/SIGINT'],
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
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
]

export const SERVE_USAGE = `Usage: petrel serve [ROOT] [flags]

Serve the files under ROOT over HTTP/1.1. Without ROOT, serve the bundled demo site
plus GET /plaintext and GET /json. TIME values: 500ms, 5s, 1m (a bare number is ms).

Flags:
${formatFlags(SERVE_FLAGS)}`

export async function serveCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, SERVE_FLAGS, 'serve')
  if (flags.has('help')) {
    console.log(SERVE_USAGE)
    return
  }
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
  const { server, address, root: served } = await startServe(options)
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  console.log(`petrel: serving ${root === null ? 'the demo site' : served} on http://${host}:${address.port}/ (pid ${process.pid})`)
  stopOnSignals(server, (line) => console.error(line))
}
