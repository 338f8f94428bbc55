// HPACK (src/protocol/http2/hpack.ts, huffman.ts) against RFC 7541: the Appendix C examples
// decoded with the dynamic table they leave, the Huffman code against the examples' strings,
// every malformed block refused as a COMPRESSION_ERROR, the bounds a hostile peer meets (table
// size updates, header list size, integer overflow, Huffman bombs), and both directions against a
// real peer: Python's hpack (Debian python3-hpack, which python3-h2 brings).

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { spawnSync } from 'node:child_process'
import { HpackDecoder, HpackEncoder, HpackError, STATIC_TABLE } from '../src/protocol/http2/hpack.ts'
import { huffmanDecode, huffmanEncode, huffmanLength } from '../src/protocol/http2/huffman.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

function decoder(maxTableBytes = 4096, maxHeaderListBytes = 64 * 1024): HpackDecoder {
  return new HpackDecoder({ maxTableBytes, maxHeaderListBytes })
}

function decodeAll(d: HpackDecoder, block: Buffer): { error: HpackError; fields: Array<[string, string]> } {
  const fields: Array<[string, string]> = []
  const error = d.decode(block, 0, block.length, { field: (name, value) => fields.push([name, value]) })
  return { error, fields }
}

const REQUESTS: Array<Array<[string, string]>> = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
]
const REQUEST_TABLE_BYTES = [57, 110, 164]

const RESPONSES: Array<Array<[string, string]>> = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['location', 'https://www.example.com'],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['location', 'https://www.example.com'],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'],
    ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
  ],
]
const RESPONSE_TABLE_BYTES = [222, 222, 215]

describe('RFC 7541 Appendix C', () => {
  test('C.2: a literal with indexing, without, never indexed, and an indexed field', () => {
    const d = decoder()
    assert.deepEqual(decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), {
      error: HpackError.NONE,
      fields: [['custom-key', 'custom-header']],
    })
    assert.equal(d.tableBytes, 55)
    const e = decoder()
    assert.deepEqual(decodeAll(e, hex('040c 2f73 616d 706c 652f 7061 7468')).fields, [[':path', '/sample/path']])
    assert.deepEqual(decodeAll(e, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')).fields, [['password', 'secret']])
    assert.deepEqual(decodeAll(e, hex('82')).fields, [[':method', 'GET']])
    assert.equal(e.tableBytes, 0, 'nothing of these is indexed')
  })

  const sequences: Array<[string, string[], Array<Array<[string, string]>>, number[], number]> = [
    [
      'C.3: requests without Huffman',
      [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ],
      REQUESTS,
      REQUEST_TABLE_BYTES,
      4096,
    ],
    [
      'C.4: requests with Huffman',
      ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'],
      REQUESTS,
      REQUEST_TABLE_BYTES,
      4096,
    ],
    [
      'C.5: responses without Huffman, a table of 256 bytes that evicts',
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
      RESPONSES,
      RESPONSE_TABLE_BYTES,
      256,
    ],
    [
      'C.6: responses with Huffman, a table of 256 bytes that evicts',
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
      RESPONSES,
      RESPONSE_TABLE_BYTES,
      256,
    ],
  ]
  for (const [name, blocks, expected, tableBytes, capacity] of sequences) {
    test(`${name}: each block decodes to its list, and leaves the table the appendix shows`, () => {
      const d = decoder(capacity)
      blocks.forEach((block, i) => {
        assert.deepEqual(decodeAll(d, hex(block)), { error: HpackError.NONE, fields: expected[i] }, `block ${i + 1}`)
        assert.equal(d.tableBytes, tableBytes[i], `table size after block ${i + 1}`)
      })
    })
  }

  test('C.6.3 leaves the table the appendix lists, newest first', () => {
    const d = decoder(256)
    for (const block of sequences[3]![1]) decodeAll(d, hex(block))
    assert.deepEqual(d.tableEntries(), [
      ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
      ['content-encoding', 'gzip'],
      ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ])
  })
})

describe('the Huffman code', () => {
  test('the examples of Appendix C: www.example.com, no-cache, custom-key, custom-value', () => {
    for (const [text, coded] of [
      ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
      ['no-cache', 'a8eb 1064 9cbf'],
      ['custom-key', '25a8 49e9 5ba9 7d7f'],
      ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
      ['302', '6402'],
      ['private', 'aec3 771a 4b'],
    ] as const) {
      const raw = Buffer.from(text, 'latin1')
      const out = Buffer.alloc(huffmanLength(raw, 0, raw.length))
      assert.equal(huffmanEncode(raw, 0, raw.length, out, 0), out.length)
      assert.equal(out.toString('hex'), coded.replace(/ /g, ''), text)
      const back = Buffer.alloc(64)
      const end = huffmanDecode(out, 0, out.length, back, 0, 64)
      assert.equal(back.toString('latin1', 0, end), text)
    }
  })

  test('every byte value round-trips, alone and in a run of all 256', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    for (const input of [all, ...Array.from({ length: 256 }, (_, i) => Buffer.from([i]))]) {
      const coded = Buffer.alloc(huffmanLength(input, 0, input.length))
      huffmanEncode(input, 0, input.length, coded, 0)
      const back = Buffer.alloc(input.length * 2)
      const end = huffmanDecode(coded, 0, coded.length, back, 0, back.length)
      assert.ok(back.subarray(0, end).equals(input), `byte ${input[0]}`)
    }
  })

  test('refused: EOS in the string, padding of 8 bits or more, padding that is not all ones, more than the limit', () => {
    const out = Buffer.alloc(64)
    // EOS is 30 ones: four bytes of ones hold it (and the rest is padding).
    assert.ok(huffmanDecode(hex('ffff ffff'), 0, 4, out, 0, 64) < 0, 'EOS')
    // "0" is 00000, then 11 bits of ones: more than 7 bits of padding.
    assert.ok(huffmanDecode(hex('07ff'), 0, 2, out, 0, 64) < 0, 'long padding')
    // "0" then 000: padding must be ones.
    assert.ok(huffmanDecode(hex('00'), 0, 1, out, 0, 64) < 0, 'zero padding')
    // "aaaa" decodes to 4 bytes: with a limit of 3 it is refused.
    const four = Buffer.alloc(4)
    huffmanEncode(Buffer.from('aaaa'), 0, 4, four, 0)
    assert.ok(huffmanDecode(four, 0, huffmanLength(Buffer.from('aaaa'), 0, 4), out, 0, 3) < 0, 'over the limit')
  })
})

