#!/bin/sh
# The web-server recipes in docs/, each run by the real server with only its port and paths
# substituted (and Tessera started by the installed unit's ExecStart line and configuration,
# paths substituted, where the recipe expects a running service): through each, the folder pages, the viewer and
# its assets, a manifest, /health, IIIF (with %2F in identifiers) and IIP must answer.
#   recipes.sh nginx|lighttpd|apache-fcgid|apache-proxy-fcgi TESSERA DATA WORK
set -u
RECIPE=$1 TESSERA=$2 DATA=$3 WORK=$4
HERE=$(dirname "$0")
DOCS="$HERE/../../docs"
. "$HERE/lib.sh"
. "$HERE/frontend.sh"

case "$RECIPE" in
nginx) server=nginx hint="apt-get install nginx" ;;
lighttpd) server=lighttpd hint="apt-get install lighttpd" ;;
apache-fcgid | apache-proxy-fcgi) server=apache2 hint="apt-get install apache2" ;;
*) fail "unknown recipe '$RECIPE'" ;;
esac
[ -f "$DOCS/$RECIPE.conf" ] || fail "no recipe $DOCS/$RECIPE.conf"
if [ "$RECIPE" = apache-fcgid ]; then
    [ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
        skip "mod_fcgid not installed (apt-get install libapache2-mod-fcgid)"
fi
frontend_begin "$server" "$hint" bin
# Programs mod_fcgid spawned from our copy outlive Apache for a moment: stop them by that path.
stop_ours() {
    stop_all
    for p in $(pgrep -f "$WORK/(httpd.conf|bin/tessera)" 2>/dev/null); do
        [ "$p" != $$ ] && stop_pid "$p"
    done
}
trap stop_ours EXIT

SOCK="$WORK/tessera.sock" PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
# A copy the web server's user can run (Apache spawns it as www-data when we are root).
cp "$TESSERA" "$WORK/bin/tessera" && chmod 755 "$WORK/bin" "$WORK/bin/tessera" ||
    fail "cannot copy tessera"
# Laid out as installed: PREFIX/bin/tessera finds its pages in PREFIX/share/tessera/web.
mkdir -p "$WORK/share/tessera" && ln -sfn "$(cd "$(dirname "$TESSERA")" && pwd)/web" \
    "$WORK/share/tessera/web" || fail "cannot lay out share/tessera/web"

# recipe FILE: docs/FILE with the installation's paths replaced by the work directory's.
recipe() {
    sed -e "s|/usr/local/bin/tessera|$WORK/bin/tessera|g" \
        -e "s|/run/tessera/tessera.sock|$SOCK|g" \
        -e "s|/srv/images/|$WORK/img/|g" -e "s|/srv/images|$WORK/img|g" "$DOCS/$1"
}

# The service as the installed unit starts it (packaging/tessera.service.in: tessera --config
# FILE), with the installed configuration switched to FastCGI on the socket the recipes name,
# as the configuration's own comment says; the web server's user gets the socket's group.
start_service() {
    conf="$WORK/tessera.conf"
    sed -e "s|@TESSERA_IMAGES@|$WORK/img|g" -e '/@TESSERA_DEMO@/d' -e "s|@TESSERA_LOGS@|$WORK|g" \
        -e "s|^# fcgi = /run/tessera/tessera.sock|fcgi = $SOCK|" \
        "$HERE/../../packaging/tessera.conf.in" >"$conf"
    grep -q "^fcgi = $SOCK" "$conf" || fail "packaging/tessera.conf.in has no '# fcgi =' line"
    cmd=$(sed -n 's/^ExecStart=//p' "$HERE/../../packaging/tessera.service.in" |
        sed -e "s|@TESSERA_BINARY@|$WORK/bin/tessera|" -e "s|@TESSERA_CONF@|$conf|" \
            -e 's| \$TESSERA_OPTIONS||')
    [ -n "$cmd" ] || fail "no ExecStart line in packaging/tessera.service.in"
    rm -f "$SOCK"
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
    $cmd >"$WORK/tessera.out" 2>&1 &
    started $!
    i=0
    while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$SOCK" ] || fail "tessera did not open its socket: $(cat "$WORK/tessera.out")"
    [ "$(id -u)" = 0 ] && chgrp www-data "$SOCK"
}

case "$RECIPE" in
nginx)
    start_service
    cp /etc/nginx/fastcgi_params "$WORK/fastcgi_params" || fail "no /etc/nginx/fastcgi_params"
    recipe nginx.conf | sed -e "s|listen 80;|listen 127.0.0.1:$PORT;|" >"$WORK/site.conf"
    user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    mkdir -p "$WORK/nginx-tmp"
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
    include $WORK/site.conf;
}
CONF
    nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
    started $!
    log="$WORK/nginx-error.log"
    ;;
