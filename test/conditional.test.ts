// Validators and conditional requests (RFC 9110 §8.8 and §13). The functions are pure, so the
// precedence rules of §13.2.2 are checked as a table of header sets with hand-written outcomes,
// and the dates against strings written out by hand rather than produced by the code under test.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import {
  evaluateConditions,
  httpDate,
  ifRangeAllows,
  parseHttpDate,
  weakEtag,
  type ConditionalHeaders,
  type ConditionOutcome,
  type Validators,
} from '../src/apps/serve/conditional.ts'

/** 2024-01-15T12:00:00.500Z: the half second checks that comparisons drop the milliseconds. */
const LAST_MODIFIED_MS = 1_705_320_000_500
const LAST_MODIFIED = 'Mon, 15 Jan 2024 12:00:00 GMT'
const ONE_SECOND_BEFORE = 'Mon, 15 Jan 2024 11:59:59 GMT'
const ONE_SECOND_AFTER = 'Mon, 15 Jan 2024 12:00:01 GMT'
const LAST_MODIFIED_RFC850 = 'Monday, 15-Jan-24 12:00:00 GMT'
const LAST_MODIFIED_ASCTIME = 'Mon Jan 15 12:00:00 2024'

const STRONG: Validators = { etag: '"abc"', lastModifiedMs: LAST_MODIFIED_MS }
const WEAK: Validators = { etag: 'W/"abc"', lastModifiedMs: LAST_MODIFIED_MS }

/** 1994-11-06T08:49:37Z, the example instant of RFC 9110 §5.6.7. */
const RFC_EXAMPLE_MS = 784_111_777_000
/** A fixed "now" (2026-11-26) for the two-digit years of the RFC 850 form. */
const NOW_2026_MS = Date.UTC(2026, 10, 26)

type Case = [name: string, headers: ConditionalHeaders, validators: Validators, method: string, expected: ConditionOutcome]