describe('a hostile peer', () => {
  test('malformed blocks are COMPRESSION errors, named', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['80', 'index 0', /index 0/],
      ['be', 'an index beyond the tables', /index 62 beyond/],
      ['ff80 8080 8080 01', 'an integer above 2^31 - 1', /2\^31/],
      [`ff${'80'.repeat(150)}01`, 'an integer padded with 150 zero continuation bytes (2 ** shift would overflow to Infinity)', /2\^31/],
      ['ff80', 'the block ends inside an integer', /inside an integer/],
      ['400a 6375 73', 'a string longer than what is left', /a string of 10 bytes with 3 left/],
      ['40', 'the block ends before the name', /ends before a string/],
      ['82 3f e1 1f', 'a size update after a field', /after a field/],
      ['3fe2 1f', 'a size update above the announced size', /above the 4096 announced/],
      ['4083 ffff ff01 61', 'EOS in a Huffman name', /EOS|padding/],
    ]
    for (const [block, what, problem] of cases) {
      const d = decoder()
      assert.equal(decodeAll(d, hex(block)).error, HpackError.COMPRESSION, what)
      assert.match(d.problem, problem, what)
    }
  })

  test('size updates at the start of a block: to zero empties the table, and back up is allowed within the announced size', () => {
    const d = decoder()
    decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))
    assert.equal(d.tableBytes, 55)
    assert.deepEqual(decodeAll(d, hex('20 3fe1 1f 82')), { error: HpackError.NONE, fields: [[':method', 'GET']] })
    assert.equal(d.tableBytes, 0)
    assert.equal(decodeAll(d, hex('be')).error, HpackError.COMPRESSION, 'the evicted entry is gone')
  })

  test('an HPACK bomb: one 4 KiB entry referenced a thousand times is stopped at the header list limit, the table kept in step', () => {
    const d = decoder(4096, 16 * 1024)
    const value = 'x'.repeat(4000)
    const first = new HpackEncoder().encode([['x-big', value]])
    const block = Buffer.concat([first, Buffer.alloc(1000, 0xbe)])
    const { error, fields } = decodeAll(d, block)
    assert.equal(error, HpackError.LIST_TOO_LARGE)
    assert.ok(fields.length <= 4, `${fields.length} fields passed on before the limit`)
    // The table is still in step: the next block can refer to the entry.
    assert.equal(decodeAll(d, hex('be')).fields[0]?.[1].length, 4000)
  })

  test('every split of a block is refused whole or decoded whole: a block cut short is never half-applied silently', () => {
    const block = hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')
    for (let cut = 1; cut < block.length; cut++) {
      const d = decoder()
      const result = decodeAll(d, block.subarray(0, cut))
      // A cut on a field boundary is a valid shorter block; anywhere else it is an error.
      if (result.error === HpackError.NONE) assert.ok(result.fields.length > 0)
      else assert.equal(result.error, HpackError.COMPRESSION, `cut at ${cut}`)
    }
  })
})

