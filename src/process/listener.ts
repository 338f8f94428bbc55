// A listening socket that the process layer keeps, and whose connections it gives to whoever
// serves them now: a master without reusePort hands each one to a worker over IPC; a single
// process hands each one to its current HttpServer, so that a reload builds a new server on the
// same socket — nothing is closed, nothing in the accept queue is reset — and the old server
// retires with only the connections it already had.

import { hostPort, systemFailure } from '../core/system-failure.ts'
import net from 'node:net'
import { PetrelError } from '../core/errors.ts'

export interface ListenerOptions {
  host: string
  port: number
  /** Accept without reading (the master: the socket goes to another process as it is). */
  pauseOnConnect?: boolean
  /** The write buffer of each accepted socket (limits.writeHighWaterMark of the server it goes to). */
  highWaterMark?: number
  onConnection: (socket: net.Socket) => void
  /** Told about accept failures (EMFILE...), at most once a second; they never end the listener. */
  onAcceptError: (err: Error) => void
}

/** Listen backlog, as HttpServer.listen's default and nginx's on Linux. */
const BACKLOG = 511
/** Accept failures come in bursts (every connection while descriptors are out); one report a second is enough. */
const ACCEPT_ERROR_REPORT_MS = 1000

export class HandOverListener {
  readonly server: net.Server
  readonly address: net.AddressInfo

  private constructor(server: net.Server, address: net.AddressInfo) {
    this.server = server
    this.address = address
  }

  /** Listen on host:port; rejects with PETREL_ERR_LISTEN naming the address. */
  static open(options: ListenerOptions): Promise<HandOverListener> {
    const server = net.createServer({
      // As HttpServer.listen's sockets: a client that half-closes after its request still gets the answer.
      allowHalfOpen: true,
      noDelay: true,
      pauseOnConnect: options.pauseOnConnect ?? false,
      ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }),
    })
    server.on('connection', options.onConnection)
    return new Promise((resolve, reject) => {
      const onListenError = (err: Error): void =>
        reject(
          systemFailure(err, `listen on ${hostPort(options.host, options.port)}`) ??
            new PetrelError('PETREL_ERR_LISTEN', `${hostPort(options.host, options.port)}: ${err.message}`, { cause: err }),
        )
      server.once('error', onListenError)
      server.listen({ host: options.host, port: options.port, backlog: BACKLOG }, () => {
        server.off('error', onListenError)
        const listener = new HandOverListener(server, server.address() as net.AddressInfo)
        let lastReportMs = 0
        // A listening net.Server emits accept failures as 'error': unhandled, they would end the process.
        server.on('error', (err: NodeJS.ErrnoException) => {
          const now = Date.now()
          if (now - lastReportMs < ACCEPT_ERROR_REPORT_MS) return
          lastReportMs = now
          const hint = err.code === 'EMFILE' || err.code === 'ENFILE' ? ' (out of file descriptors: raise `ulimit -n` or lower --max-connections)' : ''
          options.onAcceptError(new Error(`accept failed on ${options.host}:${listener.address.port}: ${err.code ?? err.message}${hint}`, { cause: err }))
        })
        resolve(listener)
      })
    })
  }

  /**
   * The write buffer of sockets accepted from now on. net.Server reads its `highWaterMark`
   * property for every socket it accepts (lib/net.js onconnection), so a reload that changes
   * limits.writeHighWaterMark applies to new connections without a new socket.
   */
  setHighWaterMark(bytes: number): void {
    ;(this.server as net.Server & { highWaterMark: number }).highWaterMark = bytes
  }

  /**
   * Stop accepting; connections already accepted are not touched. Resolves once the last socket
   * accepted here is closed (net.Server counts them), so do not wait for it on a reload.
   */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

/** http://HOST:PORT/ for a listening address, with brackets around an IPv6 one. */
export function httpUrl(address: { address: string; family: string; port: number }, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`
}
