-- wrk script: sends every line of a URL list once (split across threads), then stops;
-- used to fill caches before a "hot" workload. Usage: wrk ... -s warm.lua URL -- LISTFILE NTHREADS
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
end

function init(args)
    paths = {}
    local step = tonumber(args[2]) or 1
    local i = 0
    for line in io.lines(args[1]) do
        if #line > 0 then
            if i % step == tid then paths[#paths + 1] = line end
            i = i + 1
        end
    end
    pos = 1
    answered = 0
end

function request()
    local p = paths[pos] or paths[1]
    pos = pos + 1
    if pos > #paths then pos = 1 end
    return wrk.format("GET", p)
end

function response(status, headers, body)
    answered = answered + 1
    if answered >= #paths then wrk.thread:stop() end
end
