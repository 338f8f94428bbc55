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
//
// The client is node-redis: two connections (commands, and a duplicate that holds the
// subscription), each reconnecting with a capped backoff and resubscribing by itself; the scripts
// go as EVALSHA, with EVAL only when Redis answers NOSCRIPT (a restarted Redis). While a
// connection is down, commands fail at once rather than queue (disableOfflineQueue): a join,
// /nick, /who or /msg answers `! the room is unavailable`, and a plain line reaches this node's
// clients only — its sender is told so (`reachesOthers`). Nothing waits for Redis to come back.
// This module loads node-redis: it is imported only by a room given --redis (redis-config.ts
// holds what the CLI needs before that).

import { randomBytes } from 'node:crypto'
import { createClient, defineScript, type CommandParser } from 'redis'
import { describeRedis, parseRedisUrl, REDIS_HUB_DEFAULTS, type RedisAddress } from './redis-config.ts'
import { isRoomEvent, nickKey, type Hub, type RoomEvent } from './hub.ts'
import { PetrelError } from '../../core/errors.ts'

export interface RedisHubOptions {
  room?: string
  maxUsers?: number
  heartbeatMs?: number
  heartbeatTtlMs?: number
  /** First reconnect delay; each failed attempt doubles it up to maxReconnectMs. */
  reconnectMs?: number
  maxReconnectMs?: number
  commandTimeoutMs?: number
  keepAliveMs?: number
  maxQueuedCommands?: number
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

/** A script's reply as Redis sent it: the hub knows each script's shape. */
const asIs = (reply: unknown): unknown => reply

/**
 * The scripts as node-redis commands: each is sent as EVALSHA, and as EVAL (which loads it) only
 * when Redis answers NOSCRIPT. Keys first, then arguments, as the scripts above number them.
 */
const SCRIPTS = {
  joinRoom: defineScript({
    SCRIPT: JOIN,
    NUMBER_OF_KEYS: 2,
    parseCommand(parser: CommandParser, members: string, guests: string, node: string, maxUsers: number) {
      parser.pushKeys([members, guests])
      parser.push(node, String(maxUsers))
    },
    transformReply: asIs as () => unknown,
  }),
  renameMember: defineScript({
    SCRIPT: RENAME,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, members: string, node: string, fromKey: string, toKey: string, to: string) {
      parser.pushKey(members)
      parser.push(node, fromKey, toKey, to)
    },
    transformReply: asIs as () => unknown,
  }),
  leaveRoom: defineScript({
    SCRIPT: LEAVE,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, members: string, node: string, key: string) {
      parser.pushKey(members)
      parser.push(node, key)
    },
    transformReply: asIs as () => unknown,
  }),
  sweepDead: defineScript({
    SCRIPT: SWEEP,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, members: string, nodePrefix: string) {
      parser.pushKey(members)
      parser.push(nodePrefix)
    },
    transformReply: asIs as () => unknown,
  }),
}

function connectOptions(address: RedisAddress, options: RedisHubOptions) {
  return {
    socket: { host: address.host, port: address.port, keepAlive: true, keepAliveInitialDelay: options.keepAliveMs ?? REDIS_HUB_DEFAULTS.keepAliveMs },
    ...(address.username === undefined ? {} : { username: address.username }),
    ...(address.password === undefined ? {} : { password: address.password }),
    database: address.db,
    // RESP2: the hub needs nothing of RESP3, whose HELLO a Redis before 6.0 refuses; with RESP2
    // it works with any Redis that runs Lua scripts (2.6 on), as the hand-written client did.
    RESP: 2 as const,
    // Commands fail at once while the connection is down instead of waiting for it in a queue
    // that would grow with the outage; the room tells its clients (see the top of this file).
    disableOfflineQueue: true,
    commandsQueueMaxLength: options.maxQueuedCommands ?? REDIS_HUB_DEFAULTS.maxQueuedCommands,
    // node-redis times a command out only while it waits to be written, unless rejectInFlight:
    // without it, a Redis that stops answering would hold a client's /nick (and its input) for good.
    commandOptions: { timeout: options.commandTimeoutMs ?? REDIS_HUB_DEFAULTS.commandTimeoutMs, rejectInFlight: true },
    scripts: SCRIPTS,
  }
}

type Client = ReturnType<typeof createClient<{}, {}, typeof SCRIPTS, 2>>

export class RedisHub implements Hub {
  onEvent: (event: RoomEvent) => void = () => {}
  private readonly commands: Client
  private readonly events: Client
  private readonly health: Health
  private readonly node = `${process.pid}-${randomBytes(4).toString('hex')}`
  private readonly prefix: string
  private readonly maxUsers: number
  private readonly ttlMs: number
  private readonly log: (line: string) => void
  private heartbeat: NodeJS.Timeout | null = null
  /** The nicknames this node holds: what it claims again after a reconnect. */
  private readonly held = new Set<string>()
  /** Joins and renames waiting for Redis's answer. */
  private changing = 0

