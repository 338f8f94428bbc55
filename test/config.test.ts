// `petrel serve --config FILE` as a user meets it: a JSON file checked against the same flag
// declarations as the command line, with errors that name the file, the key and the fix.
import { execFileSync } from 'node:child_process'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig, mergeFlags } from '../src/cli/config.ts'
import { parseArgs, UsageError, type FlagSpec } from '../src/cli/args.ts'
import { SERVE_FLAGS } from '../src/cli/serve-flags.ts'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-config-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

let fileCount = 0
/** Writes `content` (an object is written as JSON) to a fresh file and returns its path. */
function configFile(content: unknown, name = `c${fileCount++}.json`): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return file
}

const EXCLUDE = ['help', 'config']

/** A small spec list with every flag type, including a list (serve has none yet). */
const SPECS: FlagSpec[] = [
  { name: 'host', type: 'string', description: '' },
  { name: 'port', short: 'p', type: 'integer', min: 0, max: 65535, description: '' },
  { name: 'headers-timeout', type: 'duration', min: 1, max: 60_000, description: '' },
  { name: 'list', type: 'boolean', description: '' },
  { name: 'header', type: 'list', description: '' },
  { name: 'help', short: 'h', type: 'boolean', description: '' },
  { name: 'config', type: 'string', description: '' },
]

