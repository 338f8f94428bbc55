// Range requests: a hand-written table of Range headers and file sizes against the result a
// server would act on (200, 206 or 416), then multipart/byteranges bodies built from a real
// buffer, checked against the totalLength the server would send as Content-Length.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { contentRange, multipartBoundary, multipartParts, parseRange, unsatisfiedRange, type ByteRange, type RangeResult } from '../src/apps/serve/ranges.ts'

const NONE: RangeResult = { kind: 'none' }
const UNSATISFIABLE: RangeResult = { kind: 'unsatisfiable' }

function ranges(...pairs: Array<[number, number]>): RangeResult {
  return { kind: 'ranges', ranges: pairs.map(([start, end]) => ({ start, end })) }
}

/** `count` one-byte ranges two bytes apart, so that none of them coalesce: `0-0,2-2,4-4,…`. */
function disjoint(count: number): string {
  return Array.from({ length: count }, (_, i) => `${2 * i}-${2 * i}`).join(',')
}

const TABLE: Array<{ header: string; size: number; expected: RangeResult; why: string }> = [
  { header: 'bytes=0-0', size: 10, expected: ranges([0, 0]), why: 'first byte' },
  { header: 'bytes=-1', size: 10, expected: ranges([9, 9]), why: 'last byte' },
  { header: 'bytes=5-', size: 10, expected: ranges([5, 9]), why: 'open range' },
  { header: 'bytes=0-999999', size: 10, expected: ranges([0, 9]), why: 'last-pos clamped' },
  { header: 'bytes=9-9', size: 10, expected: ranges([9, 9]), why: 'last byte by position' },
  { header: 'bytes=-20', size: 10, expected: ranges([0, 9]), why: 'suffix longer than file' },
  { header: 'bytes=-10', size: 10, expected: ranges([0, 9]), why: 'suffix equal to file' },
  { header: 'BYTES=1-2', size: 10, expected: ranges([1, 2]), why: 'unit case-insensitive' },
  { header: 'Bytes=1-2', size: 10, expected: ranges([1, 2]), why: 'unit mixed case' },
  { header: 'bytes= 0-1 , 3-4', size: 10, expected: ranges([0, 1], [3, 4]), why: 'OWS' },
  { header: 'bytes=0-1,\t3-4', size: 10, expected: ranges([0, 1], [3, 4]), why: 'tab OWS' },
  { header: 'bytes=0-1,,3-4,', size: 10, expected: ranges([0, 1], [3, 4]), why: 'empty elements' },
  { header: 'bytes=0-5,3-8', size: 10, expected: ranges([0, 8]), why: 'overlap coalesced' },
  { header: 'bytes=0-4,5-9', size: 10, expected: ranges([0, 9]), why: 'adjacent coalesced' },
  { header: 'bytes=0-3,5-9', size: 10, expected: ranges([0, 3], [5, 9]), why: 'gap kept' },
  { header: 'bytes=5-9,0-1', size: 10, expected: ranges([0, 1], [5, 9]), why: 'sorted' },
  { header: 'bytes=2-3,0-9', size: 10, expected: ranges([0, 9]), why: 'contained range' },
  { header: 'bytes=0-0,0-0,0-0', size: 10, expected: ranges([0, 0]), why: 'repeats coalesced' },
  { header: 'bytes=-3,0-1', size: 10, expected: ranges([0, 1], [7, 9]), why: 'tail then head' },
  { header: 'bytes=9-5', size: 10, expected: NONE, why: 'last < first is invalid' },
  { header: 'bytes=0-1,9-5', size: 10, expected: NONE, why: 'one invalid spec spoils all' },
  { header: 'bytes=abc', size: 10, expected: NONE, why: 'garbage' },
  { header: 'bytes=1', size: 10, expected: NONE, why: 'no dash' },
  { header: 'bytes=-', size: 10, expected: NONE, why: 'bare dash' },
  { header: 'bytes=1-2-3', size: 10, expected: NONE, why: 'two dashes' },
  { header: 'bytes=+1-2', size: 10, expected: NONE, why: 'sign' },
  { header: 'bytes=1 -2', size: 10, expected: NONE, why: 'space inside spec' },
  { header: 'bytes=0x1-2', size: 10, expected: NONE, why: 'hex' },
  { header: 'items=0-1', size: 10, expected: NONE, why: 'other unit' },
  { header: 'bytes 0-1', size: 10, expected: NONE, why: 'no equals sign' },
  { header: '', size: 10, expected: NONE, why: 'empty header' },
  { header: 'bytes=', size: 10, expected: NONE, why: 'empty range-set' },
  { header: 'bytes=,', size: 10, expected: NONE, why: 'only empty elements' },
  { header: `bytes=${disjoint(16)}`, size: 100, expected: ranges(...pairsOf(16)), why: '16 ok' },
  { header: `bytes=${disjoint(17)}`, size: 100, expected: NONE, why: '17 disjoint ranges' },
  { header: 'bytes=0-0', size: 0, expected: UNSATISFIABLE, why: 'empty file, int-range' },
  { header: 'bytes=-5', size: 0, expected: UNSATISFIABLE, why: 'empty file, suffix' },
  { header: 'bytes=0-', size: 0, expected: UNSATISFIABLE, why: 'empty file, open' },
  { header: 'bytes=abc', size: 0, expected: NONE, why: 'empty file, invalid header' },
  { header: 'bytes=10-', size: 10, expected: UNSATISFIABLE, why: 'first-pos = size' },
  { header: 'bytes=10-20', size: 10, expected: UNSATISFIABLE, why: 'first-pos past end' },
  { header: 'bytes=-0', size: 10, expected: UNSATISFIABLE, why: 'zero suffix' },
  { header: 'bytes=20-30,-0', size: 10, expected: UNSATISFIABLE, why: 'all unsatisfiable' },
  { header: 'bytes=20-30,2-3', size: 10, expected: ranges([2, 3]), why: 'mixed' },
  { header: 'bytes=-0,8-', size: 10, expected: ranges([8, 9]), why: 'mixed with suffix' },
  { header: `bytes=${'9'.repeat(15)}-`, size: 10, expected: UNSATISFIABLE, why: '15 digits' },
  { header: `bytes=${'9'.repeat(16)}-`, size: 10, expected: NONE, why: '16 digits' },
  { header: `bytes=0-${'9'.repeat(16)}`, size: 10, expected: NONE, why: '16-digit last' },
  { header: `bytes=-${'9'.repeat(16)}`, size: 10, expected: NONE, why: '16-digit suffix' },
  { header: `bytes=0-${'0'.repeat(14)}9`, size: 10, expected: ranges([0, 9]), why: 'zeros' },
  { header: 'bytes=30-39,20-29,10-19,0-9', size: 100, expected: ranges([0, 39]), why: 'merges' },
  { header: 'bytes=60-60,40-40,20-20,0-0', size: 100, expected: NONE, why: 'small descending' },
  { header: 'bytes=40-40,20-20,0-0', size: 100, expected: ranges([0, 0], [20, 20], [40, 40]), why: 'three descending' },
  { header: 'bytes=0-0,20-20,40-40,60-60', size: 100, expected: ranges([0, 0], [20, 20], [40, 40], [60, 60]), why: 'ascending' },
  {
    header: 'bytes=30000-39999,20000-29999,10000-19999,0-999',
    size: 40_000,
    expected: ranges([0, 999], [10000, 39999]),
    why: 'large descending ranges are fine',
  },
]

