// Micro-benchmark of Petrel's HTTP/2 codec alone, no sockets: HPACK decoding of request header
// blocks and encoding of response heads (src/protocol/http2/hpack.ts), and the frame reader that
// cuts a byte stream into frames (FrameReader, src/protocol/http2/frames.ts). What `npm run
// bench -- h2` measures end to end, kernel and TLS included, this takes apart: the part of a
// request's cost that is Petrel's own parsing and encoding.
//
//   decode   h2load's request (6 fields) as every request after a connection's first sends it
//            (all indexed: 6 bytes), as the first sends it (literals with Huffman strings, each
//            added to the dynamic table), and a browser's request (13 fields, the cookie never
//            indexed) the same two ways. The blocks are made by Petrel's own HpackEncoder, which
//            indexes these fields as nghttp2 does: literals the first time, references after.
//   encode   the response heads Petrel sends: /plaintext (status, content-type, date,
//            content-length) and a file's (with last-modified, etag, accept-ranges), each on an
//            encoder whose table already holds what repeats, as on a connection past its first
//            response.
//   frames   100 HEADERS frames of h2load's indexed request in one read (what one read of
//            `h2load -m 100` carries); DATA frames of 16 KiB (a request body); the same 100
//            HEADERS frames cut into reads of 1,000 bytes, so a frame often spans two reads and
//            is gathered.
//
// Run: `npx node bench/h2-codec.ts [--runs N]` (or `npm run bench -- h2-codec`). Each row is the
// median of the runs (ns per operation), best is the fastest run; the machine is shared and
// noisy, so compare rows of one run, and before/after a change run it several times.

import { Buffer } from 'node:buffer'
import { cpus } from 'node:os'
import { DEFAULT_MAX_FRAME_SIZE, Flag, FrameReader, FrameType, frame, headersFrames, type FrameHandler } from '../src/protocol/http2/frames.ts'
import { HpackDecoder, HpackEncoder, HpackError, type FieldSink } from '../src/protocol/http2/hpack.ts'
import { defineFlags, formatFlagHelp, parseSuiteFlags, UsageError } from './lib/flags.ts'
import { median } from './lib/stats.ts'
import { textTable } from './lib/table.ts'

const FLAGS = defineFlags([
  { name: 'runs', type: 'integer', valueName: 'N', min: 1, default: 7, description: 'timed runs per row; cells are medians' },
  { name: 'help', type: 'boolean', description: 'print this help' },
])

type Fields = ReadonlyArray<readonly [string, string]>

/** What h2load sends for `h2load https://127.0.0.1:8443/plaintext`. */
const H2LOAD_REQUEST: Fields = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/plaintext'],
  [':authority', '127.0.0.1:8443'],
  ['user-agent', 'h2load nghttp2/1.52.0'],
  ['accept', '*/*'],
]

/** A browser's navigation, the fields of bench/parser.ts's browser request. */
const BROWSER_REQUEST: Fields = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/docs/index.html?lang=en'],
  [':authority', 'example.com'],
  ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'],
  ['accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['accept-language', 'en-US,en;q=0.9'],
  ['cache-control', 'max-age=0'],
  ['sec-fetch-dest', 'document'],
  ['sec-fetch-mode', 'navigate'],
  ['sec-fetch-site', 'none'],
  ['cookie', 'session=abc123; theme=dark'],
]

const DATE = 'Tue, 08 Dec 2026 00:16:20 GMT'

const PLAINTEXT_RESPONSE: Fields = [
  [':status', '200'],
  ['content-type', 'text/plain'],
  ['date', DATE],
  ['content-length', '13'],
]

const FILE_RESPONSE: Fields = [
  [':status', '200'],
  ['content-type', 'application/octet-stream'],
  ['last-modified', 'Mon, 07 Dec 2026 21:53:28 GMT'],
  ['etag', '"19000-18c4a1b2c3d"'],
  ['accept-ranges', 'bytes'],
  ['date', DATE],
  ['content-length', '102400'],
]

const LIMITS = { maxTableBytes: 4096, maxHeaderListBytes: 16 * 1024 }

let fieldsSeen = 0
const sink: FieldSink = {
  field() {
    fieldsSeen++
  },
}

interface Row {
  readonly group: string
  readonly name: string
  /** Operations per timed pass. */
  readonly ops: number
  /** Bytes per operation, for the MB/s column; 0 for none. */
  readonly bytes: number
  /** One timed pass of `ops` operations. */
  pass(): void
}

/** Decoding `block` over and over in a decoder primed with `primer` (the blocks sent before it on the connection). */
function decodeRow(name: string, primer: readonly Buffer[], block: Buffer, fieldsPerBlock: number): Row {
  const decoder = new HpackDecoder(LIMITS)
  for (const earlier of primer) decoder.decode(earlier, 0, earlier.length, sink)
  const ops = 200_000
  return {
    group: 'decode',
    name,
    ops,
    bytes: block.length,
    pass() {
      fieldsSeen = 0
      for (let i = 0; i < ops; i++) {
        if (decoder.decode(block, 0, block.length, sink) !== HpackError.NONE) throw new Error(`${name}: ${decoder.problem}`)
      }
      if (fieldsSeen !== ops * fieldsPerBlock) throw new Error(`${name}: decoded ${fieldsSeen} fields, expected ${ops * fieldsPerBlock}`)
    },
  }
}

