-- Shared by every scenario script: arguments, headers, status counts, and a
-- done() that prints one machine-readable line for bench/run.py.
--
-- Arguments come after wrk's `--` as key=value words:
--   token=SECRET   send Authorization: Bearer SECRET
--   lo=N hi=N      the range of seeded ids (get_one, patch)
--   path=/x?y      the request path (list_first, list_deep, list_cursor, search)
-- run.py passes what each scenario needs.

opt = {}
statuses = {}
sent = 0
local threads = {}
local counter = 0

function parse_args(args)
  for _, word in ipairs(args) do
    local key, value = word:match("^([%w_]+)=(.*)$")
    if key then opt[key] = value end
  end
end

function base_headers()
  local headers = {}
  if opt.token and opt.token ~= "" then
    headers["Authorization"] = "Bearer " .. opt.token
  end
  return headers
end

function json_headers()
  local headers = base_headers()
  headers["Content-Type"] = "application/json"
  return headers
end

function random_id()
  return math.random(tonumber(opt.lo), tonumber(opt.hi))
end

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

function init(args)
  parse_args(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
  if scenario_init then scenario_init() end
end

-- Every scenario's request() calls this, so that done() can tell how many
-- requests were still unanswered when the run ended (wrk counts only answers).
function sending(req)
  sent = sent + 1
  return req
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function total_sent()
  local n = 0
  for _, thread in ipairs(threads) do
    n = n + (thread:get("sent") or 0)
  end
  return n
end

local function json_statuses()
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    if counts then
      for status, n in pairs(counts) do
        merged[status] = (merged[status] or 0) + n
      end
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"sent":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"statuses":%s}\n',
    summary.requests, total_sent(), summary.duration, summary.bytes,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status,
    json_statuses()))
end
