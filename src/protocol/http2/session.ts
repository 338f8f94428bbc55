// One HTTP/2 connection, server side, at the protocol level (RFC 9113 §5, §6): stream states,
// SETTINGS and their acknowledgement, PING, GOAWAY, header blocks across CONTINUATION frames,
// both flow-control windows in both directions, and the limits a hostile client meets. It speaks
// frames to an output and events to its owner (server/h2-connection.ts). Limits, as the RFC or
// the known attacks ask: streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused, and a client
// that keeps opening them is cut (ENHANCE_YOUR_CALM); client resets (rapid reset,
// CVE-2023-44487), PINGs, SETTINGS and empty frames share `maxControlPerWindow`; a header block
// is bounded across its CONTINUATIONs (CVE-2024-27316) and may not be interleaved; the decoded
// header list is bounded (hpack.ts).

import { Buffer } from 'node:buffer'
import {
  checkFrame,
  DEFAULT_MAX_FRAME_SIZE,
  Flag,
  frame,
  FrameReader,
  FrameType,
  goawayFrame,
  H2Error,
  headersFrames,
  MAX_WINDOW,
  readSettings,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
  FRAME_HEADER_BYTES,
  type FrameHandler,
} from './frames.ts'
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.ts'
import { ControlBudget, H2Stream, SESSION_DEFAULTS, SkippedIds, StreamState } from './stream.ts'
import type { Done, SessionEvents, SessionLimits, SessionOutput } from './stream.ts'

export { SESSION_DEFAULTS, StreamState, H2Stream, type SessionEvents, type SessionLimits, type SessionOutput } from './stream.ts'

export class H2Session implements FrameHandler {
  private readonly limits: SessionLimits
  private readonly events: SessionEvents
  private readonly out: SessionOutput
  private readonly reader: FrameReader
  private readonly decoder: HpackDecoder
  private readonly encoder = new HpackEncoder()
  readonly streams = new Map<number, H2Stream>()
  /** Client stream ids skipped (never opened), to tell them from closed ones. */
  private readonly skippedIds = new SkippedIds()
  /** DATA payload bytes sent so far (the owner watches it for progress on shut windows). */
  dataSent = 0
  /** The highest stream id the client opened (for GOAWAY, and to refuse reused or lower ids). */
  lastStreamId = 0
  /** The peer's settings. */
  private peerInitialWindow = 65_535
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE
  /** Connection flow control: what this side may send, and what the peer may. */
  private sendWindow = 65_535
  private recvWindow = 65_535
  private recvUnconsumed = 0
  /** Streams with DATA waiting for connection window, in order. */
  private readonly blocked = new Set<H2Stream>()
  /** A header block being gathered: its stream, flags of its HEADERS, bytes so far. */
  private blockStream = 0
  private blockEndStream = false
  private blockParts: Buffer[] = []
  private blockBytes = 0
  /** Set once GOAWAY is sent: no new streams; the connection ends when the last one does. */
  private goingAway = false
  private ended = false
  /** Control frames (resets, pings, settings, empty frames) allowed per window. */
  private readonly budget: ControlBudget
  /** Streams refused for concurrency in a row: a client that ignores the limit is cut. */
  private refusedInRow = 0
  private settingsAcked = false
  private readonly now: () => number

  constructor(out: SessionOutput, events: SessionEvents, limits: Partial<SessionLimits> = {}, now: () => number = performance.now.bind(performance)) {
    this.limits = { ...SESSION_DEFAULTS, ...limits }
    this.events = events
    this.out = out
    this.now = now
    this.reader = new FrameReader(this)
    this.budget = new ControlBudget(this.limits.maxControlPerWindow, this.limits.controlWindowMs)
    this.reader.maxFrameSize = this.limits.maxFrameBytes
    this.decoder = new HpackDecoder({ maxTableBytes: this.limits.headerTableBytes, maxHeaderListBytes: this.limits.maxHeaderListBytes })
  }