lighttpd)
    start_service
    recipe lighttpd.conf >"$WORK/tessera-lighttpd.conf"
    cat >"$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/htdocs"
server.bind = "127.0.0.1"
server.port = $PORT
server.errorlog = "$WORK/lighttpd-error.log"
server.upload-dirs = ( "$WORK" )
server.modules = ( )
include "$WORK/tessera-lighttpd.conf"
CONF
    mkdir -p "$WORK/htdocs"
    lighttpd -D -f "$WORK/lighttpd.conf" >"$WORK/lighttpd.out" 2>&1 &
    started $!
    log="$WORK/lighttpd-error.log"
    ;;
apache-*)
    apache_conf "$WORK/httpd.conf" "$WORK" "$PORT"
    if [ "$RECIPE" = apache-proxy-fcgi ]; then
        start_service
        m=/usr/lib/apache2/modules
        printf 'LoadModule proxy_module %s/mod_proxy.so\nLoadModule proxy_fcgi_module %s/mod_proxy_fcgi.so\n' \
            "$m" "$m" >>"$WORK/httpd.conf"
    fi
    recipe "$RECIPE.conf" >"$WORK/tessera-apache.conf"
    echo "Include $WORK/tessera-apache.conf" >>"$WORK/httpd.conf"
    apache2 -f "$WORK/httpd.conf" -DFOREGROUND >"$WORK/apache.out" 2>&1 &
    started $!
    log="$WORK/apache/error.log"
    ;;
esac
wait_http "$BASE/health" ||
    fail "$server did not start: $(cat "$WORK"/*.out "$log" 2>/dev/null | tail -20)"

# check_page NAME PATH TYPE TEXT: status 200, the content type, and TEXT in the body.
check_page() {
    s=$(curl -s --max-time 20 -o "$OUT/page" -w '%{http_code} %{content_type}' "$BASE$2" || true)
    if [ "${s%% *}" = 200 ] && echo "${s#* }" | grep -q "^$3" && grep -qF "$4" "$OUT/page"; then
        ok "$1"
    else
        nok "$1" "$2: $s, $(head -c 200 "$OUT/page")"
    fi
}

check_page "health" /health application/json '"status":"ok"'
check_page "folder page" / text/html 'href="/viewer/a.tif"'
check_page "sub-folder page" /browse/sub text/html 'alt="b.jp2"'
check_page "viewer page" /viewer/sub%2Fb.jp2 text/html '/static/viewer.js'
check_page "viewer script" /static/viewer.js text/javascript 'OpenSeadragon('
check_page "OpenSeadragon" /static/openseadragon/openseadragon.min.js text/javascript 'OpenSeadragon'
check_page "stylesheet" /static/style.css text/css 'body.viewer'
check_page "collection" /collection application/ld+json '"Collection"'
check_page "folder page by query" "/?page=1" text/html 'href="/viewer/a.tif"'
check_page "Mirador page with its query" "/mirador?manifest=$BASE/manifest/a.tif" text/html \
    '/static/mirador/mirador.min.js'

s=$(get "$BASE/manifest/sub%2Fb.jp2" "$OUT/manifest.json")
if [ "$s" = 200 ] && python3 - "$OUT/manifest.json" "$BASE" "$JP2_W" "$JP2_H" <<'PY'; then
import json, sys
m = json.load(open(sys.argv[1]))
canvas = m["items"][0]
body = canvas["items"][0]["items"][0]["body"]
assert m["type"] == "Manifest" and m["id"] == sys.argv[2] + "/manifest/sub%2Fb.jp2", m["id"]
assert (canvas["width"], canvas["height"]) == (int(sys.argv[3]), int(sys.argv[4]))
assert body["service"][0]["id"] == sys.argv[2] + "/iiif/3/sub%2Fb.jp2", body["service"]
PY
    ok "manifest names the image through the front end"
else
    nok "manifest" "status $s: $(head -c 300 "$OUT/manifest.json")"
fi

# A browser's error page comes through, not the server's own.
s=$(curl -s --max-time 20 -H 'Accept: text/html' -o "$OUT/err" -w '%{http_code} %{content_type}' \
    "$BASE/viewer/missing.tif" || true)
[ "$s" = "404 text/html; charset=utf-8" ] && grep -q 'class="error-box"' "$OUT/err" &&
    ok "error page" || nok "error page" "$s: $(head -c 200 "$OUT/err")"

check_iiif "$BASE/iiif/3" "$BASE/iiif/3" a.tif "sub%2Fb.jp2" 3
check_iipsrv "$BASE/fcgi-bin/iipsrv.fcgi" a.tif

finish
