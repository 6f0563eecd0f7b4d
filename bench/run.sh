#!/bin/bash
# The benchmark in one command: prepares the images, builds Tessera, starts Tessera, iipsrv
# (behind nginx, FastCGI) and nginx serving pre-cut static tiles on 127.0.0.1, runs the wrk
# workloads against each, and writes bench/results/latest.{md,json} (quick runs: bench/work/).
#
# Usage: bash bench/run.sh [--quick] [--duration N] [--only tessera|iipsrv|static[,...]]
#                          [--tessera BIN] [--workloads a,b,...] [--no-install] [--out BASE]
set -euo pipefail
if [ -n "${BENCH_TRACE:-}" ]; then PS4='+ $(date +%T.%N | cut -c1-12) '; set -x; fi

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK="$BENCH/work"
IMG="$WORK/images"
RUN="$WORK/run"

QUICK=0
DURATION=8
ONLY="tessera,iipsrv,static"
TESSERA=""
WORKLOADS=""
INSTALL_FLAG=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --tessera) TESSERA=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --no-install) INSTALL_FLAG=--no-install ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$DURATION" in '' | *[!0-9]*) echo "run.sh: --duration takes whole seconds" >&2; exit 2 ;; esac
if [ "$QUICK" = 1 ]; then
    DURATION=1
    CONCS="2"
    [ -n "$WORKLOADS" ] || WORKLOADS="tiles-cold,tiles-hot,info,thumbs,regions,png"
    [ -n "$OUT" ] || OUT="$WORK/quick"
    MAX_SECONDS=${BENCH_MAX_SECONDS:-600}
    COLD_IMAGES=20
else
    CONCS="1 2 16"
    [ -n "$WORKLOADS" ] || WORKLOADS="tiles-cold,tiles-hot,info,thumbs,regions,big,jp2,deflate,png,mixed"
    [ -n "$OUT" ] || OUT="$BENCH/results/latest"
    MAX_SECONDS=${BENCH_MAX_SECONDS:-3600}
    COLD_IMAGES=300
fi
# Every server runs on the same cores, and so does every wrk (taskset); by default all of them.
SERVER_CPUS=${BENCH_SERVER_CPUS:-0-$(( $(nproc) - 1 ))}
WRK_CPUS=${BENCH_WRK_CPUS:-$SERVER_CPUS}
PIN="taskset -c $SERVER_CPUS"

has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }

say() { echo "run.sh: [$(date +%T)] $*" >&2; }

# Everything we start is recorded here and stopped on exit, by pid.
PIDS_TO_STOP=()
cleanup() {
    local p
    for p in "${PIDS_TO_STOP[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null || true
}
trap cleanup EXIT
trap 'say "stopped (signal or the ${MAX_SECONDS} s limit)"; exit 130' INT TERM

# A watchdog bounds the whole run even if some step hangs past its own timeout.
# Its sleep is killed with it, and it holds no output pipe open.
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$MAX_SECONDS" &
    sp=$!
    wait "$sp"
    kill -TERM $$
) > /dev/null 2>&1 &
WATCHDOG=$!

START_TIME=$(date +%s)
if [ "$QUICK" = 1 ]; then
    timeout 1800 sh "$BENCH/prepare.sh" --quick $INSTALL_FLAG
else
    timeout 3600 sh "$BENCH/prepare.sh" $INSTALL_FLAG
fi

if [ -z "$TESSERA" ] && has "$ONLY" tessera; then
    # GCC warns of clobbered and maybe-uninitialized variables only when optimising; a benchmark
    # build should not fail on those.
    say "building Tessera (Release) in build-bench/"
    timeout 600 cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="-Wno-error=clobbered -Wno-error=maybe-uninitialized" >/dev/null
    timeout 1200 cmake --build "$ROOT/build-bench" --target tessera -j"$(nproc)" >/dev/null
    TESSERA="$ROOT/build-bench/tessera"
fi

rm -rf "$RUN"
mkdir -p "$RUN" "$(dirname "$OUT")"
chmod 755 "$RUN"
RUNS="$RUN/runs.jsonl"
: > "$RUNS"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL: until it answers something other than a connection error or 502
    local i code
    for i in $(seq 1 100); do
        code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "$1" || true)
        if [ -n "$code" ] && [ "$code" != 000 ] && [ "$code" != 502 ]; then return 0; fi
        sleep 0.1
    done
    say "no answer from $1"
    return 1
}