  /** Send this side's SETTINGS (the server preface, §3.4) and open the connection window. */
  start(): void {
    const l = this.limits
    this.out.write(
      settingsFrame([
        [Setting.MAX_CONCURRENT_STREAMS, l.maxConcurrentStreams],
        [Setting.INITIAL_WINDOW_SIZE, l.initialWindowBytes],
        [Setting.MAX_FRAME_SIZE, l.maxFrameBytes],
        [Setting.HEADER_TABLE_SIZE, l.headerTableBytes],
        [Setting.MAX_HEADER_LIST_SIZE, l.maxHeaderListBytes],
        [Setting.ENABLE_PUSH, 0],
      ]),
    )
    if (l.connectionWindowBytes > this.recvWindow) {
      this.out.write(windowUpdateFrame(0, l.connectionWindowBytes - this.recvWindow))
      this.recvWindow = l.connectionWindowBytes
    }
  }

  /** Bytes from the socket. */
  push(chunk: Buffer): void {
    if (!this.ended) this.reader.push(chunk)
  }

  /** Whether this side's SETTINGS were acknowledged (the owner's settings timeout checks it). */
  get settingsAcknowledged(): boolean {
    return this.settingsAcked
  }

  // ---- receiving ----

  framingError(code: H2Error, why: string): void {
    this.connectionError(code, why)
  }

  frame(type: number, flags: number, streamId: number, payload: Buffer, start: number, end: number): boolean {
    const length = end - start
    // Inside a header block only its CONTINUATIONs may come (§6.10).
    if (this.blockStream !== 0 && (type !== FrameType.CONTINUATION || streamId !== this.blockStream)) {
      this.connectionError(H2Error.PROTOCOL_ERROR, 'a frame inside a header block')
      return false
    }
    const padLength = flags & Flag.PADDED && (type === FrameType.DATA || type === FrameType.HEADERS) && length > 0 ? payload[start]! : 0
    const found = checkFrame(type, flags, streamId, length, padLength)
    if (found !== null) {
      if (found.stream) this.streamErrorById(streamId, found.code)
      else this.connectionError(found.code, found.why)
      return !this.ended
    }
    switch (type) {
      case FrameType.DATA:
        this.onData(flags, streamId, payload, start, end, padLength)
        break
      case FrameType.HEADERS:
        this.onHeaders(flags, streamId, payload, start, end, padLength)
        break
      case FrameType.CONTINUATION:
        this.onContinuation(flags, streamId, payload, start, end)
        break
      case FrameType.PRIORITY:
        // Parsed and ignored (§5.3.2), but a stream may not depend on itself: a stream error, or
        // on an idle stream (which may not be reset, §6.4) a connection error.
        if ((payload.readUInt32BE(start) & MAX_WINDOW) === streamId) {
          if (streamId > this.lastStreamId) this.connectionError(H2Error.PROTOCOL_ERROR, `PRIORITY: the idle stream ${streamId} depends on itself`)
          else this.streamErrorById(streamId, H2Error.PROTOCOL_ERROR)
        }
        break
      case FrameType.RST_STREAM:
        this.onReset(streamId, payload.readUInt32BE(start) as H2Error)
        break
      case FrameType.SETTINGS:
        this.onSettings(flags, payload, start, end)
        break
      case FrameType.PING:
        if (!(flags & Flag.ACK)) {
          if (!this.control('PING')) return false
          this.out.write(frame(FrameType.PING, Flag.ACK, 0, payload.subarray(start, end)))
        }
        break
      case FrameType.GOAWAY:
        this.onGoaway()
        break
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(streamId, payload.readUInt32BE(start) & MAX_WINDOW)
        break
      // Unknown types are ignored (§4.1, §5.5).
    }
    return !this.ended
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer, start: number, end: number, padLength: number): void {
    let p = start + (flags & Flag.PADDED ? 1 : 0)
    if (flags & Flag.PRIORITY) {
      if ((payload.readUInt32BE(p) & MAX_WINDOW) === streamId) return this.connectionError(H2Error.PROTOCOL_ERROR, 'a stream that depends on itself')
      p += 5
    }
    const blockEnd = end - padLength
    const existing = this.streams.get(streamId)
    if (existing === undefined) {
      if (streamId % 2 === 0) return this.connectionError(H2Error.PROTOCOL_ERROR, `a client stream with the even id ${streamId}`)
      if (streamId <= this.lastStreamId) {
        // An id the client skipped was never opened: using it now breaks the order of ids (§5.1.1).
        if (this.skippedIds.has(streamId))
          return this.connectionError(H2Error.PROTOCOL_ERROR, `HEADERS on stream ${streamId}, below the stream ${this.lastStreamId} already opened`)
        return this.connectionError(H2Error.STREAM_CLOSED, `HEADERS on the closed stream ${streamId}`)
      }
    } else if (existing.state !== StreamState.OPEN && existing.state !== StreamState.HALF_CLOSED_LOCAL) {
      // Trailers after the body ended, or HEADERS on a stream this side reset.
      return this.connectionError(H2Error.STREAM_CLOSED, `HEADERS on the half-closed stream ${streamId}`)
    }
    if (blockEnd === p && flags & Flag.END_HEADERS && existing === undefined && !this.control('empty HEADERS')) return
    this.blockStream = streamId
    this.blockEndStream = (flags & Flag.END_STREAM) !== 0
    this.blockParts = []
    this.blockBytes = 0
    this.addBlock(payload, p, blockEnd, (flags & Flag.END_HEADERS) !== 0)
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer, start: number, end: number): void {
    if (this.blockStream !== streamId) return this.connectionError(H2Error.PROTOCOL_ERROR, 'CONTINUATION without a header block')
    if (start === end && !(flags & Flag.END_HEADERS) && !this.control('empty CONTINUATION')) return
    this.addBlock(payload, start, end, (flags & Flag.END_HEADERS) !== 0)
  }

