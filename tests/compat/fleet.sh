#!/bin/sh
# A fleet: nginx load-balancing three Tessera processes that share one memcached and read their
# images from one S3 bucket (s3rver, with --source). A viewer's tile sequence goes through nginx;
# one instance is killed (SIGKILL, as a crash) half-way and no request is lost. Each instance's
# /metrics then shows that tiles one instance rendered were memcached hits on the others, and a
# fourth instance started afterwards serves the whole sequence from memcached without rendering
# a tile. Exits 77 (skipped) with the reason when nginx, memcached or s3rver is missing.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
command -v memcached >/dev/null || skip "memcached not installed (apt-get install memcached)"
command -v python3 >/dev/null || skip "python3 not installed"
command -v curl >/dev/null || skip "curl not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/img" "$WORK/out" || fail "cannot make $WORK"
chmod 755 "$WORK" "$WORK/img"
trap stop_all EXIT INT TERM

# ---- the masters in S3: s3rver, one bucket; the instances' root holds no image ----

start_s3rver "$WORK" masters
s3_put "$DATA/retina-pyr-jpeg-256.tif" "$S3/masters/fleet/retina.tif"
# The identifier a viewer asks for: archive/retina.tif, read from s3://masters/fleet/retina.tif.
ID='archive%2Fretina.tif'

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

# ---- memcached, three instances, nginx ----

MC_PORT=$(free_port)
mc_user=""
[ "$(id -u)" = 0 ] && mc_user="-u nobody" # memcached refuses to run as root
# shellcheck disable=SC2086
memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 $mc_user >"$WORK/memcached.out" 2>&1 &
MC_PID=$!
started $MC_PID

NGINX_PORT=$(free_port)
BASE="http://127.0.0.1:$NGINX_PORT"
# start_instance NAME: starts one Tessera on a free port; sets PORT_NAME and PID_NAME.
start_instance() {
    port=$(free_port)
    "$TESSERA" --root "$WORK/img" --listen "127.0.0.1:$port" --memcached "127.0.0.1:$MC_PORT" \
        --source "archive=s3://masters/fleet/" --s3-endpoint "$S3" --s3-access-key S3RVER \
        --s3-secret-key S3RVER >"$WORK/tessera-$1.out" 2>&1 &
    pid=$!
    started $pid
    eval "PORT_$1=$port PID_$1=$pid"
    wait_http "http://127.0.0.1:$port/health" || fail "instance $1 did not start: $(cat "$WORK/tessera-$1.out")"
}
start_instance a
start_instance b
start_instance c

# The README's configuration ("Running a fleet"), with loopback ports and paths in WORK.
nginx_head "$WORK/nginx.conf" "$WORK" "$NGINX_PORT"
cat >>"$WORK/nginx.conf" <<CONF
        location / {
            proxy_pass http://tessera;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }
        # Each instance's /metrics is scraped on its own address, never through here.
        location = /metrics {
            return 404;
        }
    }
    upstream tessera {
        server 127.0.0.1:$PORT_a max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$PORT_b max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$PORT_c max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
}
CONF
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
wait_http "$BASE/health" || fail "nginx did not start: $(cat "$WORK/nginx-error.log" "$WORK/nginx.out")"

# ---- a viewer's sequence ----

# What a deep-zoom viewer asks of a 1411 px square image with 256 px tiles: info.json, then
# every tile of each level from the coarsest to full resolution, row by row. One line each:
# the path and the pixel size the answer must have ("-" for info.json).
ID=$ID python3 - >"$WORK/sequence" <<'PY'
import math, os
ID = os.environ["ID"]
W = H = 1411
T = 256
print(f"/iiif/3/{ID}/info.json -")
for s in (16, 8, 4, 2, 1):
    step = T * s
    for y in range(0, H, step):
        for x in range(0, W, step):
            w, h = min(step, W - x), min(step, H - y)
            ow, oh = math.ceil(w / s), math.ceil(h / s)
            print(f"/iiif/3/{ID}/{x},{y},{w},{h}/{ow},{oh}/0/default.jpg {ow}x{oh}")
PY
TOTAL=$(wc -l <"$WORK/sequence")
TILES=$((TOTAL - 1))
HALF=$((TOTAL / 2))

