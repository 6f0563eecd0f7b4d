#!/bin/sh
# The --passthrough trade-off, side by side in one run: for each pyramid given, every level-0
# tile once per rule (sequential curl, one connection: the bytes per tile and a single client's
# rate), then wrk for a few seconds over the same list (the server's rate with two clients per
# core), with the response cache off so every request does its work. One Markdown row per
# pyramid and rule.
# Usage: passthrough_tradeoff.sh TESSERA_BIN PYRAMID.tif [PYRAMID.tif ...]
#   RULES="always quality" SECONDS_WRK=10 JPEG_QUALITY=85 (defaults) may be set.
set -eu
. "$(dirname "$0")/passthrough_server.sh"
bin=$1
shift
rules=${RULES:-always quality}
secs=${SECONDS_WRK:-10}
q=${JPEG_QUALITY:-85}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=
echo "| pyramid | rule | tiles | mean bytes/tile | curl req/s (1 conn) | wrk req/s (-t2 -c4) | wrk p99 ms |"
echo "|---|---|---|---|---|---|---|"
for tif in "$@"; do
    name=$(basename "$tif")
    root=$(cd "$(dirname "$tif")" && pwd) # the image root (a link out of it would be refused)
    w=$(vipsheader -f width "$tif")
    h=$(vipsheader -f height "$tif")
    # Level 0, the tile grid libvips wrote (256): region = the tile, size = its width.
    awk -v w="$w" -v h="$h" -v id="$name" 'BEGIN {
        for (y = 0; y < h; y += 256) for (x = 0; x < w; x += 256) {
            tw = w - x < 256 ? w - x : 256; th = h - y < 256 ? h - y : 256
            printf "/iiif/3/%s/%d,%d,%d,%d/%d,/0/default.jpg\n", id, x, y, tw, th, tw }
    }' >"$work/paths"
    n=$(wc -l <"$work/paths")
    for rule in $rules; do
        start_server "$rule"
        sed "s|^|http://127.0.0.1:$port|" "$work/paths" >"$work/urls"
        # One curl process, one kept-alive connection, every tile once.
        start=$(date +%s.%N)
        sed 's/^\(.*\)$/url = \1\noutput = \/dev\/null/' "$work/urls" |
            curl -s -K - -w '%{http_code} %{size_download}\n' >"$work/sizes"
        end=$(date +%s.%N)
        bad=$(awk '$1 != 200' "$work/sizes" | wc -l)
        [ "$bad" -eq 0 ] || echo "warning: $bad non-200 answers for $name under $rule" >&2
        mean=$(awk '{ s += $2 } END { printf "%.0f", s / NR }' "$work/sizes")
        rate=$(echo "$start $end $n" | awk '{ printf "%.0f", $3 / ($2 - $1) }')
        out=$(wrk -t2 -c4 -d"${secs}s" -s "$here/workloads/cycle.lua" "http://127.0.0.1:$port" \
            -- "$work/paths" 2 | grep BENCHJSON)
        wrk_rate=$(echo "$out" | sed 's/.*"requests":\([0-9]*\),"duration_us":\([0-9]*\).*/\1 \2/' |
            awk '{ printf "%.0f", $1 / ($2 / 1e6) }')
        p99=$(echo "$out" | sed 's/.*"p99_us":\([0-9]*\).*/\1/' | awk '{ printf "%.1f", $1 / 1000 }')
        echo "| $name | $rule | $n | $mean | $rate | $wrk_rate | $p99 |"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=
    done
done
