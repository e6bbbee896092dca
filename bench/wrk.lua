-- GET /api/users, rotating over the (tenant, token) pairs of a file.
-- Arguments: <pairs file> <"header" | "host" | "bearer">: how the tenant is named (X-Tenant-ID or
-- Host, with "Authorization: Token"; or nothing but "Authorization: Bearer" with an API key or a
-- JWT, which names its tenant by itself), [start]: index of the first pair, so that successive
-- runs carry on through the list.
local pairs_list = {}
local next_index = 0
local by_host = false
local bearer = false

function init(args)
  by_host = args[2] == "host"
  bearer = args[2] == "bearer"
  for line in io.lines(args[1]) do
    local tenant, token = line:match("(%S+)%s+(%S+)")
    table.insert(pairs_list, { tenant, token })
  end
  next_index = (tonumber(args[3]) or 0) % #pairs_list
end

function request()
  next_index = next_index % #pairs_list + 1
  local pair = pairs_list[next_index]
  local headers = { ["Authorization"] = "Token " .. pair[2] }
  if bearer then
    headers["Authorization"] = "Bearer " .. pair[2]
  elseif by_host then
    headers["Host"] = pair[1] .. ".localhost"
  else
    headers["X-Tenant-ID"] = pair[1]
  end
  return wrk.format("GET", "/api/users", headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
