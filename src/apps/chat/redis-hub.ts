// `petrel chat --redis redis://HOST:PORT`: one room over several `petrel chat` instances (or
// workers), on as many machines, through Redis.
//
//   {prefix}:events        pub/sub channel: every line for clients held elsewhere, as JSON
//                          {"n": node, "e": event}; a node skips its own
//   {prefix}:nicks         hash nickKey(nickname) → "NODE NICKNAME", the node holding it and the
//                          spelling it chose: seats, and nicknames unique without regard to case
//                          (named apart from the older `members` hash, nickname → node, so that
//                          nodes of the two formats never read each other's values)
//   {prefix}:guests        counter for guest nicknames
//   {prefix}:node:{id}     a node's heartbeat, expiring unless refreshed
//
// Joins and renames are Lua scripts, so the seat check and the claim are one atomic step across
// all nodes. A node that dies without leaving stops refreshing its heartbeat; the next sweep (any
// node, every few seconds) removes its members and tells the room they left. A node that loses
// Redis and finds it again claims its members anew, so a Redis that restarted empty learns who
// is in the room.

import { randomBytes } from 'node:crypto'
import { parseRedisUrl, RedisClient } from '../../protocol/resp/client.ts'
import type { Reply } from '../../protocol/resp/resp.ts'
import { isRoomEvent, nickKey, type Hub, type RoomEvent } from './hub.ts'
import { PetrelError } from '../../core/errors.ts'

export const REDIS_HUB_DEFAULTS = {
  room: 'lobby',
  /** A node's heartbeat lives this long unless refreshed. */
  heartbeatTtlMs: 15_000,
  /** Heartbeat refresh and dead-node sweep period. */
  heartbeatMs: 5_000,
} as const

export interface RedisHubOptions {
  room?: string
  maxUsers?: number
  heartbeatMs?: number
  heartbeatTtlMs?: number
  log?: (line: string) => void
}

// A member's value is "NODE NICKNAME"; held(v, node) says whether `node` holds it.
const HELD = `local function held(v, node) return v and string.sub(v, 1, #node + 1) == node .. ' ' end`
// KEYS[1] members, KEYS[2] guests; ARGV[1] node, ARGV[2] max users.
const JOIN = `
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
local nick
repeat nick = 'guest' .. redis.call('INCR', KEYS[2]) until redis.call('HSETNX', KEYS[1], nick, ARGV[1] .. ' ' .. nick) == 1
return nick`
// KEYS[1] members; ARGV[1] node, ARGV[2] from's key, ARGV[3] to's key, ARGV[4] to.
const RENAME = `${HELD}
if not held(redis.call('HGET', KEYS[1], ARGV[2]), ARGV[1]) then return 0 end
if ARGV[2] == ARGV[3] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[1] .. ' ' .. ARGV[4])
  return 1
end
if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[1] .. ' ' .. ARGV[4]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1`
// KEYS[1] members; ARGV[1] node, ARGV[2] nick's key.
const LEAVE = `${HELD}
if held(redis.call('HGET', KEYS[1], ARGV[2]), ARGV[1]) then redis.call('HDEL', KEYS[1], ARGV[2]) end
return 1`
// KEYS[1] members; ARGV[1] node-key prefix. Members of nodes whose heartbeat expired, by nickname.
const SWEEP = `
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local node, nick = string.match(all[i + 1], '^(%S+) (.*)$')
  if not node or redis.call('EXISTS', ARGV[1] .. node) == 0 then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = nick or all[i]
  end
end
return gone`

export class RedisHub implements Hub {
  onEvent: (event: RoomEvent) => void = () => {}
  private readonly commands: RedisClient
  private readonly events: RedisClient
  private readonly node = `${process.pid}-${randomBytes(4).toString('hex')}`
  private readonly prefix: string
  private readonly maxUsers: number
  private readonly ttlMs: number
  private readonly log: (line: string) => void
  private heartbeat: NodeJS.Timeout | null = null
  /** The nicknames this node holds: what it claims again after a reconnect. */
  private readonly held = new Set<string>()

  private constructor(commands: RedisClient, events: RedisClient, options: RedisHubOptions) {
    this.commands = commands
    this.events = events
    this.prefix = `petrel:chat:${options.room ?? REDIS_HUB_DEFAULTS.room}`
    this.maxUsers = options.maxUsers ?? Number.MAX_SAFE_INTEGER
    this.ttlMs = options.heartbeatTtlMs ?? REDIS_HUB_DEFAULTS.heartbeatTtlMs
    this.log = options.log ?? (() => {})
  }