function pairsOf(count: number): Array<[number, number]> {
  return Array.from({ length: count }, (_, i): [number, number] => [2 * i, 2 * i])
}

describe('parseRange', () => {
  for (const { header, size, expected, why } of TABLE) {
    test(`${JSON.stringify(header)} on ${size} bytes: ${why}`, () => {
      assert.deepEqual(parseRange(header, size), expected)
    })
  }

  test('maxRanges counts ranges after coalescing', () => {
    assert.deepEqual(parseRange('bytes=0-1,4-5,8-9', 10, { maxRanges: 2 }), NONE)
    assert.deepEqual(parseRange('bytes=0-1,2-5,8-9', 10, { maxRanges: 2 }), ranges([0, 5], [8, 9]))
    assert.deepEqual(parseRange(`bytes=${disjoint(17)}`, 100, { maxRanges: 17 }), ranges(...pairsOf(17)))
  })

  test('maxRanges 0 turns range support off', () => {
    assert.deepEqual(parseRange('bytes=0-1', 10, { maxRanges: 0 }), NONE)
    assert.deepEqual(parseRange('bytes=20-', 10, { maxRanges: 0 }), NONE)
  })

  test('a nonsensical size is a programming error', () => {
    assert.throws(() => parseRange('bytes=0-1', -1), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => parseRange('bytes=0-1', 1.5), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => parseRange('bytes=0-1', Number.NaN), { code: 'PETREL_ERR_INVALID_OPTION' })
  })

  test('the result does not alias between calls', () => {
    const first = parseRange('bytes=0-1,1-2', 10)
    assert.equal(first.kind, 'ranges')
    const [range] = first.kind === 'ranges' ? first.ranges : []
    assert.ok(range !== undefined, 'a range')
    range.end = 99
    assert.deepEqual(parseRange('bytes=0-1,1-2', 10), ranges([0, 2]))
  })
})

