#!/bin/bash
# The benchmark in one command: prepares the images, builds Tessera, starts Tessera, iipsrv 1.1
# (Debian's, behind nginx, FastCGI), iipsrv 1.3 (built from source, when prepare.sh could) and
# nginx serving pre-cut static tiles on 127.0.0.1, runs the wrk workloads against each at 1 and
# 2 cores, and writes bench/results/latest.{md,json} (quick runs: bench/work/quick.{md,json}).
#
# Usage: bash bench/run.sh [--quick] [--duration N] [--cores "1 2"] [--concs "1 16"]
#                          [--only tessera,iipsrv,iipsrv13,static] [--tessera BIN]
#                          [--workloads a,b,...] [--no-install] [--out BASE]
set -euo pipefail
if [ -n "${BENCH_TRACE:-}" ]; then PS4='+ $(date +%T.%N | cut -c1-12) '; set -x; fi

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK="$BENCH/work"
IMG="$WORK/images"
RUN="$WORK/run"
IIPSRV11_BIN=/usr/lib/iipimage-server/iipsrv.fcgi
IIPSRV13_BIN="$WORK/iipsrv-1.3/src/iipsrv.fcgi"

QUICK=0
DURATION=8
ONLY="tessera,iipsrv,iipsrv13,static"
TESSERA=""
WORKLOADS=""
INSTALL_FLAG=""
OUT=""
CORES=""
CONCS=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --cores) CORES=$2; shift ;;
    --concs) CONCS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --tessera) TESSERA=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --no-install) INSTALL_FLAG=--no-install ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$DURATION" in '' | *[!0-9]* | 0) echo "run.sh: --duration takes whole seconds" >&2; exit 2 ;; esac
if [ "$QUICK" = 1 ]; then
    DURATION=1
    [ -n "$CORES" ] || CORES="2"
    [ -n "$CONCS" ] || CONCS="2"
    [ -n "$WORKLOADS" ] || WORKLOADS="tiles-cold,tiles-hot,info,thumbs,regions,big,jp2,png"
    [ -n "$OUT" ] || OUT="$WORK/quick"
    MAX_SECONDS=${BENCH_MAX_SECONDS:-600}
    COLD_IMAGES=20
else
    [ -n "$CORES" ] || CORES="1 2"
    [ -n "$CONCS" ] || CONCS="1 16"
    [ -n "$WORKLOADS" ] || WORKLOADS="tiles-cold,tiles-hot,info,thumbs,regions,big,jp2,deflate,png,mixed"
    [ -n "$OUT" ] || OUT="$BENCH/results/latest"
    MAX_SECONDS=${BENCH_MAX_SECONDS:-3600}
    COLD_IMAGES=300
fi
NPROC=$(nproc)
for n in $CORES; do
    case "$n" in '' | *[!0-9]* | 0) echo "run.sh: --cores takes counts such as \"1 2\"" >&2; exit 2 ;; esac
    [ "$n" -le "$NPROC" ] || { echo "run.sh: --cores $n: this machine has $NPROC" >&2; exit 2; }
done

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
    # The commit measured is the one built now: the tree may move on while the run goes.
    TESSERA_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    say "building Tessera (Release) in build-bench/"
    timeout 600 cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="-Wno-error=clobbered -Wno-error=maybe-uninitialized" >/dev/null
    timeout 1200 cmake --build "$ROOT/build-bench" --target tessera -j"$NPROC" >/dev/null
    TESSERA="$ROOT/build-bench/tessera"
fi
if has "$ONLY" iipsrv13 && [ ! -x "$IIPSRV13_BIN" ]; then
    say "no iipsrv 1.3 ($IIPSRV13_BIN; see prepare.sh): running without it"
    ONLY=$(echo ",$ONLY," | sed 's/,iipsrv13,/,/; s/^,//; s/,$//')
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

# cpu_sets N: the server's cores (0..N-1) and wrk's (the others, or all when N is every core).
cpu_sets() {
    SERVER_CPUS="0-$(( $1 - 1 ))"
    if [ "$1" -lt "$NPROC" ]; then WRK_CPUS="$1-$(( NPROC - 1 ))"; else WRK_CPUS="0-$(( NPROC - 1 ))"; fi
    PIN="taskset -c $SERVER_CPUS"
}

