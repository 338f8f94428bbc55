// The `petrel` command: one binary, a subcommand per program of the book.

import { errorLine } from '../core/system-failure.ts'
import { PETREL_VERSION } from '../core/version.ts'
import { UsageError } from './args.ts'

/**
 * Each command resolves with the exit status, or with nothing for 0. A command's modules are
 * loaded when it runs: a server process (and each of its workers) holds the code of `serve`, not
 * that of the load generator, the chat room and the rest.
 */
const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<number | void>; summary: string }> = {
  serve: { run: async (argv) => (await import('./serve.ts')).serveCommand(argv), summary: 'HTTP/1.1 web server: the demo site, or the files under ROOT' },
  bench: {
    run: async (argv) => (await import('./bench.ts')).benchCommand(argv),
    summary: 'HTTP load generator (wrk-class): req/s, latency percentiles, errors',
  },
  chat: {
    run: async (argv) => (await import('./chat.ts')).chatCommand(argv),
    summary: 'chat room over TCP (nc/telnet line protocol); `chat connect HOST:PORT` joins one',
  },
  inetd: {
    run: async (argv) => (await import('./inetd.ts')).inetdCommand(argv),
    summary: 'super-server: echo, discard, chargen, daytime, time on TCP and UDP; programs per connection',
  },
  proxy: {
    run: async (argv) => (await import('./proxy.ts')).proxyCommand(argv),
    summary: 'forward proxy: absolute-form requests and CONNECT tunnels, to an allow-list only',
  },
  top: {
    run: async (argv) => (await import('./top.ts')).topCommand(argv),
    summary: "a running server's figures and the machine's, live in the terminal (needs serve --admin)",
  },
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
    // Every command's errors end here: a mistake the user can fix is one line naming it and the
    // fix (exit 2 for a bad flag or value, 1 for the rest); anything else keeps its stack trace.
    const line = errorLine(err)
    if (line === null) throw err
    console.error(line)
    return err instanceof UsageError ? 2 : 1
  }
}
