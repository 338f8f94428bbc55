#!/usr/bin/env node
// Entry point of the `petrel` command. Plain JavaScript so that an old Node gets a clear message
// instead of a syntax error from the TypeScript sources.
const [major] = process.versions.node.split('.').map(Number)
if (major < 24) {
  console.error(`petrel: Node.js >= 24 is required (this is ${process.version}); run it through \`npx petrel\` or \`npm start\` in the project, which use the pinned Node 26`)
  process.exit(1)
}
const { main } = await import('../src/cli/main.ts')
const code = await main(process.argv.slice(2))
if (code !== 0) process.exitCode = code
