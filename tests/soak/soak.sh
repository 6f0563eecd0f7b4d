#!/usr/bin/env bash
# Soak test: a Release tessera under wrk (256 connections) for a bounded time, twice: first
# viewer tiles alone, then the mixed and hostile load; a latency probe and RSS sampling run
# throughout. Writes tests/soak/results/latest.md.
# Usage: tests/soak/soak.sh [--seconds N] [--connections N]   (needs wrk, vips, curl)
# --seconds is the length of each of the two runs. SOAK_BUILD names the build directory
# (default build-soak), SOAK_JOBS the build's parallel jobs (default 2).
set -euo pipefail

SECONDS_RUN=60
CONNS=256
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_RUN="$2"; shift 2 ;;
    --seconds=*) SECONDS_RUN="${1#*=}"; shift ;;
    --connections) CONNS="$2"; shift 2 ;;
    --connections=*) CONNS="${1#*=}"; shift ;;
    -h|--help) sed -n 2,4p "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$SECONDS_RUN" in ''|*[!0-9]*) echo "soak: --seconds wants a number" >&2; exit 2 ;; esac

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
BUILD="${SOAK_BUILD:-$SRC/build-soak}"
WORK="$(mktemp -d /tmp/tessera-soak.XXXXXX)"
ROOT="$WORK/root"
RESULTS="$HERE/results"
mkdir -p "$ROOT" "$RESULTS"
for tool in wrk vips curl; do
  command -v "$tool" >/dev/null || { echo "soak: $tool not found (apt-get install $tool)" >&2; exit 2; }
done

