#!/bin/sh
# Tessera behind a real lighttpd configured with IIPImage's documented IIIF rewrite, verbatim:
# /iiif/{id}/... reaches the FastCGI program as ?IIIF={id}/..., through mod_fastcgi on
# Tessera's unix socket; iipsrv's query forms go to /fcgi-bin/iipsrv.fcgi directly.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/frontend.sh"

frontend_begin lighttpd "apt-get install lighttpd" htdocs

SOCK="$WORK/tessera.sock" PORT=$(free_port)

# lighttpd started as root stays root unless server.username is set; it then talks to the
# socket as the user that made it, which is what the test needs either way.
cat >"$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/htdocs"
server.bind = "127.0.0.1"
server.port = $PORT
server.errorlog = "$WORK/lighttpd-error.log"
server.upload-dirs = ( "$WORK" )
server.modules = ( "mod_rewrite", "mod_fastcgi" )
# From IIPImage's IIIF documentation (https://iipimage.sourceforge.io/documentation/iiif),
# verbatim:
url.rewrite-once = ( "^/iiif/(.*)" => "/fcgi-bin/iipsrv.fcgi?IIIF=\$1" )
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" =>
    (( "socket" => "$SOCK", "check-local" => "disable" ))
)
CONF

start_tessera 3
lighttpd -D -f "$WORK/lighttpd.conf" >"$WORK/lighttpd.out" 2>&1 &
started $!
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/fcgi-bin/iipsrv.fcgi" ||
    fail "lighttpd did not start: $(cat "$WORK/lighttpd.out" "$WORK/lighttpd-error.log" 2>/dev/null)"

check_iiif "$BASE/iiif" "$BASE/iiif" a.tif "sub%2Fb.jp2" 3
check_iipsrv "$BASE/fcgi-bin/iipsrv.fcgi" a.tif

# iipsrv takes the IIIF version from IIIF_VERSION: restart Tessera with 2 behind the same lighttpd.
stop_pid $TS_PID
start_tessera 2
check_iiif "$BASE/iiif" "$BASE/iiif" a.tif "sub%2Fb.jp2" 2

finish
