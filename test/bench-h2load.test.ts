// The h2 suite's reading of h2load (bench/h2/h2load.ts): h2load has no machine-readable output,
// and in timing mode (-D) it counts a connection whose streams are never answered as nothing at
// all, so the summary's lines are parsed and every way a run can go wrong must turn it into an
// error rather than a number. The summaries below are h2load 1.52's, from real runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkSummary, h2loadArgs, parseSummary } from '../bench/h2/h2load.ts'

function summary(requests: string, status: string, perConnection: string, protocol = 'h2'): string {
  return [
    'starting benchmark...',
    'spawning thread #0: 10 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.',
    ...(protocol === '' ? [] : [`Application protocol: ${protocol}`]),
    'Main benchmark duration is over for thread #0. Stopping all clients.',
    '',
    'finished in 2.00s, 168850.00 req/s, 10.15MB/s',
    `requests: ${requests}`,
    `status codes: ${status}`,
    'traffic: 10.15MB (20300000) total, 625.08KB (10800000) headers (space savings 60.49%), 253.91KB (4389100) data',
    '                     min         max         mean         sd        +/- sd',
    'time for request:      186us     29.30ms      1.71ms      1.69ms    94.18%',
    'time for connect:       56us       141us       105us        23us    70.00%',
    'time to 1st byte:     3.22ms     23.72ms      6.70ms      6.33ms    90.00%',
    `req/s           :   ${perConnection}`,
  ].join('\n')
}

const GOOD = summary(
  '337700 total, 338700 started, 337700 done, 337700 succeeded, 0 failed, 0 errored, 0 timeout',
  '337700 2xx, 0 3xx, 0 4xx, 0 5xx',
  '16655.91    17102.20    16885.00      150.31    60.00%',
)
const RUN = { connections: 10, protocol: 'h2' } as const

test('a clean run: the figures the suite reports', () => {
  const parsed = parseSummary(GOOD)
  assert.ok(parsed !== undefined)
  const result = checkSummary(parsed, RUN)
  // "finished in" would count a warm-up too: the measured period is requests done ÷ req/s.
  assert.equal(result.durationSec, 2)
  assert.equal(result.done, 337700)
  assert.equal(result.applicationProtocol, 'h2')
  assert.deepEqual(result.bytes, { total: 20300000, headers: 10800000, data: 4389100 })
  assert.equal(result.headerSavingsPercent, 60.49)
  assert.equal(result.requestMeanMs, 1.71)
  assert.deepEqual(result.perConnection, { min: 16655.91, max: 17102.2, mean: 16885 })
})

const failing: Array<[string, string, RegExp, typeof RUN | { connections: number; protocol: 'http/1.1' }]> = [
  [
    'failed and errored requests',
    summary(
      '20000 total, 2000 started, 2000 done, 1000 succeeded, 19000 failed, 19000 errored, 0 timeout',
      '1000 2xx, 0 3xx, 0 4xx, 0 5xx',
      '19.67 19.82 19.75 0.05 60.00%',
    ),
    /^h2load: 19000 failed \(19000 errored, 0 timed out\) of 21000$/,
    RUN,
  ],
  [
    'answers that are not 2xx',
    summary('100 total, 100 started, 100 done, 0 succeeded, 100 failed, 0 errored, 0 timeout', '0 2xx, 0 3xx, 100 4xx, 0 5xx', '50 50 50 0 100%'),
    /100 answers not 2xx/,
    RUN,
  ],
  [
    'nothing answered (a server that crashed or never answered: h2load counts no failure)',
    summary('0 total, 1000 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout', '0 2xx, 0 3xx, 0 4xx, 0 5xx', '0.00 0.00 0.00 0.00 100.00%'),
    /^h2load: no request answered \(1000 started\)$/,
    RUN,
  ],
  [
    'a stalled connection (in timing mode neither done nor failed: only its rate shows it)',
    summary(
      '1617900 total, 1618900 started, 1617900 done, 1617900 succeeded, 0 failed, 0 errored, 0 timeout',
      '1617900 2xx, 0 3xx, 0 4xx, 0 5xx',
      '0.00    90056.65    80861.79    28412.29    90.00%',
    ),
    /^h2load: a connection stalled: the slowest of 10 answered 0 req\/s, the mean 80862$/,
    RUN,
  ],
  [
    'HTTP/1.1 where HTTP/2 was asked for',
    summary('100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout', '100 2xx, 0 3xx, 0 4xx, 0 5xx', '50 50 50 0 100%', 'http/1.1'),
    /^h2load: application protocol http\/1\.1, expected h2 or h2c$/,
    RUN,
  ],
  [
    'no protocol at all (no connection made)',
    summary('0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout', '0 2xx, 0 3xx, 0 4xx, 0 5xx', '0 0 0 0 0%', ''),
    /application protocol none, expected http\/1\.1/,
    { connections: 10, protocol: 'http/1.1' },
  ],
]

for (const [name, output, message, run] of failing) {
  test(`an error, not a number: ${name}`, () => {
    const parsed = parseSummary(output)
    assert.ok(parsed !== undefined)
    assert.throws(() => checkSummary(parsed, run), { message })
  })
}

test('output without a summary is not read as one', () => {
  assert.equal(parseSummary('starting benchmark...\nspawning thread #0: 10 total client(s).\n'), undefined)
})

test("the command line: h2 alone in ALPN over TLS, prior knowledge on cleartext, --h1 for the reference row, one thread, timing mode with h2load's own warm-up", () => {
  const run = { h2loadPath: '/usr/bin/h2load', cpu: 1, connections: 10, streams: 100, durationSec: 5, warmupSec: 2 }
  assert.deepEqual(h2loadArgs({ ...run, url: 'https://127.0.0.1:1/plaintext', protocol: 'h2' }), [
    '-t',
    '1',
    '-c',
    '10',
    '-m',
    '100',
    '-D',
    '5',
    '--warm-up-time=2',
    '--npn-list=h2',
    'https://127.0.0.1:1/plaintext',
  ])
  assert.deepEqual(h2loadArgs({ ...run, url: 'http://127.0.0.1:1/plaintext', protocol: 'h2' }).slice(-2), ['--warm-up-time=2', 'http://127.0.0.1:1/plaintext'])
  assert.deepEqual(h2loadArgs({ ...run, warmupSec: 0, url: 'http://127.0.0.1:1/plaintext', protocol: 'h2' }).slice(-2), ['5', 'http://127.0.0.1:1/plaintext'])
  assert.deepEqual(h2loadArgs({ ...run, url: 'https://127.0.0.1:1/plaintext', protocol: 'http/1.1' }).slice(-2), ['--h1', 'https://127.0.0.1:1/plaintext'])
})
