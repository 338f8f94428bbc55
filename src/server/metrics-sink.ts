// What the server counts about its traffic, as the server needs it: an interface the server owns
// and a monitor implements (monitor/metrics.ts's HttpMetrics), so that server/ imports nothing
// from the layer above it. Every member is on the request path: field increments and calls that
// do arithmetic, nothing that allocates.

export interface MetricsSink {
  /** Request bytes read; the connection adds every read's length as it arrives. */
  bytesIn: number
  /** Bytes written on connections already closed; the server adds a connection's total as it closes. */
  bytesOutClosed: number
  /** A response ended with `status`; its time is recorded apart, by time(). */
  count(status: number): void
  /** `n` responses that each took `ms` from their request's head (the responses of one read are timed together). */
  time(ms: number, n: number): void
  /** count() and time() of one response, for the answers the server writes itself. */
  observe(status: number, ms: number): void
}
