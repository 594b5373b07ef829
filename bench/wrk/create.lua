-- create: POST /tasks with a small new task.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local n = 0
function request()
  n = n + 1
  local body = string.format('{"title":"bench create %d-%d"}', thread_number or 0, n)
  return sending(wrk.format("POST", "/tasks", json_headers(), body))
end
