// Signals as events, the same for a master and for a single process, as nginx's
// ngx_process_cycle.c has them: a handler only sets a flag, and one loop (`act`) reads the flags
// and does the work, most drastic first, one action at a time — so a burst of signals never
// runs two actions at once.
//
//   SIGHUP            reload: read the configuration again and serve with it
//   SIGTERM, SIGINT   fast stop: cut every connection and exit
//   SIGQUIT           graceful stop: finish in-flight requests (up to timeouts.shutdownMs), exit
//   SIGUSR1           reopen the log files (after logrotate moved them)

export type SignalAction = 'reload' | 'stop' | 'quit' | 'reopen'

/** Each signal and what it asks for; `petrel serve --signal NAME` sends the first signal of NAME. */
export const SIGNAL_ACTIONS: ReadonlyArray<readonly [NodeJS.Signals, SignalAction]> = [
  ['SIGHUP', 'reload'],
  ['SIGTERM', 'stop'],
  ['SIGINT', 'stop'],
  ['SIGQUIT', 'quit'],
  ['SIGUSR1', 'reopen'],
]

/** The signal `--signal NAME` sends, or undefined for a name that is not an action. */
export function signalFor(name: string): NodeJS.Signals | undefined {
  return SIGNAL_ACTIONS.find(([, action]) => action === name)?.[0]
}

export interface SignalHandlers {
  reload(): Promise<void>
  reopen(): Promise<void>
  /**
   * Stop serving and resolve once everything is closed. Called once with 'quit' or 'stop'; a
   * fast stop asked for during a graceful one calls it again with 'stop', which must cut what
   * is left rather than wait for it.
   */
  stop(how: 'quit' | 'stop'): Promise<void>
  /**
   * A reload that can take long (a master replacing its workers one by one) gives way to a stop:
   * a stop raised while it runs is acted on at once, and the reload, which must check for a stop
   * after each of its steps, returns early. Without it, a stop waits for the reload to finish.
   */
  stopInterruptsReload?: boolean
}

export class SignalLoop {
  private readonly handlers: SignalHandlers
  private readonly flags: Record<SignalAction, boolean> = { reload: false, stop: false, quit: false, reopen: false }
  private readonly listeners: Array<readonly [NodeJS.Signals, () => void]> = []
  private acting = false
  /** A reload is running (a stop may interrupt it: SignalHandlers.stopInterruptsReload). */
  private reloading = false
  private started = false
  /** The stop under way, if any: after it, only a fast stop during a graceful one is acted on. */
  private stopping: 'quit' | 'stop' | null = null

  constructor(handlers: SignalHandlers) {
    this.handlers = handlers
  }

  /**
   * Catch HUP and USR1 from now on; they wait for start(): a HUP during start-up must neither
   * kill the process (its default action) nor act on half a server. The stop signals keep their
   * default action until start(), so that Ctrl-C still ends a start-up that hangs (a database
   * that does not answer, say).
   */
  listen(): void {
    this.catch((action) => action === 'reload' || action === 'reopen')
  }

  /** The server is up: catch the stop signals too, act on the flags raised so far and on every later one. */
  start(): void {
    this.catch((action) => action === 'stop' || action === 'quit')
    this.started = true
    setImmediate(() => void this.act())
  }

  private catch(which: (action: SignalAction) => boolean): void {
    for (const [signal, action] of SIGNAL_ACTIONS) {
      if (!which(action)) continue
      const listener = (): void => this.raise(action)
      process.on(signal, listener)
      this.listeners.push([signal, listener])
    }
  }

  /** Stop catching the signals (after a stop, or a start-up that failed). */
  dispose(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener)
    this.listeners.length = 0
  }

  raise(action: SignalAction): void {
    if (this.stopping !== null) {
      // Only one thing can still change: an operator who no longer wants to wait.
      if (action === 'stop' && this.stopping === 'quit') {
        this.stopping = 'stop'
        setImmediate(() => void this.handlers.stop('stop'))
      }
      return
    }
    if ((action === 'stop' || action === 'quit') && this.reloading && this.handlers.stopInterruptsReload === true) {
      // An operator (or systemd) stopping the server must not wait out a rolling reload.
      this.stopping = action
      this.flags.stop = this.flags.quit = this.flags.reload = this.flags.reopen = false
      setImmediate(() => void this.handlers.stop(action))
      return
    }
    this.flags[action] = true
    if (this.started) setImmediate(() => void this.act())
  }

  /** The loop that acts on flags, one action at a time, most drastic first. */
  private async act(): Promise<void> {
    if (this.acting || this.stopping !== null) return
    this.acting = true
    try {
      const f = this.flags
      while (true) {
        if (f.stop || f.quit) {
          const how = f.stop ? 'stop' : 'quit'
          f.stop = f.quit = f.reload = f.reopen = false
          this.stopping = how
          await this.handlers.stop(how)
          return
        }
        if (f.reload) {
          f.reload = false
          this.reloading = true
          try {
            await this.handlers.reload()
          } finally {
            this.reloading = false
          }
          // A stop that interrupted it is under way already.
          if (this.stopping !== null) return
          continue
        }
        if (f.reopen) {
          f.reopen = false
          await this.handlers.reopen()
          continue
        }
        return
      }
    } finally {
      this.acting = false
    }
  }
}