  private constructor(commands: Client, events: Client, health: Health, options: RedisHubOptions) {
    this.commands = commands
    this.events = events
    this.health = health
    this.prefix = `petrel:chat:${options.room ?? REDIS_HUB_DEFAULTS.room}`
    this.maxUsers = options.maxUsers ?? Number.MAX_SAFE_INTEGER
    this.ttlMs = options.heartbeatTtlMs ?? REDIS_HUB_DEFAULTS.heartbeatTtlMs
    this.log = options.log ?? (() => {})
  }

  /** Connect twice (commands, and the subscription) and start the heartbeat. */
  static async connect(url: string, options: RedisHubOptions = {}): Promise<RedisHub> {
    const address = parseRedisUrl(url)
    const log = options.log ?? (() => {})
    const where = describeRedis(address)
    let hub: RedisHub | null = null
    // Told as one line at start-up, in this process or sent as text from a chat worker; the
    // address, not the URL, so that a password in the URL is not printed.
    const unavailable = (err: Error): PetrelError =>
      new PetrelError('PETREL_ERR_REDIS_UNAVAILABLE', `${address.host}:${address.port}: ${err.message}`, { cause: err })
    const health = new Health(where, log)
    const reconnectMs = options.reconnectMs ?? REDIS_HUB_DEFAULTS.reconnectMs
    const maxReconnectMs = options.maxReconnectMs ?? REDIS_HUB_DEFAULTS.maxReconnectMs
    const base = connectOptions(address, options)
    const commands: Client = createClient({ ...base, socket: { ...base.socket, reconnectStrategy: health.strategy('commands', reconnectMs, maxReconnectMs) } })
    const events: Client = commands.duplicate({ socket: { ...base.socket, reconnectStrategy: health.strategy('events', reconnectMs, maxReconnectMs) } })
    health.watch('commands', commands, () => hub?.reclaim())
    health.watch('events', events, () => {})
    try {
      await commands.connect()
      await events.connect()
      hub = new RedisHub(commands, events, health, options)
      await hub.beat()
      // node-redis subscribes again on every reconnect of this connection.
      await events.subscribe(`${hub.prefix}:events`, (payload) => hub!.receive(payload))
    } catch (err) {
      // Both connections are ours until the hub is handed over: a start that fails closes them.
      commands.destroy()
      events.destroy()
      throw unavailable(err as Error)
    }
    const period = options.heartbeatMs ?? REDIS_HUB_DEFAULTS.heartbeatMs
    hub.heartbeat = setInterval(() => {
      hub.beat().catch((err: Error) => hub.warn('heartbeat', err))
    }, period)
    hub.heartbeat.unref()
    return hub
  }

  async join(): Promise<string | null> {
    this.changing++
    try {
      const nick = (await this.commands.joinRoom(this.members, `${this.prefix}:guests`, this.node, this.maxUsers)) as string | null
      if (nick !== null) this.held.add(nick)
      return nick
    } finally {
      this.changing--
    }
  }

  async rename(from: string, to: string): Promise<boolean> {
    this.changing++
    try {
      const renamed = (await this.commands.renameMember(this.members, this.node, nickKey(from), nickKey(to), to)) === 1
      if (renamed) {
        this.held.delete(from)
        this.held.add(to)
      }
      return renamed
    } finally {
      this.changing--
    }
  }

  leave(nick: string): void {
    this.held.delete(nick)
    this.commands.leaveRoom(this.members, this.node, nickKey(nick)).catch((err: Error) => this.warn(`leave ${nick}`, err))
  }

  async who(): Promise<string[]> {
    const values = await this.commands.hVals(this.members)
    const nicks: string[] = []
    for (const value of values) {
      const space = value.indexOf(' ')
      if (space > 0) nicks.push(value.slice(space + 1))
    }
    return nicks.sort()
  }

  async exists(nick: string): Promise<boolean> {
    return (await this.commands.hExists(this.members, nickKey(nick))) === 1
  }

  publish(event: RoomEvent): void {
    this.commands.publish(`${this.prefix}:events`, JSON.stringify({ n: this.node, e: event })).catch((err: Error) => this.warn('publish', err))
  }

  /**
   * Both connections are up and commands are being answered: a line published now reaches the
   * other nodes, and theirs reach us.
   */
  reachesOthers(): boolean {
    return this.commands.isReady && this.events.isReady && !this.health.troubled
  }

  /**
   * A fire-and-forget command failed. While Redis is unreachable the outage has been told once;
   * on a connection that is up (Redis not answering, or answering errors) the first failure is
   * told, and the next only after a heartbeat went through: a line per lost message would flood
   * the log.
   */
  private warn(what: string, err: Error): void {
    if (this.commands.isReady) this.health.trouble(`${what}: ${err.message}`)
  }