SERVER_PID=""
PROBE_PID=""
SAMPLER_PID=""
cleanup() {
  for p in "$PROBE_PID" "$SAMPLER_PID"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "soak: building Release into $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF >/dev/null
nice -n 10 cmake --build "$BUILD" --target tessera -j"${SOAK_JOBS:-2}" >/dev/null

echo "soak: writing the image root into $ROOT"
# The grid: 1000x1000, 10x10 flat-colour cells, as a JPEG pyramid TIFF.
python3 - "$WORK/grid.ppm" <<'PY'
import sys
w = h = 1000
rows = []
for y in range(h):
    r = y // 100
    row = bytearray()
    for c in range(10):
        row += bytes((13 + 24 * c, 13 + 24 * r, 255 - 12 * (c + r))) * 100
    rows.append(bytes(row))
with open(sys.argv[1], "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (w, h))
    f.writelines(rows)
PY
TIFF_OPTS="--tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85"
vips tiffsave "$WORK/grid.ppm" "$ROOT/grid.tif" $TIFF_OPTS
# About 8000 px across: the retina upscaled, pyramidal.
vips resize "$SRC/tests/data/retina-1411x1411.jpg" "$WORK/big.v" 5.67
vips tiffsave "$WORK/big.v" "$ROOT/big.tif" $TIFF_OPTS
BIG_W="$(vipsheader -f width "$ROOT/big.tif")"
BIG_H="$(vipsheader -f height "$ROOT/big.tif")"
rm -f "$WORK/big.v" "$WORK/grid.ppm"
# Corrupt files: cut pyramids, a JPEG without tables, text, an empty file, malformed TIFFs.
head -c $(( $(stat -c %s "$ROOT/big.tif") / 3 )) "$ROOT/big.tif" > "$ROOT/cut-big.tif"
head -c $(( $(stat -c %s "$ROOT/grid.tif") / 2 )) "$ROOT/grid.tif" > "$ROOT/half-grid.tif"
head -c 300 "$SRC/tests/data/retina-1411x1411.jpg" > "$ROOT/corrupt.jpg"
echo "this is not a TIFF" > "$ROOT/fake.tif"
: > "$ROOT/empty.png"
cp "$SRC"/tests/data/checkit-tiff/fail_* "$ROOT/"

echo "soak: starting tessera"
"$BUILD/tessera" --root "$ROOT" --listen 127.0.0.1:0 --connection-timeout 10 \
  > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT="$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORK/server.out")"
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "soak: tessera did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
RSS_START="$(rss_kb)"

# RSS every second, while the server lives.
( while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$(date +%s) $(rss_kb)"; sleep 1
  done ) > "$WORK/rss.txt" &
SAMPLER_PID=$!

# The probe: one viewer tile every 100 ms, a different one each time (as a panning viewer asks).
# Its regions sit off the 256 grid by $2 pixels: wrk never asks them and no stored tile matches,
# so each is a small decode by a worker, never a cache hit. $1 names its output.
start_probe() {
  ( i=0; while :; do
      x=$(( (i % 30) * 256 + $2 )); y=$(( (i / 30 % 30) * 256 + $2 ))
      curl -s -o /dev/null --noproxy '*' --max-time 10 -w '%{http_code} %{time_total}\n' \
        "$BASE/iiif/3/big.tif/$x,$y,256,256/256,/0/default.jpg" || echo "000 10"
      i=$((i + 1)); sleep 0.1
    done ) > "$1" &
  PROBE_PID=$!
}
stop_probe() {
  kill "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=""
}
# One wrk run: $1 = SOAK_MIX (tiles or mix), output in $WORK/wrk-$1.txt, probe in probe-$1.txt.
run_wrk() {
  start_probe "$WORK/probe-$1.txt" "$2"
  echo "soak: wrk -c $CONNS for ${SECONDS_RUN}s against $BASE ($1)"
  echo "$(date +%s) start $1" >> "$WORK/phases.txt"
  SOAK_MIX="$1" SOAK_BIG_W="$BIG_W" SOAK_BIG_H="$BIG_H" wrk -t 4 -c "$CONNS" \
    -d "${SECONDS_RUN}s" --timeout 10s -s "$HERE/mix.lua" "$BASE" > "$WORK/wrk-$1.txt" 2>&1 || true
  echo "$(date +%s) end $1" >> "$WORK/phases.txt"
  stop_probe
}

RSS_T0="$(date +%s)"
run_wrk tiles 64
sleep 2 # the tiles' run ends before the mix begins
run_wrk mix 128
sleep 2 # let the sampler see the server settle after the load
RSS_END="$(rss_kb)"

ALIVE=no
kill -0 "$SERVER_PID" 2>/dev/null && ALIVE=yes
EXIT_CODE="n/a"
if [ "$ALIVE" = yes ]; then
  kill -TERM "$SERVER_PID"
  set +e
  wait "$SERVER_PID"
  EXIT_CODE=$?
  set -e
else
  set +e
  wait "$SERVER_PID"
  EXIT_CODE=$?
  set -e
fi
SERVER_PID=""
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

# ---- figures ----
# wrk's own figures of one run ($1 = tiles or mix): requests, errors, latency, statuses.
wrk_field() { sed -n "s/^SOAK $2 //p" "$WORK/wrk-$1.txt"; }
wrk_latency() { wrk_field "$1" latency | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
status_rows() { awk '/^SOAK status/ {print $3, $4}' "$WORK/wrk-$1.txt" | sort -n; }
non2xx() { status_rows "$1" | awk '$1 !~ /^2/ {s += $2} END {print s + 0}'; }
# Probe figures of one run: percentile p of its latencies (ms), and answers that were not 200.
pct() { awk '{print $2 * 1000}' "$WORK/probe-$1.txt" | sort -n |
        awk -v p="$2" '{v[NR] = $1} END { if (NR == 0) { print "n/a"; exit }
          i = int((NR - 1) * p / 100) + 1; printf "%.1f", v[i] }'; }
probe_count() { wc -l < "$WORK/probe-$1.txt"; }
probe_bad() { awk '$1 != "200"' "$WORK/probe-$1.txt" | wc -l; }
# Peak RSS (MB) between the start and end of a run, from the sampler's time stamps.
phase_time() { awk -v w="$1 $2" '$2 " " $3 == w {print $1}' "$WORK/phases.txt"; }
rss_peak() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { if ($2 > m) m = $2 } END {print int(m / 1024)}' "$WORK/rss.txt"; }
RSS_PEAK="$(awk '{ if ($2 > m) m = $2 } END {print int(m / 1024)}' "$WORK/rss.txt")"
RSS_TILES="$(rss_peak "$(phase_time start tiles)" "$(phase_time end tiles)")"
RSS_MIX="$(rss_peak "$(phase_time start mix)" "$(phase_time end mix)")"
PROBE_WORST="$(cat "$WORK/probe-tiles.txt" "$WORK/probe-mix.txt" |
  awk '{ v = $2 * 1000; if (v > m) m = v } END {printf "%.1f", m}')"
CRASHES=0
{ [ "$ALIVE" = yes ] && [ "$EXIT_CODE" = 0 ]; } || CRASHES=1
RSS_SERIES="$(awk -v t0="$RSS_T0" 'NR % 5 == 1 {printf "%s%d:%d", sep, $1 - t0, $2 / 1024; sep = " "}' "$WORK/rss.txt")"
row() { # figure, tiles value, mix value
  echo "| $1 | $2 | $3 |"
}

OUT="$RESULTS/latest.md"
{
  echo "# Soak run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Release build ($(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')), $(nproc) cores, two runs of ${SECONDS_RUN} s, wrk -t 4 -c $CONNS --timeout 10s."
  echo "*Tiles alone*: viewer tiles of a ${BIG_W}x${BIG_H} JPEG pyramid TIFF, levels 1/1 to 1/32."
  echo "*Everything* (tests/soak/mix.lua): 70 % those tiles, 10 % thumbnails, 3 % big renders,"
  echo "7 % corrupt files, 7 % hostile URLs, 2 % 100 KB URLs/headers, 1 % info.json."
  echo "Probe: one 256x256 tile every 100 ms (curl) during both runs, each a new region off the"
  echo "tile grid: never a cache hit nor a stored tile, a small decode every time."
  echo "wrk leaves requests that time out (10 s) out of its latencies; they are counted as timeouts."
  echo
  echo "| figure | tiles alone | everything |"
  echo "| --- | --- | --- |"
  row "requests answered (wrk)" "$(wrk_field tiles requests)" "$(wrk_field mix requests)"
  row "**wrk latency p99**" "**$(wrk_latency tiles p99_ms) ms**" "**$(wrk_latency mix p99_ms) ms**"
  row "wrk latency p50 / max" "$(wrk_latency tiles p50_ms) / $(wrk_latency tiles max_ms) ms" \
    "$(wrk_latency mix p50_ms) / $(wrk_latency mix max_ms) ms"
  row "non-2xx answers" "$(non2xx tiles)" "$(non2xx mix)"
  row "wrk socket errors" "$(wrk_field tiles errors)" "$(wrk_field mix errors)"
  row "probe requests (non-200)" "$(probe_count tiles) ($(probe_bad tiles))" \
    "$(probe_count mix) ($(probe_bad mix))"
  row "probe latency p50 / p99 / **max**" \
    "$(pct tiles 50) / $(pct tiles 99) / **$(pct tiles 100)** ms" \
    "$(pct mix 50) / $(pct mix 99) / **$(pct mix 100)** ms"
  row "peak RSS during the run" "$RSS_TILES MB" "$RSS_MIX MB"
  echo
  echo "| whole run | value |"
  echo "| --- | --- |"
  echo "| probe worst case | $PROBE_WORST ms |"
  echo "| peak RSS / start / end | $RSS_PEAK / $((RSS_START / 1024)) / $((RSS_END / 1024)) MB |"
  echo "| server alive at the end | $ALIVE |"
  echo "| exit status after SIGTERM | $EXIT_CODE |"
  echo "| crashes | $CRASHES |"
  echo
  echo "Answers by status (everything):"
  echo
  echo "| status | count |"
  echo "| --- | --- |"
  status_rows mix | awk 'NF == 2 {printf "| %s | %s |\n", $1, $2}'
  echo
  echo "RSS (second:MB, every 5 s from the first run's start): $RSS_SERIES"
} > "$OUT"
cat "$OUT"
echo "soak: work files in $WORK"
[ "$CRASHES" = 0 ]
