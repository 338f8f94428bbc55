// Peer: Fastify, the fastest mainstream Node.js framework, on the same Node as Petrel.
// Usage: node bench/peers/fastify.ts PORT   (or PORT=… in the environment)

import { createRequire } from 'node:module'

// Loaded with require() rather than `import` so that type-checking the repo does not need
// bench/node_modules, which is only installed when someone runs the benchmarks.
interface FastifyReply {
  type(contentType: string): FastifyReply
  send(body: string | object): void
}
interface FastifyApp {
  get(path: string, handler: (request: unknown, reply: FastifyReply) => void): void
  listen(options: { port: number; host: string }): Promise<string>
}
const require = createRequire(import.meta.url)
const fastify = require('fastify') as (options: { logger: boolean }) => FastifyApp

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: fastify.ts PORT')

const app = fastify({ logger: false })

app.get('/plaintext', (_request, reply) => {
  reply.type('text/plain').send('Hello, World!')
})

app.get('/json', (_request, reply) => {
  // Fastify serialises the object itself, as an application using it would.
  reply.send({ message: 'Hello, World!' })
})

await app.listen({ port, host: '127.0.0.1' })
