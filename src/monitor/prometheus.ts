// /metrics in Prometheus's text exposition format (version 0.0.4): the totals of every server
// process as counters and gauges, the latency histogram with cumulative `le` buckets, and
// per-process gauges labelled by worker.

import { LATENCY_BOUNDS_S, STATUS_CLASSES, type ProcessSnapshot } from './metrics.ts'
import type { Totals } from './board.ts'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export function prometheusText(t: Totals, processes: readonly ProcessSnapshot[]): string {
  const out: string[] = []
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`)
  }
  metric('petrel_connections_accepted_total', 'counter', 'Connections accepted.', [['', t.connections.accepted]])
  metric('petrel_connections_rejected_total', 'counter', 'Connections refused with 503 at the connection limit.', [['', t.connections.rejected]])
  metric('petrel_tls_handshakes_total', 'counter', 'TLS handshakes completed (HTTPS).', [['', t.connections.tlsHandshakes]])
  metric('petrel_tls_resumed_total', 'counter', 'TLS handshakes that resumed a session (a ticket).', [['', t.connections.tlsResumed]])
  metric('petrel_connections_active', 'gauge', 'Connections open now.', [['', t.connections.active]])
  metric('petrel_connections_idle', 'gauge', 'Open connections waiting between requests (keep-alive).', [['', t.connections.idle]])
  metric('petrel_http2_connections', 'gauge', 'Open connections speaking HTTP/2.', [['', t.connections.http2]])
  metric('petrel_http2_streams', 'gauge', 'Streams open on HTTP/2 connections.', [['', t.connections.streams]])
  metric('petrel_websocket_connections', 'gauge', 'Open connections upgraded to WebSocket.', [['', t.connections.websockets]])
  metric('petrel_requests_total', 'counter', 'Requests whose head was read.', [['', t.requests]])
  metric(
    'petrel_responses_total',
    'counter',
    'Responses by status class.',
    STATUS_CLASSES.map((cls, i) => [`{code="${cls}"}`, t.responses[i] ?? 0]),
  )
  metric('petrel_received_bytes_total', 'counter', 'Bytes read from clients.', [['', t.bytesIn]])
  metric('petrel_sent_bytes_total', 'counter', 'Bytes written to clients.', [['', t.bytesOut]])
  out.push('# HELP petrel_request_duration_seconds From a request head to the end of its response.', '# TYPE petrel_request_duration_seconds histogram')
  let cumulative = 0
  for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
    cumulative += t.latency.counts[i] ?? 0
    out.push(`petrel_request_duration_seconds_bucket{le="${Number(LATENCY_BOUNDS_S[i]!.toPrecision(4))}"} ${cumulative}`)
  }
  cumulative += t.latency.counts[LATENCY_BOUNDS_S.length] ?? 0
  out.push(
    `petrel_request_duration_seconds_bucket{le="+Inf"} ${cumulative}`,
    `petrel_request_duration_seconds_sum ${t.latency.sumS}`,
    `petrel_request_duration_seconds_count ${cumulative}`,
  )
  metric('petrel_cpu_seconds_total', 'counter', 'CPU time of the server processes (user + system).', [['', t.cpuUs / 1e6]])
  const each = (pick: (p: ProcessSnapshot) => number): Array<[string, number]> => processes.map((p) => [`{worker="${p.worker ?? 'single'}"}`, pick(p)])
  metric(
    'petrel_process_resident_memory_bytes',
    'gauge',
    'Resident memory of each server process.',
    each((p) => p.memory.rss),
  )
  metric(
    'petrel_process_heap_used_bytes',
    'gauge',
    'V8 heap in use in each server process.',
    each((p) => p.memory.heapUsed),
  )
  metric(
    'petrel_event_loop_delay_p99_seconds',
    'gauge',
    'Event-loop delay, 99th percentile over the last second.',
    each((p) => p.eventLoop.delayP99Ms / 1000),
  )
  metric(
    'petrel_event_loop_utilization_ratio',
    'gauge',
    'Share of the last second the event loop was busy.',
    each((p) => p.eventLoop.utilization),
  )
  metric(
    'petrel_timers_armed',
    'gauge',
    'Connection timers armed on the timing wheel and heap.',
    each((p) => p.timers),
  )
  metric(
    'petrel_open_fds',
    'gauge',
    'Open file descriptors.',
    each((p) => p.fds),
  )
  return out.join('\n') + '\n'
}
