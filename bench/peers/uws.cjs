// Peer: uWebSockets.js, a C++ HTTP server with a JavaScript API, run by the machine's Node 20
// because the prebuilt binaries in @trufflesuite/uws-js-unofficial only exist for that ABI.
// Usage: node20 bench/peers/uws.cjs PORT   (or PORT=… in the environment)
//
// CommonJS because the package is CommonJS. The package's own entry silently falls back to a
// pure-JavaScript implementation when the binary does not load; that would benchmark the
// wrong thing, so this loads the native binary directly and fails loudly instead.

'use strict'

const path = require('node:path')

const packageDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'))
const binary = path.join(packageDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`)
let uws
try {
  uws = require(binary)
} catch (error) {
  console.error(`uWebSockets.js has no native binary for Node ${process.version} (ABI ${process.versions.modules}): ${error.message}`)
  process.exit(1)
}

const port = Number(process.argv[2] || process.env.PORT)
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: uws.cjs PORT')
  process.exit(1)
}

uws
  .App()
  .get('/plaintext', (res) => {
    res.writeHeader('Content-Type', 'text/plain').end('Hello, World!')
  })
  .get('/json', (res) => {
    res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({ message: 'Hello, World!' }))
  })
  .any('/*', (res) => {
    res.writeStatus('404 Not Found').end()
  })
  .listen('127.0.0.1', port, (listenSocket) => {
    if (!listenSocket) {
      console.error(`uWebSockets.js could not listen on 127.0.0.1:${port}`)
      process.exit(1)
    }
  })
