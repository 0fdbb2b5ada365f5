-- wrk script: POST the body in file args[1] with Content-Type args[2] (and Authorization args[3]
-- when given); print a JSON summary line.
function init(args)
  local f = io.open(args[1], "rb")
  wrk.method = "POST"
  wrk.body = f:read("*all")
  f:close()
  wrk.headers["Content-Type"] = args[2]
  if args[3] then
    wrk.headers["Authorization"] = args[3]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
