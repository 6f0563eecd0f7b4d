#!/bin/bash
# Tiles from S3 and from HTTP against tiles from disk: one Tessera reads the same 10,000 px
# pyramidal TIFFs from its root, from nginx (--source web=http://...) and from s3rver
# (--source s3=s3://...), all on 127.0.0.1, and wrk walks one viewer's tile list (OpenSeadragon's
# order) over each. Every source gets a fresh server: "cold" is its first walk (versions, blocks
# and readers fetched as the tiles ask), "warm" the next one (the block cache and the readers
# kept). The response cache is off, so every tile is read from its source. Writes
# bench/work/remote/remote.{md,json} (quick runs: remote-quick.*).
#
# Usage: bash bench/remote.sh [--quick] [--duration N] [--conc N] [--copies N] [--tessera BIN]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK="$BENCH/work/remote"
QUICK=0 DURATION=8 CONC=16 COPIES=4 TESSERA=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --conc) CONC=$2; shift ;;
    --copies) COPIES=$2; shift ;;
    --tessera) TESSERA=$2; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "remote.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then DURATION=2 CONC=2 COPIES=2; fi
OUT="$WORK/remote$([ "$QUICK" = 1 ] && echo -quick)"
say() { echo "remote.sh: [$(date +%T)] $*" >&2; }

for tool in wrk nginx vips python3 curl; do
    command -v "$tool" >/dev/null || { say "needs $tool"; exit 2; }
done
S3RVER=""
for d in "${TESSERA_NODE_MODULES:-}" "$ROOT/web/node_modules" "$ROOT"/build*/web/node_modules; do
    if [ -n "$d" ] && [ -x "$d/.bin/s3rver" ]; then S3RVER="$d/.bin/s3rver"; break; fi
done
[ -n "$S3RVER" ] || { say "needs s3rver (npm ci in web/, or a test build)"; exit 2; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole run is bounded, whatever hangs.
( sleep 1800; kill -TERM $$ ) >/dev/null 2>&1 &
PIDS+=("$!")

# Tessera always on the same core, wrk and the sources (nginx, s3rver) on the other(s), so the
# three rows differ only in where the bytes come from. One core: all share it.
NPROC=$(nproc)
if [ "$NPROC" -ge 2 ]; then SERVER_CPUS=1 OTHER_CPUS="0,2-$((NPROC - 1))"; else SERVER_CPUS=0 OTHER_CPUS=0; fi
[ "$NPROC" -eq 2 ] && OTHER_CPUS=0

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() {
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    say "no answer from $1"
    return 1
}

if [ -z "$TESSERA" ]; then
    say "building Tessera (Release) in build-bench/"
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="-Wno-error=clobbered -Wno-error=maybe-uninitialized" >/dev/null
    cmake --build "$ROOT/build-bench" --target tessera -j"$(nproc)" >/dev/null
    TESSERA="$ROOT/build-bench/tessera"
fi

mkdir -p "$WORK/images" "$WORK/run"
RUN="$WORK/run"
if [ ! -s "$WORK/images/c0001.tif" ]; then
    say "writing a 10,000 px pyramidal TIFF (256 px JPEG tiles)"
    vips resize "$ROOT/tests/data/retina-1411x1411.jpg" "$RUN/big.v" 7.0871 >/dev/null
    vips tiffsave "$RUN/big.v" "$WORK/images/c0001.tif" --tile --tile-width 256 \
        --tile-height 256 --pyramid --compression jpeg --Q 90 >/dev/null
    rm -f "$RUN/big.v"
fi
for n in $(seq 2 "$COPIES"); do
    f=$(printf '%s/images/c%04d.tif' "$WORK" "$n")
    [ -s "$f" ] || cp "$WORK/images/c0001.tif" "$f"
done
W=$(vipsheader -f width "$WORK/images/c0001.tif")
H=$(vipsheader -f height "$WORK/images/c0001.tif")

# The HTTP source.
NGINX_PORT=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root;"
mkdir -p "$RUN/nginx-tmp"
cat >"$RUN/nginx.conf" <<CONF
$user
daemon off;
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $RUN/nginx-tmp/body;
    proxy_temp_path $RUN/nginx-tmp/proxy;
    fastcgi_temp_path $RUN/nginx-tmp/f; uwsgi_temp_path $RUN/nginx-tmp/u; scgi_temp_path $RUN/nginx-tmp/s;
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/images; }
}
CONF
taskset -c "$OTHER_CPUS" nginx -c "$RUN/nginx.conf" -p "$RUN" -e "$RUN/nginx-error.log" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$NGINX_PORT/c0001.tif"

