-- wrk script of bench/bench_load.py: anonymous readers picking a random page of the atlas.
--
-- LOAD_PATHS names a file of "weight<TAB>category<TAB>path" lines; each request picks a
-- path with probability proportional to its weight. Every request carries an X-Request-ID
-- naming the path's line, which the site echoes, so an unexpected status can be traced to
-- its path. LOAD_OUT names the file done() writes: a JSON object with the counts of
-- status classes, the unexpected statuses per path, wrk's own error counts and a grid of
-- latency percentiles (fine enough to merge the grids of several wrk processes).

local paths, cumulative, total = {}, {}, 0
local sent = 0
-- Read by done() through thread:get(), so globals of each thread's state.
counts, odd = {}, {}
-- Main state: the threads, numbered by setup() into each thread's global thread_number.
local threads = {}

local function load_paths()
  for line in io.lines(os.getenv("LOAD_PATHS")) do
    local weight, path = line:match("^([%d.]+)\t[^\t]+\t(.+)$")
    if weight then
      total = total + tonumber(weight)
      paths[#paths + 1] = path
      cumulative[#cumulative + 1] = total
    end
  end
end

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

function init(args)
  load_paths()
  counts = { ["2xx"] = 0, ["3xx"] = 0, ["4xx"] = 0, ["5xx"] = 0, other = 0 }
  odd = {}
  local seed = tonumber(os.getenv("LOAD_SEED") or "1")
  local number = thread_number or 0
  math.randomseed(seed * 1000 + number)
  tag = string.format("load%s-%d", os.getenv("LOAD_TAG") or "", number)
end

local function pick()
  local x = math.random() * total
  local low, high = 1, #cumulative
  while low < high do
    local middle = math.floor((low + high) / 2)
    if cumulative[middle] < x then
      low = middle + 1
    else
      high = middle
    end
  end
  return low
end

function request()
  local index = pick()
  sent = sent + 1
  return wrk.format("GET", paths[index], {
    ["Accept-Encoding"] = "gzip",
    ["User-Agent"] = "cityDiplomacy load test",
    ["X-Request-ID"] = string.format("%s-%d-%d", tag, index, sent),
  })
end

function response(status, headers, body)
  local class
  if status >= 200 and status < 300 then
    class = "2xx"
  elseif status >= 300 and status < 400 then
    class = "3xx"
  elseif status >= 400 and status < 500 then
    class = "4xx"
  elseif status >= 500 and status < 600 then
    class = "5xx"
  else
    class = "other"
  end
  counts[class] = counts[class] + 1
  if status ~= 200 then
    local id = headers["X-Request-ID"] or ""
    local index = tonumber(id:match("^[^-]+%-%d+%-(%d+)%-"))
    local path = index and paths[index] or "(unknown path)"
    local key = status .. " " .. path
    odd[key] = (odd[key] or 0) + 1
  end
end

local function quote(text)
  return '"' .. text:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function done(summary, latency, requests)
  local merged, unexpected = { ["2xx"] = 0, ["3xx"] = 0, ["4xx"] = 0, ["5xx"] = 0, other = 0 }, {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for class, n in pairs(c) do
      merged[class] = merged[class] + n
    end
    for key, n in pairs(thread:get("odd")) do
      unexpected[key] = (unexpected[key] or 0) + n
    end
  end
  local out = {}
  local function add(text)
    out[#out + 1] = text
  end
  add("{")
  add(string.format('"requests": %d, "duration_us": %d, "bytes": %d,',
    summary.requests, summary.duration, summary.bytes))
  add(string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d},',
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  local parts = {}
  for class, n in pairs(merged) do
    parts[#parts + 1] = string.format("%s: %d", quote(class), n)
  end
  add('"classes": {' .. table.concat(parts, ", ") .. "},")
  parts = {}
  for key, n in pairs(unexpected) do
    parts[#parts + 1] = string.format("%s: %d", quote(key), n)
  end
  add('"unexpected": {' .. table.concat(parts, ", ") .. "},")
  -- Latency in microseconds at percentiles 0.1 .. 99.0 by 0.1, then 99.01 .. 100 by 0.01.
  parts = {}
  for i = 1, 990 do
    local p = i / 10
    parts[#parts + 1] = string.format("[%.2f, %d]", p, latency:percentile(p))
  end
  for i = 9901, 9999 do
    local p = i / 100
    parts[#parts + 1] = string.format("[%.2f, %d]", p, latency:percentile(p))
  end
  -- percentile(100) overshoots the histogram and gives 0: the maximum instead.
  parts[#parts + 1] = string.format("[100.00, %d]", latency.max)
  add(string.format('"latency": {"min": %d, "max": %d, "mean": %.1f, "grid": [%s]}',
    latency.min, latency.max, latency.mean,
    table.concat(parts, ", ")))
  add("}")
  local file = assert(io.open(os.getenv("LOAD_OUT"), "w"))
  file:write(table.concat(out, "\n"), "\n")
  file:close()
end
