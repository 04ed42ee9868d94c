-- wrk script for bench/token/run.sh: POST an OAuth 2.0 client_credentials
-- token request (client_secret_basic) to the URL given to wrk.
--
-- Environment (read with os.getenv, set by run.sh):
--   BENCH_BASIC  base64("client_id:client_secret"), already computed in bash
--   BENCH_SCOPE  scope to request                                [users.read]
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D
--          errors=NON200 socket_errors=K status_counts=200:N,401:M
-- where errors counts responses whose status is not 200 (counted in
-- response()), and socket_errors is wrk's connect+read+write+timeout count.

local basic = os.getenv("BENCH_BASIC")
if basic == nil or basic == "" then
  io.stderr:write("token.lua: BENCH_BASIC (base64 of client_id:client_secret) is not set\n")
  os.exit(2)
end
local scope = os.getenv("BENCH_SCOPE") or "users.read"

wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=" .. scope
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. basic
wrk.headers["Accept"] = "application/json"

-- Per-thread state. Each wrk thread has its own Lua state; done() runs in
-- yet another one, so the counts are collected through thread:get().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  statuses = {}
end

-- Pre-built request: the same bytes for every request.
local req = nil
function request()
  if req == nil then
    req = wrk.format()
  end
  return req
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local errors = 0
  local merged = {}
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("non200") or 0)
    local s = thread:get("statuses")
    if s then
      for code, n in pairs(s) do
        merged[code] = (merged[code] or 0) + n
      end
    end
  end

  local codes = {}
  for code, _ in pairs(merged) do
    table.insert(codes, code)
  end
  table.sort(codes)
  local parts = {}
  for _, code in ipairs(codes) do
    table.insert(parts, string.format("%d:%d", code, merged[code]))
  end
  local status_counts = table.concat(parts, ",")
  if status_counts == "" then
    status_counts = "none"
  end

  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local duration_s = summary.duration / 1e6
  local rps = 0
  if duration_s > 0 then
    rps = summary.requests / duration_s
  end

  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d socket_errors=%d status_counts=%s\n",
    summary.requests, duration_s, rps,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, socket_errors, status_counts))

  local total = summary.requests
  if total == 0 or (errors + socket_errors) > total * 0.001 then
    io.write(string.format(
      "WARNING: %d of %d requests failed (non-200: %d, socket: %d): these figures are not a benchmark\n",
      errors + socket_errors, total, errors, socket_errors))
  end
end
