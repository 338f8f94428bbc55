// `petrel inetd`: flags → InetdOptions, start, log, stop on a signal.

import { allowList, builtinServices, Inetd, INETD_DEFAULTS, type InetdOptions } from '../apps/inetd/inetd.ts'
import { loadInetdConfig, type ConfigDefaults, type ServiceConfig } from '../apps/inetd/config.ts'
import { CHARGEN_DATAGRAM_MAX_BYTES, SERVICE_NAMES, STANDARD_PORTS, type ServiceName } from '../apps/inetd/services.ts'
import { errorMessage } from '../core/errors.ts'
import { defineFlags, parseArgs, formatFlags, formatDuration, TIME_HELP, UsageError, type FlagSpec } from './args.ts'

export const INETD_FLAGS = defineFlags([
  {
    name: 'config',
    short: 'c',
    type: 'string',
    valueName: 'FILE',
    description: 'services from an xinetd-style file (docs/inetd.md); SIGHUP reloads it. The flags below become its defaults',
  },
  { name: 'host', type: 'string', valueName: 'HOST', description: `address to listen on (default ${INETD_DEFAULTS.host})` },
  {
    name: 'port-offset',
    type: 'integer',
    valueName: 'N',
    min: 0,
    max: 65_000,
    description: `each service listens at its standard port + N (default ${INETD_DEFAULTS.portOffset}: echo on ${STANDARD_PORTS.echo + INETD_DEFAULTS.portOffset})`,
  },
  {
    name: 'services',
    type: 'string',
    valueName: 'LIST',
    description: `without --config: comma-separated built-ins to run (default all: ${SERVICE_NAMES.join(',')})`,
  },
  {
    name: 'instances',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `TCP connections per service at once; more are closed (default ${INETD_DEFAULTS.instances})`,
  },
  {
    name: 'only-from',
    type: 'string',
    valueName: 'CIDRS',
    description: 'comma-separated addresses or CIDR blocks allowed to connect (xinetd only_from); default: anyone',
  },
  {
    name: 'idle-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `close a TCP connection idle this long (default ${formatDuration(INETD_DEFAULTS.idleTimeoutMs)})`,
  },
  {
    name: 'udp-rate',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `UDP answers per second a service sends to one client address; more datagrams are dropped (default ${INETD_DEFAULTS.udpRate}; config key udp_rate)`,
  },
  {
    name: 'udp-tracked-addresses',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `client addresses each UDP service's rate limit remembers; the oldest are forgotten first (default ${INETD_DEFAULTS.udpTrackedAddresses})`,
  },
  {
    name: 'udp-chargen-bytes',
    type: 'integer',
    valueName: 'N',
    min: 0,
    max: CHARGEN_DATAGRAM_MAX_BYTES,
    description: `characters chargen sends in answer to a datagram (default ${INETD_DEFAULTS.udpChargenBytes}, one line)`,
  },
  {
    name: 'max-config-bytes',
    type: 'integer',
    valueName: 'BYTES',
    min: 1,
    description: `largest --config file read, at start and on SIGHUP (default ${INETD_DEFAULTS.maxConfigBytes})`,
  },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const INETD_USAGE = `Usage: petrel inetd [flags]

A super-server like xinetd. Without --config it runs the classic small services, each on TCP
and UDP at the same port: echo (RFC 862), discard (863), chargen (864), daytime (867) and
time (868). With --config FILE it runs the services the file declares, external programs
included: one process per TCP connection with the socket as its stdin and stdout.
Logs a line per connection to stderr. SIGHUP reloads FILE (a bad file is rejected and the
running services stay); SIGTERM or SIGINT stops, ending the programs still running.
UDP services never answer a datagram from one of their own ports or from a port below 1024
(a forged source would start a loop), nor more than --udp-rate a second to one address.
${TIME_HELP}

Flags:
${formatFlags(INETD_FLAGS)}

Examples:
  petrel inetd                          # echo on 127.0.0.1:10007, daytime on :10013, …
  printf 'hello\\n' | nc -q1 127.0.0.1 10007
  nc -u 127.0.0.1 10013 </dev/null
  petrel inetd --config inetd.conf      # services and programs from a file; kill -HUP reloads it`

export async function inetdCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, INETD_FLAGS, 'inetd')
  if (flags.has('help')) {
    console.log(INETD_USAGE)
    return
  }
  if (positionals.length > 0) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel inetd\` takes no arguments, got: ${positionals.join(' ')}`)
  if (flags.has('config') && flags.has('services'))
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', '--services picks built-ins when there is no --config; with --config, list the services in the file')
  let services: ServiceName[] | undefined
  const serviceList = flags.get('services')
  if (serviceList !== undefined) {
    services = []
    for (const name of serviceList.split(',')) {
      const service = SERVICE_NAMES.find((known) => known === name)
      if (service === undefined)
        throw new UsageError(
          'PETREL_ERR_CLI_BAD_VALUE',
          `bad value for --services: unknown service ${JSON.stringify(name)}; choose from ${SERVICE_NAMES.join(', ')}`,
        )
      services.push(service)
    }
  }
  let onlyFrom: string[] | undefined
  const onlyFromList = flags.get('only-from')
  if (onlyFromList !== undefined) {
    onlyFrom = onlyFromList.split(',').map((entry) => entry.trim())
    try {
      allowList(onlyFrom)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --only-from: ${errorMessage(err)}`)
    }
  }
  const log = (line: string): void => console.error(`petrel inetd: ${line}`)
  const options: InetdOptions = {
    host: flags.get('host'),
    portOffset: flags.get('port-offset'),
    services,
    instances: flags.get('instances'),
    idleTimeoutMs: flags.get('idle-timeout'),
    onlyFrom,
    udpRate: flags.get('udp-rate'),
    udpTrackedAddresses: flags.get('udp-tracked-addresses'),
    udpChargenBytes: flags.get('udp-chargen-bytes'),
    log,
  }
  const maxConfigBytes = flags.get('max-config-bytes') ?? INETD_DEFAULTS.maxConfigBytes
  const configFile = flags.get('config')
  const defaults: ConfigDefaults = {
    bind: options.host ?? INETD_DEFAULTS.host,
    portOffset: options.portOffset ?? INETD_DEFAULTS.portOffset,
    instances: options.instances ?? INETD_DEFAULTS.instances,
    onlyFrom: onlyFrom ?? null,
    idleTimeoutMs: options.idleTimeoutMs ?? INETD_DEFAULTS.idleTimeoutMs,
    udpRate: options.udpRate ?? INETD_DEFAULTS.udpRate,
  }
  let initial: ServiceConfig[]
  if (configFile === undefined) initial = builtinServices(options)
  else initial = await loadInetdConfig(configFile, defaults, maxConfigBytes)
  const inetd = await Inetd.start(initial, options)
  for (const { service, protocol, bind, port } of inetd.listening) log(`${service} on ${protocol} ${bind}:${port}`)
  log(`ready (pid ${process.pid})`)

  // Signals are events: the handler only asks for a reload; reloads run one at a time, and a
  // SIGHUP that arrives during one makes one more run after it.
  let reloading: Promise<void> | null = null
  let again = false
  const reloadOnce = async (): Promise<void> => {
    if (configFile === undefined) return log('SIGHUP: there is no --config file to reload')
    try {
      const next = await loadInetdConfig(configFile, defaults, maxConfigBytes)
      const { added, kept, removed } = await inetd.apply(next)
      log(`SIGHUP: reloaded ${configFile}: ${added} listeners added, ${kept} kept, ${removed} removed; ${inetd.running} connections carry on`)
    } catch (err) {
      log(`SIGHUP: reload rejected, the running services stay: ${errorMessage(err)}`)
    }
  }
  const reload = (): void => {
    if (reloading !== null) {
      again = true
      return
    }
    reloading = (async () => {
      do {
        again = false
        await reloadOnce()
      } while (again)
      reloading = null
    })()
  }
  process.on('SIGHUP', reload)
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log(`${signal}, stopping`)
      resolve()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  process.off('SIGHUP', reload)
  await reloading
  await inetd.close()
}
