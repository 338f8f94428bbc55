// Topics (uWebSockets' pub/sub): connections subscribe to names, and a message published to a
// name goes to every subscriber — built once as a frame (and compressed once, for the
// subscribers that agreed permessage-deflate) and written to each socket as the same Buffer, not
// encoded again per subscriber. Without context takeover (ws-deflate.ts) one compressed frame is
// valid for every connection.

import { Buffer } from 'node:buffer'
import { frame, Opcode } from '../protocol/websocket/frames.ts'
import { deflateMessage } from './ws-deflate.ts'
import type { WebSocket } from './websocket.ts'

/** The zlib level a published message is compressed with, once for all. */
const PUBLISH_LEVEL = 1

export class Topics {
  private readonly subscribers = new Map<string, Set<WebSocket<unknown>>>()

  subscribe(ws: WebSocket<unknown>, topic: string): void {
    let set = this.subscribers.get(topic)
    if (set === undefined) {
      set = new Set()
      this.subscribers.set(topic, set)
    }
    set.add(ws)
  }

  unsubscribe(ws: WebSocket<unknown>, topic: string): void {
    const set = this.subscribers.get(topic)
    if (set === undefined) return
    set.delete(ws)
    if (set.size === 0) this.subscribers.delete(topic)
  }

  /** A connection closed: out of every topic it was in. */
  drop(ws: WebSocket<unknown>): void {
    for (const topic of ws.topics ?? []) this.unsubscribe(ws, topic)
  }

  /** Subscribers of `topic` now. */
  count(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0
  }

  /**
   * Send `data` to every subscriber of `topic` but `except`; returns how many it goes to. The
   * frame goes out at the end of the current turn (a microtask), with the others published in it:
   * a subscriber gets everything published to a topic in one turn in one write — one syscall where
   * a loop of sends would make one per message (what keeps a fan-out up when publishes come in
   * bursts). A send() to a subscriber flushes first, so nothing overtakes what was published.
   */
  publish(topic: string, data: string | Buffer, binary: boolean, except: WebSocket<unknown> | null = null): number {
    const set = this.subscribers.get(topic)
    if (set === undefined) return 0
    this.queued.push({ topic, payload: typeof data === 'string' ? Buffer.from(data) : data, opcode: binary ? Opcode.BINARY : Opcode.TEXT, except })
    if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(this.flushBound)
    }
    return set.size - (except !== null && set.has(except) ? 1 : 0)
  }

  private queued: Published[] = []
  private flushQueued = false
  private readonly flushBound = (): void => this.flush()

  /** Write what was published in this turn: runs of one topic together, in order. */
  flush(): void {
    this.flushQueued = false
    if (this.queued.length === 0) return
    const queued = this.queued
    this.queued = []
    for (let from = 0; from < queued.length; ) {
      let to = from + 1
      while (to < queued.length && queued[to]!.topic === queued[from]!.topic) to++
      const set = this.subscribers.get(queued[from]!.topic)
      if (set !== undefined) deliver(set, queued.slice(from, to))
      from = to
    }
  }
}

interface Published {
  topic: string
  payload: Buffer
  opcode: number
  except: WebSocket<unknown> | null
  /** Its frame, plain and compressed, built once for every subscriber. */
  plain?: Buffer
  compressed?: Buffer
}

/** The frame of `p` for `ws`: compressed when it agreed permessage-deflate and the message is long enough. */
function frameFor(p: Published, ws: WebSocket<unknown>): Buffer {
  if (!ws.compresses(p.payload.length)) return (p.plain ??= frame(p.opcode, p.payload))
  if (ws.deflateBits !== 15) return frame(p.opcode, deflateMessage(p.payload, PUBLISH_LEVEL, ws.deflateBits), true)
  return (p.compressed ??= frame(p.opcode, deflateMessage(p.payload, PUBLISH_LEVEL, 15), true))
}

/** Messages of one topic to its subscribers: one write each (the frames joined once for the plain ones). */
function deliver(set: Set<WebSocket<unknown>>, messages: Published[]): void {
  let joined: Buffer | null = null
  const anyExcept = messages.some((m) => m.except !== null)
  for (const ws of set) {
    if (!ws.open) continue
    if (messages.length === 1) {
      if (messages[0]!.except !== ws) ws.writeFrame(frameFor(messages[0]!, ws))
    } else if (ws.deflateBits === 0 && !anyExcept) {
      joined ??= Buffer.concat(messages.map((m) => frameFor(m, ws)))
      ws.writeFrame(joined)
    } else {
      // Several frames, some not for this subscriber or compressed for it: one writev.
      ws.socket.cork()
      for (const m of messages) if (m.except !== ws) ws.writeFrame(frameFor(m, ws))
      ws.socket.uncork()
    }
  }
}
