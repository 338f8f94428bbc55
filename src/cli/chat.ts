// `petrel chat` (the room) and `petrel chat connect HOST:PORT` (a client): flags → options.

import net from 'node:net'
import { CHAT_DEFAULTS, ChatRoom } from '../apps/chat/room.ts'
import { ChatCluster, type WorkerSettings } from '../apps/chat/cluster.ts'
import { openWeb } from '../apps/chat/web.ts'
import { describeRedis, parseRedisUrl, REDIS_HUB_DEFAULTS } from '../apps/chat/redis-config.ts'
import { PetrelError, errorMessage, systemErrorCode } from '../core/errors.ts'
import { defineFlags, parseArgs, formatFlags, formatDuration, TIME_HELP, UsageError, type FlagMap, type FlagSpec, type Flags } from './args.ts'
import { parseWorkers } from './serve.ts'
import { DEFAULT_START_TIMEOUT_MS } from '../process/supervisor.ts'
import { SignalLoop } from '../process/signals.ts'

/**
 * `chat connect` started together with its room (`petrel chat & petrel chat connect …`) may
 * knock before the room listens; a refused connection is tried again this often, for up to
 * --wait.
 */
export const CHAT_CONNECT_DEFAULTS = { waitMs: 5000, retryEveryMs: 100 } as const

