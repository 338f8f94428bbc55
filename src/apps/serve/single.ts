// One process serves (`petrel serve` without --workers), with the master's signals and their
// meanings (process/signals.ts): HUP reloads, QUIT stops gracefully, TERM and INT stop fast, USR1
// reopens the logs.
//
// The process keeps the listening socket (process/listener.ts) and hands each accepted connection to
// its current server. A reload builds a whole new server from the new configuration — limits,
// timeouts, logs, files, CGI, proxy: everything a server is made of — on the same socket, makes
// it current, and retires the old one gracefully, as a master replaces its workers: in-flight
// requests finish, keep-alive connections close after their next response or a short idle
// grace. Nothing is closed on the socket, so no connection waiting in its accept queue is lost.
// A configuration that fails to load, or a server that fails to start from it, is refused with
// a log line and the old server keeps serving.

import { hostPort, systemFailure } from '../../core/system-failure.ts'
import type { ServeOptions, Serving } from './serve.ts'
import { startServe } from './serve.ts'
import { PetrelError } from '../../core/errors.ts'
import type { MetricsBoard } from '../../monitor/board.ts'
import type { Admin } from '../../monitor/admin.ts'
import { HandOverListener, httpUrl } from '../../process/listener.ts'
import { removePidfile, writePidfile } from '../../process/pidfile.ts'
import { planReload, refusedReloadLine } from '../../process/reload.ts'
import { SignalLoop } from '../../process/signals.ts'

export interface SingleOptions {
  options: ServeOptions
  /** Loads the configuration again for a reload; throws when it is invalid. */
  reload: () => Promise<ServeOptions>
  pidFile?: string
  /** How long an idle keep-alive connection of a retiring server may stay before it is closed. */
  idleGraceMs?: number
  /** Called once the server listens (the start-up line; the daemon's parent waits for it). */
  onReady?: (serving: Serving, admin: Admin | null) => void
  log: (line: string) => void
}

interface Generation {
  serving: Serving
  /** The metrics board's key for this server's figures. */
  key: string
}

export class SingleProcess {
  private readonly config: SingleOptions
  private options: ServeOptions
  private listener: HandOverListener | null = null
  /** The --http-port socket (redirects to https), kept across reloads as the main one is. */
  private redirectListener: HandOverListener | null = null
  private current: Generation | null = null
  /** Servers replaced by a reload that still finish their connections. */
  private readonly retiring = new Set<Serving>()
  private generations = 0
  /** With --admin: every generation's figures (loaded only then, as the admin is). */
  private board: MetricsBoard | null = null
  private admin: Admin | null = null
  private readonly signals: SignalLoop
  private pidfileWritten = false
  private exitResolve: ((code: number) => void) | null = null

  constructor(config: SingleOptions) {
    this.config = config
    this.options = config.options
    this.signals = new SignalLoop({ reload: () => this.reload(), reopen: () => this.reopen(), stop: (how) => this.stop(how) })
  }

  /** Start serving; resolves with the exit code once stopped. Start-up failures reject (PetrelError). */
  async run(): Promise<number> {
    this.signals.listen()
    try {
      if (this.config.pidFile !== undefined) {
        writePidfile(this.config.pidFile)
        this.pidfileWritten = true
      }
      this.listener = await this.listen(this.options)
      this.redirectListener = await this.listenRedirect(this.options)
      this.current = await this.startGeneration(this.options, this.listener)
      const where = this.options.admin
      if (where !== undefined) {
        const [{ MetricsBoard }, { startAdmin }] = await Promise.all([import('../../monitor/board.ts'), import('../../monitor/admin.ts')])
        const board = (this.board = new MetricsBoard())
        this.admin = await startAdmin({
          ...where,
          board,
          pids: () => [process.pid],
          refresh: () => this.refreshBoard(),
          log: (line) => this.config.log(`petrel: ${line}`),
        }).catch((err: Error) => {
          throw (
            systemFailure(err, `open the admin listener on ${hostPort(where.host, where.port)}`) ??
            new PetrelError('PETREL_ERR_LISTEN', `admin listener ${hostPort(where.host, where.port)}: ${err.message}`, { cause: err })
          )
        })
      }
    } catch (err) {
      await this.current?.serving.close('stop')
      await this.listener?.close()
      await this.redirectListener?.close()
      this.cleanup()
      throw err
    }
    this.config.onReady?.(this.current.serving, this.admin)
    this.signals.start()
    return new Promise((resolve) => (this.exitResolve = resolve))
  }

