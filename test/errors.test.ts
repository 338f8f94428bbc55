// The one table of error codes (src/core/errors.ts) holds only codes that Petrel uses: a code that
// no source file names is a promise of an error no user can meet, or a leftover of a removed one.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { ERRORS, PetrelError } from '../src/core/errors.ts'
import { TimingWheel } from '../src/core/timers/wheel.ts'
import { parseDatabase } from '../src/apps/accounts/store.ts'
import { allowList } from '../src/core/allow-list.ts'
import { WindowLimiter } from '../src/core/window-limiter.ts'
import { ResourcePool } from '../src/core/pool.ts'
import { HistoryRing } from '../src/monitor/history.ts'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))
const TABLE = path.join(SRC, 'core', 'errors.ts')

/** The text of every .ts file under `dir`, but the table itself. */
function sourceTexts(dir: string): string[] {
  const texts: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) texts.push(...sourceTexts(full))
    else if (entry.name.endsWith('.ts') && full !== TABLE) texts.push(readFileSync(full, 'utf8'))
  }
  return texts
}

/** The codes of `table` that none of `sources` names as a whole word (PETREL_ERR_X is not PETREL_ERR_XY). */
function unreferencedCodes(table: Readonly<Record<string, unknown>>, sources: readonly string[]): string[] {
  const named = new Set<string>()
  for (const text of sources) for (const [word] of text.matchAll(/PETREL_ERR_[A-Z0-9_]+/g)) named.add(word)
  return Object.keys(table).filter((code) => !named.has(code))
}

test('every code in the error table is used somewhere under src/', () => {
  const unused = unreferencedCodes(ERRORS, sourceTexts(SRC))
  assert.deepEqual(
    unused,
    [],
    `codes in src/core/errors.ts that no file under src/ uses: ${unused.join(', ')}; throw them where that error happens, or remove them`,
  )
})

test('the check counts whole codes only: a longer code that starts with another does not use it', () => {
  const table = { PETREL_ERR_BODY: {}, PETREL_ERR_BODY_TIMEOUT: {}, PETREL_ERR_UNUSED: {} }
  assert.deepEqual(unreferencedCodes(table, ["throw new PetrelError('PETREL_ERR_BODY_TIMEOUT')"]), ['PETREL_ERR_BODY', 'PETREL_ERR_UNUSED'])
  assert.deepEqual(unreferencedCodes(table, ['PETREL_ERR_BODY PETREL_ERR_BODY_TIMEOUT', 'PETREL_ERR_UNUSED']), [])
})

test('a bad option to the library is PETREL_ERR_INVALID_OPTION whose message names the option and the value', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => new TimingWheel({ tickMs: 0, now: 0, onExpire: () => {} }), /^tickMs must be a positive finite number of ms, got 0$/],
    [() => parseDatabase('mysql://db/app'), /^"mysql:\/\/db\/app" names no database Petrel can use/],
    [() => allowList(['10.0.0.0/33']), /^"10\.0\.0\.0\/33" is not an address or CIDR block/],
    // Whole-number options share one check and one sentence, wherever they are.
    [() => new WindowLimiter({ limit: 1, windowMs: 1000, maxKeys: 1.5 }), /^maxKeys must be an integer >= 1, got 1\.5$/],
    [() => new ResourcePool({ max: 0, create: async () => ({}), destroy: () => {} }), /^pool max must be an integer >= 1, got 0$/],
    [() => new HistoryRing(Number.NaN), /^history capacity must be an integer >= 1, got NaN$/],
  ]
  for (const [bad, message] of cases) {
    assert.throws(bad, (err: unknown) => {
      assert.ok(err instanceof PetrelError, `a PetrelError, got ${String(err)}`)
      assert.equal(err.code, 'PETREL_ERR_INVALID_OPTION')
      assert.equal(err.status, 0)
      assert.match(err.message, message)
      return true
    })
  }
})
