// Peer of the ws suite: uWebSockets.js (App().ws), run by the machine's Node 20 as
// bench/peers/uws.cjs is, for the same reason (its binaries exist only for that ABI), and loading
// the native binary directly for the same reason too. Routes as every ws peer: /echo sends each
// message back, /sub subscribes to "room" on open, /pub publishes each message to "room"
// (app.publish). No compression; maxBackpressure raised from its 64 KiB so that a subscriber
// falling behind is not silently skipped (uWS drops what is published past it) but queued as
// the Node peers queue; idleTimeout and the rest at their defaults.
// Usage: node20 bench/peers/ws-uws.cjs PORT   (or PORT=… in the environment)

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
  console.error('usage: ws-uws.cjs PORT')
  process.exit(1)
}

const settings = { compression: uws.DISABLED, maxPayloadLength: 1024 * 1024, maxBackpressure: 64 * 1024 * 1024 }
const app = uws.App()
app
  .ws('/echo', {
    ...settings,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary)
    },
  })
  .ws('/sub', {
    ...settings,
    open: (ws) => {
      ws.subscribe('room')
    },
  })
  .ws('/pub', {
    ...settings,
    message: (_ws, message, isBinary) => {
      app.publish('room', message, isBinary)
    },
  })
  .listen('127.0.0.1', port, (listenSocket) => {
    if (!listenSocket) {
      console.error(`uWebSockets.js could not listen on 127.0.0.1:${port}`)
      process.exit(1)
    }
  })