  private listen(options: ServeOptions): Promise<HandOverListener> {
    return HandOverListener.open({
      host: options.host,
      port: options.port,
      highWaterMark: options.limits?.writeHighWaterMark,
      // Connections that arrive while the first server is being built (a few milliseconds at
      // start-up) are refused as if nothing listened yet.
      onConnection: (socket) => {
        if (this.current === null) socket.destroy()
        else this.current.serving.server.handOver(socket)
      },
      onAcceptError: (err) => (this.current === null ? this.config.log(`petrel: ${err.message}`) : this.current.serving.server.reportError(err)),
    })
  }

  /** The --http-port socket: its connections go to the current generation's redirect server. */
  private async listenRedirect(options: ServeOptions): Promise<HandOverListener | null> {
    if (options.httpPort === undefined) return null
    return HandOverListener.open({
      host: options.host,
      port: options.httpPort,
      onConnection: (socket) => {
        const redirect = this.current?.serving.redirect ?? null
        if (redirect === null) socket.destroy()
        else redirect.handOver(socket)
      },
      onAcceptError: (err) => this.config.log(`petrel: ${err.message}`),
    })
  }

  private async startGeneration(options: ServeOptions, listener: HandOverListener): Promise<Generation> {
    const redirect = this.redirectListener?.address
    const serving = await startServe(options, {
      handedOver: listener.address,
      adminElsewhere: true,
      ...(redirect === undefined ? {} : { redirectHandedOver: redirect }),
    })
    listener.setHighWaterMark(serving.server.limits.writeHighWaterMark)
    return { serving, key: `generation ${++this.generations}` }
  }

  private refreshBoard(): void {
    const current = this.current
    if (current?.serving.snapshot) this.board?.update(current.key, current.serving.snapshot(null))
  }

  private async reload(): Promise<void> {
    const refuse = (why: string): void => this.config.log(`petrel: ${refusedReloadLine('still serving with the old configuration', why)}`)
    const plan = await planReload(this.config.reload, this.options, this.options, (line) => this.config.log(`petrel: ${line}`), refuse)
    if (plan === null) return
    const oldListener = this.listener!
    let listener = oldListener
    const oldRedirect = this.redirectListener
    const redirectMoved = plan.options.httpPort !== this.options.httpPort || (plan.options.httpPort !== undefined && plan.options.host !== this.options.host)
    let fresh: Generation
    try {
      if (plan.moved) listener = await this.listen(plan.options)
      if (redirectMoved) this.redirectListener = await this.listenRedirect(plan.options)
      fresh = await this.startGeneration(plan.options, listener)
    } catch (err) {
      if (listener !== oldListener) await listener.close()
      if (this.redirectListener !== oldRedirect) await this.redirectListener?.close()
      this.redirectListener = oldRedirect
      refuse((err as Error).message)
      return
    }
    // Connections the old --http-port socket still accepts go to the new server until it closes.
    if (this.redirectListener !== oldRedirect) void oldRedirect?.close()
    const old = this.current!
    this.current = fresh
    this.options = plan.options
    // The old server's last figures stay in the totals, so they never go backwards.
    this.board?.retire(old.key)
    this.retire(old.serving)
    let moved = ''
    if (listener !== oldListener) {
      this.listener = listener
      // Resolves when the old server's connections are gone: not waited for.
      void oldListener.close()
      const scheme = plan.options.tls === undefined ? 'http' : 'https'
      moved = `; now on ${httpUrl(listener.address, scheme)}, ${httpUrl(oldListener.address, scheme)} closed to new connections`
    }
    this.config.log(`petrel: reloaded (pid ${process.pid})${moved}`)
  }

  private retire(serving: Serving): void {
    this.retiring.add(serving)
    void serving.close('quit', this.config.idleGraceMs ?? 1000).then(() => this.retiring.delete(serving))
  }

  private async reopen(): Promise<void> {
    await Promise.all([this.current!.serving, ...this.retiring].map((s) => s.reopenLogs()))
  }

  private async stop(how: 'quit' | 'stop'): Promise<void> {
    const timeoutMs = this.current!.serving.server.timeouts.shutdownMs
    this.config.log(how === 'stop' ? 'petrel: fast stop' : `petrel: graceful stop, finishing in-flight requests (up to ${timeoutMs} ms)`)
    // No new connection from now on; the promise settles once the last accepted one is closed.
    const listenerClosed = Promise.all([this.listener?.close(), this.redirectListener?.close()])
    // A stop closes idle keep-alive connections at once: the grace a reload gives them is for a
    // server that stays up, so that a request already on its way is answered.
    await Promise.all([this.current!.serving, ...this.retiring].map((s) => s.close(how, 0)))
    await this.admin?.close()
    await listenerClosed
    this.cleanup()
    this.exitResolve?.(0)
  }

  private cleanup(): void {
    this.signals.dispose()
    if (this.pidfileWritten && this.config.pidFile !== undefined) removePidfile(this.config.pidFile)
    this.pidfileWritten = false
  }
}
