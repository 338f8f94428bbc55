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

  /** Send `data` to every subscriber of `topic` but `except`; returns how many it went to. */
  publish(topic: string, data: string | Buffer, binary: boolean, except: WebSocket<unknown> | null = null): number {
    const set = this.subscribers.get(topic)
    if (set === undefined) return 0
    const opcode = binary ? Opcode.BINARY : Opcode.TEXT
    const payload = typeof data === 'string' ? Buffer.from(data) : data
    let plain: Buffer | null = null
    let compressed: Buffer | null = null
    let sent = 0
    for (const ws of set) {
      if (ws === except || !ws.open) continue
      let bytes: Buffer
      if (ws.compresses(payload.length)) {
        compressed ??= frame(opcode, deflateMessage(payload, PUBLISH_LEVEL, 15), true)
        // A connection that agreed a smaller window gets its own (rare: browsers take 15).
        bytes = ws.deflateBits === 15 ? compressed : frame(opcode, deflateMessage(payload, PUBLISH_LEVEL, ws.deflateBits), true)
      } else bytes = plain ??= frame(opcode, payload)
      ws.writeFrame(bytes)
      sent++
    }
    return sent
  }
}
