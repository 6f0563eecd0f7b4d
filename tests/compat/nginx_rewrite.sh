#!/bin/sh
# Tessera behind a real nginx configured with IIPImage's documented IIIF rewrite, verbatim:
# /iiif/{id}/... reaches the FastCGI program as ?IIIF=%2F{id}/..., and iipsrv's own query
# forms (IIP, Zoomify, DeepZoom) go to /fcgi-bin/iipsrv.fcgi directly.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/frontend.sh"

command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/out" "$WORK/nginx-tmp" || fail "cannot make $WORK"
chmod 755 "$WORK"
trap stop_all EXIT INT TERM
OUT="$WORK/out"
images_setup "$DATA" "$WORK/img"

SOCK="$WORK/tessera.sock" PORT=$(free_port)
start_tessera() { # IIIF_VERSION
    rm -f "$SOCK"
    FILESYSTEM_PREFIX="$WORK/img/" IIIF_VERSION=$1 "$TESSERA" --fcgi "$SOCK" --threads 2 \
        >"$WORK/tessera-$1.out" 2>&1 &
    TS_PID=$!
    started $TS_PID
    i=0
    while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$SOCK" ] || fail "tessera did not open its FastCGI socket: $(cat "$WORK/tessera-$1.out")"
}

user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat >"$WORK/nginx.conf" <<CONF
$user
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/nginx-tmp/body;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        # From IIPImage's IIIF documentation (https://iipimage.sourceforge.io/documentation/iiif),
        # verbatim:
        merge_slashes off;
        rewrite ^/iiif/(.*) /fcgi-bin/iipsrv.fcgi?IIIF=%2F\$1 last;
        location /fcgi-bin/iipsrv.fcgi {
            fastcgi_pass unix:$SOCK;
            include /etc/nginx/fastcgi_params;
        }
    }
}
CONF

start_tessera 3
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/fcgi-bin/iipsrv.fcgi" || fail "nginx did not start: $(cat "$WORK/nginx-error.log")"

# Debian 12's nginx fastcgi_params sends HTTP_HOST as \$host, which drops the port (a security
# update, explained in that file); ids are built from HTTP_HOST, as iipsrv builds them.
IDS="$BASE/iiif"
grep -q '^fastcgi_param *HTTP_HOST *\$host;' /etc/nginx/fastcgi_params && IDS="http://127.0.0.1/iiif"
check_iiif "$BASE/iiif" "$IDS" a.tif "sub%2Fb.jp2" 3
check_iipsrv "$BASE/fcgi-bin/iipsrv.fcgi" a.tif

# iipsrv takes the IIIF version from IIIF_VERSION: restart Tessera with 2 behind the same nginx.
stop_pid $TS_PID
start_tessera 2
check_iiif "$BASE/iiif" "$IDS" a.tif "sub%2Fb.jp2" 2

finish