describe('Content-Range values', () => {
  test('satisfied and unsatisfied', () => {
    assert.equal(contentRange(0, 0, 1), 'bytes 0-0/1')
    assert.equal(contentRange(500, 999, 8000), 'bytes 500-999/8000')
    assert.equal(unsatisfiedRange(8000), 'bytes */8000')
    assert.equal(unsatisfiedRange(0), 'bytes */0')
  })
})

/** Builds the body the way a server would write it: each head, its slice of the file, the tail. */
function buildBody(file: Buffer, selected: ByteRange[], contentType: string, boundary: string) {
  const layout = multipartParts(selected, file.length, contentType, boundary)
  const chunks: Buffer[] = []
  for (const part of layout.parts) {
    chunks.push(Buffer.from(part.head), file.subarray(part.start, part.end + 1))
  }
  chunks.push(Buffer.from(layout.tail))
  return { layout, body: Buffer.concat(chunks) }
}

describe('multipart/byteranges', () => {
  const file = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz')

  test('exact body for two ranges', () => {
    const { layout, body } = buildBody(
      file,
      [
        { start: 0, end: 2 },
        { start: 10, end: 11 },
      ],
      'text/plain',
      'B',
    )
    const expected =
      '--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/36\r\n\r\n012' +
      '\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-11/36\r\n\r\nab' +
      '\r\n--B--\r\n'
    assert.equal(body.toString('latin1'), expected)
    assert.equal(layout.totalLength, Buffer.byteLength(expected))
    assert.deepEqual(
      layout.parts.map(({ start, end }) => [start, end]),
      [
        [0, 2],
        [10, 11],
      ],
    )
  })

  test('totalLength equals the concatenated body length', () => {
    const cases: Array<{ ranges: ByteRange[]; type: string }> = [
      { ranges: [{ start: 0, end: 0 }], type: 'application/octet-stream' },
      {
        ranges: [
          { start: 0, end: 9 },
          { start: 20, end: 35 },
        ],
        type: 'text/plain; charset=utf-8',
      },
      {
        ranges: [
          { start: 1, end: 1 },
          { start: 3, end: 3 },
          { start: 5, end: 35 },
        ],
        type: 'video/mp4',
      },
      { ranges: [{ start: 0, end: 35 }], type: '' },
      {
        ranges: [
          { start: 0, end: 4 },
          { start: 7, end: 8 },
        ],
        type: 'text/plain; name="naïve"',
      },
    ]
    for (const { ranges: selected, type } of cases) {
      const { layout, body } = buildBody(file, selected, type, multipartBoundary())
      assert.equal(layout.totalLength, body.length, `ranges ${JSON.stringify(selected)} type ${type}`)
    }
  })

  test('parts carry the file bytes between the heads', () => {
    const parsed = parseRange('bytes=-4, 0-3', file.length)
    assert.equal(parsed.kind, 'ranges')
    if (parsed.kind !== 'ranges') return
    const boundary = multipartBoundary()
    const { body } = buildBody(file, parsed.ranges, 'text/plain', boundary)
    const text = body.toString('latin1')
    assert.match(text, new RegExp(`^--${boundary}\r\n`))
    assert.ok(text.endsWith(`\r\n--${boundary}--\r\n`))
    assert.ok(text.includes('Content-Range: bytes 0-3/36\r\n\r\n0123\r\n'))
    assert.ok(text.includes('Content-Range: bytes 32-35/36\r\n\r\nwxyz\r\n'))
  })

  test('an empty content type leaves out the Content-Type line', () => {
    const { body } = buildBody(file, [{ start: 0, end: 0 }], '', 'B')
    assert.equal(body.toString('latin1'), '--B\r\nContent-Range: bytes 0-0/36\r\n\r\n0\r\n--B--\r\n')
  })

  test('boundaries are 16 hex characters and differ', () => {
    const a = multipartBoundary()
    const b = multipartBoundary()
    assert.match(a, /^[0-9a-f]{16}$/)
    assert.match(b, /^[0-9a-f]{16}$/)
    assert.notEqual(a, b)
  })
})
