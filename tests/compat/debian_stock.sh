#!/bin/sh
# Debian's own iipsrv set-ups with Tessera's binary in iipsrv's place:
#  1. the Apache configuration of the iipimage-server package (mods-available/iipsrv.conf:
#     ScriptAlias /iipsrv/, AddHandler fcgid-script, FcgidInitialEnv ...), read from the
#     installed package at test time; only the binary's directory, the log path and the
#     listening address change, so that it runs unprivileged in a work directory on loopback;
#  2. the package's systemd unit (iipsrv.service): its ExecStart line run with the binary
#     swapped and 127.0.0.1 instead of 0.0.0.0 (test traffic stays on loopback and nothing is
#     offered to the network), the same settings as its environment, behind nginx's FastCGI.
# Debian's configuration sets no FILESYSTEM_PREFIX, so clients send full paths (FIF=/a/b.tif).
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/frontend.sh"

CONF=/etc/apache2/mods-available/iipsrv.conf UNIT=/lib/systemd/system/iipsrv.service
[ -f "$CONF" ] && [ -f "$UNIT" ] || skip "iipimage-server not installed (apt-get install iipimage-server)"
command -v apache2 >/dev/null || skip "apache2 not installed (apt-get install apache2)"
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
    skip "mod_fcgid not installed (apt-get install libapache2-mod-fcgid)"
command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/out" "$WORK/iipimage-server" || fail "cannot make $WORK"
chmod 755 "$WORK"
trap 'stop_all; stop_spawned "$WORK"' EXIT
trap 'exit 1' INT TERM HUP PIPE # the EXIT trap then stops every server
OUT="$WORK/out"
IMG="$WORK/img"
images_setup "$DATA" "$IMG"
cp "$TESSERA" "$WORK/iipimage-server/iipsrv.fcgi" && chmod 755 "$WORK/iipimage-server/iipsrv.fcgi" ||
    fail "cannot copy tessera"

# ?IIIF=/full/path ids keep the query form, the path percent-encoded as one segment.
query_id() { # ENDPOINT FULLPATH
    echo "$1?IIIF=/$(python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1].lstrip("/"), safe=""))' "$2")"
}

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
EP="$BASE/iipsrv/iipsrv.fcgi"
start_apache() { # EXTRA-LINE
    apache_conf "$WORK/httpd.conf" "$WORK" "$PORT"
    sed -e "s|\"/usr/lib/iipimage-server/\"|\"$WORK/iipimage-server/\"|" \
        -e "s|\"/var/log/iipsrv.log\"|\"$WORK/log/iipsrv.log\"|" "$CONF" >"$WORK/iipsrv.conf"
    grep -q "$WORK/iipimage-server/" "$WORK/iipsrv.conf" && grep -q "$WORK/log/" "$WORK/iipsrv.conf" ||
        fail "$CONF no longer has the lines this test changes"
    echo "$1" >>"$WORK/iipsrv.conf"
    echo "Include $WORK/iipsrv.conf" >>"$WORK/httpd.conf"
    apache2 -f "$WORK/httpd.conf" -DFOREGROUND >"$WORK/apache.out" 2>&1 &
    AP_PID=$!
    started $AP_PID
    wait_http "$EP" ||
        fail "apache did not start: $(cat "$WORK/apache.out" "$WORK/apache/error.log" 2>/dev/null)"
}

# 1a. The stock file, binary swapped and nothing else: without FILESYSTEM_PREFIX clients send
# full paths, and Tessera opens them where they are, as iipsrv does.
start_apache ""
check_iiif "$EP?IIIF=$IMG" "" a.tif "sub/b.jp2" 3 "$(query_id "$EP" "$IMG/a.tif")" \
    "$(query_id "$EP" "$IMG/sub/b.jp2")"
check_iipsrv "$EP" "$IMG/a.tif"
s=$(get "$EP?FIF=/etc/passwd&obj=Max-size" "$OUT/passwd")
if [ "$s" != 200 ] && ! grep -q root: "$OUT/passwd"; then
    ok "stock config: a file that is no image is not served ($s)"