  private addBlock(payload: Buffer, start: number, end: number, last: boolean): void {
    this.blockBytes += end - start
    if (this.blockBytes > this.limits.maxHeaderBlockBytes)
      return this.connectionError(H2Error.ENHANCE_YOUR_CALM, `a header block over ${this.limits.maxHeaderBlockBytes} bytes`)
    if (!last) {
      // The payload is a view of the read: kept as a copy until the block is whole.
      this.blockParts.push(Buffer.from(payload.subarray(start, end)))
      return
    }
    let block: Buffer
    let from = start
    let to = end
    if (this.blockParts.length === 0) block = payload
    else {
      this.blockParts.push(payload.subarray(start, end))
      block = Buffer.concat(this.blockParts)
      from = 0
      to = block.length
    }
    const streamId = this.blockStream
    this.blockStream = 0
    this.blockParts = []
    this.headerBlock(streamId, block, from, to, this.blockEndStream)
  }

  private readonly fields: string[] = []
  private readonly sink = { field: (name: string, value: string) => this.fields.push(name, value) }

  private headerBlock(streamId: number, block: Buffer, start: number, end: number, endStream: boolean): void {
    this.fields.length = 0
    // Decoded even for a stream that will be refused: the HPACK context must stay in step (§4.3).
    const result = this.decoder.decode(block, start, end, this.sink)
    if (result === HpackError.COMPRESSION) return this.connectionError(H2Error.COMPRESSION_ERROR, this.decoder.problem)
    const existing = this.streams.get(streamId)
    if (existing !== undefined) {
      // Trailers: they must end the stream (§8.1).
      if (!endStream) return this.streamError(existing, H2Error.PROTOCOL_ERROR)
      this.events.trailers(existing, this.fields.slice())
      this.remoteEnd(existing)
      return
    }
    if (streamId > this.lastStreamId + 2) this.skippedIds.add(this.lastStreamId + 2, streamId - 2)
    this.lastStreamId = streamId
    if (this.goingAway) return
    // Closed streams leave the map (closeStream), so its size is the number open.
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      this.out.write(rstStreamFrame(streamId, H2Error.REFUSED_STREAM))
      if (++this.refusedInRow > this.limits.maxConcurrentStreams)
        this.connectionError(H2Error.ENHANCE_YOUR_CALM, 'streams opened past SETTINGS_MAX_CONCURRENT_STREAMS')
      return
    }
    this.refusedInRow = 0
    const stream = new H2Stream(streamId, this.peerInitialWindow, this.limits.initialWindowBytes)
    if (endStream) stream.state = StreamState.HALF_CLOSED_REMOTE
    this.streams.set(streamId, stream)
    if (result === HpackError.LIST_TOO_LARGE) {
      this.events.headersTooLarge(stream)
      return
    }
    // The session's own list, valid until the call returns (the owner reads it into its head): no copy per request.
    this.events.request(stream, this.fields, endStream)
  }

  private onData(flags: number, streamId: number, payload: Buffer, start: number, end: number, padLength: number): void {
    const length = end - start
    // The whole frame counts against both windows, padding included (§6.9.1).
    if (length > this.recvWindow) return this.connectionError(H2Error.FLOW_CONTROL_ERROR, 'DATA beyond the connection window')
    this.recvWindow -= length
    this.recvUnconsumed += length
    const stream = this.streams.get(streamId)
    if (stream === undefined || stream.state === StreamState.HALF_CLOSED_REMOTE || stream.state === StreamState.CLOSED) {
      // The connection window is given back at once: nobody will consume these bytes.
      this.returnConnectionWindow(length)
      if (stream === undefined && streamId > this.lastStreamId) return this.connectionError(H2Error.PROTOCOL_ERROR, `DATA on the idle stream ${streamId}`)
      // Counted like other control frames: a flood of DATA on closed streams must not make this
      // side write an RST_STREAM for each without end.
      if (!this.control('DATA on a closed stream')) return
      if (stream === undefined) this.out.write(rstStreamFrame(streamId, H2Error.STREAM_CLOSED))
      else this.streamError(stream, H2Error.STREAM_CLOSED)
      return
    }
    if (length > stream.recvWindow) {
      this.returnConnectionWindow(length)
      return this.streamError(stream, H2Error.FLOW_CONTROL_ERROR)
    }
    stream.recvWindow -= length
    stream.lastDataAt = this.now()
    const endStream = (flags & Flag.END_STREAM) !== 0
    const dataStart = start + (flags & Flag.PADDED ? 1 : 0)
    const dataEnd = end - padLength
    // Padding is consumed at once: it counts against the windows (§6.9.1) but nobody reads it.
    const overhead = length - (dataEnd - dataStart)
    if (overhead > 0) {
      this.returnConnectionWindow(overhead)
      this.grantStream(stream)
    }
    if (dataEnd === dataStart && !endStream && !this.control('empty DATA')) return
    stream.receivedLength += dataEnd - dataStart
    if (stream.declaredLength >= 0 && (stream.receivedLength > stream.declaredLength || (endStream && stream.receivedLength !== stream.declaredLength))) {
      this.returnConnectionWindow(dataEnd - dataStart)
      return this.streamError(stream, H2Error.PROTOCOL_ERROR)
    }
    stream.unconsumed += dataEnd - dataStart
    this.events.data(stream, payload, dataStart, dataEnd, endStream)
    if (endStream) this.remoteEnd(stream)
  }

  /** The client ended its half of the stream: closed when this side had ended its own. */
  private remoteEnd(stream: H2Stream): void {
    if (stream.state === StreamState.HALF_CLOSED_LOCAL) this.closeStream(stream)
    else if (stream.state === StreamState.OPEN) stream.state = StreamState.HALF_CLOSED_REMOTE
  }

  /** The owner took `bytes` of a stream's body: the windows open again (WINDOW_UPDATE once half a window is used). */
  consume(stream: H2Stream, bytes: number): void {
    const taken = Math.min(bytes, stream.unconsumed)
    stream.unconsumed -= taken
    this.returnConnectionWindow(taken)
    this.grantStream(stream)
  }

  /** Give the stream back the window its consumed bytes used, once that is half a window (fewer WINDOW_UPDATEs). */
  private grantStream(stream: H2Stream): void {
    // Only while the client may still send on it (open, or this side done with its half).
    if (stream.state !== StreamState.OPEN && stream.state !== StreamState.HALF_CLOSED_LOCAL) return
    const used = this.limits.initialWindowBytes - stream.recvWindow - stream.unconsumed
    if (used >= this.limits.initialWindowBytes / 2) {
      stream.recvWindow += used
      this.out.write(windowUpdateFrame(stream.id, used))
    }
  }

  private returnConnectionWindow(bytes: number): void {
    this.recvUnconsumed -= Math.min(bytes, this.recvUnconsumed)
    const used = this.limits.connectionWindowBytes - this.recvWindow - this.recvUnconsumed
    if (used >= this.limits.connectionWindowBytes / 2) {
      this.recvWindow += used
      this.out.write(windowUpdateFrame(0, used))
    }
  }

  private onReset(streamId: number, code: H2Error): void {
    const stream = this.streams.get(streamId)
    if (stream === undefined) {
      if (streamId > this.lastStreamId) this.connectionError(H2Error.PROTOCOL_ERROR, `RST_STREAM on the idle stream ${streamId}`)
      // A reset of a stream already closed (answered at once) costs the server nothing more, but
      // it counts: a flood of them is still a flood.
      else this.control('RST_STREAM')
      return
    }
    if (!this.control('RST_STREAM')) return
    this.closeStream(stream)
    this.events.reset(stream, code)
  }

  private onSettings(flags: number, payload: Buffer, start: number, end: number): void {
    if (flags & Flag.ACK) {
      this.settingsAcked = true
      return
    }
    if (!this.control('SETTINGS')) return
    const found = readSettings(payload, start, end, (id, value) => {
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        // Every stream's send window moves by the difference (§6.9.2); one past 2^31 - 1 is a FLOW_CONTROL_ERROR.
        const delta = value - this.peerInitialWindow
        this.peerInitialWindow = value
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta
          if (stream.sendWindow > MAX_WINDOW) this.connectionError(H2Error.FLOW_CONTROL_ERROR, 'a stream window past 2^31 - 1')
        }
      } else if (id === Setting.MAX_FRAME_SIZE) this.peerMaxFrameSize = value
      else if (id === Setting.HEADER_TABLE_SIZE) this.encoder.setCapacity(value)
    })
    if (found !== null) return this.connectionError(found.code, found.why)
    if (this.ended) return
    this.out.write(SETTINGS_ACK)
    for (const stream of this.streams.values()) if (stream.pending.length > 0 && stream.sendWindow > 0) this.flushStream(stream)
  }

  private onGoaway(): void {
    // The client will open no more streams; those it opened are answered, then the connection ends.
    this.goingAway = true
    this.endIfIdle()
  }

  private onWindowUpdate(streamId: number, increment: number): void {
    if (streamId === 0) {
      if (increment === 0) return this.connectionError(H2Error.PROTOCOL_ERROR, 'a WINDOW_UPDATE of 0')
      this.sendWindow += increment
      if (this.sendWindow > MAX_WINDOW) return this.connectionError(H2Error.FLOW_CONTROL_ERROR, 'the connection window past 2^31 - 1')
      for (const stream of [...this.blocked]) {
        this.blocked.delete(stream)
        this.flushStream(stream)
        if (this.sendWindow <= 0) break
      }
      return
    }
    const stream = this.streams.get(streamId)
    if (stream === undefined) {
      if (streamId > this.lastStreamId) this.connectionError(H2Error.PROTOCOL_ERROR, `WINDOW_UPDATE on the idle stream ${streamId}`)
      return
    }
    if (increment === 0) return this.streamError(stream, H2Error.PROTOCOL_ERROR)
    stream.sendWindow += increment
    if (stream.sendWindow > MAX_WINDOW) return this.streamError(stream, H2Error.FLOW_CONTROL_ERROR)
    this.flushStream(stream)
  }

  /** Count a control frame; false (the connection ended with ENHANCE_YOUR_CALM) past the limit. */
  private control(what: string): boolean {
    if (this.budget.take(this.now())) return true
    this.connectionError(
      H2Error.ENHANCE_YOUR_CALM,
      `more than ${this.limits.maxControlPerWindow} ${what} frames (and other control frames) in ${this.limits.controlWindowMs} ms`,
    )
    return false
  }

  // ---- sending ----

  /** A response head (`fields` [name, value] pairs, names lower case, `:status` first). */
  sendHeaders(stream: H2Stream, fields: ReadonlyArray<readonly [string, string]>, endStream: boolean): void {
    if (stream.state === StreamState.CLOSED || stream.state === StreamState.HALF_CLOSED_LOCAL || this.ended) return
    const block = this.encoder.encode(fields)
    this.out.write(headersFrames(stream.id, block, endStream, this.peerMaxFrameSize))
    if (endStream) this.localEnd(stream)
  }

  /**
   * A whole response (head and body) as one buffer and one write: HEADERS, then one DATA frame
   * with END_STREAM — the usual small answer, one allocation instead of one per frame and piece.
   * False, with nothing sent, when the body does not fit the windows or a frame: send it apart.
   */
  respond(stream: H2Stream, fields: ReadonlyArray<readonly [string, string]>, body: string | Buffer): boolean {
    if (stream.state === StreamState.CLOSED || stream.state === StreamState.HALF_CLOSED_LOCAL || this.ended) return true
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length
    if (length > stream.sendWindow || length > this.sendWindow || length > this.peerMaxFrameSize || stream.pendingBytes > 0) return false
    // Encoded now, so sent now: the HPACK context must see blocks in the order they go out.
    const block = this.encoder.encode(fields)
    const head = headersFrames(stream.id, block, false, this.peerMaxFrameSize, FRAME_HEADER_BYTES + length)
    const p = head.length - FRAME_HEADER_BYTES - length
    writeFrameHeader(head, p, length, FrameType.DATA, Flag.END_STREAM, stream.id)
    if (typeof body === 'string') head.write(body, p + FRAME_HEADER_BYTES, 'utf8')
    else body.copy(head, p + FRAME_HEADER_BYTES)
    this.out.write(head)
    stream.sendWindow -= length
    this.sendWindow -= length
    this.dataSent += length
    this.localEnd(stream)
    return true
  }

  /** Trailer fields after the body: a HEADERS frame with END_STREAM, once the DATA before them is out. */
  sendTrailers(stream: H2Stream, fields: ReadonlyArray<readonly [string, string]>): void {
    if (stream.state === StreamState.CLOSED || stream.state === StreamState.HALF_CLOSED_LOCAL || this.ended) return
    stream.trailers = fields
    if (stream.pending.length === 0) this.sendTrailerBlock(stream)
  }

  private sendTrailerBlock(stream: H2Stream): void {
    const fields = stream.trailers!
    stream.trailers = null
    this.sendHeaders(stream, fields, true)
  }

  /**
   * Body bytes, sent as far as both windows allow; the rest waits for WINDOW_UPDATE. Returns
   * false when the caller should wait for `writable` before sending more (bytes are waiting).
   * `done`: the caller wants `data` back — it is not copied, and `done` is called once the socket
   * has written its last piece, or once it never will (the stream or the connection ended).
   */
  sendData(stream: H2Stream, data: Buffer, endStream: boolean, done?: Done): boolean {
    if (stream.state === StreamState.CLOSED || stream.state === StreamState.HALF_CLOSED_LOCAL || this.ended) {
      done?.()
      return true
    }
    stream.pending.push([data, 0, data.length, endStream, done])
    stream.pendingBytes += data.length
    this.flushStream(stream, false)
    return stream.pendingBytes === 0
  }

  /** Send what the windows allow; `notify`: tell the owner (writable) when what waited is all sent. */
  private flushStream(stream: H2Stream, notify = true): void {
    const hadPending = notify && stream.pendingBytes > 0
    while (stream.pending.length > 0 && stream.state !== StreamState.CLOSED) {
      const item = stream.pending[0]!
      const [data, from, to, endStream, done] = item
      const left = to - from
      // A window may be negative (the peer lowered SETTINGS_INITIAL_WINDOW_SIZE after bytes were sent, §6.9.2).
      const allowed = Math.max(0, Math.min(left, stream.sendWindow, this.sendWindow, this.peerMaxFrameSize))
      if (allowed <= 0 && left > 0) {
        if (this.sendWindow <= 0) this.blocked.add(stream)
        break
      }
      const last = allowed === left && endStream
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
      writeFrameHeader(header, 0, allowed, FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id)
      this.out.write(header)
      // The buffer's last piece carries `done`: the socket writes in order, so the earlier ones are out by then.
      if (allowed > 0) this.out.write(data.subarray(from, from + allowed), allowed === left ? done : undefined)
      else if (done !== undefined) done()
      stream.sendWindow -= allowed
      this.sendWindow -= allowed
      this.dataSent += allowed
      stream.pendingBytes -= allowed
      if (allowed === left) stream.pending.shift()
      else item[1] = from + allowed
      if (last) this.localEnd(stream)
    }
    if (stream.pending.length === 0 && stream.trailers !== null && stream.state !== StreamState.CLOSED) this.sendTrailerBlock(stream)
    if (hadPending && stream.pendingBytes === 0 && stream.state !== StreamState.CLOSED) this.events.writable(stream)
  }

  /** This side ended its half of the stream. */
  private localEnd(stream: H2Stream): void {
    if (stream.state === StreamState.HALF_CLOSED_REMOTE) this.closeStream(stream)
    else {
      stream.state = StreamState.HALF_CLOSED_LOCAL
      stream.localEndedAt = this.now()
    }
    this.endIfIdle()
  }

  /** End the stream with RST_STREAM (this side's choice: the handler failed, the client left). */
  resetStream(streamId: number, code: H2Error): void {
    this.out.write(rstStreamFrame(streamId, code))
    const stream = this.streams.get(streamId)
    if (stream !== undefined) this.closeStream(stream)
  }

  /** A stream error on a stream known or not: an idle stream gets no RST_STREAM (§6.4 forbids it). */
  private streamErrorById(streamId: number, code: H2Error): void {
    const stream = this.streams.get(streamId)
    if (stream !== undefined) this.streamError(stream, code)
    else if (streamId <= this.lastStreamId) this.out.write(rstStreamFrame(streamId, code))
  }

  private streamError(stream: H2Stream, code: H2Error): void {
    this.resetStream(stream.id, code)
    this.events.reset(stream, code)
  }

  private closeStream(stream: H2Stream): void {
    stream.state = StreamState.CLOSED
    // What the client sent and nobody will read goes back to the connection window.
    if (stream.unconsumed > 0) this.returnConnectionWindow(stream.unconsumed)
    stream.unconsumed = 0
    stream.dropPending()
    stream.trailers = null
    this.blocked.delete(stream)
    this.streams.delete(stream.id)
    this.endIfIdle()
    if (this.streams.size === 0 && !this.ended) this.events.streamsDone()
  }

  /** Graceful stop (§6.8): GOAWAY with the last stream id; the streams under way finish, then the connection ends. */
  goaway(code: H2Error = H2Error.NO_ERROR): void {
    if (this.goingAway || this.ended) return
    this.goingAway = true
    this.out.write(goawayFrame(this.lastStreamId, code))
    this.endIfIdle()
  }

  private endIfIdle(): void {
    if (!this.goingAway || this.ended || this.streams.size > 0) return
    this.ended = true
    this.reader.stop()
    this.out.end()
    this.events.closed(H2Error.NO_ERROR, 'GOAWAY, and every stream done')
  }

  /** A connection error (§5.4.1): GOAWAY with the code, then the connection closes. */
  connectionError(code: H2Error, why: string): void {
    if (this.ended) return
    this.ended = true
    this.reader.stop()
    this.out.write(goawayFrame(this.lastStreamId, code, why))
    this.out.end()
    for (const stream of this.streams.values()) {
      stream.state = StreamState.CLOSED
      stream.dropPending()
      this.events.reset(stream, code)
    }
    this.streams.clear()
    this.events.closed(code, why)
  }
}
