// `petrel chat` (the room) and `petrel chat connect HOST:PORT` (a client): flags → options.

import net from 'node:net'
import { CHAT_DEFAULTS, ChatRoom } from '../apps/chat/room.ts'
import { parseArgs, formatFlags, UsageError, type FlagSpec } from './args.ts'

export const CHAT_FLAGS: FlagSpec[] = [
  { name: 'host', type: 'string', valueName: 'HOST', description: `address to listen on (default ${CHAT_DEFAULTS.host})` },
  { name: 'port', short: 'p', type: 'integer', valueName: 'PORT', min: 0, max: 65535, description: `port to listen on (default ${CHAT_DEFAULTS.port})` },
  { name: 'max-users', type: 'integer', valueName: 'N', min: 1, description: `people in the room at once; one more is refused (default ${CHAT_DEFAULTS.maxUsers})` },
  { name: 'max-line-bytes', type: 'integer', valueName: 'N', min: 1, description: `longest line a client may send (default ${CHAT_DEFAULTS.maxLineBytes})` },
  { name: 'max-outgoing-bytes', type: 'integer', valueName: 'N', min: 1024, description: `bytes queued for a client that does not read before it is cut off (default ${CHAT_DEFAULTS.maxOutgoingBytes})` },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
]

const CHAT_USAGE = `Usage: petrel chat [flags]
       petrel chat connect HOST:PORT

A chat room over TCP, one line per message, that works with nc and telnet:
/nick NAME, /who, /msg NICK text, /quit; any other line goes to everyone else.
\`connect\` relays stdin to a room and the room's lines to stdout.

Flags:
${formatFlags(CHAT_FLAGS)}`

export async function chatCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, CHAT_FLAGS, 'chat')
  if (flags.has('help')) {
    console.log(CHAT_USAGE)
    return 0
  }
  if (positionals[0] === 'connect') return connect(positionals.slice(1))
  if (positionals.length > 0) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `unexpected ${JSON.stringify(positionals[0])}; run a room with \`petrel chat\` or join one with \`petrel chat connect HOST:PORT\``)
  const room = new ChatRoom({
    maxUsers: flags.get('max-users') as number | undefined,
    maxLineBytes: flags.get('max-line-bytes') as number | undefined,
    maxOutgoingBytes: flags.get('max-outgoing-bytes') as number | undefined,
  })
  const address = await room.listen((flags.get('host') as string | undefined) ?? CHAT_DEFAULTS.host, (flags.get('port') as number | undefined) ?? CHAT_DEFAULTS.port)
  console.error(`petrel chat: room open on ${address.address}:${address.port} (pid ${process.pid})`)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  await room.close()
  return 0
}

async function connect(args: readonly string[]): Promise<number> {
  const target = args[0]
  const colon = target?.lastIndexOf(':') ?? -1
  const port = colon > 0 ? Number(target!.slice(colon + 1)) : NaN
  if (args.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', 'petrel chat connect needs HOST:PORT, e.g. petrel chat connect 127.0.0.1:9000')
  }
  const host = target!.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const socket = net.connect(port, host)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  }).catch((err: Error) => {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `cannot connect to ${target}: ${err.message}`)
  })
  socket.pipe(process.stdout)
  process.stdin.pipe(socket)
  await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  process.stdin.unpipe(socket)
  process.stdin.destroy()
  return 0
}
