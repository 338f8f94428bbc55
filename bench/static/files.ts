// The files the static suite serves: random bytes (so no layer can compress them), made in a
// fresh temp directory that is removed when the suite ends, however it ends.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from '../lib/children.ts'

export interface StaticFile {
  /** Scenario name and size label, e.g. `100k`. */
  readonly name: string
  /** URL path, e.g. `/100k.bin`. */
  readonly urlPath: string
  readonly bytes: number
}

export const FILES: readonly StaticFile[] = [
  { name: '1k', urlPath: '/1k.bin', bytes: 1024 },
  { name: '100k', urlPath: '/100k.bin', bytes: 100 * 1024 },
  { name: '10m', urlPath: '/10m.bin', bytes: 10 * 1024 * 1024 },
]

export interface FileTree {
  readonly root: string
  /** Each file's content, to check what the servers send. */
  readonly contents: ReadonlyMap<string, Buffer>
  remove(): void
}

export function makeFileTree(): FileTree {
  const root = mkdtempSync(join(tmpdir(), 'petrel-bench-static-'))
  const remove = (): void => rmSync(root, { recursive: true, force: true })
  const removeCleanup = onCleanup(remove)
  const contents = new Map<string, Buffer>()
  for (const file of FILES) {
    const content = randomBytes(file.bytes)
    writeFileSync(join(root, file.urlPath.slice(1)), content)
    contents.set(file.name, content)
  }
  return {
    root,
    contents,
    remove: () => {
      remove()
      removeCleanup()
    },
  }
}
