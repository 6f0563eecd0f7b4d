-- wrk request mix for tests/soak/soak.sh: viewer tiles, thumbnails, big renders, corrupt files,
-- hostile URLs and huge requests (or, with SOAK_MIX=tiles, viewer tiles alone); counts answers
-- by status in every thread.
local big_w, big_h = 8000, 8000 -- overwritten from the environment below
local function env_number(name, default)
  local v = tonumber(os.getenv(name) or "")
  return v or default
end
big_w = env_number("SOAK_BIG_W", big_w)
big_h = env_number("SOAK_BIG_H", big_h)

local huge_segment = string.rep("a", 100 * 1024)
local huge_header = { ["X-Filler"] = string.rep("b", 100 * 1024) }

local corrupt = { "cut-big.tif", "corrupt.jpg", "fake.tif", "empty.png", "half-grid.tif",
  "fail_minimal_IFD_with_endless_loop.tif", "fail_minimal_tag_with_count_2M.tif",
  "fail_minimal_offsets_are_zero.tiff", "fail_minimal_IFD_points_outside_filesize.tif" }

local hostile = {
  "/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json",
  "/iiif/3/%2Fetc%2Fpasswd/full/max/0/default.jpg",
  "/iiif/3/grid.tif/99999999999,0,10,10/max/0/default.jpg",
  "/iiif/3/grid.tif/full/^99999999999,/0/default.jpg",
  "/iiif/3/grid%00.tif/info.json",
  "/iiif/3/gr%zzid.tif/info.json",
  "/iiif/3/grid.tif/full/max/0/default.exe",
  "/iiif/3/grid.tif/pct:-1,0,10,10/max/0/default.jpg",
  "/iiif/3/grid.tif/full/max/7/default.jpg",
  "/../../etc/passwd",
}

-- A tile as OpenSeadragon asks for it: level scale s, tile column/row of 256*s full pixels.
local function viewer_tile()
  local s = 2 ^ math.random(0, 5)
  local span = 256 * s
  local cols = math.ceil(big_w / span)
  local rows = math.ceil(big_h / span)
  local x = (math.random(1, cols) - 1) * span
  local y = (math.random(1, rows) - 1) * span
  local w = math.min(span, big_w - x)
  local h = math.min(span, big_h - y)
  local ow = math.ceil(w / s)
  return string.format("/iiif/3/big.tif/%d,%d,%d,%d/%d,/0/default.jpg", x, y, w, h, ow)
end

-- SOAK_MIX=tiles asks only viewer tiles (the figure to compare the mix against).
local tiles_only = os.getenv("SOAK_MIX") == "tiles"

local function pick()
  if tiles_only then
    return wrk.format("GET", viewer_tile())
  end
  local r = math.random(1, 100)
  if r <= 70 then
    return wrk.format("GET", viewer_tile())
  elseif r <= 80 then
    local id = (math.random(2) == 1) and "big.tif" or "grid.tif"
    local sizes = { "!200,200", "150,", ",120", "!400,400" }
    return wrk.format("GET", "/iiif/3/" .. id .. "/full/" .. sizes[math.random(#sizes)] ..
      "/0/default." .. ((math.random(2) == 1) and "jpg" or "webp"))
  elseif r <= 83 then
    local renders = { "/iiif/3/big.tif/full/2500,/0/default.jpg",
      "/iiif/3/grid.tif/full/^3000,/0/default.png",
      "/iiif/3/big.tif/1000,1000,4000,4000/2000,/90/default.png" }
    return wrk.format("GET", renders[math.random(#renders)])
  elseif r <= 90 then
    local tails = { "info.json", "full/200,/0/default.jpg", "0,0,256,256/256,/0/default.jpg" }
    return wrk.format("GET", "/iiif/3/" .. corrupt[math.random(#corrupt)] .. "/" ..
      tails[math.random(#tails)])
  elseif r <= 97 then
    return wrk.format("GET", hostile[math.random(#hostile)])
  elseif r <= 98 then
    return wrk.format("GET", "/iiif/3/" .. huge_segment .. "/info.json")
  elseif r <= 99 then
    return wrk.format("GET", "/iiif/3/grid.tif/info.json", huge_header)
  else
    return wrk.format("GET", "/iiif/3/big.tif/info.json")
  end
end

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + id * 7919)
  statuses = {}
end

request = pick

function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    for k, v in pairs(st or {}) do
      all[k] = (all[k] or 0) + v
    end
  end
  local e = summary.errors
  io.write(string.format("SOAK requests %d\n", summary.requests))
  io.write(string.format("SOAK errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("SOAK latency p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  for k, v in pairs(all) do
    io.write(string.format("SOAK status %s %d\n", k, v))
  end
end