# ---- the servers. start_SERVER NCORES CACHES(on|off) sets HOST, BASE_PATH, and the pids whose
# peak RSS is read: SERVER_PIDS (the server proper), FRONT_PIDS (nginx in front of iipsrv),
# EXTRA_PIDS (memcached). Every run starts its server fresh, so every run begins cold.

start_tessera() {
    local ncores=$1 caches=$2 log="$RUN/tessera.log"
    : > "$log"
    # Tessera sizes its threads by the CPUs its affinity allows, which taskset sets here; the
    # counts are still given, as its defaults for NCORES cores (one network thread per core, two
    # workers per core and at least 4), so that the run does not depend on that.
    local workers=$(( 2 * ncores < 4 ? 4 : 2 * ncores ))
    local cacheopts=""
    # Caches off = the response and pixel caches (the JPEG 2000 block cache is one). The image
    # metadata cache stays on, as iipsrv's does in this mode: 1.1 cannot turn its 1,000-image
    # metadata cache off, and 1.3 keeps it on by default.
    [ "$caches" = off ] && cacheopts="--response-cache 0 --jp2-cache 0"
    # shellcheck disable=SC2086
    $PIN "$TESSERA" --root "$IMG" --listen 127.0.0.1:0 --jpeg-quality 85 \
        --threads "$ncores" --workers "$workers" $cacheopts > "$log" 2>&1 &
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
    FRONT_PIDS=()
    EXTRA_PIDS=()
    wait_http "$HOST/"
}

start_nginx() { # NAME TEMPLATE NCORES SEDEXPR: a fresh nginx; sets NGINX_PORT, NGINX_PIDS
    local name=$1 tmpl=$2 ncores=$3 sedexpr=$4
    NGINX_PORT=$(free_port)
    sed -e "s#@PORT@#$NGINX_PORT#g; s#@RUN@#$RUN#g; s#@NAME@#$name#g; s#@WORKERS@#$ncores#g; $sedexpr" \
        "$tmpl" > "$RUN/$name.conf"
    $PIN nginx -c "$RUN/$name.conf" -p "$RUN" -e "$RUN/$name.error.log" &
    NGINX_PIDS=("$!")
    PIDS_TO_STOP+=("$!")
}

nginx_workers() { # the worker pids of nginx master $1
    local i kids=()
    for i in $(seq 1 20); do
        mapfile -t kids < <(pgrep -P "$1" || true)
        [ "${#kids[@]}" -gt 0 ] && break
        sleep 0.05
    done
    NGINX_PIDS+=("${kids[@]}")
}

start_iipsrv_version() { # NAME BIN NCORES CACHES
    local name=$1 bin=$2 ncores=$3 caches=$4
    local sock="$RUN/$name.sock"
    start_nginx "nginx-$name" "$BENCH/nginx-iipsrv.conf" "$ncores" "s#@SOCK@#$sock#g"
    local nginx_master=${NGINX_PIDS[0]}
    local mcenv=() cache_mb=256
    EXTRA_PIDS=()
    if [ "$caches" = on ]; then
        local mcport
        mcport=$(free_port)
        $PIN memcached -l 127.0.0.1 -p "$mcport" -U 0 -m 256 -u "$(id -un)" &
        EXTRA_PIDS=("$!")
        PIDS_TO_STOP+=("$!")
        mcenv=(MEMCACHED_SERVERS="127.0.0.1:$mcport" MEMCACHED_TIMEOUT=86400)
    else
        cache_mb=0 # no memcached, and no tile cache in the process either
    fi
    rm -f "$sock" "$RUN/$name.pids"
    # Production settings: two processes per core, 256 MB tile cache, memcached for responses,
    # the same JPEG quality as Tessera, big renders allowed up to 5000 px. iipsrv 1.3 is told to
    # speak IIIF 2, as 1.1 does and as Tessera is asked.
    env -i PATH="$PATH" LOGFILE="$RUN/$name.log" VERBOSITY=0 FILESYSTEM_PREFIX="$IMG/" \
        MAX_IMAGE_CACHE_SIZE="$cache_mb" JPEG_QUALITY=85 MAX_CVT=5000 IIIF_VERSION=2 \
        "${mcenv[@]}" \
        timeout 10 $PIN spawn-fcgi -s "$sock" -M 0666 -F $(( 2 * ncores )) -P "$RUN/$name.pids" \
        -- "$bin" > /dev/null
    local pids
    mapfile -t pids < "$RUN/$name.pids"
    PIDS_TO_STOP+=("${pids[@]}")
    HOST="http://127.0.0.1:$NGINX_PORT"
    BASE_PATH="/fcgi-bin/iipsrv.fcgi?IIIF="
    SERVER_PIDS=("${pids[@]}")
    wait_http "$HOST${BASE_PATH}no-such-image.tif/info.json"
    nginx_workers "$nginx_master"
    FRONT_PIDS=("${NGINX_PIDS[@]}")
}
start_iipsrv() { start_iipsrv_version iipsrv "$IIPSRV11_BIN" "$1" "$2"; }
start_iipsrv13() { start_iipsrv_version iipsrv13 "$IIPSRV13_BIN" "$1" "$2"; }

