// A small Redis client: one TCP connection, commands pipelined (each reply answers the oldest
// command waiting), and pub/sub on a connection of its own. When the connection drops, waiting
// commands fail at once, new ones fail fast while it is down, and it reconnects with backoff —
// resubscribing, so a subscriber comes back by itself.

import net from 'node:net'
import { encodeCommand, RedisError, ReplyParser, type Reply } from './resp.ts'

export interface RedisAddress {
  host: string
  port: number
  username?: string
  password?: string
  db: number
}

/** `redis://[[user]:password@]host[:port][/db]`; throws a RangeError saying what is wrong. */
export function parseRedisUrl(text: string): RedisAddress {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new RangeError(`${JSON.stringify(text)} is not a URL; expected redis://HOST:PORT`)
  }
  if (url.protocol !== 'redis:') throw new RangeError(`${JSON.stringify(text)}: only redis:// URLs are supported`)
  if (url.hostname === '') throw new RangeError(`${JSON.stringify(text)} has no host`)
  const db = url.pathname === '' || url.pathname === '/' ? 0 : Number(url.pathname.slice(1))
  if (!Number.isInteger(db) || db < 0) throw new RangeError(`${JSON.stringify(text)}: the path must be a database number, e.g. /0`)
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    db,
  }
}

/** Where a Redis address points, for a log line: never the password. */
export function describeRedis(address: RedisAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host
  return `redis://${address.username === undefined ? '' : `${address.username}@`}${host}:${address.port}/${address.db}`
}

export interface RedisClientOptions {
  log?: (line: string) => void
  /** Delay before the first reconnect; it doubles up to maxReconnectMs. */
  reconnectMs?: number
  maxReconnectMs?: number
  /** Called each time a lost connection is back (after AUTH, SELECT and resubscribing). */
  onReconnect?: () => void
  commandTimeoutMs?: number
}

interface Waiting {
  resolve: (reply: Reply) => void
  reject: (err: Error) => void
  sentAt: number
}

export const REDIS_CLIENT_DEFAULTS = {
  /** A command unanswered this long means the connection is dead (a network that drops packets silently): it is closed and retried. */
  commandTimeoutMs: 5_000,
  /** Bytes queued for a connection that does not drain before commands fail at once. */
  maxQueuedBytes: 16 * 1024 * 1024,
  /** TCP keep-alive probes after this long idle: a quiet subscription notices a dead peer. */
  keepAliveMs: 15_000,
} as const

export class RedisClient {
  private readonly address: RedisAddress
  private readonly log: (line: string) => void
  private readonly reconnectMs: number
  private readonly maxReconnectMs: number
  private readonly onReconnect: () => void
  private readonly commandTimeoutMs: number
  private watchdog: NodeJS.Timeout | null = null
  private socket: net.Socket | null = null
  private parser = new ReplyParser()
  private readonly waiting: Waiting[] = []
  private readonly channels = new Map<string, (payload: string) => void>()
  private up = false
  /** The first connection succeeded: from then on a lost one is retried. */
  private established = false
  private closing = false
  private delay: number
  private retry: NodeJS.Timeout | null = null

  private constructor(address: RedisAddress, options: RedisClientOptions) {
    this.address = address
    this.log = options.log ?? (() => {})
    this.reconnectMs = options.reconnectMs ?? 100
    this.maxReconnectMs = options.maxReconnectMs ?? 5_000
    this.onReconnect = options.onReconnect ?? (() => {})
    this.commandTimeoutMs = options.commandTimeoutMs ?? REDIS_CLIENT_DEFAULTS.commandTimeoutMs
    this.delay = this.reconnectMs
  }

  /** Connect (and AUTH, SELECT); rejects when the first connection fails. */
  static async connect(address: RedisAddress, options: RedisClientOptions = {}): Promise<RedisClient> {
    const client = new RedisClient(address, options)
    await client.open()
    return client
  }

  get connected(): boolean {
    return this.up
  }

  /** Send a command; resolves with its reply, rejects with a RedisError reply or a lost connection. */
  command(args: readonly (string | number)[]): Promise<Reply> {
    if (!this.up) return Promise.reject(new Error(`redis ${this.address.host}:${this.address.port} is unreachable`))
    return this.send(args)
  }

  /** Subscribe this connection to `channel` (it then takes no other commands but more SUBSCRIBEs). */
  async subscribe(channel: string, onMessage: (payload: string) => void): Promise<void> {
    this.channels.set(channel, onMessage)
    await this.command(['SUBSCRIBE', channel])
  }