const precedenceCases: Case[] = [
  ['no preconditions', {}, STRONG, 'GET', 'proceed'],

  // Step 1: If-Match, strong comparison.
  ['If-Match equal strong tag', { ifMatch: '"abc"' }, STRONG, 'PUT', 'proceed'],
  ['If-Match other tag', { ifMatch: '"xyz"' }, STRONG, 'PUT', 412],
  ['If-Match weak tag against strong current fails (strong comparison)', { ifMatch: 'W/"abc"' }, STRONG, 'PUT', 412],
  ['If-Match strong tag against weak current fails', { ifMatch: '"abc"' }, WEAK, 'PUT', 412],
  ['If-Match weak against weak fails', { ifMatch: 'W/"abc"' }, WEAK, 'GET', 412],
  ['If-Match * with a strong current', { ifMatch: '*' }, STRONG, 'PUT', 'proceed'],
  ['If-Match * with a weak current', { ifMatch: ' * ' }, WEAK, 'DELETE', 'proceed'],
  ['If-Match list, second member matches', { ifMatch: '"x", "abc"' }, STRONG, 'PUT', 'proceed'],
  ['If-Match list of non-matching tags', { ifMatch: '"x", "y"' }, STRONG, 'GET', 412],
  ['If-Match false on GET is 412, not 304', { ifMatch: '"x"' }, STRONG, 'GET', 412],
  ['If-Match * inside a list is not the star form', { ifMatch: '"x", *' }, STRONG, 'PUT', 412],

  // Step 2: If-Unmodified-Since, only without If-Match.
  ['If-Unmodified-Since equal to Last-Modified at second precision', { ifUnmodifiedSince: LAST_MODIFIED }, STRONG, 'PUT', 'proceed'],
  ['If-Unmodified-Since after Last-Modified', { ifUnmodifiedSince: ONE_SECOND_AFTER }, STRONG, 'PUT', 'proceed'],
  ['If-Unmodified-Since before Last-Modified', { ifUnmodifiedSince: ONE_SECOND_BEFORE }, STRONG, 'PUT', 412],
  ['If-Unmodified-Since before Last-Modified on GET', { ifUnmodifiedSince: ONE_SECOND_BEFORE }, STRONG, 'GET', 412],
  ['If-Unmodified-Since invalid date is ignored', { ifUnmodifiedSince: 'yesterday' }, STRONG, 'PUT', 'proceed'],
  ['If-Unmodified-Since in RFC 850 form', { ifUnmodifiedSince: 'Monday, 15-Jan-24 11:59:59 GMT' }, STRONG, 'PUT', 412],
  ['If-Match true makes If-Unmodified-Since ignored', { ifMatch: '"abc"', ifUnmodifiedSince: ONE_SECOND_BEFORE }, STRONG, 'PUT', 'proceed'],
  ['If-Match false wins over a true If-Unmodified-Since', { ifMatch: '"x"', ifUnmodifiedSince: ONE_SECOND_AFTER }, STRONG, 'PUT', 412],
  ['If-Match * makes If-Unmodified-Since ignored', { ifMatch: '*', ifUnmodifiedSince: ONE_SECOND_BEFORE }, STRONG, 'PUT', 'proceed'],

  // Step 3: If-None-Match, weak comparison.
  ['If-None-Match equal strong tag on GET', { ifNoneMatch: '"abc"' }, STRONG, 'GET', 304],
  ['If-None-Match equal strong tag on HEAD', { ifNoneMatch: '"abc"' }, STRONG, 'HEAD', 304],
  ['If-None-Match equal tag on POST', { ifNoneMatch: '"abc"' }, STRONG, 'POST', 412],
  ['If-None-Match equal tag on PUT', { ifNoneMatch: '"abc"' }, STRONG, 'PUT', 412],
  ['If-None-Match method names are case-sensitive', { ifNoneMatch: '"abc"' }, STRONG, 'get', 412],
  ['If-None-Match weak tag against strong current matches (weak comparison)', { ifNoneMatch: 'W/"abc"' }, STRONG, 'GET', 304],
  ['If-None-Match strong tag against weak current matches', { ifNoneMatch: '"abc"' }, WEAK, 'GET', 304],
  ['If-None-Match weak against weak matches', { ifNoneMatch: 'W/"abc"' }, WEAK, 'GET', 304],
  ['If-None-Match other tag', { ifNoneMatch: '"xyz"' }, STRONG, 'GET', 'proceed'],
  ['If-None-Match other weak tag', { ifNoneMatch: 'W/"xyz"' }, WEAK, 'GET', 'proceed'],
  ['If-None-Match * on GET', { ifNoneMatch: '*' }, STRONG, 'GET', 304],
  ['If-None-Match * on PUT', { ifNoneMatch: '*' }, STRONG, 'PUT', 412],
  ['If-None-Match list with spaces and W/ tags', { ifNoneMatch: '"x" ,  W/"y",W/"abc" ' }, STRONG, 'GET', 304],
  ['If-None-Match list with tabs', { ifNoneMatch: '"x"\t,\tW/"abc"' }, STRONG, 'GET', 304],
  ['If-None-Match list with empty members', { ifNoneMatch: ', ,, "abc" ,' }, STRONG, 'GET', 304],
  ['If-None-Match list without a match', { ifNoneMatch: '"x", W/"y", "ab", "abcd"' }, STRONG, 'GET', 'proceed'],
  ['If-None-Match comma inside a tag', { ifNoneMatch: '"a,b", "abc"' }, STRONG, 'GET', 304],
  ['If-None-Match comma inside the current tag', { ifNoneMatch: '"a", "a,b"' }, { etag: '"a,b"', lastModifiedMs: 0 }, 'GET', 304],
  ['If-None-Match empty value matches nothing', { ifNoneMatch: '' }, STRONG, 'GET', 'proceed'],
  ['If-None-Match is evaluated after a true If-Match', { ifMatch: '"abc"', ifNoneMatch: '"abc"' }, STRONG, 'GET', 304],
  ['If-Unmodified-Since false wins over If-None-Match', { ifUnmodifiedSince: ONE_SECOND_BEFORE, ifNoneMatch: '"abc"' }, STRONG, 'GET', 412],
  ['If-None-Match false (no 304) makes If-Modified-Since ignored', { ifNoneMatch: '"xyz"', ifModifiedSince: LAST_MODIFIED }, STRONG, 'GET', 'proceed'],
  ['If-None-Match match wins over a modified If-Modified-Since', { ifNoneMatch: '"abc"', ifModifiedSince: ONE_SECOND_BEFORE }, STRONG, 'GET', 304],

  // Step 4: If-Modified-Since, only without If-None-Match and only for GET and HEAD.
  ['If-Modified-Since equal to Last-Modified at second precision', { ifModifiedSince: LAST_MODIFIED }, STRONG, 'GET', 304],
  ['If-Modified-Since after Last-Modified', { ifModifiedSince: ONE_SECOND_AFTER }, STRONG, 'GET', 304],
  ['If-Modified-Since before Last-Modified', { ifModifiedSince: ONE_SECOND_BEFORE }, STRONG, 'GET', 'proceed'],
  ['If-Modified-Since on HEAD', { ifModifiedSince: LAST_MODIFIED }, STRONG, 'HEAD', 304],
  ['If-Modified-Since ignored for POST', { ifModifiedSince: LAST_MODIFIED }, STRONG, 'POST', 'proceed'],
  ['If-Modified-Since invalid date is ignored', { ifModifiedSince: '15 Jan 2024' }, STRONG, 'GET', 'proceed'],
  ['If-Modified-Since in RFC 850 form', { ifModifiedSince: LAST_MODIFIED_RFC850 }, STRONG, 'GET', 304],
  ['If-Modified-Since in asctime form', { ifModifiedSince: LAST_MODIFIED_ASCTIME }, STRONG, 'GET', 304],
  ['If-Match false wins over If-Modified-Since', { ifMatch: '"x"', ifModifiedSince: LAST_MODIFIED }, STRONG, 'GET', 412],
  ['If-Unmodified-Since true then If-Modified-Since not modified', { ifUnmodifiedSince: LAST_MODIFIED, ifModifiedSince: LAST_MODIFIED }, STRONG, 'GET', 304],

  // Malformed lists: broken members match nothing, well-formed ones are still compared.
  ['unquoted member is skipped, the next one matches', { ifNoneMatch: 'abc, "abc"' }, STRONG, 'GET', 304],
  ['unquoted tag alone does not match', { ifNoneMatch: 'abc' }, STRONG, 'GET', 'proceed'],
  ['unterminated quote does not match', { ifNoneMatch: '"abc' }, STRONG, 'GET', 'proceed'],
  ['unterminated quote before a good member', { ifNoneMatch: '"ab, "abc"' }, STRONG, 'GET', 304],
  ['junk after a tag makes the member not match', { ifNoneMatch: '"abc" junk, "zzz"' }, STRONG, 'GET', 'proceed'],
  ['space between W/ and the quote is malformed', { ifNoneMatch: 'W/ "abc"' }, STRONG, 'GET', 'proceed'],
  ['lower-case w/ is malformed', { ifNoneMatch: 'w/"abc"' }, STRONG, 'GET', 'proceed'],
  ['space inside a tag is malformed', { ifNoneMatch: '"ab c"' }, { etag: '"ab c"', lastModifiedMs: 0 }, 'GET', 'proceed'],
  ['malformed If-Match fails', { ifMatch: 'abc' }, STRONG, 'PUT', 412],
  ['malformed current tag matches nothing', { ifNoneMatch: '"abc"' }, { etag: 'abc', lastModifiedMs: 0 }, 'GET', 'proceed'],
]

