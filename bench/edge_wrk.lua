-- wrk hook for bench/run-edge.sh: at the end of a run, print one line that the script parses.
-- It only reports; the requests wrk sends are the ones given on its command line.
--   WRK requests=N seconds=S bytes=B p50_us=.. p90_us=.. p99_us=.. max_us=.. errors=E non2xx=X
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d seconds=%.6f bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
