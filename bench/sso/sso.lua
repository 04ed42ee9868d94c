-- wrk script for bench/sso/run.sh, two modes (BENCH_MODE):
--
--   refresh     POST grant_type=refresh_token to the token endpoint, with
--               refresh-token rotation: every refresh token is single use
--               (the hub revokes the whole family when one is reused, and so
--               does oidc-provider with rotateRefreshToken), so each wrk
--               thread keeps a FIFO queue of the newest token of each of its
--               families: request() pops one, response() reads the new
--               refresh_token from the JSON body and pushes it back. A family
--               whose request fails, or is in flight when wrk stops, is lost;
--               done() writes the tokens still queued to BENCH_TOKENS_OUT, so
--               the measured run can start from the warm-up's leftovers.
--               (wrk also calls request() once per thread to check the
--               script, which drops one token per thread, unused.)
--   introspect  POST token=ACCESS_TOKEN to the introspection endpoint; a
--               response is an error unless it is 200 with "active":true.
--
-- Environment (read with os.getenv, set by run.sh):
--   BENCH_MODE        refresh | introspect
--   BENCH_BASIC       base64("client_id:client_secret") (client_secret_basic)
--   BENCH_TOKENS      refresh: file of refresh tokens, one a line
--   BENCH_TOKENS_OUT  refresh: where done() writes the tokens left (run.sh gives
--                     the same file as BENCH_TOKENS: each run continues the last)
--   BENCH_THREADS     refresh: wrk's -t, to deal the tokens out to threads
--   BENCH_TOKEN       introspect: the access token
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D
--          errors=E socket_errors=K status_counts=200:N,400:M starved=Z left=L
-- errors counts non-200 responses plus 200s without the expected content (a
-- new refresh_token / "active":true); starved counts requests made while the
-- thread's queue was empty (sent with a dummy token, so they fail and count
-- as errors too: the pool was too small); left is the tokens written back.

local mode = os.getenv("BENCH_MODE") or ""
local basic = os.getenv("BENCH_BASIC") or ""
if basic == "" or (mode ~= "refresh" and mode ~= "introspect") then
  io.stderr:write("sso.lua: set BENCH_MODE (refresh|introspect) and BENCH_BASIC\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. basic
wrk.headers["Accept"] = "application/json"

-- Per-thread state lives in each thread's own Lua state; done() runs in
-- another one and collects it through thread:get().
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Form-encode a token (refresh tokens are base64url, but be safe).
local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  non200 = 0
  bad200 = 0
  starved = 0
  statuses = {}
  -- FIFO queue: q[qhead .. qtail - 1]
  q, qhead, qtail = {}, 1, 1
  if mode == "refresh" then
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "")
    local path = os.getenv("BENCH_TOKENS")
    if not nthreads or not path then
      io.stderr:write("sso.lua: refresh mode needs BENCH_THREADS and BENCH_TOKENS\n")
      os.exit(2)
    end
    local f = assert(io.open(path, "r"))
    local i = 0
    for line in f:lines() do
      if line ~= "" then
        -- deal the tokens out: thread k takes lines k, k+T, k+2T, ...
        if i % nthreads == id then
          q[qtail] = line
          qtail = qtail + 1
        end
        i = i + 1
      end
    end
    f:close()
  else
    local token = os.getenv("BENCH_TOKEN") or ""
    if token == "" then
      io.stderr:write("sso.lua: introspect mode needs BENCH_TOKEN\n")
      os.exit(2)
    end
    introspect_req = wrk.format(nil, nil, nil, "token=" .. urlencode(token))
  end
end

function request()
  if mode == "introspect" then
    return introspect_req
  end
  local token
  if qhead < qtail then
    token = q[qhead]
    q[qhead] = nil
    qhead = qhead + 1
  else
    starved = starved + 1
    token = "starved-pool-too-small"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. urlencode(token))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 then
    non200 = non200 + 1
    return
  end
  if mode == "refresh" then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      q[qtail] = token
      qtail = qtail + 1
    else
      bad200 = bad200 + 1
    end
  elseif not body:find('"active"%s*:%s*true') then
    bad200 = bad200 + 1
  end
end

function done(summary, latency, requests)
  local errors, nstarved, left = 0, 0, 0
  local merged = {}
  local leftovers = {}
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("non200") or 0) + (thread:get("bad200") or 0)
    nstarved = nstarved + (thread:get("starved") or 0)
    local s = thread:get("statuses")
    if s then
      for code, n in pairs(s) do
        merged[code] = (merged[code] or 0) + n
      end
    end
    if mode == "refresh" then
      local tq, h, t = thread:get("q"), thread:get("qhead"), thread:get("qtail")
      for k = h, t - 1 do
        table.insert(leftovers, tq[k])
      end
    end
  end

  local out = os.getenv("BENCH_TOKENS_OUT")
  if mode == "refresh" and out and out ~= "" then
    -- The next run deals these out by line again, so the split stays even.
    local f = assert(io.open(out, "w"))
    for _, tok in ipairs(leftovers) do
      f:write(tok, "\n")
    end
    f:close()
    left = #leftovers
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
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d socket_errors=%d status_counts=%s starved=%d left=%d\n",
    summary.requests, duration_s, rps,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, socket_errors, status_counts, nstarved, left))
end
