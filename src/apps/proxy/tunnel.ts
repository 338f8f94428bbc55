// One tunnel for both proxies: a CONNECT through the forward proxy and an Upgrade (WebSocket)
// through the reverse proxy end the same way, with two sockets that left HTTP and are joined byte
// for byte until either leaves.
//
// - Backpressure both ways: a write that the kernel cannot take at once (write() returns false)
//   pauses the socket it came from, and the other socket's 'drain' resumes it. What a tunnel holds
//   is then bounded by the sockets' own buffers, whatever either peer sends and however slowly the
//   other reads.
// - Half-close passes on, as TCP's own, both ways: the client's end of input ends what goes up,
//   the upstream's end ends what goes down, and each socket allows half-open (the upstream's is
//   set so here; Node would otherwise end it when its peer's FIN arrives and drop what the client
//   sends after it).
// - Idle timeout: a socket with no bytes either way for `idleTimeoutMs` destroys both (0: none).
// - Leaving: the client gone, nobody is left to read the upstream, so it is destroyed; the upstream
//   gone, the client gets what is queued, then the connection closes (what it still sends is read
//   and dropped, so a client paused by the dead upstream cannot hold the tunnel). Either socket's
//   error destroys both.
// - Every open tunnel is in its proxy's `tunnels` set until both sockets closed, so the proxy's
//   close() (a stop, or the end of a graceful stop's shutdown timeout) can destroy them: they left
//   the server's HTTP, and the server's close does not reach them.
//
// Sockets' timeouts are Node's own (socket.setTimeout), freed when the socket is destroyed.

import type { Buffer } from 'node:buffer'
import type net from 'node:net'

export interface TunnelOptions {
  /** A socket with no bytes either way for this long destroys the tunnel; 0: never. */
  idleTimeoutMs: number
  /** The proxy's open tunnels: this one is in it until both sockets have closed. */
  tunnels: Set<Tunnel>
  /**
   * The upstream socket hands its reads to the tunnel itself (an UpstreamConnection reads into
   * pooled buffers through `onread`, and calls fromUpstream); false: the tunnel reads its 'data'.
   */
  upstreamReadsItself: boolean
}

export class Tunnel {
  readonly client: net.Socket
  readonly upstream: net.Socket
  private readonly tunnels: Set<Tunnel>
  /** Sockets of this tunnel not closed yet: it leaves `tunnels` at 0. */
  private open = 2

  /**
   * Join `client` and `upstream`. The protocol's own answer to the client (a 200 to CONNECT, the
   * 101) is written before this; `fromClient` holds the bytes the client sent after its request
   * head, `fromUpstream` those the upstream sent after its answer, each passed on first.
   */
  constructor(client: net.Socket, upstream: net.Socket, fromClient: Buffer, fromUpstream: Buffer, options: TunnelOptions) {
    this.client = client
    this.upstream = upstream
    this.tunnels = options.tunnels
    upstream.allowHalfOpen = true
    if (fromUpstream.length > 0) client.write(fromUpstream)
    if (fromClient.length > 0) upstream.write(fromClient)
    for (const socket of [client, upstream]) {
      socket.setTimeout(options.idleTimeoutMs, this.destroy)
      socket.on('error', this.destroy)
      socket.once('close', this.onSocketClose)
    }
    client.on('end', this.onClientEnd)
    upstream.on('end', this.onUpstreamEnd)
    client.on('close', this.onClientClose)
    upstream.on('close', this.onUpstreamClose)
    client.on('drain', this.onClientDrain)
    upstream.on('drain', this.onUpstreamDrain)
    client.on('data', this.onClientData)
    if (!options.upstreamReadsItself) {
      upstream.on('data', this.onUpstreamData)
      upstream.resume()
    }
    client.resume()
    // Last, once the listeners that take it out again are on: nothing above can leave it behind.
    this.tunnels.add(this)
  }

  /**
   * Bytes read from the upstream, to the client; `written` is called once the client's socket took
   * them (or dropped them, destroyed). False: the client is behind, the upstream must pause until
   * the client's drain resumes it (an onread callback returns it to pause reading).
   */
  fromUpstream(chunk: Buffer, written?: () => void): boolean {
    return this.client.write(chunk, written)
  }

  /** Close both sockets now: an error, the idle timeout, or the proxy closing. */
  readonly destroy = (): void => {
    this.client.destroy()
    this.upstream.destroy()
  }

  private readonly onClientData = (chunk: Buffer): void => {
    // The upstream is gone or ended: nowhere to send it, and pausing would wait for a 'drain'
    // that never comes.
    if (this.upstream.destroyed || this.upstream.writableEnded) return
    if (!this.upstream.write(chunk)) this.client.pause()
  }

  private readonly onUpstreamData = (chunk: Buffer): void => {
    if (!this.client.write(chunk)) this.upstream.pause()
  }

  private readonly onClientDrain = (): void => {
    this.upstream.resume()
  }

  private readonly onUpstreamDrain = (): void => {
    this.client.resume()
  }

  private readonly onClientEnd = (): void => {
    this.upstream.end()
  }

  /** The upstream ended its side: the client gets what is queued, then the end; it may still send. */
  private readonly onUpstreamEnd = (): void => {
    this.client.end()
  }

  /** The upstream is gone: the client gets what is queued, then the connection closes. */
  private readonly onUpstreamClose = (): void => {
    this.client.resume()
    this.client.destroySoon()
  }

  /** The client is gone: nobody is left to read the upstream. */
  private readonly onClientClose = (): void => {
    this.upstream.destroy()
  }

  private readonly onSocketClose = (): void => {
    if (--this.open === 0) this.tunnels.delete(this)
  }
}

/** Destroy every open tunnel (the proxy is closing). */
export function closeTunnels(tunnels: Set<Tunnel>): void {
  for (const tunnel of tunnels) tunnel.destroy()
  tunnels.clear()
}
