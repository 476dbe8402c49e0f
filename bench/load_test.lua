-- wrk script for make load-test: POST digit PNGs (the files listed in $HLR_LOAD_PNGS, one per line)
-- to /v1/recognize, cycling through them; each of wrk's threads starts at a different file.
local bodies = {}
local i = 0

local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  for line in io.lines(os.getenv("HLR_LOAD_PNGS")) do
    bodies[#bodies + 1] = read(line)
  end
  i = math.random(#bodies)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "image/png"
end

function request()
  i = i % #bodies + 1
  return wrk.format(nil, wrk.path, nil, bodies[i])
end