# The pixel size of each JPEG named on stdin, one "WxH" line each ("-" for what is no JPEG):
# read from the frame header, in one process (vipsheader would cost a process per file).
cat >"$WORK/jpeg_size.py" <<'PY'
import sys
def size(path):
    with open(path, "rb") as f:
        d = f.read()
    if d[:2] != b"\xff\xd8":
        return "-"
    i = 2
    while i + 4 <= len(d):
        if d[i] != 0xFF:
            return "-"
        m = d[i + 1]
        if m == 0xFF:
            i += 1
            continue
        n = int.from_bytes(d[i + 2:i + 4], "big")
        if m in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h = int.from_bytes(d[i + 5:i + 7], "big")
            w = int.from_bytes(d[i + 7:i + 9], "big")
            return f"{w}x{h}"
        i += 2 + n
    return "-"
for line in sys.stdin:
    print(size(line.strip()))
PY

# fetch BASE FIRST LAST TAG [HOST]: requests lines FIRST..LAST of the sequence from BASE (with
# that Host header when given), one after the other as a viewer would, and checks each answer's
# status and pixel size. Prints the number of wrong answers; their reasons go to WORK/bad-TAG.
fetch() {
    : >"$WORK/bad-$4"
    : >"$WORK/got-$4"
    n=$2
    sed -n "$2,$3p" "$WORK/sequence" | while read -r path size; do
        out="$WORK/out/$4-$n"
        if [ -n "${5:-}" ]; then
            code=$(curl -s --max-time 30 -H "Host: $5" -o "$out" -w '%{http_code}' "$1$path")
        else
            code=$(curl -s --max-time 30 -o "$out" -w '%{http_code}' "$1$path")
        fi
        echo "$path $size $code $out" >>"$WORK/got-$4"
        n=$((n + 1))
    done
    awk '{ print $4 }' "$WORK/got-$4" | python3 "$WORK/jpeg_size.py" >"$WORK/size-$4"
    paste -d ' ' "$WORK/got-$4" "$WORK/size-$4" | while read -r path want code out got; do
        if [ "$code" != 200 ]; then
            echo "$path: status $code"
        elif [ "$want" != - ] && [ "$got" != "$want" ]; then
            echo "$path: $got, expected $want"
        fi
    done >"$WORK/bad-$4"
    wc -l <"$WORK/bad-$4"
}

# metric PORT SERIES: the value of one series in an instance's /metrics (0 when absent).
metric() {
    metric_at "http://127.0.0.1:$1" "$2"
}
MC_HITS='tessera_cache_hits_total{cache="memcached"}'
MC_MISSES='tessera_cache_misses_total{cache="memcached"}'
STORES='tessera_memcached_stores_total'
IIIF_OK='tessera_requests_total{route="iiif",code="200"}'
S3_OK='tessera_source_requests_total{source="s3",outcome="ok"}'
S3_ERRORS='tessera_source_requests_total{source="s3",outcome="error"}'
S3_BYTES='tessera_source_bytes_total{source="s3"}'

# ---- one instance dies half-way: nothing is lost ----

bad1=$(fetch "$BASE" 1 "$HALF" first)
served_b=$(metric "$PORT_b" "$IIIF_OK")
kill -KILL "$PID_b"
wait "$PID_b" 2>/dev/null
bad2=$(fetch "$BASE" $((HALF + 1)) "$TOTAL" second)
if [ "$bad1" = 0 ] && [ "$bad2" = 0 ]; then
    ok "$TOTAL requests through nginx, instance b killed after $HALF: every answer 200 with the right pixel size"
else
    nok "viewer with a crash" "$bad1 wrong before the kill, $bad2 after: $(cat "$WORK/bad-first" "$WORK/bad-second")"
fi
[ "$served_b" -gt 0 ] && ok "instance b served $served_b requests before it died" ||
    nok "load balancing" "instance b served nothing before the kill"

# The survivors read the image from S3, not from their (empty) root, and S3 never failed them.
s3_ok=$(($(metric "$PORT_a" "$S3_OK") + $(metric "$PORT_c" "$S3_OK")))
s3_bytes=$(($(metric "$PORT_a" "$S3_BYTES") + $(metric "$PORT_c" "$S3_BYTES")))
s3_errors=$(($(metric "$PORT_a" "$S3_ERRORS") + $(metric "$PORT_c" "$S3_ERRORS")))
[ "$s3_ok" -gt 0 ] && [ "$s3_bytes" -gt 0 ] && [ "$s3_errors" = 0 ] &&
    ok "a and c read the image from S3: $s3_ok requests, $s3_bytes bytes, no error" ||
    nok "reads from S3" "$s3_ok requests, $s3_bytes bytes, $s3_errors errors"

