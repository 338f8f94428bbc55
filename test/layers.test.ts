// Imports point down only: cli → apps → process → monitor → server → protocol → core. What a lower
// layer needs from a higher one (a place to count metrics, a worker module to fork) it declares as
// an interface or takes as data, and the higher layer provides it; a module that imports upward
// would tie, say, the HTTP engine to the apps that use it. And a room does one job: no file in
// src/ is over 600 lines, the two HTTP/1 parsers aside (one state machine each, kept whole so
// that V8 compiles one loop).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))
/** The layers, lowest first; a module may import from its own layer and those before it. */
const LAYERS = ['core', 'protocol', 'server', 'monitor', 'process', 'apps', 'cli'] as const
const MAX_LINES = 600
const LONG_ALLOWED = new Set(['protocol/http1/parser.ts', 'protocol/http1/response-parser.ts'])

function sources(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => name.split(path.sep).join('/'))
    .sort()
}

function layerOf(relative: string): number {
  const layer = LAYERS.indexOf(relative.split('/')[0] as (typeof LAYERS)[number])
  return layer
}

test('every module of src/ is in a layer, and imports only from its own layer and those below', () => {
  const upward: string[] = []
  const unplaced: string[] = []
  for (const file of sources()) {
    const own = layerOf(file)
    if (own === -1) {
      if (file !== 'index.ts') unplaced.push(file)
      continue
    }
    const text = readFileSync(path.join(SRC, file), 'utf8')
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? ''))
      const layer = layerOf(target)
      if (layer > own) upward.push(`${file} imports ${target}`)
    }
    // A dynamic import is an import too (modules loaded only when used).
    for (const m of text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? ''))
      if (layerOf(target) > own) upward.push(`${file} imports ${target} (dynamic)`)
    }
  }
  assert.deepEqual(unplaced, [])
  assert.deepEqual(upward, [])
})

test('src/process knows no application: nothing in it names apps/', () => {
  const named = sources()
    .filter((file) => file.startsWith('process/'))
    .filter((file) => /['/]apps\//.test(readFileSync(path.join(SRC, file), 'utf8')))
  assert.deepEqual(named, [])
})

test(`no file in src/ is over ${MAX_LINES} lines, the HTTP/1 parsers aside (a room of one job)`, () => {
  const long: string[] = []
  for (const file of sources()) {
    if (LONG_ALLOWED.has(file)) continue
    const lines = readFileSync(path.join(SRC, file), 'utf8').split('\n').length - 1
    if (lines > MAX_LINES) long.push(`${file}: ${lines}`)
  }
  assert.deepEqual(long, [])
})

test('src/cli reads its flags without casts: every value is typed by its flag spec (cli/args.ts defineFlags)', () => {
  const CAST = /(?:\)|\w)\s+as\s+(?!const\b)(?:string|number|boolean|unknown|any|[A-Z]\w*)\b/
  const casts: string[] = []
  for (const file of sources().filter((name) => name.startsWith('cli/'))) {
    const lines = readFileSync(path.join(SRC, file), 'utf8').split('\n')
    lines.forEach((line, i) => {
      const code = line.trimStart()
      if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return
      if (CAST.test(line)) casts.push(`${file}:${i + 1}: ${code}`)
    })
  }
  assert.deepEqual(casts, [])
})