start_static() {
    start_nginx nginx-static "$BENCH/nginx-static.conf" "$1" "s#@STATIC@#$WORK/static#g"
    local master=${NGINX_PIDS[0]}
    HOST="http://127.0.0.1:$NGINX_PORT"
    BASE_PATH="/static/"
    wait_http "$HOST/static/k10/info.json"
    nginx_workers "$master"
    SERVER_PIDS=("${NGINX_PIDS[@]}")
    FRONT_PIDS=()
    EXTRA_PIDS=()
}

stop_server() {
    stop_pids "${SERVER_PIDS[@]}" "${FRONT_PIDS[@]}" "${EXTRA_PIDS[@]}"
}

# ---- workloads: which servers, the list, and the fastest rate its list must cover.
servers_for() {
    case "$1" in
    tiles-hot | info) echo "tessera iipsrv iipsrv13 static" ;;
    png) echo "tessera iipsrv13" ;; # iipsrv 1.1 serves IIIF only as JPEG
    *) echo "tessera iipsrv iipsrv13" ;;
    esac
}
concs_for() {
    if [ "$QUICK" = 1 ]; then echo "$CONCS"; return; fi
    case "$1" in
    deflate | mixed) echo "$CONCS" | awk '{print $NF}' ;; # the highest only
    *) echo "$CONCS" ;;
    esac
}
# A generous ceiling of req/s for the workload (well above any rate measured so far, e.g. 16,000
# cold tiles/s from Tessera at 2 cores). A cold list must hold CEILING x duration distinct URLs,
# so that no run gets to the end of it and comes round to URLs some cache has kept; a workload
# whose distinct URLs cannot cover that is run with the caches off instead (see mode_for).
ceiling_for() {
    case "$1" in
    tiles-cold) echo 20000 ;;
    info) echo 50000 ;;
    thumbs) echo 20000 ;;
    regions | jp2 | deflate | png) echo 5000 ;;
    big) echo 100 ;;
    mixed) echo 5000 ;;
    *) echo 0 ;;
    esac
}
dur_for() { # a 4,000 px render takes about a second: at least 4 s, so a quick run gets answers
    case "$1" in
    big) echo $(( DURATION < 4 ? 4 : DURATION )) ;;
    *) echo "$DURATION" ;;
    esac
}
check_sample_for() {
    case "$1" in
    big) echo 6 ;; # renders of 4,000 px take seconds each on iipsrv
    *) echo 12 ;;
    esac
}
script_for() {
    case "$1" in
    big | mixed) echo "$BENCH/workloads/cycle-status.lua" ;; # counts 503s apart
    *) echo "$BENCH/workloads/cycle.lua" ;;
    esac
}