/** Header blocks for `fields` sent `count` times on one connection, by Petrel's encoder. */
function blocks(fields: Fields, count: number): Buffer[] {
  const encoder = new HpackEncoder()
  return Array.from({ length: count }, () => Buffer.from(encoder.encode(fields)))
}

function encodeRow(name: string, fields: Fields): Row {
  const encoder = new HpackEncoder()
  encoder.encode(fields)
  const ops = 200_000
  let bytes = 0
  return {
    group: 'encode',
    name,
    ops,
    get bytes() {
      return bytes
    },
    pass() {
      for (let i = 0; i < ops; i++) bytes = encoder.encode(fields).length
    },
  }
}

/** Feeding `reads` (each a Buffer of frames) to one FrameReader, `rounds` times a pass; ops are frames. */
function framesRow(name: string, reads: readonly Buffer[], framesPerRound: number): Row {
  let frames = 0
  const handler: FrameHandler = {
    frame() {
      frames++
      return true
    },
    framingError(_code, why) {
      throw new Error(`${name}: ${why}`)
    },
  }
  const reader = new FrameReader(handler, false)
  reader.maxFrameSize = DEFAULT_MAX_FRAME_SIZE
  const rounds = Math.max(1, Math.floor(2_000_000 / framesPerRound))
  const roundBytes = reads.reduce((sum, read) => sum + read.length, 0)
  return {
    group: 'frames',
    name,
    ops: rounds * framesPerRound,
    bytes: roundBytes / framesPerRound,
    pass() {
      frames = 0
      for (let round = 0; round < rounds; round++) for (const read of reads) reader.push(read)
      if (frames !== rounds * framesPerRound) throw new Error(`${name}: ${frames} frames, expected ${rounds * framesPerRound}`)
    },
  }
}

/** `bytes` cut into reads of `size`. */
function cut(bytes: Buffer, size: number): Buffer[] {
  const reads: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) reads.push(Buffer.from(bytes.subarray(at, at + size)))
  return reads
}

function rows(): Row[] {
  const h2load = blocks(H2LOAD_REQUEST, 2)
  const browser = blocks(BROWSER_REQUEST, 2)
  // 100 requests on streams 1, 3, 5, …: HEADERS with END_STREAM and END_HEADERS, each block indexed.
  const hundredHeaders = Buffer.concat(Array.from({ length: 100 }, (_, i) => headersFrames(2 * i + 1, h2load[1]!, true, DEFAULT_MAX_FRAME_SIZE)))
  const body = Buffer.alloc(DEFAULT_MAX_FRAME_SIZE, 0x61)
  const dataFrames = Buffer.concat(Array.from({ length: 8 }, (_, i) => frame(FrameType.DATA, i === 7 ? Flag.END_STREAM : 0, 1, body)))
  return [
    decodeRow(`h2load request, indexed (${h2load[1]!.length} B)`, [h2load[0]!], h2load[1]!, H2LOAD_REQUEST.length),
    decodeRow(`h2load request, first (${h2load[0]!.length} B, literals)`, [], h2load[0]!, H2LOAD_REQUEST.length),
    decodeRow(`browser request, indexed (${browser[1]!.length} B)`, [browser[0]!], browser[1]!, BROWSER_REQUEST.length),
    decodeRow(`browser request, first (${browser[0]!.length} B)`, [], browser[0]!, BROWSER_REQUEST.length),
    encodeRow('/plaintext response (4 fields)', PLAINTEXT_RESPONSE),
    encodeRow('file response (7 fields)', FILE_RESPONSE),
    framesRow('100 HEADERS in one read', [hundredHeaders], 100),
    framesRow('100 HEADERS in 1,000-byte reads', cut(hundredHeaders, 1000), 100),
    framesRow('DATA of 16 KiB, 8 in one read', [dataFrames], 8),
  ]
}

async function main(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'bench/h2-codec.ts', 'npx node')
  if (flags.has('help')) {
    console.log(`usage: npx node bench/h2-codec.ts [flags]\n${formatFlagHelp(FLAGS)}`)
    return 0
  }
  const runs = flags.get('runs')
  console.log(`Petrel's HTTP/2 codec: HPACK and FrameReader, median of ${runs} runs`)
  console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}\n`)
  const all = rows()
  // Untimed passes let the JIT compile every path before anything is measured.
  for (const row of all) for (let i = 0; i < 3; i++) row.pass()
  const samples = new Map<Row, number[]>(all.map((row) => [row, []]))
  for (let run = 0; run < runs; run++) {
    // Interleaved, so that a noisy moment on the machine hits every row alike.
    for (const row of all) {
      const start = process.hrtime.bigint()
      row.pass()
      samples.get(row)!.push(Number(process.hrtime.bigint() - start) / row.ops)
    }
  }
  const table = all.map((row) => {
    const ns = samples.get(row)!
    const perOp = median(ns)
    return [row.group, row.name, perOp.toFixed(1), Math.min(...ns).toFixed(1), row.bytes > 0 ? ((row.bytes * 1e9) / perOp / 1e6).toFixed(0) : '–']
  })
  console.log(
    textTable(
      [
        { title: 'part', alignRight: false },
        { title: 'what', alignRight: false },
        { title: 'ns/op', alignRight: true },
        { title: 'best', alignRight: true },
        { title: 'MB/s', alignRight: true },
      ],
      table,
    ),
  )
  console.log('\nns/op: per header block (decode), per response head (encode), per frame (frames); MB/s: bytes of blocks or frames read or written.')
  return 0
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(error.message)
  process.exitCode = 2
}