describe('evaluateConditions: RFC 9110 §13.2.2 precedence', () => {
  for (const [name, headers, validators, method, expected] of precedenceCases) {
    test(name, () => {
      assert.equal(evaluateConditions(headers, validators, method), expected)
    })
  }
})

describe('entity-tag comparison: the table of RFC 9110 §8.8.3.2', () => {
  // [first, second, strong comparison, weak comparison]
  const table: [string, string, boolean, boolean][] = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ]
  for (const [first, second, strong, weak] of table) {
    for (const [sent, current] of [
      [first, second],
      [second, first],
    ] as const) {
      const validators = { etag: current, lastModifiedMs: 0 }
      test(`${sent} vs ${current}: strong ${strong}, weak ${weak}`, () => {
        // If-Match and If-Range use strong comparison; If-None-Match uses weak comparison.
        assert.equal(evaluateConditions({ ifMatch: sent }, validators, 'GET'), strong ? 'proceed' : 412)
        assert.equal(ifRangeAllows(sent, validators), strong)
        assert.equal(evaluateConditions({ ifNoneMatch: sent }, validators, 'GET'), weak ? 304 : 'proceed')
      })
    }
  }
})

describe('malformed field values never throw', () => {
  test('random strings over the entity-tag alphabet', () => {
    const alphabet = ['"', 'W', '/', ',', ' ', '\t', 'a', '*', 'w', '\x7f', '\x00', 'é']
    let seed = 12345
    const next = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
      return seed
    }
    for (let round = 0; round < 2000; round++) {
      let value = ''
      const length = next() % 12
      for (let i = 0; i < length; i++) value += alphabet[next() % alphabet.length]
      const outcome = evaluateConditions({ ifMatch: value, ifNoneMatch: value }, STRONG, 'GET')
      assert.ok(outcome === 'proceed' || outcome === 304 || outcome === 412, `${JSON.stringify(value)} gave ${outcome}`)
      assert.equal(typeof ifRangeAllows(value, STRONG), 'boolean')
    }
  })
})