# ---- URL lists. Every server gets the same requests after its base path: tiles follow one
# 256 px grid (OpenSeadragon's order: levels from the smallest up, each row by row), which is
# the TIFFs' own tile size and the JP2's too for this benchmark, though Tessera advertises the
# JP2's 512 px codestream tiles.
URLS="python3 $BENCH/urls.py"
IMG_W=$(vipsheader -f width "$IMG/k10-jpeg.tif")
IMG_H=$(vipsheader -f height "$IMG/k10-jpeg.tif")
GEOM="--width $IMG_W --height $IMG_H"
n_copies() { # PREFIX EXT WANT: how many of the copies PREFIX0001.EXT ... exist, up to WANT
    local n=0
    while [ "$n" -lt "$3" ] && [ -e "$(printf '%s/%s%04d.%s' "$IMG" "$1" $((n + 1)) "$2")" ]; do
        n=$((n + 1))
    done
    echo "$n"
}
NC=$(n_copies c tif "$COLD_IMAGES")
ND=$(n_copies d tif "$(( COLD_IMAGES < 40 ? COLD_IMAGES : 40 ))")
NJ=$(n_copies j jp2 "$COLD_IMAGES")
lists_for() {
    local s=$1 b d="$RUN/lists-$1"
    mkdir -p "$d"
    case "$s" in
    tessera) b="/iiif/2/" ;;
    iipsrv | iipsrv13) b="/fcgi-bin/iipsrv.fcgi?IIIF=" ;;
    static) b="/static/" ;;
    esac
    if [ "$s" = static ]; then
        $URLS static-tiles --base "$b" --id k10 --info "$WORK/static/k10/info.json" \
            --static-dir "$WORK/static/k10" --out "$d/tiles-hot.txt"
        $URLS info --base "$b" --id k10 --out "$d/info.txt"
        return
    fi
    local need
    # tiles-hot: exactly the static tiles' requests, on the one TIFF.
    $URLS static-tiles --base "$b" --id k10-jpeg.tif --info "$WORK/static/k10/info.json" \
        --out "$d/tiles-hot.txt"
    $URLS tiles --base "$b" --grid 256 $GEOM --id-prefix c --images "$NC" --out "$d/tiles-cold.txt"
    $URLS tiles --base "$b" --grid 256 $GEOM --id-prefix c --images "$NC" --ext png --out "$d/png.txt"
    $URLS info --base "$b" --id-prefix c --images "$NC" --out "$d/info.txt"
    $URLS thumbs --base "$b" --id-prefix c --images "$NC" --out "$d/thumbs.txt"
    need=$(( $(ceiling_for regions) * DURATION ))
    $URLS regions --base "$b" $GEOM --id-prefix c --images "$NC" \
        --count $(( need > 4000 ? need : 4000 )) --out "$d/regions.txt"
    $URLS big --base "$b" --id-prefix c --images "$NC" --out "$d/big.txt"
    need=$(( $(ceiling_for mixed) * DURATION ))
    $URLS mixed --base "$b" --grid 256 $GEOM --id-prefix c --images "$NC" \
        --count $(( need > 40000 ? need : 40000 )) --out "$d/mixed.txt"
    [ "$ND" -gt 0 ] && $URLS tiles --base "$b" --grid 256 $GEOM --id-prefix d --images "$ND" \
        --out "$d/deflate.txt"
    [ "$NJ" -gt 0 ] && $URLS tiles --base "$b" --grid 256 $GEOM --id-prefix j --id-ext jp2 \
        --images "$NJ" --out "$d/jp2.txt"
    return 0
}

# mode_for WORKLOAD SERVER: hot (a small set repeated after a warm-up: measures caches), cold
# (distinct URLs on distinct files, more than the run can get through; caches on) or
# caches-off (the list would wrap, so both servers run without their response and tile caches).
mode_for() {
    local w=$1 s=$2 list="$RUN/lists-$2/$1.txt"
    case "$w" in tiles-hot) echo hot; return ;; esac
    [ "$s" = static ] && { echo static; return; }
    local need have
    need=$(( $(ceiling_for "$w") * $(dur_for "$w") ))
    have=$(wc -l < "$list")
    if [ "$have" -ge "$need" ]; then echo cold; else echo caches-off; fi
}

