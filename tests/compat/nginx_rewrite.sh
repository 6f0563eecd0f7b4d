#!/bin/sh
# Tessera behind a real nginx configured with IIPImage's documented IIIF rewrite, verbatim:
# /iiif/{id}/... reaches the FastCGI program as ?IIIF=%2F{id}/..., and iipsrv's own query
# forms (IIP, Zoomify, DeepZoom) go to /fcgi-bin/iipsrv.fcgi directly.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/frontend.sh"

frontend_begin nginx "apt-get install nginx" nginx-tmp

SOCK="$WORK/tessera.sock" PORT=$(free_port)

nginx_iipimage_conf "$WORK/nginx.conf" "$WORK" "$PORT" "unix:$SOCK"

start_tessera 3
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/fcgi-bin/iipsrv.fcgi" || fail "nginx did not start: $(cat "$WORK/nginx-error.log")"

IDS=$(nginx_id_base "$BASE" /iiif)
check_iiif "$BASE/iiif" "$IDS" a.tif "sub%2Fb.jp2" 3
check_iipsrv "$BASE/fcgi-bin/iipsrv.fcgi" a.tif

# iipsrv takes the IIIF version from IIIF_VERSION: restart Tessera with 2 behind the same nginx.
stop_pid $TS_PID
start_tessera 2
check_iiif "$BASE/iiif" "$IDS" a.tif "sub%2Fb.jp2" 2

finish
