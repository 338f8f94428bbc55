// What a room needs beyond its own clients: who is in the room anywhere (the directory) and the
// lines that must reach clients held elsewhere (events). One process needs neither and uses
// LocalHub; workers of one `petrel chat --workers N` share the master's directory over IPC
// (cluster.ts); instances on several machines share Redis (redis-hub.ts).
//
// Plain messages — the traffic — never wait on the hub: the room delivers to its own clients and
// publishes the event in the same turn. Only joins, renames, /who and a private message to
// someone not held locally ask the directory, and the room holds that client's later lines back
// until the answer comes, so each client's lines still take effect in order.

/** A line for clients held elsewhere: to everyone but `except`, or to `to` alone (nicknames in any case). */
export interface RoomEvent {
  line: string
  except?: string
  to?: string
}

/** Whether `value` is a RoomEvent: a line, and `except`/`to` strings when present (for events from outside the process). */
export function isRoomEvent(value: unknown): value is RoomEvent {
  if (typeof value !== 'object' || value === null) return false
  const e = value as Record<string, unknown>
  return typeof e.line === 'string' && (e.except === undefined || typeof e.except === 'string') && (e.to === undefined || typeof e.to === 'string')
}

export interface Hub {
  /** A seat and a fresh guest nickname, or null when the room is full. */
  join(): Promise<string | null>
  /** Take `to` for the holder of `from`; false when `to` is taken. */
  rename(from: string, to: string): Promise<boolean>
  leave(nick: string): void
  /** Everyone in the room, sorted. */
  who(): Promise<string[]>
  exists(nick: string): Promise<boolean>
  /** Send to the clients held elsewhere (never back to this node). */
  publish(event: RoomEvent): void
  /**
   * False while the link to the rest of the room is down (Redis unreachable): what is published
   * now is lost, and the room tells the sender. Absent: the link cannot fail apart from the node.
   */
  reachesOthers?(): boolean
  /** Set by the room: called with events published elsewhere. */
  onEvent: (event: RoomEvent) => void
  close(): Promise<void>
}

/**
 * The key a nickname is known by: nicknames are told apart without regard to case, so nobody can
 * take `BOB` while `bob` is in the room (or send as one to the other's readers). Nicknames are
 * ASCII letters, digits, `_` and `-`, so ASCII folding is the whole rule.
 */
export function nickKey(nick: string): string {
  return nick.toLowerCase()
}

/**
 * The room's members and the node (worker) holding each, with the seat limit. In memory: the
 * whole directory of one process, or the master's for its workers. Keyed by nickKey(); each
 * member keeps the spelling it chose.
 */
export class Directory {
  private readonly owners = new Map<string, { node: number; nick: string }>()
  private readonly maxUsers: number
  private guests = 0

  constructor(maxUsers: number) {
    this.maxUsers = maxUsers
  }

  get size(): number {
    return this.owners.size
  }

  join(node: number): string | null {
    if (this.owners.size >= this.maxUsers) return null
    let nick: string
    do nick = `guest${++this.guests}`
    while (this.owners.has(nick))
    this.owners.set(nick, { node, nick })
    return nick
  }

  /** `from`'s holder takes `to`; the same name in another case is a change of spelling. */
  rename(node: number, from: string, to: string): boolean {
    const fromKey = nickKey(from)
    const toKey = nickKey(to)
    if (this.owners.get(fromKey)?.node !== node || (toKey !== fromKey && this.owners.has(toKey))) return false
    this.owners.delete(fromKey)
    this.owners.set(toKey, { node, nick: to })
    return true
  }

  leave(node: number, nick: string): void {
    const key = nickKey(nick)
    if (this.owners.get(key)?.node === node) this.owners.delete(key)
  }

  /** Forget every member a node held (it died); returns their nicknames. */
  dropNode(node: number): string[] {
    const dropped: string[] = []
    for (const [key, owner] of this.owners) {
      if (owner.node !== node) continue
      this.owners.delete(key)
      dropped.push(owner.nick)
    }
    return dropped
  }

  who(): string[] {
    return [...this.owners.values()].map((owner) => owner.nick).sort()
  }

  exists(nick: string): boolean {
    return this.owners.has(nickKey(nick))
  }
}

/** A room alone in its process: the directory is local and nobody else needs events. */
export class LocalHub implements Hub {
  private readonly directory: Directory
  onEvent: (event: RoomEvent) => void = () => {}

  constructor(maxUsers: number) {
    this.directory = new Directory(maxUsers)
  }

  join(): Promise<string | null> {
    return Promise.resolve(this.directory.join(0))
  }

  rename(from: string, to: string): Promise<boolean> {
    return Promise.resolve(this.directory.rename(0, from, to))
  }

  leave(nick: string): void {
    this.directory.leave(0, nick)
  }

  who(): Promise<string[]> {
    return Promise.resolve(this.directory.who())
  }

  exists(nick: string): Promise<boolean> {
    return Promise.resolve(this.directory.exists(nick))
  }

  publish(): void {}

  close(): Promise<void> {
    return Promise.resolve()
  }
}
