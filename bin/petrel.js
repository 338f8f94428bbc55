#!/usr/bin/env node
// Entry point of the `petrel` command. Plain JavaScript so that an old Node gets a clear message
// instead of a syntax error from the TypeScript sources.
import module from 'node:module'
import { existsSync, lstatSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const [major] = process.versions.node.split('.').map(Number)
if (major < 24) {
  console.error(
    `petrel: Node.js >= 24 is required (this is ${process.version}); run it through \`npx petrel\` or \`npm start\` in the project, which use the pinned Node 26`,
  )
  process.exit(1)
}

/**
 * Node strips the sources' types with a WebAssembly TypeScript parser that adds about 18 MB to a
 * process's resident memory once it is loaded — in the server and in each of its workers. Node's
 * compile cache keeps the stripped JavaScript (and V8's compiled code) by the source's hash, so a
 * process whose sources are all in it never loads the parser, and starts sooner. The cache lives in
 * the package's own node_modules/.cache: as trusted as the sources beside it (a cache anyone else
 * could write to would let them choose the code we run), which is why it must be ours and not
 * writable by others. Child processes (workers, the CGI spawner) find it through
 * NODE_COMPILE_CACHE. NODE_DISABLE_COMPILE_CACHE=1 turns it off; a NODE_COMPILE_CACHE already set
 * is Node's business and left alone.
 */
function enableCompileCache() {
  if (process.env.NODE_DISABLE_COMPILE_CACHE || process.env.NODE_COMPILE_CACHE) return
  const dir = fileURLToPath(new URL('../node_modules/.cache/petrel/', import.meta.url))
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const stats = lstatSync(dir)
    if (!stats.isDirectory() || stats.uid !== process.getuid?.() || (stats.mode & 0o022) !== 0) return
  } catch {
    // A read-only installation: run without the cache.
    return
  }
  const { directory } = module.enableCompileCache(dir)
  if (directory !== undefined) process.env.NODE_COMPILE_CACHE = directory
}

/**
 * Node refuses to strip the types of a file whose path has a node_modules segment, so an installed
 * package (node_modules/petrel, a global install) runs the JavaScript that its build wrote to
 * dist/; the repo runs its TypeScript sources, which are never stale. The test is Node's own, on
 * this file's real path (Node resolves the node_modules/.bin symlink before it runs us), so we
 * take dist/ exactly where the sources could not run.
 */
const installed = fileURLToPath(import.meta.url)
  .split(/[\\/]/)
  .includes('node_modules')
let entry = '../src/cli/main.ts'
if (installed) {
  entry = '../dist/cli/main.js'
  if (!existsSync(new URL(entry, import.meta.url))) {
    console.error(
      `petrel: ${fileURLToPath(new URL('../dist/', import.meta.url))} is missing: this copy of Petrel was installed without its build; install a package made by \`npm pack\` (whose prepack script builds dist/)`,
    )
    process.exit(1)
  }
} else {
  // The built JavaScript never loads the type-stripping parser that the cache is there to avoid,
  // and an installed package's directory is not a place to write to.
  enableCompileCache()
}
const { main } = await import(entry)
const code = await main(process.argv.slice(2))
if (code !== 0) process.exitCode = code
