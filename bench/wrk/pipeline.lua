-- HTTP/1.1 pipelining, the TechEmpower way: every write carries DEPTH requests back to back
-- and wrk waits for all DEPTH responses before sending the next batch.
-- Usage: wrk -s pipeline.lua URL -- DEPTH
-- wrk records one latency sample per batch, so its latency figures do not mean per-request
-- latency here (see report.lua).

local requests

init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    -- wrk.format uses the URL's path and any -H headers given on the command line.
    batch[i] = wrk.format()
  end
  requests = table.concat(batch)
end

request = function()
  return requests
end

-- report.lua sits next to this file; wrk names the loaded chunk "@<path given to -s>".
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'
dofile(here .. 'report.lua')