stop_pids() {
    local p i
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for i in $(seq 1 50); do
        local alive=0
        for p in "$@"; do
            if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
                alive=1
            fi
        done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
}

hwm_kb() { # sum of VmHWM (peak resident set) over the given pids
    local p sum=0 v
    for p in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# ---- the three servers; each start_* sets BASE_URL, SERVER_PIDS (whose RSS counts), EXTRA_PIDS
NGINX_IIPSRV_PID=""
NGINX_IIPSRV_PORT=""

start_tessera() {
    local log="$RUN/tessera.log"
    : > "$log"
    $PIN "$TESSERA" --root "$IMG" --listen 127.0.0.1:0 --jpeg-quality 85 > "$log" 2>&1 &
    local pid=$!
    PIDS_TO_STOP+=("$pid")
    local port="" i
    for i in $(seq 1 100); do
        port=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || { say "Tessera exited:"; cat "$log" >&2; return 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { say "Tessera did not say its port"; return 1; }
    HOST="http://127.0.0.1:$port"
    BASE_PATH="/iiif/2/"
    SERVER_PIDS=("$pid")
    EXTRA_PIDS=()
    wait_http "$HOST/"
}

start_iipsrv() {
    # nginx stays up across runs; iipsrv and memcached start fresh so every run begins cold.
    if [ -z "$NGINX_IIPSRV_PID" ]; then
        NGINX_IIPSRV_PORT=$(free_port)
        sed -e "s#@PORT@#$NGINX_IIPSRV_PORT#g; s#@RUN@#$RUN#g; s#@SOCK@#$RUN/iipsrv.sock#g" \
            "$BENCH/nginx-iipsrv.conf" > "$RUN/nginx-iipsrv.conf"
        $PIN nginx -c "$RUN/nginx-iipsrv.conf" -p "$RUN" -e "$RUN/nginx-iipsrv.error.log" &
        NGINX_IIPSRV_PID=$!
        PIDS_TO_STOP+=("$NGINX_IIPSRV_PID")
    fi
    local mcport
    mcport=$(free_port)
    $PIN memcached -l 127.0.0.1 -p "$mcport" -U 0 -m 256 -u "$(id -un)" &
    local mcpid=$!
    PIDS_TO_STOP+=("$mcpid")
    rm -f "$RUN/iipsrv.sock" "$RUN/iipsrv.pids"
    # Production settings: 4 processes (2 per core), 256 MB tile cache, memcached for
    # responses, the same JPEG quality as Tessera, big renders allowed up to 5000 px.
    env -i PATH="$PATH" LOGFILE="$RUN/iipsrv.log" VERBOSITY=0 FILESYSTEM_PREFIX="$IMG/" \
        MAX_IMAGE_CACHE_SIZE=256 JPEG_QUALITY=85 MAX_CVT=5000 \
        MEMCACHED_SERVERS="127.0.0.1:$mcport" MEMCACHED_TIMEOUT=86400 \
        timeout 10 $PIN spawn-fcgi -s "$RUN/iipsrv.sock" -M 0666 -F 4 -P "$RUN/iipsrv.pids" \
        -- /usr/lib/iipimage-server/iipsrv.fcgi > /dev/null
    local pids
    mapfile -t pids < "$RUN/iipsrv.pids"
    PIDS_TO_STOP+=("${pids[@]}")
    HOST="http://127.0.0.1:$NGINX_IIPSRV_PORT"
    BASE_PATH="/fcgi-bin/iipsrv.fcgi?IIIF="
    SERVER_PIDS=("${pids[@]}")
    EXTRA_PIDS=("$mcpid")
    wait_http "$HOST${BASE_PATH}no-such-image.tif/info.json"
}

start_static() {
    local port
    port=$(free_port)
    sed -e "s#@PORT@#$port#g; s#@RUN@#$RUN#g; s#@STATIC@#$WORK/static#g" \
        "$BENCH/nginx-static.conf" > "$RUN/nginx-static.conf"
    $PIN nginx -c "$RUN/nginx-static.conf" -p "$RUN" -e "$RUN/nginx-static.error.log" &
    local pid=$!
    PIDS_TO_STOP+=("$pid")
    HOST="http://127.0.0.1:$port"
    BASE_PATH="/static/"
    wait_http "$HOST/static/k10/info.json"
    local kids
    mapfile -t kids < <(pgrep -P "$pid" || true)
    SERVER_PIDS=("$pid" "${kids[@]}")
    EXTRA_PIDS=()
}

stop_server() {
    stop_pids "${SERVER_PIDS[@]}" "${EXTRA_PIDS[@]}"
}

# ---- URL lists: generated from each server's own info.json, as OpenSeadragon would.
URLS="python3 $BENCH/urls.py"
lists_for() {
    local s=$1 d="$RUN/lists-$1"
    mkdir -p "$d"
    "start_$s"
    if [ "$s" = static ]; then
        timeout 10 curl -s -o "$d/info-k10.json" "$HOST/static/k10/info.json"
        $URLS static-tiles --base "$BASE_PATH" --id k10 --info "$d/info-k10.json" \
            --static-dir "$WORK/static/k10" --out "$d/tiles-hot.txt"
        $URLS info --base "$BASE_PATH" --id k10 --out "$d/info.txt"
        stop_server
        return
    fi
    local f
    for f in c0001.tif d0001.tif j0001.jp2; do
        [ -e "$IMG/$f" ] || continue
        timeout 10 curl -s -o "$d/info-$f.json" "$HOST$BASE_PATH$f/info.json" || true
    done
    stop_server
    local grid="$d/info-c0001.tif.json"
    # tiles-hot: exactly the static tiles' requests, on the one TIFF.
    $URLS static-tiles --base "$BASE_PATH" --id k10-jpeg.tif --info "$WORK/static/k10/info.json" \
        --out "$d/tiles-hot.txt"
    $URLS tiles --base "$BASE_PATH" --info "$grid" --id-prefix c --images "$COLD_IMAGES" --out "$d/tiles-cold.txt"
    if has "$WORKLOADS" png; then
        $URLS tiles --base "$BASE_PATH" --info "$grid" --id-prefix c --images "$COLD_IMAGES" \
            --ext png --out "$d/png.txt"
    fi
    $URLS info --base "$BASE_PATH" --id-prefix c --images "$COLD_IMAGES" --out "$d/info.txt"
    $URLS thumbs --base "$BASE_PATH" --id-prefix c --images "$COLD_IMAGES" --out "$d/thumbs.txt"
    $URLS regions --base "$BASE_PATH" --id k10-jpeg.tif --count 4000 --out "$d/regions.txt"
    local big=k10-jpeg.tif
    [ -e "$IMG/k40-jpeg.tif" ] && big=k40-jpeg.tif
    $URLS big --base "$BASE_PATH" --id "$big" --count 200 --out "$d/big.txt"
    if has "$WORKLOADS" mixed; then
        $URLS mixed --base "$BASE_PATH" --info "$grid" --id-prefix c --images "$COLD_IMAGES" --big-id "$big" \
            --count 40000 --out "$d/mixed.txt"
    fi
    if has "$WORKLOADS" deflate && [ -e "$IMG/d0001.tif" ]; then
        $URLS tiles --base "$BASE_PATH" --info "$d/info-d0001.tif.json" --info-fallback "$grid" \
            --id-prefix d --images $(( COLD_IMAGES < 40 ? COLD_IMAGES : 40 )) --out "$d/deflate.txt"
    fi
    if has "$WORKLOADS" jp2 && [ -e "$IMG/j0001.jp2" ]; then
        $URLS tiles --base "$BASE_PATH" --info "$d/info-j0001.jp2.json" --info-fallback "$grid" \
            --id-prefix j --id-ext jp2 --images "$COLD_IMAGES" --out "$d/jp2.txt"
    fi
}

# workload -> which servers take part and at which concurrencies
servers_for() {
    case "$1" in
    tiles-hot | info) echo "tessera iipsrv static" ;;
    png) echo "tessera" ;; # iipsrv 1.1 serves IIIF only as JPEG
    *) echo "tessera iipsrv" ;;
    esac
}
concs_for() {
    if [ "$QUICK" = 1 ]; then echo "$CONCS"; return; fi
    case "$1" in
    deflate | mixed) echo "16" ;;
    *) echo "$CONCS" ;;
    esac
}