describe('the encoder', () => {
  test('static matches are one byte; repeated fields come from the dynamic table; set-cookie is never indexed; decodes back', () => {
    const e = new HpackEncoder()
    const d = decoder()
    const head: Array<[string, string]> = [
      [':status', '200'],
      ['content-type', 'text/html; charset=utf-8'],
      ['server', 'petrel'],
      ['content-length', '1234'],
      ['set-cookie', 'a=b'],
    ]
    const first = Buffer.from(e.encode(head))
    assert.equal(first[0], 0x88, ':status 200 is static index 8')
    assert.deepEqual(decodeAll(d, first).fields, head)
    const second = Buffer.from(e.encode(head))
    assert.ok(second.length < first.length / 2, `the second head is ${second.length} bytes, the first ${first.length}`)
    assert.deepEqual(decodeAll(d, second).fields, head)
    assert.ok(!d.tableEntries().some(([name]) => name === 'set-cookie'))
    // A table size change is announced at the start of the next block.
    e.setCapacity(0)
    const third = Buffer.from(e.encode(head))
    assert.equal(third[0], 0x20)
    assert.deepEqual(decodeAll(d, third).fields, head)
    assert.equal(d.tableBytes, 0)
  })

  test('STATIC_TABLE has the 61 entries of Appendix A', () => {
    assert.equal(STATIC_TABLE.length, 61)
    assert.deepEqual(STATIC_TABLE[0], [':authority', ''])
    assert.deepEqual(STATIC_TABLE[7], [':status', '200'])
    assert.deepEqual(STATIC_TABLE[60], ['www-authenticate', ''])
  })
})

describe("against Python's hpack (Debian python3-hpack)", () => {
  const PYTHON = '/usr/bin/python3'
  const lists: Array<Array<[string, string]>> = [
    REQUESTS[2]!,
    RESPONSES[2]!,
    [
      [':method', 'POST'],
      [':path', '/api/items?id=42&q=%E2%9C%93'],
      [':authority', 'example.test:8443'],
      ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'],
      ['accept', '*/*'],
      ['cookie', 'session=abc; theme=dark'],
      ['x-binary', '\u00ff\u0080 latin1 bytes'],
    ],
  ]

  test('blocks Python encodes (three in a row, one table) decode here to the same lists', () => {
    requireDebianPackage('python3-h2')
    const script = `
import sys, json, hpack
e = hpack.Encoder()
lists = json.loads(sys.stdin.read())
print(json.dumps([e.encode([(n.encode('latin1'), v.encode('latin1')) for n, v in l]).hex() for l in lists]))
`
    const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(lists), encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const blocks = JSON.parse(r.stdout) as string[]
    const d = decoder()
    blocks.forEach((block, i) => assert.deepEqual(decodeAll(d, hex(block)), { error: HpackError.NONE, fields: lists[i] }))
  })

  test('blocks encoded here (three in a row, one table) decode in Python to the same lists', () => {
    requireDebianPackage('python3-h2')
    const e = new HpackEncoder()
    const blocks = lists.map((list) => Buffer.from(e.encode(list)).toString('hex'))
    const script = `
import sys, json, hpack
d = hpack.Decoder()
print(json.dumps([[[n.decode('latin1') if isinstance(n, bytes) else n, v.decode('latin1') if isinstance(v, bytes) else v] for n, v in d.decode(bytes.fromhex(b), raw=True)] for b in json.loads(sys.stdin.read())]))
`
    const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(blocks), encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), lists)
  })
})