# The S3 source (s3rver checks access keys, not signatures; the signing cost is ours either way).
S3_PORT=$(free_port)
rm -rf "$RUN/s3"
mkdir -p "$RUN/s3"
taskset -c "$OTHER_CPUS" "$S3RVER" -d "$RUN/s3" -a 127.0.0.1 -p "$S3_PORT" -s --configure-bucket masters >"$RUN/s3rver.log" 2>&1 &
PIDS+=("$!")
S3="http://127.0.0.1:$S3_PORT"
for i in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "$S3/" && break; sleep 0.1; done
for n in $(seq 1 "$COPIES"); do
    f=$(printf 'c%04d.tif' "$n")
    curl -s -o /dev/null --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$WORK/images/$f" "$S3/masters/$f"
done

start_tessera() {
    local port
    port=$(free_port)
    taskset -c "$SERVER_CPUS" "$TESSERA" --root "$WORK/images" --listen "127.0.0.1:$port" --response-cache 0 \
        --source "web=http://127.0.0.1:$NGINX_PORT/" --source "s3=s3://masters/" \
        --s3-endpoint "$S3" --s3-access-key S3RVER --s3-secret-key S3RVER \
        >"$RUN/tessera.log" 2>&1 &
    TS_PID=$!
    PIDS+=("$TS_PID")
    HOST="http://127.0.0.1:$port"
    wait_http "$HOST/iiif/2/c0001.tif/info.json"
}

: >"$OUT.jsonl"
for src in disk web s3; do
    prefix=""
    [ "$src" = disk ] || prefix="$src%2F"
    python3 "$BENCH/urls.py" tiles --base "/iiif/2/" --grid 256 --width "$W" --height "$H" \
        --id-prefix "${prefix}c" --images "$COPIES" --out "$RUN/tiles-$src.txt"
    start_tessera
    for mode in cold warm; do
        t=$(( CONC < 2 ? 1 : 2 ))
        line=$(timeout $((DURATION + 60)) taskset -c "$OTHER_CPUS" wrk -t "$t" -c "$CONC" \
            -d "${DURATION}s" --timeout 30s -s "$BENCH/workloads/cycle.lua" "$HOST" -- \
            "$RUN/tiles-$src.txt" "$t" | sed -n 's/^BENCHJSON //p')
        # wrk counts statuses only: a sample is fetched again, each answer's status, type and
        # pixel size checked (check.py, as run.sh does).
        check=$(timeout 300 python3 "$BENCH/check.py" "$HOST" "$RUN/tiles-$src.txt" --sample 12 \
            2>/dev/null) || check='{"checked":0,"failures":1,"first":"the checker did not finish"}'
        say "$src $mode: $line $check"
        echo "{\"source\":\"$src\",\"mode\":\"$mode\",\"conc\":$CONC,\"check\":$check,\"result\":${line:-{\}}}" >>"$OUT.jsonl"
    done
    kill "$TS_PID" 2>/dev/null || true
    wait "$TS_PID" 2>/dev/null || true
done

python3 - "$OUT.jsonl" "$OUT" "$DURATION" "$(wc -l <"$RUN/tiles-disk.txt")" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump(rows, open(sys.argv[2] + ".json", "w"), indent=1)
disk = {r["mode"]: r["result"] for r in rows if r["source"] == "disk"}
out = ["Tiles of 10,000 px pyramidal TIFFs, %s s per run, %s distinct tile URLs, response cache off"
       % (sys.argv[3], sys.argv[4]), "",
       "| source | run | req/s | vs disk | p50 ms | p99 ms | errors | KB/response | checked (failed) |",
       "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    x, c = r["result"], r.get("check", {})
    checked = "%d (%d)" % (c.get("checked", 0), c.get("failures", 1))
    if not x.get("requests") or c.get("failures", 1):
        out.append("| %s | %s | n/a | | | | | | %s |" % (r["source"], r["mode"], checked))
        continue
    rate = x["requests"] / (x["duration_us"] / 1e6)
    d = disk.get(r["mode"], {})
    base = d["requests"] / (d["duration_us"] / 1e6) if d.get("requests") else 0
    errs = sum(x[k] for k in ("status_errors", "connect_errors", "read_errors", "timeouts"))
    # A cold walk longer than the list comes round to tiles it has read: it says so.
    mode = r["mode"]
    if mode == "cold" and x["requests"] > int(sys.argv[4]):
        mode += " (wrapped x%.1f)" % (x["requests"] / int(sys.argv[4]))
    out.append("| %s | %s | %.0f | %s | %.2f | %.2f | %d | %.1f | %s |" % (
        r["source"], mode, rate, "%.2f" % (rate / base) if base else "", x["p50_us"] / 1e3,
        x["p99_us"] / 1e3, errs, x["bytes"] / x["requests"] / 1024, checked))
open(sys.argv[2] + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
