// `petrel proxy`: the forward proxy (absolute-form requests and CONNECT tunnels) behind an allow-list.

import { FORWARD_DEFAULTS, ForwardProxy, parseAllowRule, type AllowRule } from '../apps/proxy/forward.ts'
import { PROXY_DEFAULTS } from '../apps/proxy/settings.ts'
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
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const PROXY_USAGE = `Usage: petrel proxy --allow HOST[:PORT] [flags]

A forward proxy: clients send absolute-form requests (GET http://host/path) and CONNECT
host:port tunnels (for https). Only destinations in --allow are reached; anything else gets 403,
so it is never an open proxy. SIGTERM or SIGINT stops it.
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
    log,
  })
  const address = await proxy.server.listen({ host: flags.get('host') ?? FORWARD_DEFAULTS.host, port: flags.get('port') ?? FORWARD_DEFAULTS.port })
  log(
    `proxy: listening on ${address.address}:${address.port} (pid ${process.pid}); allowed: ${allow.map((r) => `${r.wildcard ? '*.' : ''}${r.host}:${r.ports === null ? '*' : r.ports.join('|')}`).join(', ')}`,
  )
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  await proxy.close()
  return 0
}
