-- Prints wrk's summary as one JSON line so the harness never has to parse wrk's human text.
-- The line starts with a marker because a script may also print other things.
-- Times are in microseconds, as wrk measures them.
--
-- Latency caveat: before done() runs, wrk 4.1 corrects its histogram for coordinated omission,
-- assuming one request in flight per connection. With pipelining that assumption is wrong
-- (one sample covers a whole batch) and the synthetic samples land below the recorded minimum,
-- where percentile() does not look: it then returns 0. The harness treats 0 as "no value" and
-- does not report latency for the pipeline scenario at all.

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'PETREL_WRK_JSON {"durationUs":%.0f,"requests":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latencyUs":{"mean":%.1f,"p50":%.0f,"p99":%.0f,"max":%.0f}}\n',
    summary.duration, summary.requests, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max))
end