run_one() { # SERVER WORKLOAD CONC NCORES
    local s=$1 w=$2 c=$3 ncores=$4 list="$RUN/lists-$1/$2.txt"
    [ -s "$list" ] || { say "no URL list for $s/$w; skipped"; return 0; }
    local t=2 mode caches=on
    [ "$c" -lt 2 ] && t=1
    mode=$(mode_for "$w" "$s")
    [ "$mode" = caches-off ] && caches=off
    cpu_sets "$ncores"
    SERVER_PIDS=() FRONT_PIDS=() EXTRA_PIDS=()
    if ! "start_$s" "$ncores" "$caches"; then
        say "$s did not start for $w/c$c/$ncores cores"
        stop_server
        printf '{"server":"%s","workload":"%s","conc":%d,"cores":%d,"threads":%d,"mode":"%s","list_len":0,"rss_kb":0,"front_rss_kb":0,"extra_rss_kb":0,"check":{"checked":0,"failures":1,"first":"the server did not start"},"result":{}}\n' \
            "$s" "$w" "$c" "$ncores" "$t" "$mode" >> "$RUNS"
        return 0
    fi
    if [ "$w" = tiles-hot ]; then
        # One pass over the list fills the caches (curl reuses its connections).
        sed -e "s#.*#url = \"$HOST&\"\noutput = \"/dev/null\"#" "$list" > "$RUN/warm.curl"
        timeout 300 taskset -c "$WRK_CPUS" curl -s --no-progress-meter -Z --parallel-max "$c" \
            -K "$RUN/warm.curl" > /dev/null 2>&1 || true
    fi
    local out="$RUN/wrk-$s-$w-c$c-n$ncores.txt" d
    d=$(dur_for "$w")
    timeout $((d + 60)) taskset -c "$WRK_CPUS" wrk -t "$t" -c "$c" -d "${d}s" --timeout 30s \
        -s "$(script_for "$w")" "$HOST" -- "$list" "$t" > "$out" 2>&1 || true
    # wrk counts statuses only: a sample of the list is fetched again and every answer must be
    # 200 in the format asked, with the pixel size its URL asks for (after the run, so it warms
    # nothing that is measured).
    local check
    check=$(timeout 300 python3 "$BENCH/check.py" "$HOST" "$list" --sample "$(check_sample_for "$w")" \
        2>/dev/null) || check='{"checked":0,"failures":1,"first":"the checker did not finish"}'
    local rss front extra
    rss=$(hwm_kb "${SERVER_PIDS[@]}")
    front=$(hwm_kb "${FRONT_PIDS[@]}")
    extra=$(hwm_kb "${EXTRA_PIDS[@]}")
    stop_server
    local line
    line=$(sed -n 's/^BENCHJSON //p' "$out" | tail -1)
    [ -n "$line" ] || { say "wrk gave no result for $s/$w/c$c/$ncores cores:"; cat "$out" >&2; line='{}'; }
    printf '{"server":"%s","workload":"%s","conc":%d,"cores":%d,"threads":%d,"mode":"%s","list_len":%d,"server_cpus":"%s","wrk_cpus":"%s","rss_kb":%d,"front_rss_kb":%d,"extra_rss_kb":%d,"check":%s,"result":%s}\n' \
        "$s" "$w" "$c" "$ncores" "$t" "$mode" "$(wc -l < "$list")" "$SERVER_CPUS" "$WRK_CPUS" \
        "$rss" "$front" "$extra" "$check" "$line" >> "$RUNS"
    python3 "$BENCH/report.py" --line "$RUNS" || true
}