# Every answer of the first pass was rendered once somewhere and stored in memcached.
stores=$(($(metric "$PORT_a" "$STORES") + $(metric "$PORT_c" "$STORES")))
[ "$stores" -gt 0 ] && ok "a and c stored $stores answers in memcached" ||
    nok "memcached stores" "none"

# ---- the survivors: what b rendered is a memcached hit on them ----

hits_before=$(($(metric "$PORT_a" "$MC_HITS") + $(metric "$PORT_c" "$MC_HITS")))
stores_before=$stores
bad3=$(fetch "$BASE" 1 "$TOTAL" again)
hits_a=$(metric "$PORT_a" "$MC_HITS")
hits_c=$(metric "$PORT_c" "$MC_HITS")
stores_after=$(($(metric "$PORT_a" "$STORES") + $(metric "$PORT_c" "$STORES")))
[ "$bad3" = 0 ] && ok "the sequence again through the two survivors: every answer right" ||
    nok "second viewer" "$(cat "$WORK/bad-again")"
# A memcached hit is an answer the instance did not hold itself: rendered by another one.
[ $((hits_a + hits_c - hits_before)) -gt 0 ] &&
    ok "memcached hits on the survivors: a $hits_a, c $hits_c (b rendered those tiles)" ||
    nok "memcached hits" "a $hits_a, c $hits_c, before the second viewer $hits_before"
[ "$stores_after" = "$stores_before" ] &&
    ok "the second viewer rendered nothing: no new memcached stores" ||
    nok "second viewer renders" "stores went from $stores_before to $stores_after"

# ---- a fresh instance never rendered anything: every tile is a memcached hit ----

start_instance d
# Asked directly with nginx's Host: the answers name the same public address, so share keys.
bad4=$(fetch "http://127.0.0.1:$PORT_d" 1 "$TOTAL" fresh "127.0.0.1:$NGINX_PORT")
hits_d=$(metric "$PORT_d" "$MC_HITS")
misses_d=$(metric "$PORT_d" "$MC_MISSES")
stores_d=$(metric "$PORT_d" "$STORES")
served_d=$(metric "$PORT_d" "$IIIF_OK")
s3_ok_d=$(metric "$PORT_d" "$S3_OK")
s3_bytes_d=$(metric "$PORT_d" "$S3_BYTES")
[ "$bad4" = 0 ] && ok "a fresh instance answers the whole sequence right" ||
    nok "fresh instance" "$(cat "$WORK/bad-fresh")"
if [ "$hits_d" = "$TOTAL" ] && [ "$misses_d" = 0 ] && [ "$stores_d" = 0 ] &&
    [ "$served_d" = "$TOTAL" ]; then
    ok "the fresh instance served all $TOTAL answers ($TILES tiles) as memcached hits, rendering none"
else
    nok "fresh instance from memcached" \
        "served $served_d, memcached hits $hits_d, misses $misses_d, stores $stores_d (of $TOTAL)"
fi

# The answers' keys carry the object's version, so d asks S3 for it (HEAD), but the pixels
# came from memcached: not one byte of the image was read.
[ "$s3_ok_d" -gt 0 ] && [ "$s3_bytes_d" = 0 ] &&
    ok "the fresh instance asked S3 only for the version ($s3_ok_d requests, no bytes)" ||
    nok "fresh instance's S3 reads" "$s3_ok_d requests, $s3_bytes_d bytes"

# ---- memcached dies: the fleet keeps serving, /health says why ----

kill -KILL "$MC_PID"
wait "$MC_PID" 2>/dev/null
sleep 1.2 # past the second /health's last probe stands
code=$(curl -s -o "$WORK/out/health" -w '%{http_code}' "http://127.0.0.1:$PORT_a/health")
[ "$code" = 503 ] && grep -q '"memcached":{"ok":false' "$WORK/out/health" &&
    ok "/health of an instance: 503 naming memcached" ||
    nok "/health with memcached down" "status $code: $(cat "$WORK/out/health")"
bad5=$(fetch "$BASE" "$((TOTAL - 9))" "$TOTAL" nomc)
[ "$bad5" = 0 ] && ok "tiles still come through nginx with memcached down" ||
    nok "tiles without memcached" "$(cat "$WORK/bad-nomc")"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
