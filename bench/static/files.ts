// The files the static suite serves: random bytes (so no layer can compress them), and one HTML
// page of words for the compression row, made in a fresh temp directory that is removed when the
// suite ends, however it ends.

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
  /** Asked for with `Accept-Encoding: gzip`, and served compressed (HTML text, not random bytes). */
  readonly gzip?: true
}

export const FILES: readonly StaticFile[] = [
  { name: '1k', urlPath: '/1k.bin', bytes: 1024 },
  { name: '100k', urlPath: '/100k.bin', bytes: 100 * 1024 },
  { name: '10m', urlPath: '/10m.bin', bytes: 10 * 1024 * 1024 },
  { name: '100k-gzip', urlPath: '/100k.html', bytes: 100 * 1024, gzip: true },
]

/**
 * `bytes` of HTML made of words drawn by a fixed pseudo-random sequence: it compresses about as a
 * real page does (to roughly a third with gzip), unlike random bytes or one repeated line.
 */
export function htmlPage(bytes: number): Buffer {
  const words = [
    'server',
    'event',
    'loop',
    'socket',
    'timer',
    'wheel',
    'heap',
    'process',
    'thread',
    'pool',
    'request',
    'response',
    'header',
    'body',
    'state',
    'machine',
    'parser',
    'buffer',
    'signal',
    'daemon',
    'connection',
    'keep-alive',
    'chunk',
    'epoll',
    'reactor',
    'proactor',
    'pipe',
    'accept',
    'listen',
    'backlog',
  ]
  let seed = 0x2545f491
  let text = '<!doctype html>\n<html><head><title>Petrel</title></head><body>\n'
  while (text.length < bytes) {
    text += '<p>'
    for (let i = 0; i < 12; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      text += `${words[seed % words.length]}${seed % 7 === 0 ? ` ${seed % 1000}` : ''} `
    }
    text += '</p>\n'
  }
  return Buffer.from(text.slice(0, bytes))
}

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
    const content = file.gzip === true ? htmlPage(file.bytes) : randomBytes(file.bytes)
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