  async close(): Promise<void> {
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.health.close()
    // The leaves the room sent before are ahead of this in the pipeline: they are done when it is.
    await this.commands.del(`${this.prefix}:node:${this.node}`).catch(() => {})
    // During an outage node-redis may be sleeping before its next attempt, on a timer it gives no
    // way to cancel: a process closed then lingers up to maxReconnectMs before it can exit.
    this.commands.destroy()
    this.events.destroy()
  }

  private get members(): string {
    return `${this.prefix}:nicks`
  }

  /** Refresh this node's heartbeat, then remove the members of nodes whose heartbeat is gone. */
  private async beat(): Promise<void> {
    await this.commands.set(`${this.prefix}:node:${this.node}`, '1', { PX: this.ttlMs })
    const gone = (await this.commands.sweepDead(this.members, `${this.prefix}:node:`)) as string[]
    // Back from a stall that did not drop the connection (so no 'ready' to reclaim on): other
    // nodes may have swept our members meanwhile, taking us for dead.
    if (this.health.answered()) this.reclaim()
    for (const nick of gone) {
      const event: RoomEvent = { line: `* ${nick} left`, except: nick }
      this.onEvent(event)
      this.publish(event)
    }
  }

  /**
   * Back after an outage or a stall: heartbeat first (so no sweep takes us for dead), then our
   * members; then the seats Redis holds for this node that nobody here has — a leave lost in the
   * outage, or a join or rename that timed out here yet ran there — are given back, or they
   * would be held (and counted against --max-users) for as long as this node lives. Not while a
   * join or rename is waiting for its answer: its seat is in Redis before it is in `held`.
   */
  private reclaim(): void {
    this.beat()
      .then(async () => {
        await Promise.all(
          [...this.held].map((nick) =>
            this.commands.hSetNX(this.members, nickKey(nick), `${this.node} ${nick}`).then((claimed) => {
              if (claimed === 0) this.log(`redis: ${nick} is held by another node since the outage; both keep it until one leaves`)
            }),
          ),
        )
        if (this.changing > 0) return
        const mine = `${this.node} `
        const entries = await this.commands.hGetAll(this.members)
        const stray = Object.entries(entries).filter(([, value]) => value.startsWith(mine) && !this.held.has(value.slice(mine.length)))
        await Promise.all(stray.map(([key]) => this.commands.leaveRoom(this.members, this.node, key)))
      })
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

/**
 * The health of the hub's two connections, told in the log as one line when Redis is lost and
 * one when both connections are back — not a line per failed attempt (node-redis emits 'error'
 * on every one) — and as one line when commands fail on a connection that is up, until a
 * heartbeat goes through. Until a connection was first ready, a failure is final: the start-up
 * reports it.
 */
class Health {
  private readonly where: string
  private readonly log: (line: string) => void
  private readonly established = new Set<string>()
  private readonly down = new Set<string>()
  private closed = false
  /** A command failed on a connection that is up (Redis does not answer, or answers errors) since the last heartbeat. */
  troubled = false

  constructor(where: string, log: (line: string) => void) {
    this.where = where
    this.log = log
  }

  /** node-redis's reconnectStrategy: doubling delays up to the cap once connected; none before. */
  strategy(name: string, reconnectMs: number, maxReconnectMs: number): (retries: number, cause: Error) => number | Error {
    return (retries, cause) => {
      if (!this.established.has(name)) return cause
      return Math.min(reconnectMs * 2 ** Math.min(retries, 30), maxReconnectMs)
    }
  }

  watch(name: string, client: Client, onBack: () => void): void {
    // Every error the client reports lands here: without a listener, 'error' would end the process.
    client.on('error', (err: Error) => {
      if (this.closed || !this.established.has(name) || this.down.has(name)) return
      // An error on a connection that is still up (a reply it could not match) is no outage.
      if (client.isReady) return this.trouble(err.message)
      if (this.down.size === 0) this.log(`${this.where}: connection lost (${err.message}); reconnecting`)
      this.down.add(name)
    })
    client.on('ready', () => {
      if (!this.established.has(name)) {
        this.established.add(name)
        return
      }
      if (!this.down.delete(name)) return
      if (this.down.size === 0 && !this.closed) this.log(`${this.where}: connected again`)
      onBack()
    })
  }

  trouble(what: string): void {
    if (this.troubled || this.closed) return
    this.troubled = true
    this.log(`${this.where}: ${what}; further failures are not logged until a heartbeat goes through`)
  }

  /** A heartbeat went through: Redis answers again. True when it had not been (the node must reclaim). */
  answered(): boolean {
    if (!this.troubled) return false
    this.troubled = false
    this.log(`${this.where}: answering again`)
    return true
  }

  close(): void {
    this.closed = true
  }
}