describe('ifRangeAllows: RFC 9110 §13.1.5', () => {
  const cases: [name: string, ifRange: string | undefined, validators: Validators, expected: boolean][] = [
    ['absent', undefined, STRONG, true],
    ['equal strong tag', '"abc"', STRONG, true],
    ['equal strong tag with surrounding spaces', '  "abc" ', STRONG, true],
    ['other strong tag', '"xyz"', STRONG, false],
    ['weak tag against a strong current', 'W/"abc"', STRONG, false],
    ['weak tag against the same weak current', 'W/"abc"', WEAK, false],
    ['strong tag against a weak current', '"abc"', WEAK, false],
    ['a list is not an entity tag', '"x", "abc"', STRONG, false],
    ['unterminated tag', '"abc', STRONG, false],
    ['date equal to Last-Modified at second precision', LAST_MODIFIED, STRONG, true],
    ['date equal to Last-Modified, asctime form', LAST_MODIFIED_ASCTIME, STRONG, true],
    ['date one second earlier', ONE_SECOND_BEFORE, STRONG, false],
    ['date one second later', ONE_SECOND_AFTER, STRONG, false],
    ['invalid date', 'Mon, 15 Jan 2024', STRONG, false],
    ['empty value', '', STRONG, false],
  ]
  for (const [name, ifRange, validators, expected] of cases) {
    test(name, () => {
      assert.equal(ifRangeAllows(ifRange, validators), expected)
    })
  }

  test('the tags made by weakEtag never allow a range', () => {
    const etag = weakEtag(500, LAST_MODIFIED_MS)
    assert.equal(ifRangeAllows(etag, { etag, lastModifiedMs: LAST_MODIFIED_MS }), false)
  })
})

describe('weakEtag', () => {
  test('size and mtime seconds in hex, marked weak', () => {
    assert.equal(weakEtag(500, LAST_MODIFIED_MS), 'W/"1f4-65a51e40"')
    assert.equal(weakEtag(0, 0), 'W/"0-0"')
    assert.equal(weakEtag(4096, 1_000_999), 'W/"1000-3e8"')
  })

  test('changes with size or whole second, not with milliseconds', () => {
    assert.equal(weakEtag(500, 1_705_320_000_000), weakEtag(500, 1_705_320_000_999))
    assert.notEqual(weakEtag(500, 1_705_320_000_999), weakEtag(500, 1_705_320_001_000))
    assert.notEqual(weakEtag(500, LAST_MODIFIED_MS), weakEtag(501, LAST_MODIFIED_MS))
  })

  test('matches itself in If-None-Match', () => {
    const etag = weakEtag(500, LAST_MODIFIED_MS)
    assert.equal(evaluateConditions({ ifNoneMatch: 'W/"1f4-65a51e40"' }, { etag, lastModifiedMs: LAST_MODIFIED_MS }, 'GET'), 304)
  })
})

describe('httpDate', () => {
  test('IMF-fixdate, milliseconds dropped', () => {
    assert.equal(httpDate(RFC_EXAMPLE_MS), 'Sun, 06 Nov 1994 08:49:37 GMT')
    assert.equal(httpDate(RFC_EXAMPLE_MS + 999), 'Sun, 06 Nov 1994 08:49:37 GMT')
    assert.equal(httpDate(LAST_MODIFIED_MS), LAST_MODIFIED)
    assert.equal(httpDate(0), 'Thu, 01 Jan 1970 00:00:00 GMT')
    assert.equal(httpDate(-1500), 'Wed, 31 Dec 1969 23:59:58 GMT')
  })
})

