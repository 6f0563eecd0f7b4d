#!/bin/sh
# The Debian package, as an administrator meets it: cpack builds it from this build tree,
# dpkg -i installs it (the maintainer scripts make the tessera user and enable the service),
# the service starts as its unit says (systemctl when systemd runs, else the unit's ExecStart
# as the unit's User and Group), serves the demo image and the viewer, and dpkg --purge removes
# every file, the user, the group and the service's enablement, leaving the machine as it was.
# Needs root; skipped (77) when a tool is missing or when the machine already has something
# named tessera that the test could disturb.
# Usage: package_deb.sh BUILD_DIR WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../compat/lib.sh"

build=$1
work=$2
[ "$(id -u)" = 0 ] || skip "installing a package needs root"
for t in cpack dpkg dpkg-deb dpkg-shlibdeps dpkg-query adduser setpriv curl vipsheader python3; do
    command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -f "$build/CPackConfig.cmake" ] || skip "no CPackConfig.cmake in $build"
# What the package would take over or remove: never touch an administrator's own.
status=$(dpkg-query -W -f='${db:Status-Status}' tessera 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || skip "a tessera package is on this machine ($status)"
if getent passwd tessera >/dev/null; then skip "a user named tessera exists"; fi
if getent group tessera >/dev/null; then skip "a group named tessera exists"; fi
for p in /etc/tessera /etc/default/tessera /var/lib/tessera /var/log/tessera \
    /etc/systemd/system/tessera.service /usr/local/lib/systemd/system/tessera.service \
    /run/systemd/system/tessera.service.d /etc/systemd/system/multi-user.target.wants/tessera.service \
    /var/lib/systemd/deb-systemd-helper-enabled/tessera.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/tessera.service; do
    if [ -e "$p" ]; then skip "$p exists"; fi
done
rm -rf "$work"
mkdir -p "$work"

# The state the package touches, to compare after the purge.
snapshot() {
    {
        getent passwd | cut -d: -f1 | sort
        getent group | cut -d: -f1 | sort
        find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
            /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null | sort
    } >"$1"
}
snapshot "$work/before.txt"

systemd=no
[ -d /run/systemd/system ] && systemd=yes
installed=no
pid=""
cleanup() {
    [ -n "$pid" ] && stop_pid "$pid"
    if [ "$systemd" = yes ]; then
        systemctl stop tessera.service >/dev/null 2>&1
        rm -rf /run/systemd/system/tessera.service.d
        systemctl daemon-reload >/dev/null 2>&1
    fi
    if [ "$installed" = yes ]; then
        dpkg --purge tessera >>"$work/dpkg.log" 2>&1
    fi
    rm -f /etc/default/tessera
    # What a faulty package would leave behind (the checks have said so by now): the machine had
    # none of it before the test.
    if getent passwd tessera >/dev/null; then deluser --quiet --system tessera >/dev/null 2>&1; fi
    if getent group tessera >/dev/null; then delgroup --quiet --system tessera >/dev/null 2>&1; fi
    rm -rf /etc/tessera /var/lib/tessera /var/log/tessera \
        /etc/systemd/system/multi-user.target.wants/tessera.service \
        /var/lib/systemd/deb-systemd-helper-enabled/tessera.service.dsh-also \
        /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/tessera.service \
        /var/lib/systemd/deb-systemd-helper-masked/tessera.service
    [ -L /etc/systemd/system/tessera.service ] && rm -f /etc/systemd/system/tessera.service
    return 0
}
trap 'cleanup || true' EXIT
trap 'exit 1' INT TERM

# dpkg takes its lock or fails at once: wait (bounded) for another dpkg or apt to finish.
dpkg_run() {
    i=0
    while :; do
        if "$@" >"$work/dpkg-step.log" 2>&1; then
            cat "$work/dpkg-step.log" >>"$work/dpkg.log"
            return 0
        fi
        cat "$work/dpkg-step.log" >>"$work/dpkg.log"
        grep -qi "lock" "$work/dpkg-step.log" && [ $i -lt 60 ] || return 1
        sleep 1
        i=$((i + 1))
    done
}

cpack --config "$build/CPackConfig.cmake" -B "$work/cpack" >"$work/cpack.log" 2>&1 ||
    fail "cpack failed: $(tail -5 "$work/cpack.log")"
deb=$(ls "$work"/cpack/tessera_*.deb)
[ -f "$deb" ] || fail "cpack wrote no tessera_*.deb"
dpkg-deb -f "$deb" Depends | grep -q "libtiff" ||
    fail "the package does not depend on libtiff's package: $(dpkg-deb -f "$deb" Depends)"

installed=yes
DEBIAN_FRONTEND=noninteractive dpkg_run dpkg -i "$deb" ||
    fail "dpkg -i failed: $(tail -10 "$work/dpkg.log")"
[ "$(dpkg-query -W -f='${db:Status-Status}' tessera)" = installed ] || fail "tessera is not installed"
dpkg -L tessera | sort >"$work/files.txt"
for f in /usr/bin/tessera /usr/share/tessera/demo.tif /usr/share/tessera/web/pages/viewer.html \
    /usr/share/man/man1/tessera.1.gz /etc/tessera/tessera.conf \
    /usr/lib/systemd/system/tessera.service /usr/share/doc/tessera/copyright; do
    grep -qx "$f" "$work/files.txt" || fail "the package does not own $f"
    [ -f "$f" ] || fail "$f is not installed"
done
grep -qx /etc/tessera/tessera.conf /var/lib/dpkg/info/tessera.conffiles ||
    fail "the configuration is not a conffile"

# The user the postinst made: a system account that cannot log in.
entry=$(getent passwd tessera) || fail "postinst made no user tessera"
uid=$(echo "$entry" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "tessera is not a system user (uid $uid)"
case "$(echo "$entry" | cut -d: -f7)" in
*/nologin | */false) ;;
*) fail "tessera's shell lets it log in: $entry" ;;
esac
getent group tessera >/dev/null || fail "postinst made no group tessera"

