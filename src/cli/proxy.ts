// `petrel proxy`: the forward proxy (absolute-form requests and CONNECT tunnels) behind an allow-list.

import { FORWARD_DEFAULTS, ForwardProxy, parseAllowRule, type AllowRule } from '../apps/proxy/forward.ts'
import { PROXY_DEFAULTS } from '../apps/proxy/settings.ts'
import { DEFAULT_TIMEOUTS } from '../core/limits.ts'
import { SignalLoop } from '../process/signals.ts'
import { errorMessage } from '../core/errors.ts'
import { defineFlags, parseArgs, formatFlags, formatDuration, TIME_HELP, UsageError, type FlagSpec } from './args.ts'

export const PROXY_FLAGS = defineFlags([
  { name: 'host', type: 'string', valueName: 'HOST', description: `address to listen on (default ${FORWARD_DEFAULTS.host})` },
  { name: 'port', short: 'p', type: 'integer', valueName: 'PORT', min: 0, max: 65535, description: `port to listen on (default ${FORWARD_DEFAULTS.port})` },
  {
    name: 'allow',
    short: 'a',
    type: 'list',
    valueName: 'HOST[:PORT]',
    description:
      'a destination clients may reach (repeatable, or comma-separated): example.com:443, *.example.com, 10.0.0.5:*; a bare host means ports 80 and 443. Default: none',
  },
  {
    name: 'dns-ttl',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `keep a resolved name this long (default ${formatDuration(FORWARD_DEFAULTS.dnsTtlMs)})`,
  },
  {
    name: 'connect-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `connecting to a destination, then 504 (default ${formatDuration(PROXY_DEFAULTS.connectTimeoutMs)})`,
  },
  {
    name: 'read-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `a destination silent this long, then 504 (default ${formatDuration(PROXY_DEFAULTS.readTimeoutMs)})`,
  },
  {
    name: 'tunnel-idle',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `close a CONNECT tunnel idle this long (default ${formatDuration(FORWARD_DEFAULTS.tunnelIdleMs)})`,
  },
  {
    name: 'shutdown-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `on SIGQUIT, requests in flight and open tunnels get this long, then are cut (default ${formatDuration(DEFAULT_TIMEOUTS.shutdownMs)})`,
  },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const PROXY_USAGE = `Usage: petrel proxy --allow HOST[:PORT] [flags]

A forward proxy: clients send absolute-form requests (GET http://host/path) and CONNECT
host:port tunnels (for https). Only destinations in --allow are reached; anything else gets 403,
so it is never an open proxy. SIGTERM or SIGINT stops it at once; SIGQUIT stops it gracefully
(requests in flight and open tunnels get --shutdown-timeout); SIGHUP and SIGUSR1 only log a line.
${TIME_HELP}

Flags:
${formatFlags(PROXY_FLAGS)}

Examples:
  petrel proxy --allow example.com --allow '*.internal.test:8080'
  curl -x http://127.0.0.1:3128 http://example.com/          # relayed
  curl -x http://127.0.0.1:3128 https://example.com/         # through a CONNECT tunnel`

export async function proxyCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, PROXY_FLAGS, 'proxy')
  if (flags.has('help')) {
    console.log(PROXY_USAGE)
    return 0
  }
  if (positionals.length > 0) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel proxy\` takes no arguments, got: ${positionals.join(' ')}`)
  const allow: AllowRule[] = []
  for (const entry of (flags.get('allow') ?? []).flatMap((a) => a.split(','))) {
    try {
      allow.push(parseAllowRule(entry.trim()))
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --allow: ${errorMessage(err)}`)
    }
  }
  if (allow.length === 0)
    throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', 'give at least one --allow HOST[:PORT]: without one the proxy would refuse everything')
  const log = (line: string): void => console.error(`petrel ${line}`)
  const proxy = new ForwardProxy({
    allow,
    dnsTtlMs: flags.get('dns-ttl'),
    connectTimeoutMs: flags.get('connect-timeout'),
    readTimeoutMs: flags.get('read-timeout'),
    tunnelIdleMs: flags.get('tunnel-idle'),
    shutdownMs: flags.get('shutdown-timeout'),
    log,
  })
  // Signals as events (process/signals.ts), as for `petrel serve` and `petrel chat`: HUP and USR1,
  // which would end the process by default, get a line; the proxy has no file to read again.
  let stopped = (): void => {}
  const done = new Promise<void>((resolve) => (stopped = resolve))
  const signals = new SignalLoop({
    reload: async () => log('proxy: SIGHUP: there is no configuration file to read again; restart the proxy to change its flags'),
    reopen: async () => log('proxy: SIGUSR1: there is no log file to reopen; its lines go to stderr'),
    stop: async (how) => {
      // A fast stop during a graceful one cuts what the graceful one waits for; done resolves once.
      await proxy.close(how)
      stopped()
    },
  })
  // Caught before the listening line, so that a HUP sent as soon as it shows cannot kill the proxy.
  signals.listen()
  const address = await proxy.server
    .listen({ host: flags.get('host') ?? FORWARD_DEFAULTS.host, port: flags.get('port') ?? FORWARD_DEFAULTS.port })
    .catch((err: unknown) => {
      signals.dispose()
      throw err
    })
  log(
    `proxy: listening on ${address.address}:${address.port} (pid ${process.pid}); allowed: ${allow.map((r) => `${r.wildcard ? '*.' : ''}${r.host}:${r.ports === null ? '*' : r.ports.join('|')}`).join(', ')}`,
  )
  signals.start()
  await done
  signals.dispose()
  return 0
}
