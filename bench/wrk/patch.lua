-- patch: PATCH /tasks/{id} of a random seeded id, a new title and done flag.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local n = 0
function request()
  n = n + 1
  local done = (n % 2 == 0) and "true" or "false"
  local body = string.format('{"title":"bench patch %d","done":%s}', n, done)
  return sending(wrk.format("PATCH", "/tasks/" .. random_id(), json_headers(), body))
end