describe('parseHttpDate', () => {
  test('the three forms of RFC 9110 §5.6.7 name the same instant', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), RFC_EXAMPLE_MS)
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW_2026_MS), RFC_EXAMPLE_MS)
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), RFC_EXAMPLE_MS)
  })

  test('asctime with a two-digit day', () => {
    assert.equal(parseHttpDate('Wed Nov 16 08:49:37 1994'), RFC_EXAMPLE_MS + 10 * 86_400_000)
  })

  test('surrounding whitespace is ignored', () => {
    assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT '), RFC_EXAMPLE_MS)
  })

  test('RFC 850 two-digit years: no more than 50 years in the future', () => {
    assert.equal(parseHttpDate('Wednesday, 01-Jan-76 00:00:00 GMT', NOW_2026_MS), Date.UTC(2076, 0, 1))
    assert.equal(parseHttpDate('Thursday, 01-Jan-77 00:00:00 GMT', NOW_2026_MS), Date.UTC(1977, 0, 1))
    assert.equal(parseHttpDate('Saturday, 01-Jan-00 00:00:00 GMT', NOW_2026_MS), Date.UTC(2000, 0, 1))
    const now2099 = Date.UTC(2099, 5, 1)
    assert.equal(parseHttpDate('Monday, 01-Jan-10 00:00:00 GMT', now2099), Date.UTC(2110, 0, 1))
    assert.equal(parseHttpDate('Monday, 01-Jan-60 00:00:00 GMT', now2099), Date.UTC(2060, 0, 1))
  })

  test('leap days exist only in leap years', () => {
    assert.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29))
    assert.equal(parseHttpDate('Tue, 29 Feb 2000 00:00:00 GMT'), Date.UTC(2000, 1, 29))
    assert.equal(parseHttpDate('Thu, 29 Feb 1900 00:00:00 GMT'), null)
    assert.equal(parseHttpDate('Wed, 29 Feb 2023 00:00:00 GMT'), null)
  })

  test('a leap second counts as the next minute', () => {
    assert.equal(parseHttpDate('Wed, 31 Dec 2008 23:59:60 GMT'), Date.UTC(2009, 0, 1))
  })

  test('round trips through httpDate at second precision', () => {
    const times = [0, -1500, RFC_EXAMPLE_MS + 999, LAST_MODIFIED_MS, Date.UTC(2024, 1, 29, 23, 59, 59), Date.UTC(9999, 11, 31, 23, 59, 59, 999)]
    for (const timeMs of times) {
      assert.equal(parseHttpDate(httpDate(timeMs)), Math.floor(timeMs / 1000) * 1000, httpDate(timeMs))
    }
  })

  test('garbage is null', () => {
    const garbage = [
      '',
      'garbage',
      '0',
      '1994-11-06T08:49:37Z',
      'Sun, 06 Nov 1994 08:49:37 UTC',
      'Sun, 06 Nov 1994 08:49:37 gmt',
      'sun, 06 Nov 1994 08:49:37 GMT',
      'Sun, 06 nov 1994 08:49:37 GMT',
      'Sun, 6 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 94 08:49:37 GMT',
      'Sun, 06 Foo 1994 08:49:37 GMT',
      'Sun, 00 Nov 1994 08:49:37 GMT',
      'Sun, 31 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 1994 24:00:00 GMT',
      'Sun, 06 Nov 1994 08:60:00 GMT',
      'Sun, 06 Nov 1994 08:49:61 GMT',
      'Sun, 06 Nov 1994 08-49-37 GMT',
      'Sun, 06 Nov 1994 08:49:37 GMT extra',
      'Sun, 06 Nov 1994 0a:49:37 GMT',
      'Sun, 06 Nov +994 08:49:37 GMT',
      'Funday, 06-Nov-94 08:49:37 GMT',
      'Sunday, 06-Nov-1994 08:49:37 GMT',
      'Sunday, 06 Nov 94 08:49:37 GMT',
      'Sun, 06-Nov-94 08:49:37 GMT',
      'Sun Nov 6 08:49:37 1994',
      'Sun Nov  6 08:49:37 94',
      'Sun Nov  6 08:49:37 1994 GMT',
      ',',
      'Sun,',
    ]
    for (const text of garbage) assert.equal(parseHttpDate(text, NOW_2026_MS), null, text)
  })
})