  /** Connect twice (commands, and the subscription) and start the heartbeat. */
  static async connect(url: string, options: RedisHubOptions = {}): Promise<RedisHub> {
    const address = parseRedisUrl(url)
    const log = options.log ?? (() => {})
    let hub: RedisHub | null = null
    // Told as one line at start-up, in this process or sent as text from a chat worker; the
    // address, not the URL, so that a password in the URL is not printed.
    const unavailable = (err: Error): PetrelError => new PetrelError('PETREL_ERR_REDIS_UNAVAILABLE', `${address.host}:${address.port}: ${err.message}`, { cause: err })
    const commands = await RedisClient.connect(address, { log, onReconnect: () => hub?.reclaim() }).catch((err: Error) => {
      throw unavailable(err)
    })
    let events: RedisClient
    try {
      events = await RedisClient.connect(address, { log })
    } catch (err) {
      await commands.close()
      throw unavailable(err as Error)
    }
    hub = new RedisHub(commands, events, options)
    try {
      await hub.beat()
      await events.subscribe(`${hub.prefix}:events`, (payload) => hub.receive(payload))
    } catch (err) {
      // Both connections are ours until the hub is handed over: a start that fails closes them.
      await Promise.all([commands.close(), events.close()])
      throw unavailable(err as Error)
    }
    const period = options.heartbeatMs ?? REDIS_HUB_DEFAULTS.heartbeatMs
    hub.heartbeat = setInterval(() => {
      hub.beat().catch((err: Error) => log(`redis heartbeat: ${err.message}`))
    }, period)
    hub.heartbeat.unref()
    return hub
  }

  async join(): Promise<string | null> {
    const nick = (await this.eval(JOIN, [this.members, `${this.prefix}:guests`], [this.node, this.maxUsers])) as string | null
    if (nick !== null) this.held.add(nick)
    return nick
  }

  async rename(from: string, to: string): Promise<boolean> {
    const renamed = (await this.eval(RENAME, [this.members], [this.node, nickKey(from), nickKey(to), to])) === 1
    if (renamed) {
      this.held.delete(from)
      this.held.add(to)
    }
    return renamed
  }

  leave(nick: string): void {
    this.held.delete(nick)
    this.eval(LEAVE, [this.members], [this.node, nickKey(nick)]).catch((err: Error) => this.warn(`leave ${nick}`, err))
  }

  async who(): Promise<string[]> {
    const values = (await this.commands.command(['HVALS', this.members])) as string[]
    const nicks: string[] = []
    for (const value of values) {
      const space = value.indexOf(' ')
      if (space > 0) nicks.push(value.slice(space + 1))
    }
    return nicks.sort()
  }

  async exists(nick: string): Promise<boolean> {
    return (await this.commands.command(['HEXISTS', this.members, nickKey(nick)])) === 1
  }

  publish(event: RoomEvent): void {
    this.commands.command(['PUBLISH', `${this.prefix}:events`, JSON.stringify({ n: this.node, e: event })]).catch((err: Error) => this.warn('publish', err))
  }

  /**
   * A fire-and-forget command failed. While Redis is unreachable the client has said so once;
   * a line per lost message would flood the log, so only errors Redis itself answered are logged.
   */
  private warn(what: string, err: Error): void {
    if (this.commands.connected) this.log(`redis ${what}: ${err.message}`)
  }

  async close(): Promise<void> {
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    // The leaves the room sent before are ahead of this in the pipeline: they are done when it is.
    await this.commands.command(['DEL', `${this.prefix}:node:${this.node}`]).catch(() => {})
    await Promise.all([this.commands.close(), this.events.close()])
  }

  private get members(): string {
    return `${this.prefix}:nicks`
  }

  private eval(script: string, keys: string[], args: (string | number)[]): Promise<Reply> {
    return this.commands.command(['EVAL', script, keys.length, ...keys, ...args])
  }

  /** Refresh this node's heartbeat, then remove the members of nodes whose heartbeat is gone. */
  private async beat(): Promise<void> {
    await this.commands.command(['SET', `${this.prefix}:node:${this.node}`, '1', 'PX', this.ttlMs])
    const gone = (await this.eval(SWEEP, [this.members], [`${this.prefix}:node:`])) as string[]
    for (const nick of gone) {
      const event: RoomEvent = { line: `* ${nick} left`, except: nick }
      this.onEvent(event)
      this.publish(event)
    }
  }

  /** Back after an outage: heartbeat first (so no sweep takes us for dead), then our members. */
  private reclaim(): void {
    this.beat()
      .then(() => Promise.all([...this.held].map((nick) => this.commands.command(['HSETNX', this.members, nickKey(nick), `${this.node} ${nick}`]).then((claimed) => {
        if (claimed === 0) this.log(`redis: ${nick} is held by another node since the outage; both keep it until one leaves`)
      }))))
      .catch((err: Error) => this.warn('reclaim', err))
  }

  private receive(payload: string): void {
    let message: { n?: unknown; e?: unknown }
    try {
      message = JSON.parse(payload)
    } catch {
      return this.log('redis: a message on the room channel is not JSON; ignored')
    }
    const e = message.e
    if (message.n === this.node) return
    // Anyone who can reach Redis can publish here: an event of another shape is dropped, not delivered.
    if (!isRoomEvent(e)) return this.log('redis: a message on the room channel is not a room event; ignored')
    this.onEvent(e)
  }
}
