// Petrel's timers: a hierarchical timing wheel for connection timeouts, a min-heap for one-off
// timers, and the scheduler that drives both from a single unref()ed Node timer.

export { TimingWheel, WheelTimer } from './wheel.ts'
export type { TimingWheelOptions } from './wheel.ts'
export { HeapTimer, TimerHeap } from './heap.ts'
export { Scheduler } from './scheduler.ts'
export type { SchedulerOptions } from './scheduler.ts'
