// A room in Redis, as the CLI knows it before anything connects: where `--redis URL` points
// (parsed and checked, so a bad URL is exit 2 naming the flag; told in log lines without its
// password) and the hub's defaults. Kept apart from redis-hub.ts so that reading flags and
// printing --help do not load the Redis client (node-redis): only a room given --redis needs it.

import { InvalidOptionError } from '../../core/option-error.ts'

export const REDIS_HUB_DEFAULTS = {
  room: 'lobby',
  /** A node's heartbeat lives this long unless refreshed. */
  heartbeatTtlMs: 15_000,
  /** Heartbeat refresh and dead-node sweep period. */
  heartbeatMs: 5_000,
  /** The first reconnect after a lost connection waits this long; each failed one doubles it. */
  reconnectMs: 100,
  /** The cap of that doubling: a Redis that is back is found within this long. */
  maxReconnectMs: 5_000,
  /** A command unanswered this long fails (the client sees `! the room is unavailable`). */
  commandTimeoutMs: 5_000,
  /** TCP keep-alive probes after this long idle: a quiet subscription notices a dead peer. */
  keepAliveMs: 15_000,
  /** Commands waiting to be written or answered, per connection (a Redis that stops reading); past it they fail at once. */
  maxQueuedCommands: 10_000,
} as const

export interface RedisAddress {
  host: string
  port: number
  username?: string
  password?: string
  db: number
}

/** `redis://[[user]:password@]host[:port][/db]`; throws an InvalidOptionError saying what is wrong. */
export function parseRedisUrl(text: string): RedisAddress {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidOptionError(`${JSON.stringify(text)} is not a URL; expected redis://HOST:PORT`)
  }
  if (url.protocol !== 'redis:') throw new InvalidOptionError(`${JSON.stringify(text)}: only redis:// URLs are supported`)
  if (url.hostname === '') throw new InvalidOptionError(`${JSON.stringify(text)} has no host`)
  const db = url.pathname === '' || url.pathname === '/' ? 0 : Number(url.pathname.slice(1))
  if (!Number.isInteger(db) || db < 0) throw new InvalidOptionError(`${JSON.stringify(text)}: the path must be a database number, e.g. /0`)
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
