// The compressed body of a Response (Response.compress()): whether a response qualifies and the
// fields it then carries, and the encoder a body written in pieces streams through — bounded by
// the stream's buffers, paused while the client is behind, torn down when the client leaves.

import type { Buffer } from 'node:buffer'
import type { Transform } from 'node:stream'
import { forbidsTransform, isCompressible, statusMayCompress, varyWithAcceptEncoding, weakEtag, type CompressionOffer } from './compression.ts'

/**
 * The fields of a response that will be compressed: the flat [lowerName, name, value, …] list
 * and the raw field lines (Response.addRawFields) with Content-Length, Accept-Ranges and digests gone,
 * ETags made weak, one Vary naming Accept-Encoding and Content-Encoding added — or null when the
 * response does not qualify (see Response.compress()). `length` is the body's, or -1 when unknown.
 */
export function compressionApplies(
  status: number,
  fields: readonly string[],
  rawFields: string,
  length: number,
  offer: CompressionOffer,
): { fields: string[]; rawFields: string } | null {
  if (!statusMayCompress(status) || (length >= 0 && length < offer.minBytes)) return null
  const raw = rawFields === '' ? [] : rawFields.slice(0, -2).split('\r\n')
  /** Every value of a field, from the fields and the raw lines, joined as a list (RFC 9110 §5.3). */
  const value = (lower: string): string | undefined => {
    let joined: string | undefined
    for (let i = 0; i < fields.length; i += 3) if (fields[i] === lower) joined = joined === undefined ? fields[i + 2] : `${joined}, ${fields[i + 2]}`
    for (const line of raw) if (rawName(line) === lower) joined = joined === undefined ? rawValue(line) : `${joined}, ${rawValue(line)}`
    return joined
  }
  const type = value('content-type')
  if (type === undefined || !isCompressible(type)) return null
  if (value('content-encoding') !== undefined || value('content-range') !== undefined || forbidsTransform(value('cache-control'))) return null
  const vary: string[] = []
  const kept: string[] = []
  for (let i = 0; i < fields.length; i += 3) {
    const lower = fields[i]!
    if (DROPPED.has(lower)) continue
    if (lower === 'vary') vary.push(fields[i + 2]!)
    else kept.push(lower, fields[i + 1]!, lower === 'etag' ? weakEtag(fields[i + 2]!) : fields[i + 2]!)
  }
  let keptRaw = ''
  for (const line of raw) {
    const lower = rawName(line)
    if (DROPPED.has(lower)) continue
    if (lower === 'vary') vary.push(rawValue(line))
    else keptRaw += lower === 'etag' ? `${line.slice(0, line.indexOf(':'))}: ${weakEtag(rawValue(line))}\r\n` : `${line}\r\n`
  }
  kept.push('content-encoding', 'Content-Encoding', offer.coding, 'vary', 'Vary', varyWithAcceptEncoding(vary.length === 0 ? undefined : vary.join(', ')))
  return { fields: kept, rawFields: keptRaw }
}

/**
 * Fields of the identity body that would be false of the compressed one: its length, byte ranges
 * of it, and digests of its bytes (RFC 9530: a representation's digest covers its content coding).
 */
const DROPPED = new Set(['content-length', 'accept-ranges', 'content-md5', 'content-digest', 'repr-digest'])

const rawName = (line: string): string => line.slice(0, line.indexOf(':')).toLowerCase()
const rawValue = (line: string): string => line.slice(line.indexOf(':') + 1).trim()

/** Where a BodyEncoder's output goes: the Response it compresses for. */
export interface EncodedBodyOut {
  /** Send compressed bytes as the body (framed as the head said); false when the client is behind. */
  sendBody(chunk: Buffer): boolean
  /** Resolves when the client has caught up; rejects once it is gone. */
  waitDrain(): Promise<void>
  /** The compressor has given its last bytes. */
  encoded(): void
  /** The compressor failed: the response cannot be completed. */
  encodeFailed(err: Error): void
}

/**
 * A body streamed through a compressor. Memory stays bounded: write() returns false once the
 * compressor's input buffer is full, and its output is paused while the client is behind, which
 * in turn fills the input side; the writer waits on drained().
 */
export class BodyEncoder {
  private readonly stream: Transform
  private readonly out: EncodedBodyOut
  /** The client is behind: output is paused until it catches up. */
  private behind = false
  /** Torn down (the client left, or the response was aborted): nothing more is sent. */
  private gone: Error | null = null

  constructor(stream: Transform, out: EncodedBodyOut) {
    this.stream = stream
    this.out = out
    stream.on('data', this.onData)
    stream.on('end', this.onEnd)
    stream.on('error', this.onError)
  }

  /** Compress `chunk` (flushed as soon as it is compressed); false when the writer should wait for drained(). */
  write(chunk: string | Buffer, onFlushed?: (err?: Error | null) => void): boolean {
    if (this.gone !== null) {
      onFlushed?.(this.gone)
      return false
    }
    this.stream.write(chunk, onFlushed)
    return !this.behind && !this.stream.writableNeedDrain
  }

  /** The last piece, if any: the compressor finishes its stream, and the response ends once it is sent. */
  end(chunk?: string | Buffer): void {
    if (this.gone !== null) return
    if (chunk === undefined) this.stream.end()
    else this.stream.end(chunk)
  }

  /** Resolves when more may be written; rejects once the client is gone. */
  async drained(): Promise<void> {
    if (this.gone !== null) throw this.gone
    if (this.behind) await this.out.waitDrain()
    if (this.stream.writableNeedDrain && !this.stream.writableEnded) await this.inputDrained()
  }

  /**
   * The compressor's input has room again — or it will never need any: a stream ended meanwhile
   * emits no 'drain', only 'finish'. Rejects when it is torn down (destroy() below).
   */
  private inputDrained(): Promise<void> {
    const stream = this.stream
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        stream.off('drain', settle)
        stream.off('finish', settle)
        stream.off('close', settle)
        if (this.gone !== null) reject(this.gone)
        else resolve()
      }
      stream.on('drain', settle)
      stream.on('finish', settle)
      stream.on('close', settle)
    })
  }

  /** Stop at once, dropping what is buffered: the client left, or the response was aborted. */
  destroy(reason: Error): void {
    if (this.gone !== null) return
    this.gone = reason
    this.stream.destroy(reason)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.gone !== null || this.out.sendBody(chunk)) return
    this.behind = true
    this.stream.pause()
    this.out.waitDrain().then(this.caughtUp, this.lost)
  }

  private readonly caughtUp = (): void => {
    this.behind = false
    if (this.gone === null) this.stream.resume()
  }

  /** The connection is gone; Response.connectionClosed() tears the encoder down with the reason. */
  private readonly lost = (): void => {}

  private readonly onEnd = (): void => {
    if (this.gone === null) this.out.encoded()
  }

  private readonly onError = (err: Error): void => {
    // A destroy() of ours is reported as an error by the stream: it is not the compressor's.
    if (this.gone !== null) return
    this.gone = err
    this.out.encodeFailed(err)
  }
}