run_one() { # SERVER WORKLOAD CONC
    local s=$1 w=$2 c=$3 list="$RUN/lists-$1/$2.txt"
    [ -s "$list" ] || { say "no URL list for $s/$w; skipped"; return 0; }
    local t=2
    [ "$c" -lt 2 ] && t=1
    "start_$s"
    if [ "$w" = tiles-hot ]; then
        # One pass over the list fills the caches (curl reuses its connections).
        sed -e "s#.*#url = \"$HOST&\"\noutput = \"/dev/null\"#" "$list" > "$RUN/warm.curl"
        timeout 300 curl -s --no-progress-meter -Z --parallel-max "$c" -K "$RUN/warm.curl" \
            > /dev/null 2>&1 || true
    fi
    local out="$RUN/wrk-$s-$w-c$c.txt"
    timeout $((DURATION + 60)) taskset -c "$WRK_CPUS" wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 30s \
        -s "$BENCH/workloads/cycle.lua" "$HOST" -- "$list" "$t" > "$out" 2>&1 || true
    # wrk counts statuses only: a sample of the list is fetched again and every answer must be
    # 200 with the pixel size its URL asks for (after the run, so it warms nothing).
    local check
    check=$(timeout 300 python3 "$BENCH/check.py" "$HOST" "$list" --sample 12 2>/dev/null) ||
        check='{"checked":0,"failures":1,"first":"the checker did not finish"}'
    local rss extra
    rss=$(hwm_kb "${SERVER_PIDS[@]}")
    extra=$(hwm_kb "${EXTRA_PIDS[@]}")
    stop_server
    local line
    line=$(sed -n 's/^BENCHJSON //p' "$out" | tail -1)
    [ -n "$line" ] || { say "wrk gave no result for $s/$w/c$c:"; cat "$out" >&2; line='{}'; }
    printf '{"server":"%s","workload":"%s","conc":%d,"threads":%d,"rss_kb":%d,"extra_rss_kb":%d,"check":%s,"result":%s}\n' \
        "$s" "$w" "$c" "$t" "$rss" "$extra" "$check" "$line" >> "$RUNS"
    python3 "$BENCH/report.py" --line "$RUNS" || true
}