unit=/usr/lib/systemd/system/tessera.service
user=$(sed -n 's/^User=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
if [ "$user" != tessera ] || [ "$group" != tessera ]; then fail "the unit runs as $user:$group"; fi
port=$(free_port)
if [ "$systemd" = yes ]; then
    # The port through the unit's own hook for extra flags; nothing else is changed.
    echo "TESSERA_OPTIONS=--listen 127.0.0.1:$port" >/etc/default/tessera
    systemctl restart tessera.service || fail "systemctl restart: $(systemctl status tessera 2>&1 | tail -5)"
else
    # What systemd would run: ExecStart with $TESSERA_OPTIONS expanded, as User and Group.
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    case "$exec_start" in
    *'$TESSERA_OPTIONS'*) ;;
    *) fail "the unit's ExecStart has no \$TESSERA_OPTIONS: $exec_start" ;;
    esac
    cmd=$(echo "$exec_start" | sed "s|\\\$TESSERA_OPTIONS|--listen 127.0.0.1:$port|")
    # shellcheck disable=SC2086 # the command line is split into words as systemd splits it
    setpriv --reuid="$user" --regid="$group" --init-groups -- $cmd </dev/null >"$work/server.log" 2>&1 &
    pid=$!
fi
base="http://127.0.0.1:$port"
wait_http "$base/iiif/3/demo/info.json" || fail "the service did not answer: $(cat "$work/server.log" 2>/dev/null)"
if [ "$systemd" = yes ]; then
    main=$(systemctl show -p MainPID --value tessera.service)
    runs_as=$(ps -o user= -p "$main" || true)
else
    runs_as=$(ps -o user= -p "$pid" || true)
fi
[ "$runs_as" = tessera ] || fail "the server runs as '$runs_as', not tessera"
demo=/usr/share/tessera/demo.tif
code=$(curl -s -o "$work/info.json" -w '%{http_code}' "$base/iiif/3/demo/info.json")
[ "$code" = 200 ] || fail "info.json: HTTP $code"
got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%dx%d" % (d["width"], d["height"]))' "$work/info.json")
[ "$got" = "$(dims "$demo")" ] || fail "info.json says $got, the demo image is $(dims "$demo")"
code=$(curl -s -o "$work/tile.jpg" -w '%{http_code}' "$base/iiif/3/demo/0,0,512,512/256,/0/default.jpg")
[ "$code" = 200 ] || fail "tile: HTTP $code"
[ "$(dims "$work/tile.jpg")" = 256x256 ] || fail "the tile decodes to $(dims "$work/tile.jpg"), not 256x256"
code=$(curl -s -o "$work/viewer.html" -w '%{http_code}' "$base/viewer/demo")
[ "$code" = 200 ] || fail "viewer page: HTTP $code"
cmp -s "$work/viewer.html" /usr/share/tessera/web/pages/viewer.html ||
    fail "the viewer page served is not the installed one"
code=$(curl -s -o "$work/osd.js" -w '%{http_code}' "$base/static/openseadragon/openseadragon.min.js")
[ "$code" = 200 ] || fail "OpenSeadragon: HTTP $code"
cmp -s "$work/osd.js" /usr/share/tessera/web/vendor/openseadragon/openseadragon.min.js ||
    fail "the OpenSeadragon bundle served is not the installed one"

if [ "$systemd" = yes ]; then
    systemctl stop tessera.service
else
    stop_pid "$pid" || true # its kill -KILL of an exited process fails
    pid=""
fi
rm -f /etc/default/tessera
DEBIAN_FRONTEND=noninteractive dpkg_run dpkg --purge tessera ||
    fail "dpkg --purge failed: $(tail -10 "$work/dpkg.log")"
installed=no

# Nothing of the package is left: no file it listed, and no directory of its own (a directory
# stays only when something else lives in it).
while read -r f; do
    if [ -d "$f" ] && [ ! -L "$f" ]; then
        [ -n "$(ls -A "$f")" ] || fail "purge left the empty directory $f"
    elif [ -e "$f" ] || [ -L "$f" ]; then
        fail "purge left $f"
    fi
done <"$work/files.txt"
for p in /etc/tessera /usr/share/tessera /var/lib/tessera /var/log/tessera; do
    [ ! -e "$p" ] || fail "purge left $p"
done
status=$(dpkg-query -W -f='${db:Status-Status}' tessera 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "dpkg still knows tessera as $status"
snapshot "$work/after.txt"
diff -u "$work/before.txt" "$work/after.txt" >"$work/state.diff" ||
    fail "users, groups or systemd links differ after the purge: $(cat "$work/state.diff")"
echo "PASS: $(basename "$deb") installed, served the demo as tessera (systemd: $systemd), purged without a trace"
