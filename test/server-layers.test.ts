// server/ sits below monitor/, process/ and apps/: what it needs from them (a place to count
// metrics) it declares as an interface of its own, and they implement it. A module of server/
// that imports from a layer above would tie the HTTP engine to the apps that use it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'

const SERVER = new URL('../src/server/', import.meta.url)
/** Where src/server may import from: itself, the layers below it, and Node. */
const ALLOWED = /^(?:\.\/|\.\.\/core\/|\.\.\/protocol\/|node:)/

test('src/server imports only from itself, core/, protocol/ and node: (no monitor/, process/, apps/, cli/)', () => {
  const upward: string[] = []
  for (const name of readdirSync(SERVER)) {
    if (!name.endsWith('.ts')) continue
    const text = readFileSync(new URL(name, SERVER), 'utf8')
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
      if (!ALLOWED.test(m[1]!)) upward.push(`${name}: ${m[1]}`)
    }
  }
  assert.deepEqual(upward, [])
})

test('a file in src/server stays under 600 lines (a room of one job)', () => {
  const long: string[] = []
  const walk = (dir: URL): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(new URL(`${entry.name}/`, dir))
      else if (entry.name.endsWith('.ts')) {
        const lines = readFileSync(new URL(entry.name, dir), 'utf8').split('\n').length - 1
        if (lines > 600) long.push(`${entry.name}: ${lines}`)
      }
    }
  }
  walk(SERVER)
  assert.deepEqual(long, [])
})
