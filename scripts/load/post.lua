-- POST transaction Bundles to /fhir, one after another from $PKGW_LOAD_BODIES (lines
-- "id<TAB>Bundle JSON"), with the bearer token $PKGW_LOAD_TOKEN. Each carries a note of
-- its own on the CarePlan, so it changes the contract (a transaction that changes
-- nothing stores nothing and would measure no write).
local bodies = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("PKGW_LOAD_BODIES")) do
    local _, body = line:match("^([^\t]+)\t(.*)$")
    bodies[#bodies + 1] = body
  end
  i = math.random(#bodies)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("PKGW_LOAD_TOKEN")
  wrk.headers["Content-Type"] = "application/fhir+json"
  wrk.headers["Prefer"] = "return=minimal"
end

function request()
  i = i % #bodies + 1
  sent = (sent or 0) + 1
  local body = bodies[i]:gsub('"resourceType":"CarePlan",', '"resourceType":"CarePlan","note":[{"text":"last ' .. sent .. '"}],', 1)
  return wrk.format("POST", "/fhir", nil, body)
end
