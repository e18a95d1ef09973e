-- GET one path after another from the file $PKGW_LOAD_PATHS (one per line), starting
-- at a random one in each thread (at the first with $PKGW_LOAD_FROM_START set), with
-- the bearer token $PKGW_LOAD_TOKEN.
local paths = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("PKGW_LOAD_PATHS")) do
    paths[#paths + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  i = math.random(#paths)
  -- Counting instructions (scripts/profile.sh --callgrind): every run the same requests.
  if os.getenv("PKGW_LOAD_FROM_START") then
    i = 0
  end
  local token = os.getenv("PKGW_LOAD_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
