-- One fixed GET path (path=...): list first page, list deep page (offset or
-- cursor), filtered search. run.py builds the path for each scenario.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local req
function scenario_init()
  req = wrk.format("GET", opt.path, base_headers())
end
function request()
  return sending(req)
end
