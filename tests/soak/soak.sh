#!/usr/bin/env bash
# Soak test: a Release tessera under wrk (256 connections, mixed and hostile load) for a bounded
# time, with a latency probe and RSS sampling; writes tests/soak/results/latest.md.
# Usage: tests/soak/soak.sh [--seconds N] [--connections N]   (needs wrk, vips, curl)
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
BUILD="$SRC/build-soak"
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
cmake --build "$BUILD" --target tessera -j"$(nproc)" >/dev/null

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
( t=0; while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$t $(rss_kb)"; t=$((t + 1)); sleep 1
  done ) > "$WORK/rss.txt" &
SAMPLER_PID=$!

# The probe: one viewer tile every 100 ms, a different one each time (as a panning viewer asks).
( i=0; while :; do
    x=$(( (i % 30) * 256 )); y=$(( (i / 30 % 30) * 256 ))
    curl -s -o /dev/null --noproxy '*' --max-time 10 -w '%{http_code} %{time_total}\n' \
      "$BASE/iiif/3/big.tif/$x,$y,256,256/256,/0/default.jpg" || echo "000 10"
    i=$((i + 1)); sleep 0.1
  done ) > "$WORK/probe.txt" &
PROBE_PID=$!

echo "soak: wrk -c $CONNS for ${SECONDS_RUN}s against $BASE"
SOAK_BIG_W="$BIG_W" SOAK_BIG_H="$BIG_H" wrk -t 4 -c "$CONNS" -d "${SECONDS_RUN}s" --timeout 10s \
  -s "$HERE/mix.lua" "$BASE" > "$WORK/wrk.txt" 2>&1 || true
kill "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
PROBE_PID=""
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
REQUESTS="$(awk '/^SOAK requests/ {print $3}' "$WORK/wrk.txt")"
ERRORS="$(sed -n 's/^SOAK errors //p' "$WORK/wrk.txt")"
WRK_LAT="$(sed -n 's/^SOAK latency //p' "$WORK/wrk.txt")"
STATUS_ROWS="$(awk '/^SOAK status/ {print $3, $4}' "$WORK/wrk.txt" | sort -n)"
NON2XX="$(echo "$STATUS_ROWS" | awk '$1 !~ /^2/ {s += $2} END {print s + 0}')"
RSS_PEAK="$(awk '{ if ($2 > m) m = $2 } END {print m + 0}' "$WORK/rss.txt")"
WARM=$(( SECONDS_RUN / 6 ))
RSS_WARM="$(awk -v w="$WARM" '$1 == w {print $2}' "$WORK/rss.txt")"
RSS_LATE_PEAK="$(awk -v w="$WARM" '$1 >= w { if ($2 > m) m = $2 } END {print m + 0}' "$WORK/rss.txt")"
PROBES="$(wc -l < "$WORK/probe.txt")"
PROBE_BAD="$(awk '$1 != "200"' "$WORK/probe.txt" | wc -l)"
pct() { awk '{print $2 * 1000}' "$WORK/probe.txt" | sort -n |
        awk -v p="$1" '{v[NR] = $1} END { if (NR == 0) { print "n/a"; exit }
          i = int((NR - 1) * p / 100) + 1; printf "%.1f", v[i] }'; }
P50="$(pct 50)"; P99="$(pct 99)"; PMAX="$(pct 100)"
CRASHES=0
{ [ "$ALIVE" = yes ] && [ "$EXIT_CODE" = 0 ]; } || CRASHES=1
RSS_SERIES="$(awk 'NR % 5 == 1 {printf "%s%d:%d", sep, $1, $2 / 1024; sep = " "}' "$WORK/rss.txt")"

OUT="$RESULTS/latest.md"
{
  echo "# Soak run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Release build, $(nproc) cores, ${SECONDS_RUN} s, wrk -t 4 -c $CONNS (tests/soak/mix.lua: 70 % viewer"
  echo "tiles of a ${BIG_W}x${BIG_H} pyramid, 10 % thumbnails, 3 % big renders, 7 % corrupt files,"
  echo "7 % hostile URLs, 2 % 100 KB URLs/headers, 1 % info.json); probe: one tile every 100 ms (curl)."
  echo
  echo "| figure | value |"
  echo "| --- | --- |"
  echo "| requests answered (wrk) | $REQUESTS |"
  echo "| non-2xx answers | $NON2XX |"
  echo "| wrk socket errors | $ERRORS |"
  echo "| wrk latency | $WRK_LAT |"
  echo "| server alive at the end | $ALIVE |"
  echo "| exit status after SIGTERM | $EXIT_CODE |"
  echo "| crashes | $CRASHES |"
  echo "| RSS start / after warm-up (${WARM} s) / peak after warm-up / peak / end | $((RSS_START / 1024)) / $((${RSS_WARM:-0} / 1024)) / $((RSS_LATE_PEAK / 1024)) / $((RSS_PEAK / 1024)) / $((RSS_END / 1024)) MB |"
  echo "| probe requests (non-200) | $PROBES ($PROBE_BAD) |"
  echo "| probe latency p50 / p99 / max | $P50 / $P99 / $PMAX ms |"
  echo
  echo "Answers by status:"
  echo
  echo "| status | count |"
  echo "| --- | --- |"
  echo "$STATUS_ROWS" | awk 'NF == 2 {printf "| %s | %s |\n", $1, $2}'
  echo
  echo "RSS (second:MB, every 5 s): $RSS_SERIES"
} > "$OUT"
cat "$OUT"
echo "soak: work files in $WORK"
[ "$CRASHES" = 0 ]
