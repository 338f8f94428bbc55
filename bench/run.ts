// Entry point of Petrel's benchmarks: `node bench/run.ts <suite> [flags]`, or
// `npm run bench -- <suite> [flags]`, which runs it on the repo's pinned Node.

import { installExitHandlers } from './lib/children.ts'
import { formatFlagHelp, UsageError } from './lib/flags.ts'
import { SUITES } from './suites/index.ts'

function help(): string {
  const suites = SUITES.map((suite) => {
    const flags = suite.flags.length === 0 ? '' : `\n${formatFlagHelp(suite.flags)}`
    return `${suite.name}: ${suite.summary}${flags}`
  })
  return [
    'usage: npm run bench -- <suite> [flags]      (or: node bench/run.ts <suite> [flags])',
    '',
    'suites and their flags:',
    '',
    suites.join('\n\n'),
    '',
    'Details: docs/benchmarks.md',
  ].join('\n')
}

async function main(args: readonly string[]): Promise<number> {
  const [suiteName, ...suiteArgs] = args
  if (suiteName === undefined || suiteName === '--help' || suiteName === '-h') {
    // Without a suite the call was a mistake: help goes to stderr and the exit code says so.
    if (suiteName === undefined) {
      console.error(help())
      return 2
    }
    console.log(help())
    return 0
  }
  const suite = SUITES.find((candidate) => candidate.name === suiteName)
  if (suite === undefined) {
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `unknown suite: ${suiteName} (suites: ${SUITES.map((candidate) => candidate.name).join(', ')})`)
  }
  if (!suite.passThrough && (suiteArgs.includes('--help') || suiteArgs.includes('-h'))) {
    console.log(`${suite.name}: ${suite.summary}\n${formatFlagHelp(suite.flags)}`)
    return 0
  }
  return suite.run(suiteArgs)
}

installExitHandlers()
try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(`bench: ${error.message}`)
  process.exitCode = 2
}
