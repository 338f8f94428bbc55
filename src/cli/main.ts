// The `petrel` command: one binary, a subcommand per program of the book.

import { PetrelError } from '../core/errors.ts'
import { systemFailure } from '../core/system-failure.ts'
import { PETREL_VERSION } from '../core/version.ts'
import { UsageError } from './args.ts'
import { serveCommand } from './serve.ts'
import { benchCommand } from './bench.ts'
import { inetdCommand } from './inetd.ts'
import { chatCommand } from './chat.ts'
import { topCommand } from './top.ts'
import { proxyCommand } from './proxy.ts'

/** Each command resolves with the exit status, or with nothing for 0. */
const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<number | void>; summary: string }> = {
  serve: { run: serveCommand, summary: 'HTTP/1.1 web server: the demo site, or the files under ROOT' },
  bench: { run: benchCommand, summary: 'HTTP load generator (wrk-class): req/s, latency percentiles, errors' },
  chat: { run: chatCommand, summary: 'chat room over TCP (nc/telnet line protocol); `chat connect HOST:PORT` joins one' },
  inetd: { run: inetdCommand, summary: 'super-server: echo, discard, chargen, daytime, time on TCP and UDP; programs per connection' },
  proxy: { run: proxyCommand, summary: 'forward proxy: absolute-form requests and CONNECT tunnels, to an allow-list only' },
  top: { run: topCommand, summary: "a running server's figures and the machine's, live in the terminal (needs serve --admin)" },
}

const USAGE = `Usage: petrel <command> [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(8)}${c.summary}`)
  .join('\n')}

Flags:
  -h, --help      show help (also: petrel <command> --help)
  -v, --version   print the version

Run \`petrel <command> --help\` for the flags of a command.`

export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      console.log(USAGE)
      return first === undefined ? 2 : 0
    }
    if (first === '--version' || first === '-v') {
      console.log(`petrel ${PETREL_VERSION}`)
      return 0
    }
    const command = COMMANDS[first]
    if (command === undefined) {
      const what = first.startsWith('-') ? `unknown flag ${first}` : `unknown command ${JSON.stringify(first)}`
      throw new UsageError('PETREL_ERR_CLI_UNKNOWN_COMMAND', `${what}; commands are: ${Object.keys(COMMANDS).join(', ')} (run \`petrel --help\`)`)
    }
    return (await command.run(rest)) ?? 0
  } catch (err) {
    return reportFailure(err)
  }
}

/**
 * Every command's errors end here. A mistake the user can fix is one line naming it and the fix:
 * a bad flag or value (exit 2), a failure with a code from the table, or a system error met while
 * starting — an address in use, a port that needs root, a log in a missing directory — even one
 * that a lower layer let through raw or wrapped (exit 1). Anything else is a bug in Petrel and
 * keeps its stack trace.
 */
function reportFailure(err: unknown): number {
  if (err instanceof UsageError) {
    console.error(`petrel: ${err.message}`)
    return 2
  }
  const failure = systemFailure(err) ?? (err instanceof PetrelError ? err : null)
  if (failure === null) throw err
  console.error(`petrel: ${failure.message} [${failure.code}]`)
  return 1
}
