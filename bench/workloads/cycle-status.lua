-- wrk script: cycle.lua, and also counts 503 answers (a server shedding load) apart from other
-- statuses >= 400. Defining response() makes wrk hand every body to Lua, which costs wrk time,
-- so only the slow workloads (big renders, mixed) use this script.
-- Usage: wrk ... -s cycle-status.lua URL -- LISTFILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "cycle.lua")

n503 = 0
nother = 0
okbytes = 0 -- body bytes of the answers that were not errors (KB per answer without the 503s)

function response(status, headers, body)
    if status < 400 then
        okbytes = okbytes + #body
    elseif status == 503 then
        n503 = n503 + 1
    elseif status >= 400 then
        nother = nother + 1
    end
end

function extra_fields()
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + (t:get("n503") or 0)
        b = b + (t:get("nother") or 0)
        c = c + (t:get("okbytes") or 0)
    end
    return string.format(',"status_503":%d,"status_other":%d,"ok_body_bytes":%d', a, b, c)
end
