#!/bin/sh
# Tessera spawned by a real Apache through mod_fcgid, as IIPImage documents iipsrv's set-up:
# ScriptAlias /fcgi-bin/ with AddHandler fcgid-script .fcgi, settings through FcgidInitialEnv,
# and the IIIF rewrite from /iiif/ to ?IIIF=. Tessera finds mod_fcgid's listening socket on fd 0.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/frontend.sh"

command -v apache2 >/dev/null || skip "apache2 not installed (apt-get install apache2)"
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
    skip "mod_fcgid not installed (apt-get install libapache2-mod-fcgid)"
command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/out" "$WORK/fcgi-bin" || fail "cannot make $WORK"
chmod 755 "$WORK"
trap 'stop_all; stop_spawned "$WORK"' EXIT
trap 'exit 1' INT TERM HUP PIPE # the EXIT trap then stops every server
OUT="$WORK/out"
images_setup "$DATA" "$WORK/img"
# A copy, not a link: Apache follows no symbolic links under "Options None".
cp "$TESSERA" "$WORK/fcgi-bin/iipsrv.fcgi" && chmod 755 "$WORK/fcgi-bin/iipsrv.fcgi" ||
    fail "cannot copy tessera"

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
CAPTURE_RULE='RewriteRule ^/iiif/(.*)$ /fcgi-bin/iipsrv.fcgi?IIIF=$1 [PT]'
start_apache() { # IIIF_VERSION [REWRITE-RULE]
    apache_conf "$WORK/httpd.conf" "$WORK" "$PORT"
    cat >>"$WORK/httpd.conf" <<CONF
# IIIF identifiers carry %2F (the IIIF spec asks for it): Apache refuses them unless told.
AllowEncodedSlashes NoDecode

# As IIPImage's server documentation sets iipsrv up under Apache and mod_fcgid:
ScriptAlias /fcgi-bin/ "$WORK/fcgi-bin/"
<Directory "$WORK/fcgi-bin/">
   AllowOverride None
   Options None
   Require all granted
   AddHandler fcgid-script .fcgi
</Directory>
FcgidInitialEnv FILESYSTEM_PREFIX "$WORK/img/"
FcgidInitialEnv LOGFILE "$WORK/log/iipsrv.log"
FcgidInitialEnv VERBOSITY "1"
FcgidInitialEnv IIIF_VERSION "$1"
FcgidIdleTimeout 0
FcgidMaxProcessesPerClass 1

# IIPImage's IIIF documentation gives Apache's rule as
#   RewriteRule ^/iiif/\$ /fcgi-bin/iipsrv.fcgi?IIIF=
# which, as printed, matches "/iiif/" alone and passes no identifier. The rule below is the
# same rewrite with the capture its lighttpd and nginx rules make ("^/iiif/(.*)" => "IIIF=\$1"),
# and [PT] so that the ScriptAlias above maps the rewritten path.
RewriteEngine On
${2:-$CAPTURE_RULE}
CONF
    apache2 -f "$WORK/httpd.conf" -DFOREGROUND >"$WORK/apache.out" 2>&1 &
    AP_PID=$!
    started $AP_PID
    wait_http "$BASE/fcgi-bin/iipsrv.fcgi" ||
        fail "apache did not start: $(cat "$WORK/apache.out" "$WORK/apache/error.log" 2>/dev/null)"
}

start_apache 3
check_iiif "$BASE/iiif" "$BASE/iiif" a.tif "sub%2Fb.jp2" 3
check_iipsrv "$BASE/fcgi-bin/iipsrv.fcgi" a.tif
# The plain query form: ids keep it.
check_info "IIIF 3 info.json through ?IIIF=" "$BASE/fcgi-bin/iipsrv.fcgi?IIIF=a.tif/info.json" \
    "$BASE/fcgi-bin/iipsrv.fcgi?IIIF=/a.tif" "${TIF_W}x$TIF_H" 3
grep -q "iipsrv.fcgi" "$WORK/log/iipsrv.log" 2>/dev/null && ok "LOGFILE from FcgidInitialEnv written" ||
    nok "LOGFILE" "$WORK/log/iipsrv.log has no request lines"

# iipsrv reads IIIF_VERSION from its environment: a new Apache with FcgidInitialEnv 2.
stop_pid $AP_PID
stop_spawned "$WORK"
start_apache 2
check_iiif "$BASE/iiif" "$BASE/iiif" a.tif "sub%2Fb.jp2" 2
stop_pid $AP_PID
stop_spawned "$WORK"

# The rule exactly as printed: it routes nothing to the FastCGI program, whichever program that
# is (without [PT] its target is a file under DocumentRoot, and it matches "/iiif/" alone), so
# no server can answer an image through it; the capture rule above is what works.
start_apache 3 'RewriteRule ^/iiif/$ /fcgi-bin/iipsrv.fcgi?IIIF='
before=$(wc -l <"$WORK/log/iipsrv.log" 2>/dev/null || echo 0)
s1=$(get "$BASE/iiif/" "$OUT/verbatim-root")
s2=$(get "$BASE/iiif/a.tif/info.json" "$OUT/verbatim-info")
after=$(wc -l <"$WORK/log/iipsrv.log" 2>/dev/null || echo 0)
if [ "$s1" = 404 ] && [ "$s2" = 404 ] && [ "$before" = "$after" ]; then
    ok "the Apache rule as printed reaches no FastCGI program (404 from Apache, no request logged)"
else
    nok "verbatim rule" "/iiif/ $s1, /iiif/a.tif/info.json $s2, log lines $before -> $after"
fi

stop_pid $AP_PID
sleep 0.5
left=$(pgrep -f "$WORK/(httpd.conf|fcgi-bin/)" || true)
[ -z "$left" ] && ok "no FastCGI process left after Apache stops" ||
    nok "leftovers" "still running: $left"

finish