  async close(): Promise<void> {
    this.closing = true
    if (this.watchdog !== null) clearInterval(this.watchdog)
    if (this.retry !== null) clearTimeout(this.retry)
    const socket = this.socket
    if (socket === null || socket.destroyed) return
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    if (this.up && this.channels.size === 0) {
      // A polite QUIT; a server that does not answer it is not waited for.
      this.send(['QUIT']).catch(() => {})
      setTimeout(() => socket.destroy(), 1_000).unref()
    } else socket.destroy()
    await closed
  }

  private send(args: readonly (string | number)[]): Promise<Reply> {
    const socket = this.socket!
    if (socket.writableLength > REDIS_CLIENT_DEFAULTS.maxQueuedBytes) {
      return Promise.reject(new Error(`redis ${this.address.host}:${this.address.port} is not taking commands (${socket.writableLength} bytes queued)`))
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, sentAt: Date.now() })
      socket.write(encodeCommand(args))
      this.watch()
    })
  }

  /** While commands wait, check once in a while that the oldest has not waited too long. */
  private watch(): void {
    if (this.watchdog !== null) return
    this.watchdog = setInterval(() => {
      const oldest = this.waiting[0]
      if (oldest === undefined) {
        clearInterval(this.watchdog!)
        this.watchdog = null
        return
      }
      if (Date.now() - oldest.sentAt > this.commandTimeoutMs) {
        this.log(`redis ${this.address.host}:${this.address.port}: no answer for ${this.commandTimeoutMs} ms; reconnecting`)
        this.socket?.destroy()
      }
    }, Math.max(100, this.commandTimeoutMs / 5))
    this.watchdog.unref()
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.address.port, this.address.host)
      this.socket = socket
      this.parser = new ReplyParser()
      socket.setNoDelay(true)
      socket.setKeepAlive(true, REDIS_CLIENT_DEFAULTS.keepAliveMs)
      socket.on('data', (chunk: Buffer) => this.receive(chunk))
      socket.on('error', (err) => {
        if (!this.up) reject(err)
      })
      socket.on('close', () => this.lost())
      socket.once('connect', () => {
        this.up = true
        this.handshake().then(() => {
          this.established = true
          this.delay = this.reconnectMs
          resolve()
        }, (err: Error) => {
          reject(err)
          socket.destroy()
        })
      })
    })
  }

  /** AUTH, SELECT and the subscriptions of a connection that was lost, in order. */
  private async handshake(): Promise<void> {
    const { username, password, db } = this.address
    const steps: (string | number)[][] = []
    if (password !== undefined) steps.push(username === undefined ? ['AUTH', password] : ['AUTH', username, password])
    if (db !== 0) steps.push(['SELECT', db])
    for (const channel of this.channels.keys()) steps.push(['SUBSCRIBE', channel])
    for (const reply of await Promise.all(steps.map((args) => this.send(args)))) if (reply instanceof RedisError) throw reply
  }

  private receive(chunk: Buffer): void {
    let replies: Reply[]
    try {
      replies = this.parser.push(chunk)
    } catch (err) {
      this.log(`redis: ${(err as Error).message}; reconnecting`)
      this.socket?.destroy()
      return
    }
    for (const reply of replies) {
      // A published message arrives unasked: ["message", channel, payload].
      if (Array.isArray(reply) && reply[0] === 'message' && this.channels.size > 0) {
        this.channels.get(reply[1] as string)?.(reply[2] as string)
        continue
      }
      const waiter = this.waiting.shift()
      if (waiter === undefined) continue
      if (reply instanceof RedisError) waiter.reject(reply)
      else waiter.resolve(reply)
    }
  }

  private lost(): void {
    const wasUp = this.up
    this.up = false
    for (const waiter of this.waiting.splice(0)) waiter.reject(new Error('the connection to redis was lost'))
    if (this.closing || !this.established) return
    if (wasUp) this.log(`redis ${this.address.host}:${this.address.port}: connection lost; reconnecting`)
    this.retry = setTimeout(() => {
      this.retry = null
      this.open().then(
        () => {
          this.log(`redis ${this.address.host}:${this.address.port}: connected again`)
          this.onReconnect()
        },
        () => {},
      )
    }, this.delay)
    this.retry.unref()
    this.delay = Math.min(this.delay * 2, this.maxReconnectMs)
  }
}
