// docs/book-map.md stays true: a row for every chapter from 5 to 17 (and the background of 1–4),
// every file it names exists, and every test it quotes by name is in the test file it names.

import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const rows = readFileSync(path.join(REPO, 'docs/book-map.md'), 'utf8')
  .split('\n')
  .filter((line) => /^\| (\d+|1–4) \|/.test(line))
  .map((line) =>
    line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim()),
  )

test('one row per chapter: 1–4, then 5 to 17, in order, each with files, a command, a test and what Node cannot do', () => {
  assert.deepEqual(
    rows.map((row) => row[0]),
    ['1–4', ...Array.from({ length: 13 }, (_, i) => String(i + 5))],
  )
  for (const row of rows) {
    assert.equal(row.length, 6, `chapter ${row[0]}: ${row.length} cells`)
    for (const cell of row) assert.ok(cell.length > 0, `chapter ${row[0]} has an empty cell`)
    assert.match(row[4]!, /test\/[\w.-]+\.test\.ts/, `chapter ${row[0]} names a test file`)
    assert.match(row[3]!, /npx |npm /, `chapter ${row[0]} has a command`)
  }
})

test('every file the map names exists', () => {
  const missing: string[] = []
  for (const row of rows) {
    for (const [, dir, rest] of row.join(' ').matchAll(/`((?:src|test|bench)\/[\w./-]*?)([\w.-]*\.(?:ts|mjs))`/g)) {
      if (!existsSync(path.join(REPO, dir! + rest!))) missing.push(`${row[0]}: ${dir}${rest}`)
    }
  }
  assert.deepEqual(missing, [])
})

test('every test quoted by name is in the test file named before it', () => {
  const missing: string[] = []
  for (const row of rows) {
    // `test/FILE.test.ts` "NAME", "NAME"; … — each quoted name belongs to the file named last.
    for (const [, file, names] of row[4]!.matchAll(/`(test\/[\w.-]+\.test\.ts)`((?: "[^"]+",?)*)/g)) {
      const source = readFileSync(path.join(REPO, file!), 'utf8')
      for (const [, name] of names!.matchAll(/"([^"]+)"/g)) {
        const prefix = name!.replace(/ …$/, '')
        if (!source.includes(prefix.replaceAll("'", "\\'")) && !source.includes(prefix)) missing.push(`${file}: ${name}`)
      }
    }
  }
  assert.deepEqual(missing, [])
})
