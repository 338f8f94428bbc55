// An HTTP/2 stream as the session keeps it (its state and both flow-control windows), and the
// limits a session is made with. session.ts re-exports them.

import { Buffer } from 'node:buffer'
import { DEFAULT_MAX_FRAME_SIZE } from './frames.ts'

export interface SessionLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS this side announces (default 100). */
  maxConcurrentStreams: number
  /** SETTINGS_INITIAL_WINDOW_SIZE this side announces for request bodies (default 65,535). */
  initialWindowBytes: number
  /** The connection's receive window this side keeps open (default 1 MiB). */
  connectionWindowBytes: number
  /** SETTINGS_MAX_FRAME_SIZE this side announces (default 16,384). */
  maxFrameBytes: number
  /** SETTINGS_HEADER_TABLE_SIZE this side announces (default 4,096). */
  headerTableBytes: number
  /** SETTINGS_MAX_HEADER_LIST_SIZE this side announces (default 16 KiB, as nginx's large_client_header_buffers). */
  maxHeaderListBytes: number
  /** Most bytes of one header block across HEADERS and CONTINUATION frames (default 64 KiB). */
  maxHeaderBlockBytes: number
  /** Client resets, PINGs, SETTINGS and empty frames each tolerated per window (default 200 per 10 s). */
  maxControlPerWindow: number
  controlWindowMs: number
}

export const SESSION_DEFAULTS: SessionLimits = {
  maxConcurrentStreams: 100,
  initialWindowBytes: 65_535,
  connectionWindowBytes: 1024 * 1024,
  maxFrameBytes: DEFAULT_MAX_FRAME_SIZE,
  headerTableBytes: 4096,
  maxHeaderListBytes: 16 * 1024,
  maxHeaderBlockBytes: 64 * 1024,
  maxControlPerWindow: 200,
  controlWindowMs: 10_000,
}

/** Stream states a server sees (§5.1); idle and reserved streams have no object. */
export const StreamState = { OPEN: 0, HALF_CLOSED_REMOTE: 1, HALF_CLOSED_LOCAL: 2, CLOSED: 3 } as const
export type StreamState = (typeof StreamState)[keyof typeof StreamState]

export class H2Stream {
  readonly id: number
  state: StreamState = StreamState.OPEN
  /** What this side may still send on the stream (the peer's window for it). */
  sendWindow: number
  /** What the peer may still send (this side's window for it). */
  recvWindow: number
  /** Body bytes received and not yet returned to the window by consume(). */
  unconsumed = 0
  /** DATA waiting for window: [buffer, start, end, end stream]. */
  pending: Array<[Buffer, number, number, boolean]> = []
  pendingBytes = 0
  /** The owner's object for the stream (the Request/Response pair). */
  owner: unknown = null
  /** Content-Length the request declared, or -1; checked against DATA (§8.1.1). */
  declaredLength = -1
  receivedLength = 0

  constructor(id: number, sendWindow: number, recvWindow: number) {
    this.id = id
    this.sendWindow = sendWindow
    this.recvWindow = recvWindow
  }
}
