#!/bin/sh
# Tessera as a FastCGI application behind a real nginx on loopback: IIIF requests through
# it, identifiers with %2F included, the iipsrv query forms, HEAD, and a clean stop.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/img/sub dir" "$WORK/out" || fail "cannot make $WORK"
chmod 755 "$WORK" "$WORK/img"
trap stop_all EXIT INT TERM
cp "$DATA/retina-pyr-jpeg-256.tif" "$WORK/img/sub dir/a.tif"

SOCK="$WORK/tessera.sock" PORT=$(free_port)
"$TESSERA" --root "$WORK/img" --fcgi "$SOCK" --threads 2 >"$WORK/tessera.out" 2>&1 &
TS_PID=$!
started $TS_PID
nginx_conf "$WORK/nginx.conf" "$WORK" "$PORT" "unix:$SOCK"
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
BASE="http://127.0.0.1:$PORT"
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$SOCK" ] || fail "tessera did not open its FastCGI socket: $(cat "$WORK/tessera.out")"
wait_http "$BASE/health" || fail "nginx did not start: $(cat "$WORK/nginx-error.log")"

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

ID="sub%20dir%2Fa.tif"
s=$(curl -s -o "$WORK/out/info.json" -w '%{http_code}' "$BASE/iiif/3/$ID/info.json")
if [ "$s" = 200 ] && grep -q "\"id\": \"$BASE/iiif/3/$ID\"" "$WORK/out/info.json" &&
    grep -q '"width": 1411' "$WORK/out/info.json"; then
    ok "info.json through nginx keeps %2F and the host:port"
else
    nok "info.json" "status $s: $(head -c 300 "$WORK/out/info.json")"
fi

s=$(curl -s -o "$WORK/out/r.jpg" -w '%{http_code}' "$BASE/iiif/3/$ID/0,0,700,350/350,/0/default.jpg")
d=$(dims "$WORK/out/r.jpg" 2>/dev/null)
[ "$s" = 200 ] && [ "$d" = 350x175 ] && ok "region request with %2F" || nok "region" "status $s, size $d"

s=$(curl -s -o "$WORK/out/g.png" -w '%{http_code}' "$BASE/iiif/2/$ID/full/100,/90/gray.png")
d=$(dims "$WORK/out/g.png" 2>/dev/null)
[ "$s" = 200 ] && [ "$d" = 100x100 ] && ok "IIIF 2 gray png" || nok "IIIF 2 png" "status $s, size $d"

s=$(curl -s -o "$WORK/out/q.json" -w '%{http_code}' "$BASE/fcgi-bin/iipsrv.fcgi?IIIF=$ID/info.json")
[ "$s" = 200 ] && grep -q '"height": 1411' "$WORK/out/q.json" && ok "?IIIF= query form" ||
    nok "?IIIF=" "status $s"

s=$(curl -s -o "$WORK/out/dz.xml" -w '%{http_code}' "$BASE/iipsrv.fcgi?DeepZoom=$ID.dzi")
[ "$s" = 200 ] && grep -q 'Width="1411"' "$WORK/out/dz.xml" && ok "?DeepZoom= form" ||
    nok "?DeepZoom=" "status $s"

h=$(curl -s -I "$BASE/iiif/3/$ID/full/64,/0/default.jpg" | tr -d '\r')
echo "$h" | grep -q '^HTTP/1.1 200' && echo "$h" | grep -qi '^content-type: image/jpeg' &&
    ok "HEAD" || nok "HEAD" "$h"

etag=$(echo "$h" | grep -i '^etag:' | cut -d' ' -f2)
s=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/iiif/3/$ID/full/64,/0/default.jpg")
[ "$s" = 304 ] && ok "conditional GET through FastCGI" || nok "If-None-Match" "status $s"

s=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/iiif/3/no%2Fsuch.tif/info.json")
[ "$s" = 404 ] && ok "missing image is 404" || nok "missing" "status $s"

s=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json")
[ "$s" = 403 ] || [ "$s" = 404 ] || [ "$s" = 400 ] && ok "escape attempt refused ($s)" ||
    nok "escape" "status $s"

# Several requests at once, served by both worker threads.
clients=""
for n in 1 2 3 4 5 6; do
    curl -s --max-time 30 -o "$WORK/out/p$n.jpg" "$BASE/iiif/3/$ID/full/$((50 * n)),/0/default.jpg" &
    clients="$clients $!"
done
for c in $clients; do wait "$c"; done
good=0
for n in 1 2 3 4 5 6; do
    [ "$(vipsheader -f width "$WORK/out/p$n.jpg" 2>/dev/null)" = $((50 * n)) ] && good=$((good + 1))
done
[ $good = 6 ] && ok "concurrent requests" || nok "concurrent" "$good of 6 right"

kill -TERM $TS_PID
i=0
while kill -0 $TS_PID 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $TS_PID 2>/dev/null && nok "SIGTERM" "still running after 5 s" || ok "stops on SIGTERM"
[ -e "$SOCK" ] && nok "socket cleanup" "socket left behind" || ok "socket removed"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