else
    nok "no image" "status $s: $(head -c 200 "$OUT/passwd")"
fi
grep -q "iipsrv.fcgi" "$WORK/log/iipsrv.log" 2>/dev/null && ok "LOGFILE from the stock config written" ||
    nok "LOGFILE" "$WORK/log/iipsrv.log has no request lines"
stop_pid $AP_PID
stop_spawned "$WORK"

# 1b. One line added, naming the image directory: full paths under it and relative ones are
# served, an image outside it is refused.
cp "$IMG/a.tif" "$WORK/outside.tif" || fail "cannot copy a.tif"
start_apache "FcgidInitialEnv FILESYSTEM_PREFIX \"$IMG/\""
check_iiif "$EP?IIIF=$IMG" "" a.tif "sub/b.jp2" 3 "$(query_id "$EP" "$IMG/a.tif")" \
    "$(query_id "$EP" "$IMG/sub/b.jp2")"
s=$(get "$EP?FIF=a.tif&obj=Max-size" "$OUT/rel")
grep -q "Max-size:$TIF_W $TIF_H" "$OUT/rel" && ok "relative FIF beside full paths" ||
    nok "relative FIF" "status $s"
s=$(get "$EP?FIF=$WORK/outside.tif&obj=Max-size" "$OUT/outside")
[ "$s" = 403 ] && ok "with FILESYSTEM_PREFIX an image outside it is 403" || nok "outside" "status $s"
s=$(get "$EP?FIF=/etc/passwd&obj=Max-size" "$OUT/passwd")
[ "$s" = 403 ] && ok "full path outside the prefix is 403" || nok "outside" "status $s"
stop_pid $AP_PID
stop_spawned "$WORK"

# 2. The systemd unit's ExecStart, binary swapped, behind nginx's FastCGI with IIPImage's rule.
# Debian ships no /etc/default/iipsrv (the unit's EnvironmentFile): the settings are those of
# its Apache file, LOGFILE moved into the work directory; no FILESYSTEM_PREFIX, so full paths.
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ -n "$exec_start" ] || fail "no ExecStart in $UNIT"
FPORT=$(free_port)
args=""
for a in ${exec_start#* }; do
    case "$a" in
    0.0.0.0:*) a="127.0.0.1:$FPORT" ;;
    esac
    args="$args $a"
done
echo "$args" | grep -q "127.0.0.1:$FPORT" || fail "ExecStart binds no 0.0.0.0 address: $exec_start"
sed -n 's/^FcgidInitialEnv \([A-Z_]*\) "\(.*\)"$/\1=\2/p' "$CONF" |
    sed "s|^LOGFILE=.*|LOGFILE=$WORK/log/iipsrv-systemd.log|" >"$WORK/iipsrv.env"
# shellcheck disable=SC2086 # the unit's arguments, split as systemd splits them
(set -a && . "$WORK/iipsrv.env" && exec "$TESSERA" $args) >"$WORK/tessera.out" 2>&1 &
started $!
NPORT=$(free_port)
NBASE="http://127.0.0.1:$NPORT"
nginx_iipimage_conf "$WORK/nginx.conf" "$WORK" "$NPORT" "127.0.0.1:$FPORT"
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
wait_http "$NBASE/fcgi-bin/iipsrv.fcgi?FIF=$IMG/a.tif&obj=Max-size" ||
    fail "nginx or tessera did not start: $(cat "$WORK/nginx-error.log" "$WORK/tessera.out")"
echo "--- systemd ExecStart:$args"
# IIPImage's rule puts the '/' back before the path (IIIF=%2F$1): the URL carries it without.
full=$(python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1].lstrip("/"), safe=""))' "$IMG")
check_iiif "$NBASE/iiif" "$(nginx_id_base "$NBASE" /iiif)" "$full%2Fa.tif" "$full%2Fsub%2Fb.jp2" 3
check_iipsrv "$NBASE/fcgi-bin/iipsrv.fcgi" "$IMG/a.tif"

finish
