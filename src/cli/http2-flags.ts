// The HTTP/2 flags of `petrel serve`: --no-http2, and one flag for each of HTTP/2's limits
// (core/limits.ts Http2Limits), its default shown from the library's own constant.

import { DEFAULT_HTTP2, type Http2Limits } from '../core/limits.ts'
import { formatDuration, type FlagMap, type FlagSpec, type Flags } from './args.ts'

/** Each count and size of Http2Limits, as a flag. */
export const HTTP2_LIMIT_FLAGS = [
  ['maxConcurrentStreams', 'http2-max-streams', 'streams one client may have open at once (REFUSED_STREAM beyond)'],
  ['initialWindowBytes', 'http2-stream-window', 'request body bytes a stream may send before its handler takes them'],
  ['connectionWindowBytes', 'http2-connection-window', 'request body bytes in flight on one connection'],
  ['maxFrameBytes', 'http2-max-frame', 'largest frame payload a client may send (16384 to 16777215)'],
  ['headerTableBytes', 'http2-header-table', "bytes of HPACK dynamic table the client's encoder may use"],
  ['maxHeaderBlockBytes', 'http2-max-header-block', 'bytes of one header block across CONTINUATION frames (ENHANCE_YOUR_CALM beyond)'],
  ['maxControlPerWindow', 'http2-max-control', 'client resets, PINGs, SETTINGS and empty frames per --http2-control-window (ENHANCE_YOUR_CALM beyond)'],
] as const satisfies ReadonlyArray<readonly [keyof Http2Limits, string, string]>

export const HTTP2_FLAGS = [
  { name: 'no-http2', type: 'boolean', description: 'serve HTTP/1.1 only: no ALPN h2 on --tls-cert, and no HTTP/2 preface on cleartext (docs/http2.md)' },
  ...HTTP2_LIMIT_FLAGS.map(
    ([key, name, what]): FlagSpec<typeof name, 'integer'> => ({
      name,
      type: 'integer',
      valueName: 'N',
      min: 1,
      description: `${what} (default ${DEFAULT_HTTP2[key]})`,
    }),
  ),
  {
    name: 'http2-control-window',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `the window --http2-max-control counts in (default ${formatDuration(DEFAULT_HTTP2.controlWindowMs)})`,
  },
] as const satisfies ReadonlyArray<FlagSpec<string, 'boolean' | 'integer' | 'duration'>>

/** What the flags ask of ServeOptions.http2: false (off), or the limits given (the rest default). */
export function http2Settings(flags: FlagMap<Flags<typeof HTTP2_FLAGS>>): false | Partial<Http2Limits> {
  if (flags.get('no-http2') === true) return false
  const limits: Partial<Http2Limits> = {}
  for (const [key, name] of HTTP2_LIMIT_FLAGS) {
    const value = flags.get(name)
    if (typeof value === 'number') limits[key] = value
  }
  const windowMs = flags.get('http2-control-window')
  if (typeof windowMs === 'number') limits.controlWindowMs = windowMs
  return limits
}
