// `petrel inetd`: flags → InetdOptions, start, log, stop on a signal.

import { allowList, INETD_DEFAULTS, startInetd } from '../apps/inetd/inetd.ts'
import { SERVICE_NAMES, STANDARD_PORTS, type ServiceName } from '../apps/inetd/services.ts'
import { parseArgs, formatFlags, UsageError, type FlagSpec } from './args.ts'

export const INETD_FLAGS: FlagSpec[] = [
  { name: 'host', type: 'string', valueName: 'HOST', description: `address to listen on (default ${INETD_DEFAULTS.host})` },
  { name: 'port-offset', type: 'integer', valueName: 'N', min: 0, max: 65_000, description: `each service listens at its standard port + N (default ${INETD_DEFAULTS.portOffset}: echo on ${STANDARD_PORTS.echo + INETD_DEFAULTS.portOffset})` },
  { name: 'services', type: 'string', valueName: 'LIST', description: `comma-separated services to run (default all: ${SERVICE_NAMES.join(',')})` },
  { name: 'instances', type: 'integer', valueName: 'N', min: 1, description: `TCP connections per service at once; more are closed (default ${INETD_DEFAULTS.instances})` },
  { name: 'only-from', type: 'string', valueName: 'CIDRS', description: 'comma-separated addresses or CIDR blocks allowed to connect (xinetd only_from); default: anyone' },
  { name: 'idle-timeout', type: 'duration', valueName: 'TIME', min: 1, bareUnit: 's', description: `close a TCP connection idle this long (default ${INETD_DEFAULTS.idleTimeoutMs / 1000}s)` },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
]

const INETD_USAGE = `Usage: petrel inetd [flags]

A super-server for the classic small services, each on TCP and UDP at the same port:
echo (RFC 862), discard (863), chargen (864), daytime (867) and time (868). Logs a line per
TCP connection to stderr. SIGTERM or SIGINT stops it.

Flags:
${formatFlags(INETD_FLAGS)}

Examples:
  petrel inetd                          # echo on 127.0.0.1:10007, daytime on :10013, …
  printf 'hello\\n' | nc -q1 127.0.0.1 10007
  nc -u 127.0.0.1 10013 </dev/null`

export async function inetdCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, INETD_FLAGS, 'inetd')
  if (flags.has('help')) {
    console.log(INETD_USAGE)
    return
  }
  if (positionals.length > 0) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel inetd\` takes no arguments, got: ${positionals.join(' ')}`)
  let services: ServiceName[] | undefined
  if (flags.has('services')) {
    services = []
    for (const name of (flags.get('services') as string).split(',')) {
      if (!(SERVICE_NAMES as readonly string[]).includes(name)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --services: unknown service ${JSON.stringify(name)}; choose from ${SERVICE_NAMES.join(', ')}`)
      services.push(name as ServiceName)
    }
  }
  let onlyFrom: string[] | undefined
  if (flags.has('only-from')) {
    onlyFrom = (flags.get('only-from') as string).split(',').map((entry) => entry.trim())
    try {
      allowList(onlyFrom)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --only-from: ${(err as Error).message}`)
    }
  }
  const log = (line: string): void => console.error(`petrel inetd: ${line}`)
  const inetd = await startInetd({
    host: flags.get('host') as string | undefined,
    portOffset: flags.get('port-offset') as number | undefined,
    services,
    instances: flags.get('instances') as number | undefined,
    idleTimeoutMs: flags.get('idle-timeout') as number | undefined,
    onlyFrom,
    log,
  })
  const host = (flags.get('host') as string | undefined) ?? INETD_DEFAULTS.host
  for (const { service, protocol, port } of inetd.listening) log(`${service} on ${protocol} ${host}:${port}`)
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log(`${signal}, stopping`)
      resolve()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  await inetd.close()
}
