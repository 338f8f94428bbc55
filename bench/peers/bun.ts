// Peer: Bun.serve, Bun's built-in HTTP server (Zig + JavaScriptCore), run by the bun binary
// from the npm package `bun`.
// Usage: bun bench/peers/bun.ts PORT   (or PORT=… in the environment)

// Just the part of Bun's API used here, so that the repo's tsc (Node types only) can check this file.
interface BunServeOptions {
  port: number
  hostname: string
  routes: Record<string, () => Response>
  fetch: () => Response
}
declare const Bun: { serve(options: BunServeOptions): unknown }

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: bun.ts PORT')

Bun.serve({
  port,
  hostname: '127.0.0.1',
  // Handler functions, not static Response objects: Bun would answer static ones without
  // running any JavaScript, and every other server here runs a handler per request.
  routes: {
    '/plaintext': () => new Response('Hello, World!', { headers: { 'Content-Type': 'text/plain' } }),
    '/json': () => Response.json({ message: 'Hello, World!' }),
  },
  fetch: () => new Response('Not Found', { status: 404 }),
})
