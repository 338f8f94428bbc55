// One argument parser (src/cli/args.ts) for the petrel commands and the bench suites: the same
// mistake gets the same answer from both, and a declared default is the value and the help.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { defineFlags, formatFlags, parseArgs } from '../src/cli/args.ts'

const PETREL = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))
const BENCH = fileURLToPath(new URL('../bench/run.ts', import.meta.url))

function run(script: string, ...args: string[]) {
  return spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 15_000 })
}

test('a bad whole number is the same one-line error and exit 2 from petrel serve and from a bench suite', () => {
  const serve = run(PETREL, 'serve', '--port', 'x')
  assert.equal(serve.status, 2)
  assert.equal(serve.stderr, 'petrel: bad value for --port: "x"; expected a whole number\n')
  const suite = run(BENCH, 'http', '--duration', 'x')
  assert.equal(suite.status, 2)
  assert.equal(suite.stderr, 'bench: bad value for --duration: "x"; expected a whole number\n')
})

test('an unknown flag names the command to ask for help, for petrel and for a bench suite', () => {
  const serve = run(PETREL, 'serve', '--frobnicate')
  assert.equal(serve.status, 2)
  assert.equal(serve.stderr, 'petrel: unknown flag --frobnicate for `petrel serve`; run `petrel serve --help` for the flags it takes\n')
  const suite = run(BENCH, 'static', '--frobnicate')
  assert.equal(suite.status, 2)
  assert.equal(suite.stderr, 'bench: unknown flag --frobnicate for `npm run bench -- static`; run `npm run bench -- static --help` for the flags it takes\n')
  const below = run(BENCH, 'proxy', '--connections', '0')
  assert.equal(below.status, 2)
  assert.equal(below.stderr, 'bench: bad value for --connections: "0"; expected at least 1\n')
})

test('a declared default is the value when the flag is not given, and --help shows it', () => {
  const specs = defineFlags([
    { name: 'runs', type: 'integer', valueName: 'N', min: 1, default: 7, description: 'measured runs' },
    { name: 'wait', type: 'duration', valueName: 'TIME', default: 1500, description: 'pause' },
    { name: 'only', type: 'string', valueName: 'NAMES', description: 'which' },
  ])
  const given = parseArgs(['--runs', '3'], specs, 'suite', 'bench')
  assert.equal(given.flags.get('runs'), 3)
  assert.equal(given.flags.get('wait'), 1500)
  assert.equal(given.flags.get('only'), undefined, 'no default: absent')
  assert.equal(parseArgs([], specs, 'suite', 'bench').flags.get('runs'), 7)
  const help = formatFlags(specs)
  assert.match(help, /--runs N\s+measured runs \(default 7\)/)
  assert.match(help, /--wait TIME\s+pause \(default 1500ms\)/)
  assert.match(help, /--only NAMES\s+which\n?$/)
  const suiteHelp = run(BENCH, 'http', '--help')
  assert.equal(suiteHelp.status, 0)
  assert.match(suiteHelp.stdout, /--duration SECONDS\s+length of each measured wrk run \(default 10\)/)
})