SERVERS=""
for s in tessera iipsrv iipsrv13 static; do has "$ONLY" "$s" && SERVERS="$SERVERS $s"; done
for s in $SERVERS; do lists_for "$s"; done
# The same requests for every server: the lists must agree once the base path is cut off.
URL_MISMATCH=""
for f in "$RUN"/lists-tessera/*.txt; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    for s in iipsrv iipsrv13; do
        [ -e "$RUN/lists-$s/$name" ] || continue
        if ! cmp -s <(sed 's#^/iiif/2/##' "$f") <(sed 's#^/fcgi-bin/iipsrv.fcgi?IIIF=##' "$RUN/lists-$s/$name"); then
            say "the $name lists of tessera and $s differ"
            URL_MISMATCH="$URL_MISMATCH $s/$name"
        fi
    done
done
# Every image in the OS page cache before the first run, for every server: "cold" is about the
# servers' own caches, not the disk. Without this the first server to ask for a region pays the
# disk reads and the servers after it (the same files, the same URL order) find it in memory.
IMG_KB=$(du -sk "$IMG" | cut -f1)
AVAIL_KB=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if [ "$IMG_KB" -lt $((AVAIL_KB / 2)) ]; then
    say "reading the images ($((IMG_KB / 1024)) MB) into the page cache"
    cat "$IMG"/* > /dev/null
    PAGE_CACHE="every image ($((IMG_KB / 1024)) MB) read into the page cache before the runs"
else
    PAGE_CACHE="NOT every image in the page cache ($((IMG_KB / 1024)) MB of images, $((AVAIL_KB / 1024)) MB free): a server run later may find in memory what an earlier one read from disk"
fi
for n in $CORES; do
    for w in ${WORKLOADS//,/ }; do
        for c in $(concs_for "$w"); do
            for s in $(servers_for "$w"); do
                has "$ONLY" "$s" || continue
                run_one "$s" "$w" "$c" "$n"
            done
        done
    done
done

# Downscale quality: each server's renders against libvips's Lanczos3 resize of the full
# resolution (bench/quality.py), caches off, on the last core count. Not timed.
QUALITY="$RUN/quality.jsonl"
: > "$QUALITY"
if [ "$QUICK" = 0 ] || [ -n "${BENCH_QUALITY:-}" ]; then
    qcores=$(echo "$CORES" | awk '{print $NF}')
    cpu_sets "$qcores"
    for s in tessera iipsrv iipsrv13; do
        has "$ONLY" "$s" || continue
        "start_$s" "$qcores" off || continue
        fmts=jpg
        [ "$s" = iipsrv ] || fmts=jpg,png # iipsrv 1.1 writes IIIF as JPEG only
        timeout 900 python3 "$BENCH/quality.py" "$HOST" "$BASE_PATH" "$s" "$IMG" \
            "$WORK/quality-refs" "$QUALITY" --formats "$fmts" > /dev/null ||
            say "quality check of $s failed"
        stop_server
    done
fi

ELAPSED=$(( $(date +%s) - START_TIME ))
IIP13_VERSION=none
if [ -x "$IIPSRV13_BIN" ] && has "$ONLY" iipsrv13; then
    IIP13_VERSION="1.3 built from source ($(grep -o 'JPEG2000 *:.*' "$WORK/iipsrv-1.3.log" 2>/dev/null | tr -s ' ' | head -1))"
fi
cat > "$RUN/meta.json" <<META
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "tessera_commit": "${TESSERA_COMMIT:-given binary $TESSERA}",
 "iipsrv": "$(dpkg-query -W -f='${Version}' iipimage-server 2>/dev/null || echo none)",
 "iipsrv13": "$IIP13_VERSION",
 "nginx": "$(dpkg-query -W -f='${Version}' nginx nginx-light 2>/dev/null | head -1 || echo none)",
 "wrk": "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo none)",
 "vips": "$(vips --version 2>/dev/null || echo none)",
 "cpu": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
 "machine_cores": $NPROC, "cores": [${CORES// /, }], "concs": [${CONCS// /, }],
 "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "url_lists_differ": "${URL_MISMATCH# }",
 "page_cache": "$PAGE_CACHE",
 "source": "$(cat "$WORK/source.txt")",
 "quality_file": "$QUALITY",
 "duration_s": $DURATION, "quick": $QUICK, "elapsed_s": $ELAPSED}
META
python3 "$BENCH/report.py" "$RUNS" --meta "$RUN/meta.json" --md "$OUT.md" --json "$OUT.json"
say "done in ${ELAPSED} s; results in $OUT.md"
# A run that got no answers at all means the benchmark itself is broken: fail (CI smoke run).
if grep -q '"result":{}' "$RUNS" || grep -q '"requests":0,' "$RUNS"; then
    say "some workloads got no answers (see $RUN/wrk-*.txt)"
    exit 1
fi
