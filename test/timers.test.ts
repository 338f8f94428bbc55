// Timers on a fake clock: the wheel and the heap are driven with explicit times, the scheduler
// with an injected clock and direct tick() calls. One smoke test uses real time (a 30 ms timer),
// and one runs a child process to show that an armed scheduler does not hold the process open.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { HeapTimer, Scheduler, TimerHeap, TimingWheel, WheelTimer } from '../src/core/timers/index.ts'

/** Small deterministic PRNG (mulberry32) so that a failing random test fails the same way again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Firing {
  owner: string
  at: number
}

/** A wheel whose callback records which owner fired at what wheel time. */
function recordingWheel(tickMs: number, now: number) {
  const fired: Firing[] = []
  const wheel: TimingWheel<string> = new TimingWheel<string>({
    tickMs,
    now,
    onExpire: (owner) => {
      fired.push({ owner, at: wheel.now })
    },
  })
  return { wheel, fired }
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

describe('TimingWheel', () => {
  test('fires at the deadline, never before, also mid-tick and on a tick boundary', () => {
    const { wheel, fired } = recordingWheel(10, 0)
    const midTick = new WheelTimer('mid')
    const boundary = new WheelTimer('boundary')
    wheel.arm(midTick, 105)
    wheel.arm(boundary, 110)
    assert.equal(wheel.size, 2)
    assert.equal(wheel.advance(104), 0)
    assert.equal(wheel.advance(104.999), 0)
    assert.equal(wheel.advance(105), 1)
    assert.deepEqual(fired, [{ owner: 'mid', at: 105 }])
    assert.equal(midTick.deadline, 0)
    assert.equal(midTick.armed, false)
    assert.equal(wheel.advance(109), 0)
    assert.equal(wheel.advance(110), 1)
    assert.deepEqual(fired[1], { owner: 'boundary', at: 110 })
    assert.equal(wheel.size, 0)
  })

  test('stepping 1 ms at a time fires each timer exactly at its deadline, at every level', () => {
    const { wheel, fired } = recordingWheel(5, 1_000)
    const deadlines = [1_000, 1_001, 1_004, 1_005, 1_999, 2_280, 6_000, 90_000, 100_003]
    for (const deadline of deadlines) wheel.arm(new WheelTimer(String(deadline)), deadline)
    for (let now = 1_000; now <= 100_010; now++) wheel.advance(now)
    assert.deepEqual(
      fired,
      deadlines.map((deadline) => ({ owner: String(deadline), at: deadline })),
    )
  })

  test('a deadline already past fires on the next advance, even without the clock moving', () => {
    const { wheel, fired } = recordingWheel(25, 10_000)
    wheel.arm(new WheelTimer('past'), 9_000)
    wheel.arm(new WheelTimer('now'), 10_000)
    wheel.arm(new WheelTimer('zero'), 0)
    assert.equal(wheel.advance(10_000), 3)
    assert.deepEqual(
      fired.map((f) => f.owner),
      ['past', 'now', 'zero'],
    )
  })

  test('cancel disarms in any state; cancelling an unarmed timer is a no-op', () => {
    const { wheel, fired } = recordingWheel(10, 0)
    const near = new WheelTimer('near')
    const far = new WheelTimer('far')
    const never = new WheelTimer('never')
    wheel.arm(near, 50)
    wheel.arm(far, 5 * HOUR)
    wheel.cancel(near)
    wheel.cancel(far)
    wheel.cancel(far)
    wheel.cancel(never)
    assert.equal(near.deadline, 0)
    assert.equal(far.armed, false)
    assert.equal(wheel.size, 0)
    assert.equal(wheel.advance(DAY), 0)
    assert.deepEqual(fired, [])
    // A cancelled timer can be armed again.
    wheel.arm(near, DAY + 5)
    assert.equal(wheel.advance(DAY + 5), 1)
    assert.deepEqual(fired, [{ owner: 'near', at: DAY + 5 }])
  })

  test('pushing the deadline later with a field write re-files the timer and fires it at the new deadline', () => {
    const { wheel, fired } = recordingWheel(25, 0)
    const connection = new WheelTimer('connection')
    wheel.arm(connection, 5_000)
    // Activity: each request stamps a new deadline with a plain write.
    for (let now = 100; now <= 4_900; now += 100) {
      wheel.advance(now)
      connection.deadline = now + 5_000
    }
    assert.equal(wheel.advance(5_000), 0, 'the old slot came up, the timer was re-filed, not fired')
    assert.equal(wheel.size, 1)
    assert.equal(wheel.advance(9_899), 0)
    assert.equal(wheel.advance(9_900), 1)
    assert.deepEqual(fired, [{ owner: 'connection', at: 9_900 }])
  })

  test('a field write can push a timer from level 0 to hours away, and past the top level', () => {
    const { wheel, fired } = recordingWheel(1, 0)
    const hours = new WheelTimer('hours')
    const beyondTop = new WheelTimer('beyond-top')
    wheel.arm(hours, 100)
    wheel.arm(beyondTop, 100)
    hours.deadline = 3 * HOUR + 7
    // With 1 ms ticks the top level reaches 2^26 ms (18.6 h); this is past it.
    beyondTop.deadline = 2 * DAY + 11
    assert.equal(wheel.advance(3 * HOUR + 6), 0)
    assert.equal(wheel.advance(3 * HOUR + 7), 1)
    assert.equal(wheel.advance(2 * DAY + 10), 0)
    assert.equal(wheel.advance(2 * DAY + 11), 1)
    assert.deepEqual(fired, [
      { owner: 'hours', at: 3 * HOUR + 7 },
      { owner: 'beyond-top', at: 2 * DAY + 11 },
    ])
  })

  test('arm() with a later deadline moves it; with an earlier one it relinks and fires early enough', () => {
    const { wheel, fired } = recordingWheel(10, 0)
    const timer = new WheelTimer('timer')
    wheel.arm(timer, 2 * HOUR)
    wheel.arm(timer, 30) // from a higher level down to level 0
    assert.equal(wheel.size, 1)
    assert.equal(wheel.advance(29), 0)
    assert.equal(wheel.advance(30), 1)
    wheel.arm(timer, 1_000)
    wheel.arm(timer, 5_000) // later: just a write
    wheel.arm(timer, 4_000) // earlier than the write, later than the slot it is filed in
    wheel.arm(timer, 995) // earlier than the slot: relink
    assert.equal(wheel.size, 1)
    assert.equal(wheel.advance(994), 0)
    assert.equal(wheel.advance(995), 1)
    assert.deepEqual(fired, [
      { owner: 'timer', at: 30 },
      { owner: 'timer', at: 995 },
    ])
  })

  test('one advance by 40 days fires everything due, from every level and the overflow list', () => {
    const { wheel, fired } = recordingWheel(25, 0)
    const deadlines = [10, 6_000, 7_000, 10 * MINUTE, 8 * HOUR, 3 * DAY, 19 * DAY, 25 * DAY, 39 * DAY, 41 * DAY]
    for (const deadline of deadlines) wheel.arm(new WheelTimer(String(deadline)), deadline)
    assert.equal(wheel.advance(40 * DAY), deadlines.length - 1)
    assert.deepEqual(
      fired.map((f) => f.owner),
      deadlines.slice(0, -1).map(String),
      'fired in deadline order when they are in different slots',
    )
    assert.equal(wheel.size, 1)
    assert.equal(wheel.advance(41 * DAY - 1), 0)
    assert.equal(wheel.advance(41 * DAY), 1)
  })

  test('big jumps fire nothing early: stopping just short of each deadline fires nothing', () => {
    const { wheel, fired } = recordingWheel(25, 0)
    const deadlines = [6_401, 409_601, 26_214_401, 1_677_721_601, 3_000_000_000]
    for (const deadline of deadlines) wheel.arm(new WheelTimer(String(deadline)), deadline)
    for (const deadline of deadlines) {
      assert.equal(wheel.advance(deadline - 0.5), 0)
      assert.equal(wheel.advance(deadline), 1)
    }
    assert.deepEqual(
      fired,
      deadlines.map((deadline) => ({ owner: String(deadline), at: deadline })),
    )
  })

  test('works on an epoch clock, where tick numbers exceed 2^32', () => {
    const start = 1_763_000_000_000 // a Date.now() value
    const { wheel, fired } = recordingWheel(1, start)
    for (const offset of [3, 1, 255, 256, 16_383, 16_384, 2 * HOUR, 30 * HOUR]) {
      wheel.arm(new WheelTimer(String(offset)), start + offset)
    }
    for (let now = start; now < start + 30 * HOUR + 997; ) {
      now += 997
      wheel.advance(now)
    }
    for (const { owner, at } of fired) {
      const deadline = start + Number(owner)
      assert.ok(at >= deadline && at < deadline + 997, `${owner} fired at +${at - start}`)
    }
    assert.equal(fired.length, 8)
    assert.equal(wheel.size, 0)
  })

  test('100k random deadlines, random small and large advances, random pushes: each fires in the first advance at or past its deadline', () => {
    const next = random(0x5eed)
    const tickMs = 25
    let now = 1_000
    const deadlines = new Map<WheelTimer<number>, number>()
    const errors: string[] = []
    let previousNow = now
    const wheel: TimingWheel<number> = new TimingWheel<number>({
      tickMs,
      now,
      onExpire: (owner, timer) => {
        const deadline = deadlines.get(timer) as number
        // The correct window: due now, and not due at the previous advance.
        if (!(deadline <= wheel.now && deadline > previousNow)) {
          errors.push(`timer ${owner}: deadline ${deadline} fired at ${wheel.now} (previous advance ${previousNow})`)
        }
        deadlines.delete(timer)
      },
    })
    const timers: WheelTimer<number>[] = []
    let horizon = now
    for (let i = 0; i < 100_000; i++) {
      const timer = new WheelTimer(i)
      // Mostly connection-like timeouts, some far beyond the top level (19.4 days at 25 ms).
      const r = next()
      const delay = r < 0.6 ? next() * 10_000 : r < 0.9 ? next() * 2 * HOUR : r < 0.99 ? next() * 10 * DAY : next() * 60 * DAY
      wheel.arm(timer, now + delay)
      deadlines.set(timer, now + delay)
      timers.push(timer)
      horizon = Math.max(horizon, now + delay)
    }
    // Run the clock past the last deadline ever set, then check that nothing is left.
    while (now <= horizon) {
      // Ticks and sub-tick steps, now and then a stalled event loop; after the first two hours,
      // which cover the connection-like timeouts closely, also jumps of up to two days at once.
      const r = next()
      const bigJumps = now > 2 * HOUR
      const step = r < 0.7 ? next() * 2 * tickMs : r < 0.95 || !bigJumps ? next() * 5_000 : next() * 2 * DAY
      previousNow = now
      now += step
      wheel.advance(now)
      // Activity on a few live connections: push later with a field write, or re-arm earlier.
      for (let k = 0; k < 20; k++) {
        const timer = timers[Math.floor(next() * timers.length)]
        if (timer === undefined || !deadlines.has(timer)) continue
        if (next() < 0.8) {
          const later = Math.max(timer.deadline, now + next() * 10_000)
          timer.deadline = later
          deadlines.set(timer, later)
          horizon = Math.max(horizon, later)
        } else {
          const earlier = now + next() * 1_000
          wheel.arm(timer, earlier)
          deadlines.set(timer, earlier)
        }
      }
    }
    assert.deepEqual(errors.slice(0, 5), [])
    assert.equal(deadlines.size, 0, 'every timer fired')
    assert.equal(wheel.size, 0)
  })

  test('callbacks may cancel, re-arm and arm timers during an advance', () => {
    const events: string[] = []
    const timers = new Map<string, WheelTimer<string>>()
    const wheel: TimingWheel<string> = new TimingWheel<string>({
      tickMs: 10,
      now: 0,
      onExpire: (owner, timer) => {
        events.push(`${owner}@${wheel.now}`)
        if (owner === 'a' && wheel.now === 30) {
          wheel.cancel(timers.get('b') as WheelTimer<string>) // b was collected in the same batch
          wheel.arm(timers.get('c') as WheelTimer<string>, wheel.now - 5) // already due, not in this batch
          ;(timers.get('d') as WheelTimer<string>).deadline = wheel.now + 50 // collected, then pushed
        }
        if (owner === 'a') wheel.arm(timer, wheel.now + 100) // a re-arms itself every time
      },
    })
    for (const name of ['a', 'b', 'c', 'd']) timers.set(name, new WheelTimer(name))
    wheel.arm(timers.get('a') as WheelTimer<string>, 20)
    wheel.arm(timers.get('b') as WheelTimer<string>, 25)
    wheel.arm(timers.get('c') as WheelTimer<string>, 1_000)
    wheel.arm(timers.get('d') as WheelTimer<string>, 28)
    assert.equal(wheel.advance(30), 1)
    assert.deepEqual(events, ['a@30'])
    assert.equal((timers.get('b') as WheelTimer<string>).armed, false)
    assert.equal(wheel.size, 3)
    assert.equal(wheel.advance(30), 1)
    assert.deepEqual(events, ['a@30', 'c@30'])
    assert.equal(wheel.advance(79), 0)
    assert.equal(wheel.advance(80), 1)
    assert.equal(wheel.advance(130), 1)
    assert.deepEqual(events, ['a@30', 'c@30', 'd@80', 'a@130'])
    assert.equal(wheel.size, 1, 'a keeps re-arming itself')
  })

  test('a throwing callback loses no other timer: the rest fire on the next advance', () => {
    const fired: string[] = []
    const wheel = new TimingWheel<string>({
      tickMs: 10,
      now: 0,
      onExpire: (owner) => {
        fired.push(owner)
        if (owner === 'bad') throw new Error('callback failed')
      },
    })
    for (const name of ['first', 'bad', 'after-1', 'after-2']) wheel.arm(new WheelTimer(name), 5)
    assert.throws(() => wheel.advance(10), /callback failed/)
    assert.deepEqual(fired, ['first', 'bad'])
    assert.equal(wheel.size, 2)
    assert.equal(wheel.advance(10), 2)
    assert.deepEqual(fired, ['first', 'bad', 'after-1', 'after-2'])
  })

  test('a clock that goes backwards is treated as standing still', () => {
    const { wheel, fired } = recordingWheel(10, 1_000)
    wheel.arm(new WheelTimer('t'), 1_050)
    wheel.advance(1_040)
    assert.equal(wheel.advance(500), 0)
    assert.equal(wheel.now, 1_040)
    assert.equal(wheel.advance(1_050), 1)
    assert.deepEqual(fired, [{ owner: 't', at: 1_050 }])
  })

  test('rejects times that are not finite numbers', () => {
    const { wheel } = recordingWheel(10, 0)
    assert.throws(() => wheel.arm(new WheelTimer('x'), NaN), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => wheel.arm(new WheelTimer('x'), Infinity), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => wheel.advance(NaN), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => wheel.advance(Infinity), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => new TimingWheel({ tickMs: 0, now: 0, onExpire: () => {} }), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.throws(() => new TimingWheel({ tickMs: 10, now: -1, onExpire: () => {} }), { code: 'PETREL_ERR_INVALID_OPTION' })
    assert.equal(wheel.size, 0)
  })
})

describe('TimerHeap', () => {
  test('runs expired timers in (deadline, scheduling order), leaves the rest', () => {
    const heap = new TimerHeap()
    const ran: string[] = []
    const push = (name: string) => ran.push(name)
    heap.schedule(30, push, 'c1')
    heap.schedule(10, push, 'a1')
    heap.schedule(20, push, 'b1')
    heap.schedule(10, push, 'a2')
    heap.schedule(30, push, 'c2')
    heap.schedule(10, push, 'a3')
    heap.schedule(31, push, 'd')
    assert.equal(heap.peek(), 10)
    assert.equal(heap.runExpired(9), 0)
    assert.equal(heap.runExpired(30), 6)
    assert.deepEqual(ran, ['a1', 'a2', 'a3', 'b1', 'c1', 'c2'])
    assert.equal(heap.size, 1)
    assert.equal(heap.peek(), 31)
    assert.equal(heap.runExpired(31), 1)
    assert.equal(heap.peek(), Infinity)
  })

  test('cancel removes a timer from the middle; cancelling twice or after it ran is a no-op', () => {
    const heap = new TimerHeap()
    const ran: number[] = []
    const timers: HeapTimer[] = []
    for (let i = 0; i < 15; i++) timers.push(heap.schedule(100 + ((i * 7) % 15), (n: number) => ran.push(n), i))
    const middle = timers[7]
    assert.ok(middle !== undefined)
    assert.equal(middle.pending, true)
    heap.cancel(middle)
    heap.cancel(middle)
    assert.equal(middle.pending, false)
    assert.equal(heap.size, 14)
    heap.runExpired(1_000)
    // In (deadline, seq) order; seq is the argument each callback pushed.
    const expected = timers
      .filter((t) => t !== middle)
      .sort((a, b) => a.deadline - b.deadline || a.seq - b.seq)
      .map((t) => t.seq)
    assert.deepEqual(ran, expected)
    const [first] = timers
    assert.ok(first !== undefined)
    heap.cancel(first)
    assert.equal(heap.size, 0)
  })

  test('a timer from another heap is not removed by cancel', () => {
    const one = new TimerHeap()
    const other = new TimerHeap()
    const mine = one.schedule(10, () => {}, null)
    other.schedule(10, () => {}, null)
    other.cancel(mine)
    assert.equal(other.size, 1)
    assert.equal(one.size, 1)
  })

  test('a callback cancelling a later timer of the same batch stops it; a timer it schedules waits for the next call', () => {
    const heap = new TimerHeap()
    const ran: string[] = []
    let victim: HeapTimer | null = null
    heap.schedule(
      5,
      () => {
        ran.push('first')
        heap.cancel(victim as HeapTimer)
        heap.schedule(0, () => ran.push('scheduled-by-first'), null)
      },
      null,
    )
    victim = heap.schedule(5, () => ran.push('victim'), null)
    heap.schedule(6, () => ran.push('last'), null)
    assert.equal(heap.runExpired(10), 2)
    assert.deepEqual(ran, ['first', 'last'])
    assert.equal(heap.runExpired(10), 1)
    assert.deepEqual(ran, ['first', 'last', 'scheduled-by-first'])
  })

  test('a throwing callback puts the rest of its batch back, in order', () => {
    const heap = new TimerHeap()
    const ran: string[] = []
    heap.schedule(1, () => ran.push('a'), null)
    heap.schedule(
      2,
      () => {
        ran.push('b')
        throw new Error('callback failed')
      },
      null,
    )
    heap.schedule(3, () => ran.push('c'), null)
    heap.schedule(3, () => ran.push('d'), null)
    assert.throws(() => heap.runExpired(10), /callback failed/)
    assert.deepEqual(ran, ['a', 'b'])
    assert.equal(heap.size, 2)
    assert.equal(heap.runExpired(10), 2)
    assert.deepEqual(ran, ['a', 'b', 'c', 'd'])
  })

  test('random schedules and cancels run in the same order as a sorted reference', () => {
    const next = random(42)
    const heap = new TimerHeap()
    const ran: number[] = []
    const live: HeapTimer[] = []
    for (let i = 0; i < 20_000; i++) {
      if (live.length > 0 && next() < 0.3) {
        const [victim] = live.splice(Math.floor(next() * live.length), 1)
        if (victim !== undefined) heap.cancel(victim)
      } else {
        // Few distinct deadlines, so that ties are frequent.
        live.push(heap.schedule(Math.floor(next() * 500), (seq: number) => ran.push(seq), i))
      }
    }
    assert.equal(heap.size, live.length)
    const expected = live
      .slice()
      .sort((a, b) => a.deadline - b.deadline || a.seq - b.seq)
      .map((t) => t.arg as number)
    let now = 0
    while (heap.size > 0) {
      now += 37
      heap.runExpired(now)
    }
    assert.deepEqual(ran, expected)
  })
})

describe('Scheduler', () => {
  /** A scheduler on a fake clock; tests call tick() themselves and close() at the end. */
  function fakeScheduler(tickMs = 25) {
    const clock = { now: 1_000 }
    const fired: string[] = []
    const sched = new Scheduler<string>({ tickMs, clock: () => clock.now, onExpire: (owner) => fired.push(owner) })
    return { sched, clock, fired }
  }

  test('armIn and field writes use the cached clock; tick fires what is due', () => {
    const { sched, clock, fired } = fakeScheduler()
    const connection = new WheelTimer('connection')
    sched.armIn(connection, 5_000)
    assert.equal(connection.deadline, 6_000)
    clock.now = 1_020 // the cached now does not move until a tick or refresh
    assert.equal(sched.now, 1_000)
    clock.now = 3_000
    sched.tick()
    assert.equal(sched.now, 3_000)
    connection.deadline = sched.now + 5_000
    clock.now = 7_999
    assert.equal(sched.tick(), 0)
    clock.now = 8_000
    assert.equal(sched.tick(), 1)
    assert.deepEqual(fired, ['connection'])
    sched.close()
  })

  test('wakes every tick while wheel timers are armed, sooner for a heap timer, and stops when nothing is armed', () => {
    const { sched, clock } = fakeScheduler(25)
    assert.equal(sched.wakeAt, Infinity)
    const timer = new WheelTimer('t')
    sched.armIn(timer, 60_000)
    assert.equal(sched.wakeAt, 1_025)
    let ran = 0
    const oneOff = sched.setTimeout(5, () => ran++, null)
    assert.equal(sched.wakeAt, 1_005)
    clock.now = 1_005
    sched.tick()
    assert.equal(ran, 1)
    assert.equal(sched.wakeAt, 1_030, 'back to the tick now that the heap is empty')
    assert.equal(oneOff.pending, false)
    sched.cancel(timer)
    clock.now = 1_030
    sched.tick()
    assert.equal(sched.wakeAt, Infinity, 'nothing armed: the driver stops')
    sched.close()
  })

  test('a wheel timer armed in the past fires on the next tick', () => {
    const { sched, clock, fired } = fakeScheduler(25)
    sched.armIn(new WheelTimer('keep-driver-ticking'), 60_000)
    sched.armIn(new WheelTimer('past'), -500)
    sched.armIn(new WheelTimer('zero'), 0)
    assert.equal(sched.wakeAt, 1_025)
    clock.now = 1_025
    assert.equal(sched.tick(), 2)
    assert.deepEqual(fired, ['past', 'zero'])
    sched.close()
  })

  test('a heap timer already due wakes the driver in 1 ms, not 0: no busy loop', () => {
    const { sched, clock } = fakeScheduler(25)
    sched.setTimeout(0, () => {}, null)
    assert.equal(sched.wakeAt, 1_001)
    // The driver fired a hair early on this clock: nothing runs, and it sleeps at least 1 ms again.
    sched.setTimeout(10, () => {}, null)
    clock.now = 1_009.6
    sched.tick()
    assert.equal(sched.heap.size, 1)
    assert.equal(sched.wakeAt, 1_010.6)
    sched.close()
  })

  test('arming after an idle spell reads the clock afresh instead of trusting the stale cache', () => {
    const { sched, clock, fired } = fakeScheduler()
    clock.now = 1_000 + 3 * HOUR
    const timer = new WheelTimer('late')
    sched.armIn(timer, 100)
    assert.equal(timer.deadline, 1_000 + 3 * HOUR + 100)
    clock.now += 99
    assert.equal(sched.tick(), 0)
    clock.now += 1
    assert.equal(sched.tick(), 1)
    assert.deepEqual(fired, ['late'])
    sched.close()
  })

  test('close() stops the driver but keeps timers armed; arming again restarts it and overdue timers fire', () => {
    const { sched, clock, fired } = fakeScheduler()
    sched.armIn(new WheelTimer('kept'), 100)
    sched.close()
    assert.equal(sched.wakeAt, Infinity)
    assert.equal(sched.wheel.size, 1)
    clock.now = 2_000
    sched.armIn(new WheelTimer('new'), 100)
    assert.equal(sched.wakeAt, 2_025)
    sched.tick()
    assert.deepEqual(fired, ['kept'])
    sched.close()
  })

  test('real time: a 30 ms timer fires after at least 30 ms, and the driver is unref()ed', async () => {
    let expired!: () => void
    const done = new Promise<void>((resolve) => {
      expired = resolve
    })
    const sched = new Scheduler<string>({ tickMs: 10, onExpire: () => expired() })
    const start = performance.now()
    sched.armIn(new WheelTimer('smoke'), 30)
    assert.equal(sched.hasRef(), false)
    // The scheduler's timer does not hold the event loop open, so this test holds it itself.
    const guard = setTimeout(() => expired(), 200)
    await done
    clearTimeout(guard)
    const elapsed = performance.now() - start
    assert.equal(sched.wheel.size, 0, 'fired by the scheduler, not by the 200 ms guard')
    assert.ok(elapsed >= 30, `fired after ${elapsed} ms`)
    sched.close()
  })

  test('an armed scheduler does not keep a process alive', () => {
    const index = fileURLToPath(new URL('../src/core/timers/index.ts', import.meta.url))
    const program = `
      import { Scheduler, WheelTimer } from ${JSON.stringify(index)}
      const sched = new Scheduler({ onExpire: () => {} })
      sched.armIn(new WheelTimer('idle'), 60_000)
      sched.setTimeout(60_000, () => {}, null)
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '--eval', program], { timeout: 20_000, encoding: 'utf8' })
    assert.equal(child.stderr, '')
    assert.equal(child.signal, null, 'the child had to be killed: something held it open')
    assert.equal(child.status, 0)
  })
})
