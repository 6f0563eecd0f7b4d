-- wrk script: cycles through a URL list file; thread i of T sends lines i, i+T, i+2T, ...
-- so the threads walk one list in order together, and prints one JSON line of results.
-- Usage: wrk ... -s cycle.lua URL -- LISTFILE NTHREADS
-- cycle-status.lua adds a count of 503 answers (and other non-200s) on top of this one.
local next_id = 0
threads = {}

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    threads[#threads + 1] = thread
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        if #line > 0 then paths[#paths + 1] = line end
    end
    if #paths == 0 then error("empty URL list " .. args[1]) end
    step = tonumber(args[2]) or 1
    pos = (tid % #paths) + 1
end

function request()
    local p = paths[pos]
    pos = pos + step
    if pos > #paths then pos = ((pos - 1) % #paths) + 1 end
    return wrk.format("GET", p)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
        '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
        '"p50_us":%d,"p99_us":%d,"max_us":%d%s}\n',
        summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read,
        e.write, e.timeout, latency:percentile(50), latency:percentile(99), latency.max,
        extra_fields and extra_fields() or ""))
end