SERVERS=""
for s in tessera iipsrv static; do has "$ONLY" "$s" && SERVERS="$SERVERS $s"; done
for s in $SERVERS; do lists_for "$s"; done
for w in ${WORKLOADS//,/ }; do
    for c in $(concs_for "$w"); do
        for s in $(servers_for "$w"); do
            has "$ONLY" "$s" || continue
            run_one "$s" "$w" "$c"
        done
    done
done

ELAPSED=$(( $(date +%s) - START_TIME ))
cat > "$RUN/meta.json" <<META
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "tessera_commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "iipsrv": "$(dpkg-query -W -f='${Version}' iipimage-server 2>/dev/null || echo none)",
 "nginx": "$(dpkg-query -W -f='${Version}' nginx nginx-light 2>/dev/null | head -1 || echo none)",
 "wrk": "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo none)",
 "vips": "$(vips --version 2>/dev/null || echo none)",
 "cpu": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
 "cores": $(nproc),
 "source": "$(cat "$WORK/source.txt")",
 "duration_s": $DURATION, "quick": $QUICK, "elapsed_s": $ELAPSED}
META
python3 "$BENCH/report.py" "$RUNS" --meta "$RUN/meta.json" --md "$OUT.md" --json "$OUT.json"
say "done in ${ELAPSED} s; results in $OUT.md"
# A run that got no answers at all means the benchmark itself is broken: fail (CI smoke run).
if grep -q '"result":{}' "$RUNS" || grep -q '"requests":0,' "$RUNS"; then
    say "some workloads got no answers (see $RUN/wrk-*.txt)"
    exit 1
fi