async function rejects(content: unknown, code: string, message: RegExp, specs: readonly FlagSpec[] = SPECS): Promise<void> {
  const file = configFile(content)
  await assert.rejects(loadConfig(file, specs, { exclude: EXCLUDE }), (err: unknown) => {
    assert.ok(err instanceof UsageError, `a UsageError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.match(err.message, message)
    assert.ok(err.message.includes(file), `names the file: ${err.message}`)
    assert.equal(err.message.split('\n').length, 1, `one line: ${err.message}`)
    return true
  })
}

test('a config setting every serve flag gives the same map as the command line', async () => {
  const file = configFile({
    host: '0.0.0.0',
    port: 9090,
    'max-connections': 100,
    'max-header-bytes': 8192,
    'max-header-count': 50,
    'max-uri-bytes': 4096,
    'max-body-bytes': 1_000_000,
    'max-requests-per-connection': 1000,
    'write-high-water-mark': 65536,
    'max-drain-bytes': 65536,
    'headers-timeout': '5s',
    'keepalive-timeout': 4,
    'body-timeout': '1m',
    'send-timeout': '500ms',
    'linger-timeout': '1.5s',
    'shutdown-timeout': 10,
    list: true,
    'follow-symlinks': false,
    'max-age': 0,
    'open-file-cache-valid': 0,
    'small-file-bytes': 4096,
    'max-open-files': 64,
    root: 'public',
  })
  const fromFile = await loadConfig(file, SERVE_FLAGS, { exclude: ['help', 'config'] })
  const { flags: fromCli } = parseArgs(
    [
      '--host',
      '0.0.0.0',
      '--port',
      '9090',
      '--max-connections',
      '100',
      '--max-header-bytes',
      '8192',
      '--max-header-count',
      '50',
      '--max-uri-bytes',
      '4096',
      '--max-body-bytes',
      '1000000',
      '--max-requests-per-connection',
      '1000',
      '--write-high-water-mark',
      '65536',
      '--max-drain-bytes',
      '65536',
      '--headers-timeout',
      '5s',
      '--keepalive-timeout',
      '4',
      '--body-timeout',
      '1m',
      '--send-timeout',
      '500ms',
      '--linger-timeout',
      '1.5s',
      '--shutdown-timeout',
      '10',
      '--list',
      '--max-age',
      '0',
      '--open-file-cache-valid',
      '0',
      '--small-file-bytes',
      '4096',
      '--max-open-files',
      '64',
    ],
    SERVE_FLAGS,
    'serve',
  )
  const { root, ...rest } = Object.fromEntries(fromFile)
  assert.deepEqual(rest, Object.fromEntries(fromCli))
  // A false boolean is the same as leaving the flag out, as on the command line.
  assert.equal(fromFile.has('follow-symlinks'), false)
  // A relative root means relative to the config file, wherever petrel is started.
  assert.equal(root, path.join(dir, 'public'))
})

test('every serve flag is a config key that means what the flag means', async () => {
  // Built from SERVE_FLAGS itself, so a flag added later is covered without touching this test.
  const config: Record<string, unknown> = {}
  const argv: string[] = []
  for (const spec of SERVE_FLAGS) {
    if (EXCLUDE.includes(spec.name)) continue
    const n = Math.max(spec.min ?? 0, Math.min(spec.max ?? Infinity, 1000))
    switch (spec.type) {
      case 'integer':
        config[spec.name] = n
        argv.push(`--${spec.name}`, String(n))
        break
      // A JSON number of seconds means what the same bare number means on the command line.
      case 'duration':
        config[spec.name] = n
        argv.push(`--${spec.name}`, String(n))
        break
      case 'string':
        config[spec.name] = spec.wholeNumber === true ? 2 : 'x'
        argv.push(`--${spec.name}`, spec.wholeNumber === true ? '2' : 'x')
        break
      case 'boolean':
        config[spec.name] = true
        argv.push(`--${spec.name}`)
        break
      case 'list':
        config[spec.name] = ['a', 'b']
        argv.push(`--${spec.name}`, 'a', `--${spec.name}`, 'b')
        break
    }
  }
  const fromFile = await loadConfig(configFile(config), SERVE_FLAGS, { exclude: EXCLUDE })
  assert.deepEqual(Object.fromEntries(fromFile), Object.fromEntries(parseArgs(argv, SERVE_FLAGS, 'serve').flags))
  assert.equal(fromFile.size, SERVE_FLAGS.length - SERVE_FLAGS.filter((s) => EXCLUDE.includes(s.name)).length)
})

test('list flags take arrays of strings; an absolute root is kept', async () => {
  const file = configFile({ header: ['X-A: 1', 'X-B: 2'], root: '/srv/www', host: 'localhost' })
  const flags = await loadConfig(file, SPECS, { exclude: EXCLUDE })
  assert.deepEqual(Object.fromEntries(flags), { header: ['X-A: 1', 'X-B: 2'], root: '/srv/www', host: 'localhost' })
  assert.deepEqual([...(await loadConfig(configFile({ header: [] }), SPECS)).keys()], [], 'an empty list is no list')
  assert.deepEqual([...(await loadConfig(configFile('\uFEFF{ }\n'), SPECS)).keys()], [], 'a byte-order mark is skipped')
})

test('command-line flags override the config file', async () => {
  const fromConfig = await loadConfig(configFile({ port: 9090, host: '0.0.0.0', 'headers-timeout': '5s', header: ['X-A: 1'], list: true }), SPECS)
  const { flags: fromCli } = parseArgs(['--port', '8081', '--header', 'X-B: 2', '--headers-timeout', '2s'], SPECS, 'serve')
  const merged = mergeFlags(fromConfig, fromCli)
  assert.deepEqual(Object.fromEntries(merged), { port: 8081, host: '0.0.0.0', 'headers-timeout': 2000, header: ['X-B: 2'], list: true })
  assert.equal(fromConfig.get('port'), 9090, 'the inputs are not modified')
  assert.deepEqual(Object.fromEntries(mergeFlags(new Map(), fromCli)), Object.fromEntries(fromCli))
})

test('an unknown key is named with the closest known key', async () => {
  const cases: Array<[string, string]> = [
    ['max-body', 'max-body-bytes'],
    ['maxBodyBytes', 'max-body-bytes'],
    ['max_connections', 'max-connections'],
    ['prot', 'port'],
    ['--port', 'port'],
    ['p', 'port'],
    ['headers-timout', 'headers-timeout'],
    ['keep-alive-timeout', 'keepalive-timeout'],
  ]
  for (const [key, suggestion] of cases) {
    const file = configFile({ [key]: 1 }, 'petrel.json')
    await assert.rejects(loadConfig(file, SERVE_FLAGS, { exclude: EXCLUDE }), {
      code: 'PETREL_ERR_CLI_UNKNOWN_FLAG',
      message: `unknown key "${key}" in ${file}; did you mean "${suggestion}"?`,
    })
  }
  await rejects({ zzzzzz: 1 }, 'PETREL_ERR_CLI_UNKNOWN_FLAG', /unknown key "zzzzzz" in .*; known keys: host, port, headers-timeout, list, header, root$/)
})

test('excluded flags are refused with a pointer to the command line', async () => {
  await rejects({ help: true }, 'PETREL_ERR_CLI_UNKNOWN_FLAG', /key "help" cannot be set in config file .*; give it on the command line instead/)
  await rejects({ config: 'other.json' }, 'PETREL_ERR_CLI_UNKNOWN_FLAG', /key "config" cannot be set/)
  // An excluded flag is never offered as a suggestion.
  await rejects({ hlep: true }, 'PETREL_ERR_CLI_UNKNOWN_FLAG', /unknown key "hlep" .*; known keys: /)
})

test('integer keys take JSON whole numbers within range', async () => {
  await rejects({ port: '8080' }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: "8080"; expected a whole number without quotes: 8080$/)
  await rejects({ port: 'http' }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: "http"; expected a whole number$/)
  await rejects({ port: 3.5 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: 3\.5; expected a whole number$/)
  await rejects({ port: -1 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: -1; expected a whole number$/)
  await rejects({ port: null }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: null; expected a whole number$/)
  await rejects({ port: true }, 'PETREL_ERR_CLI_BAD_VALUE', /: true; expected a whole number$/)
  await rejects({ port: 70000 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "port" in .*: 70000; expected at most 65535$/)
  await rejects({ 'max-connections': 0 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "max-connections" in .*: 0; expected at least 1$/, SERVE_FLAGS)
  await rejects('{"max-body-bytes": 1e300}', 'PETREL_ERR_CLI_BAD_VALUE', /"max-body-bytes" .*; expected a whole number$/, SERVE_FLAGS)
  await rejects(
    '{"keepalive-timeout": 1e300}',
    'PETREL_ERR_CLI_BAD_VALUE',
    /"keepalive-timeout" .*; expected at most 2147483647ms \(about 24 days, the longest a timer can wait\)$/,
    SERVE_FLAGS,
  )
  assert.equal((await loadConfig(configFile({ port: 0 }), SPECS)).get('port'), 0)
  assert.equal((await loadConfig(configFile('{"port": 8.08e3}'), SPECS)).get('port'), 8080, 'any JSON spelling of a whole number')
})

test('duration keys take a number of seconds, as a bare number on the command line, or a duration string', async () => {
  const flags = async (value: unknown) => (await loadConfig(configFile({ 'headers-timeout': value }), SPECS)).get('headers-timeout')
  assert.equal(await flags(5), 5000, 'a number is seconds')
  assert.equal(await flags('5'), 5000, 'a bare number in a string is seconds too')
  assert.equal(await flags(0.25), 250)
  assert.equal(await flags(1.5), 1500)
  assert.equal(await flags('1.5s'), 1500)
  assert.equal(await flags('250ms'), 250)
  assert.equal(await flags('1m'), 60_000)
  assert.equal(await flags(5), parseArgs(['--headers-timeout', '5'], SPECS, 'serve').flags.get('headers-timeout'), 'the same as the flag')
  await rejects({ 'headers-timeout': 1500 }, 'PETREL_ERR_CLI_BAD_VALUE', /: 1500; expected at most 60000ms$/)
  const expected = /; expected a number of seconds or a duration string such as "500ms", "5s" or "1m"$/
  await rejects({ 'headers-timeout': 'soon' }, 'PETREL_ERR_CLI_BAD_VALUE', new RegExp(`bad value for "headers-timeout" in .*: "soon"${expected.source}`))
  await rejects({ 'headers-timeout': '5 s' }, 'PETREL_ERR_CLI_BAD_VALUE', expected)
  await rejects({ 'headers-timeout': -5 }, 'PETREL_ERR_CLI_BAD_VALUE', expected)
  await rejects({ 'headers-timeout': false }, 'PETREL_ERR_CLI_BAD_VALUE', expected)
  await rejects({ 'headers-timeout': '2m' }, 'PETREL_ERR_CLI_BAD_VALUE', /: "2m"; expected at most 60000ms$/)
  await rejects({ 'headers-timeout': 0 }, 'PETREL_ERR_CLI_BAD_VALUE', /: 0; expected at least 1ms$/)
})

test('a string setting whose value may be a number ("workers") takes a JSON whole number too', async () => {
  const workers = async (value: unknown) => (await loadConfig(configFile({ workers: value }), SERVE_FLAGS, { exclude: EXCLUDE })).get('workers')
  assert.equal(await workers(1), '1', 'read as the flag would read --workers 1')
  assert.equal(await workers(4), parseArgs(['--workers', '4'], SERVE_FLAGS, 'serve').flags.get('workers'))
  assert.equal(await workers('auto'), 'auto')
  await rejects(
    { workers: 1.5 },
    'PETREL_ERR_CLI_BAD_VALUE',
    /bad value for "workers" in .*: 1\.5; expected a whole number or a non-empty string$/,
    SERVE_FLAGS,
  )
  await rejects({ workers: -1 }, 'PETREL_ERR_CLI_BAD_VALUE', /: -1; expected a whole number or a non-empty string$/, SERVE_FLAGS)
  // Other string settings still refuse numbers: "host": 127 is a typo, not an address.
  await rejects({ host: 127 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "host" in .*: 127; expected a non-empty string$/, SERVE_FLAGS)
})

test('boolean keys take true or false', async () => {
  await rejects({ list: 'true' }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "list" in .*: "true"; expected true without quotes$/)
  await rejects({ list: 1 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "list" in .*: 1; expected true or false$/)
  await rejects({ list: 'yes' }, 'PETREL_ERR_CLI_BAD_VALUE', /: "yes"; expected true or false$/)
})

test('string keys take non-empty strings', async () => {
  await rejects({ host: '' }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "host" in .*: ""; expected a non-empty string$/)
  await rejects({ host: 127 }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "host" in .*: 127; expected a non-empty string$/)
  await rejects({ root: ['public'] }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "root" in .*: \["public"\]; expected a non-empty string$/)
  await rejects({ port: 'x'.repeat(100) }, 'PETREL_ERR_CLI_BAD_VALUE', /: "x{36}\.\.\.; expected a whole number$/)
})

test('list keys take arrays of non-empty strings', async () => {
  await rejects({ header: 'X-A: 1' }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "header" in .*: "X-A: 1"; expected an array of strings: \["X-A: 1"\]$/)
  await rejects({ header: ['X-A: 1', 2] }, 'PETREL_ERR_CLI_BAD_VALUE', /bad value for "header" in .*: 2; expected a non-empty string at index 1$/)
  await rejects({ header: [''] }, 'PETREL_ERR_CLI_BAD_VALUE', /: ""; expected a non-empty string at index 0$/)
  await rejects({ header: { a: 'b' } }, 'PETREL_ERR_CLI_BAD_VALUE', /: \{"a":"b"\}; expected an array of non-empty strings$/)
})

test('a JSON syntax error names the file, line and column', async () => {
  const cases: Array<[string, number, number, RegExp]> = [
    // A trailing comma: V8 gives the position.
    ['{\n  "port": 8080,\n}\n', 3, 1, /expected double-quoted property name$/],
    ['{\n  "port": 8080\n  "host": "x"\n}', 3, 3, /expected ',' or '}' after property value$/],
    // Bad literals: V8 quotes a snippet instead of a position, so we find it ourselves.
    ['{\n  "port": 8080,\n  "list": True\n}', 3, 11, /unexpected "True"$/],
    ['{\n  "list": tru\n}', 2, 11, /unexpected "tru"$/],
    ['{\r\n  "port": 1,\r\n  "host": undefined\r\n}', 3, 11, /unexpected "undefined"$/],
    ['{"port": NaN}', 1, 10, /unexpected "NaN"$/],
    ['{"host": "a\\x"}', 1, 13, /bad escaped character$/],
    ['{"port": 8080', 1, 14, /expected ',' or '\}' after property value$/],
    ['{\n  "port":', 2, 10, /unexpected end of JSON input$/],
  ]
  for (const [text, line, column, reason] of cases) {
    await rejects(text, 'PETREL_ERR_CLI_BAD_VALUE', new RegExp(`^config file .* is not valid JSON at line ${line}, column ${column}: ${reason.source}`))
  }
  await rejects(' \n', 'PETREL_ERR_CLI_BAD_VALUE', /^config file .* is empty; expected a JSON object such as \{"port": 8080\}$/)
})

test('the top level must be an object', async () => {
  await rejects('[{"port": 8080}]', 'PETREL_ERR_CLI_BAD_VALUE', /^config file .* must hold a JSON object such as \{"port": 8080\}, not an array$/)
  await rejects('null', 'PETREL_ERR_CLI_BAD_VALUE', /, not null$/)
  await rejects('"port"', 'PETREL_ERR_CLI_BAD_VALUE', /, not a string$/)
})

test('a missing or unreadable file is named', async () => {
  const missing = path.join(dir, 'nope', 'petrel.json')
  await assert.rejects(loadConfig(missing, SPECS), {
    code: 'PETREL_ERR_CLI_BAD_VALUE',
    message: `config file ${missing}: not found (looked for ${missing})`,
  })
  await assert.rejects(loadConfig('petrel-no-such-config.json', SPECS), {
    message: `config file petrel-no-such-config.json: not found (looked for ${path.resolve('petrel-no-such-config.json')})`,
  })
  await assert.rejects(loadConfig(dir, SPECS), {
    message: `config file ${dir}: is a directory, not a regular file; give the path of the configuration file itself`,
  })
})

test('only a regular file of at most maxBytes is read: a FIFO, a device or a larger file is refused at once', async () => {
  const fifo = path.join(dir, 'petrel.fifo')
  execFileSync('mkfifo', [fifo])
  // A FIFO with no writer: reading it would wait for ever (and stop a server reloading).
  await assert.rejects(loadConfig(fifo, SPECS), {
    message: `config file ${fifo}: is a FIFO (named pipe), not a regular file; give the path of the configuration file itself`,
  })
  await assert.rejects(loadConfig('/dev/zero', SPECS), {
    message: 'config file /dev/zero: is a character device, not a regular file; give the path of the configuration file itself',
  })
  const big = configFile(`{"port": 8080${' '.repeat(2000)}}`)
  await assert.rejects(loadConfig(big, SPECS, { maxBytes: 1000 }), {
    message: /^config file .*: is \d+ bytes, over the limit of 1000; raise it with --max-config-bytes$/,
  })
  assert.deepEqual([...(await loadConfig(big, SPECS, { maxBytes: 4000 })).entries()], [['port', 8080]])
})