export const CHAT_FLAGS = defineFlags([
  { name: 'host', type: 'string', valueName: 'HOST', description: `address to listen on (default ${CHAT_DEFAULTS.host})` },
  { name: 'port', short: 'p', type: 'integer', valueName: 'PORT', min: 0, max: 65535, description: `port to listen on (default ${CHAT_DEFAULTS.port})` },
  {
    name: 'max-users',
    type: 'integer',
    valueName: 'N',
    min: 1,
    description: `people in the room at once; one more is refused (default ${CHAT_DEFAULTS.maxUsers})`,
  },
  { name: 'max-line-bytes', type: 'integer', valueName: 'N', min: 1, description: `longest line a client may send (default ${CHAT_DEFAULTS.maxLineBytes})` },
  {
    name: 'max-outgoing-bytes',
    type: 'integer',
    valueName: 'N',
    min: 1024,
    description: `bytes queued for a client that does not read before it is cut off (default ${CHAT_DEFAULTS.maxOutgoingBytes})`,
  },
  {
    name: 'http-port',
    type: 'integer',
    valueName: 'PORT',
    min: 0,
    max: 65535,
    description: 'also serve the chat page at http://HOST:PORT/ and its WebSocket at /ws: browser users in the same room as nc and telnet ones',
  },
  {
    name: 'workers',
    short: 'w',
    type: 'string',
    valueName: 'N|auto',
    description: 'N worker processes share the port (SO_REUSEPORT) and one room, relayed by a master (auto: one per CPU)',
  },
  {
    name: 'worker-start-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `with --workers: a worker not listening after TIME (its Redis not answering, say) is killed; the room does not open, or a replacement is tried again later (default ${formatDuration(DEFAULT_START_TIMEOUT_MS)})`,
  },
  {
    name: 'redis',
    type: 'string',
    valueName: 'URL',
    description: 'share the room with other petrel chat instances through Redis pub/sub (redis://[:PASSWORD@]HOST[:PORT][/DB])',
  },
  {
    name: 'room',
    type: 'string',
    valueName: 'NAME',
    description: `with --redis: the room's name, so one Redis can hold several (default ${REDIS_HUB_DEFAULTS.room})`,
  },
  {
    name: 'redis-reconnect-max',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `with --redis: a lost connection is tried again after ${formatDuration(REDIS_HUB_DEFAULTS.reconnectMs)}, doubling up to TIME (default ${formatDuration(REDIS_HUB_DEFAULTS.maxReconnectMs)}): a Redis that is back is found within TIME, and a room stopped during an outage exits within it`,
  },
  {
    name: 'wait',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `connect: while the room refuses connections (not started yet), try again for up to TIME; 0 tries once (default ${formatDuration(CHAT_CONNECT_DEFAULTS.waitMs)})`,
  },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const CHAT_USAGE = `Usage: petrel chat [flags]
       petrel chat connect [--wait TIME] HOST:PORT

A chat room over TCP, one line per message, that works with nc and telnet:
/nick NAME, /who, /msg NICK text, /quit; any other line goes to everyone else.
With --http-port, browsers join the same room through a chat page and a WebSocket.
\`connect\` relays stdin to a room and the room's lines to stdout; a room that is still
starting is waited for (--wait), so \`petrel chat & petrel chat connect 127.0.0.1:9000\` works.
${TIME_HELP}

Flags:
${formatFlags(CHAT_FLAGS)}`

export async function chatCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, CHAT_FLAGS, 'chat')
  if (flags.has('help')) {
    console.log(CHAT_USAGE)
    return 0
  }
  if (positionals[0] === 'connect') return connect(positionals.slice(1), flags)
  if (flags.has('worker-start-timeout') && !flags.has('workers'))
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', '--worker-start-timeout applies to worker processes; give --workers N too')
  if (flags.has('wait')) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', '--wait applies to `petrel chat connect HOST:PORT`, not to a room')
  if (positionals.length > 0)
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_ARGUMENT',
      `unexpected ${JSON.stringify(positionals[0])}; run a room with \`petrel chat\` or join one with \`petrel chat connect HOST:PORT\``,
    )
  const host = flags.get('host') ?? CHAT_DEFAULTS.host
  const port = flags.get('port') ?? CHAT_DEFAULTS.port
  const redis = flags.get('redis')
  if (redis !== undefined) {
    try {
      parseRedisUrl(redis)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --redis: ${errorMessage(err)}`)
    }
  } else if (flags.has('room') || flags.has('redis-reconnect-max')) {
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_ARGUMENT',
      `--${flags.has('room') ? 'room names a room in Redis' : 'redis-reconnect-max applies to a room in Redis'}; give --redis URL too`,
    )
  }
  const settings: WorkerSettings = {
    host,
    port,
    maxUsers: flags.get('max-users'),
    maxLineBytes: flags.get('max-line-bytes'),
    maxOutgoingBytes: flags.get('max-outgoing-bytes'),
    httpPort: flags.get('http-port'),
    ...(redis === undefined ? {} : { redis, room: flags.get('room'), redisMaxReconnectMs: flags.get('redis-reconnect-max') }),
  }
  const log = (line: string): void => console.error(`petrel chat: ${line}`)
  // Signals as events, as for `petrel serve` (process/signals.ts): TERM, INT and QUIT close the
  // room (it has nothing in flight to finish, so a graceful stop is a fast one); HUP and USR1,
  // which would end the process by default, get a line instead: a room has no configuration
  // file to read again and no log file to reopen.
  let stop: () => Promise<void> = async () => {}
  let stopped = (): void => {}
  const done = new Promise<void>((resolve) => (stopped = resolve))
  let stopping = false
  const signals = new SignalLoop({
    reload: async () => log('SIGHUP: a room has no configuration file to read again; restart it to change its flags'),
    reopen: async () => log('SIGUSR1: a room has no log file to reopen; its lines go to stderr'),
    stop: async () => {
      // A fast stop asked for during a graceful one has nothing more to cut.
      if (stopping) return
      stopping = true
      await stop()
      stopped()
    },
  })
  signals.listen()
  try {
    await openRoom()
  } catch (err) {
    signals.dispose()
    throw err
  }
  signals.start()
  await done
  signals.dispose()
  return 0

  async function openRoom(): Promise<void> {
    const workersGiven = flags.get('workers')
    if (workersGiven !== undefined) {
      const workers = parseWorkers(workersGiven)
      const cluster = new ChatCluster({ workers, settings, startTimeoutMs: flags.get('worker-start-timeout'), log })
      const bound = await cluster.start().catch(async (err: Error) => {
        await cluster.stop()
        throw err
      })
      log(
        `room open on ${host}:${bound} with ${workers} workers (master pid ${process.pid})${redis === undefined ? '' : `, shared through ${describeRedis(parseRedisUrl(redis))}`}${pageLine(host, cluster.httpPort)}`,
      )
      stop = () => cluster.stop()
    } else {
      // The Redis client is loaded only here, by a room that uses it.
      const hub =
        redis === undefined
          ? undefined
          : await (await import('../apps/chat/redis-hub.ts')).RedisHub.connect(redis, {
              room: settings.room,
              maxUsers: settings.maxUsers,
              maxReconnectMs: settings.redisMaxReconnectMs,
              log,
            })
      const room = new ChatRoom({ ...settings, hub, log })
      // Closing the room closes its Redis connection too, which would keep the process from exiting.
      const opened = async () => {
        const address = await room.listen(host, port)
        return { address, web: await openWeb(room, host, settings.httpPort, settings.maxOutgoingBytes ?? CHAT_DEFAULTS.maxOutgoingBytes, false) }
      }
      const { address, web } = await opened().catch(async (err: unknown) => {
        await room.close()
        throw err
      })
      log(
        `room open on ${address.address}:${address.port} (pid ${process.pid})${redis === undefined ? '' : `, shared through ${describeRedis(parseRedisUrl(redis))}`}${pageLine(host, web?.address?.port)}`,
      )
      stop = async () => {
        await web?.close()
        await room.close()
      }
    }
  }
}

/** The start-up line's mention of the chat page, when there is one. */
function pageLine(host: string, port: number | undefined): string {
  return port === undefined ? '' : `; chat page on http://${host.includes(':') ? `[${host}]` : host}:${port}/`
}

/** Flags of `chat connect`; the others are the room's. */
const CONNECT_FLAGS = new Set(['wait', 'help'])

async function connect(args: readonly string[], flags: FlagMap<Flags<typeof CHAT_FLAGS>>): Promise<number> {
  for (const name of flags.keys()) {
    if (!CONNECT_FLAGS.has(name))
      throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `--${name} applies to a room (\`petrel chat\`), not to \`petrel chat connect\``)
  }
  const target = args[0]
  const colon = target?.lastIndexOf(':') ?? -1
  const port = colon > 0 ? Number(target!.slice(colon + 1)) : NaN
  if (args.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', 'petrel chat connect needs HOST:PORT, e.g. petrel chat connect 127.0.0.1:9000')
  }
  const host = target!.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const waitMs = flags.get('wait') ?? CHAT_CONNECT_DEFAULTS.waitMs
  const socket = await connectWaiting(port, host, waitMs).catch((err: NodeJS.ErrnoException) => {
    const waited = err.code === 'ECONNREFUSED' && waitMs > 0 ? ` (refused for ${formatDuration(waitMs)})` : ''
    throw new PetrelError('PETREL_ERR_CHAT_UNREACHABLE', `${target}: ${err.message}${waited}`)
  })
  // A reader that goes away (`petrel chat connect … | head`) ends the session, not in a crash.
  process.stdout.once('error', () => socket.destroy())
  socket.pipe(process.stdout)
  process.stdin.pipe(socket)
  await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  process.stdin.unpipe(socket)
  process.stdin.destroy()
  return 0
}

/**
 * A connection to the room. Refused means nothing listens yet: tried again every
 * `retryEveryMs` until `waitMs` has passed. Any other error (no route, a name that does not
 * resolve) is final at once.
 */
async function connectWaiting(port: number, host: string, waitMs: number): Promise<net.Socket> {
  const deadline = Date.now() + waitMs
  for (;;) {
    const socket = net.connect(port, host)
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve)
        socket.once('error', reject)
      })
      return socket
    } catch (err) {
      socket.destroy()
      if (systemErrorCode(err) !== 'ECONNREFUSED' || Date.now() + CHAT_CONNECT_DEFAULTS.retryEveryMs > deadline) throw err
    }
    await new Promise((resolve) => setTimeout(resolve, CHAT_CONNECT_DEFAULTS.retryEveryMs))
  }
}
