-- get-one: GET /tasks/{id} for a random seeded id.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

function request()
  return sending(wrk.format("GET", "/tasks/" .. random_id(), base_headers()))
end
