-- PUT CarePlans with If-Match: each thread owns its share of the contracts in
-- $PKGW_LOAD_BODIES (lines "id<TAB>CarePlan JSON"), sends each with the version it last
-- saw, and takes the new version from the answer's Location (Prefer: return=minimal).
-- A contract is not sent again until its answer is back, so no request is stale. Each
-- run takes its own slice of the file ($PKGW_LOAD_SLICE of $PKGW_LOAD_SLICES), so no run
-- starts from versions an earlier run moved on. Each PUT carries a note of its own, so
-- it changes the contract (a PUT that changes nothing stores nothing and would measure
-- no write).
local ids, bodies, etags, index, ready = {}, {}, {}, {}, {}
-- The queue of contracts ready to send is ready[head .. tail] (Lua's # is not reliable
-- once the front of a table is nil).
local head, tail = 1, 0

function setup(thread)
  counter = (counter or 0) + 1
  thread:set("tid", counter)
  thread:set("threads", tonumber(os.getenv("PKGW_LOAD_THREADS") or "2"))
end

function init(args)
  local lines = {}
  for line in io.lines(os.getenv("PKGW_LOAD_BODIES")) do
    lines[#lines + 1] = line
  end
  local slices = tonumber(os.getenv("PKGW_LOAD_SLICES") or "1")
  local slice = tonumber(os.getenv("PKGW_LOAD_SLICE") or "0")
  local per = math.floor(#lines / slices)
  for n = slice * per + 1, (slice + 1) * per do
    local line = lines[n]
    if n % threads == tid - 1 then
      local id, body = line:match("^([^\t]+)\t(.*)$")
      ids[#ids + 1] = id
      bodies[#bodies + 1] = body
      etags[#etags + 1] = 'W/"1"'
      index[id] = #ids
      tail = tail + 1
      ready[tail] = #ids
    end
  end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("PKGW_LOAD_TOKEN")
  wrk.headers["Content-Type"] = "application/fhir+json"
  wrk.headers["Prefer"] = "return=minimal"
end

function request()
  local k = ready[head]
  if head > tail or k == nil then
    -- Every contract of this thread is in flight: more connections than contracts.
    k = 1
  else
    ready[head] = nil
    head = head + 1
  end
  wrk.headers["If-Match"] = etags[k]
  sent = (sent or 0) + 1
  local body = bodies[k]:gsub("^{", '{"note":[{"text":"last ' .. tid .. "-" .. sent .. '"}],', 1)
  return wrk.format("PUT", "/fhir/CarePlan/" .. ids[k], nil, body)
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  local id, version = location:match("/CarePlan/([^/]+)/_history/(%d+)")
  if id and index[id] then
    local k = index[id]
    etags[k] = 'W/"' .. version .. '"'
    tail = tail + 1
    ready[tail] = k
  end
end
