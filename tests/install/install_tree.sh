#!/bin/sh
# `cmake --install` into a fresh prefix: every file in its place, paths inside the installed
# files pointing at that prefix, the man page listing exactly the options of --help, every
# setting in the default configuration accepted by the server, and the installed server
# serving the demo image and the viewer from the installed files (not the build tree's).
# Usage: install_tree.sh BUILD_DIR WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../compat/lib.sh"

build=$1
work=$2
command -v curl >/dev/null || skip "curl is not installed"
command -v vipsheader >/dev/null || skip "vipsheader (libvips-tools) is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
rm -rf "$work"
mkdir -p "$work"

# Outside the build tree: a binary inside it would use the build tree's assets.
prefix=$(mktemp -d /tmp/tessera-install-test.XXXXXX)
trap 'stop_all || true; rm -rf "$prefix"' EXIT
trap 'exit 1' INT TERM

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -5 "$work/install.log")"

for f in bin/tessera share/tessera/demo.tif share/tessera/web/pages/viewer.html \
    share/tessera/web/pages/mirador.html share/tessera/web/vendor/openseadragon/openseadragon.min.js \
    share/tessera/web/vendor/openseadragon/LICENSE.txt share/tessera/web/vendor/mirador/mirador.min.js \
    share/tessera/web/vendor/mirador/LICENSE share/man/man1/tessera.1.gz etc/tessera/tessera.conf \
    lib/systemd/system/tessera.service share/doc/tessera/README.md share/doc/tessera/LICENSE \
    share/doc/tessera/nginx.conf; do
    [ -f "$prefix/$f" ] || fail "cmake --install did not place $f"
done
[ -x "$prefix/bin/tessera" ] || fail "bin/tessera is not executable"
[ -d "$prefix/var/lib/tessera/images" ] || fail "no image root var/lib/tessera/images"

# The installed texts name the prefix installed to, not the configured one.
unit="$prefix/lib/systemd/system/tessera.service"
conf="$prefix/etc/tessera/tessera.conf"
grep -qx "ExecStart=$prefix/bin/tessera --config $conf \$TESSERA_OPTIONS" "$unit" ||
    fail "the unit's ExecStart is not the installed binary and configuration: $(grep ExecStart= "$unit")"
grep -qx "root = $prefix/var/lib/tessera/images" "$conf" || fail "the configuration's root: $(grep '^root' "$conf")"
grep -qx "demo = $prefix/share/tessera/demo.tif" "$conf" || fail "the configuration's demo: $(grep '^demo' "$conf")"
for s in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes User=tessera; do
    grep -qx "$s" "$unit" || fail "the unit lacks $s"
done
if command -v systemd-analyze >/dev/null; then
    # MANPATH: it checks that Documentation=man:tessera(1) resolves.
    MANPATH="$prefix/share/man" systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$work/verify.log")"
fi

# The man page: roff without warnings, and its option entries are exactly --help's options.
man="$work/tessera.1"
gzip -dc "$prefix/share/man/man1/tessera.1.gz" >"$man"
if command -v groff >/dev/null; then
    groff -man -ww -z "$man" >"$work/groff.log" 2>&1 || fail "groff failed: $(cat "$work/groff.log")"
    [ ! -s "$work/groff.log" ] || fail "groff warns about the man page: $(cat "$work/groff.log")"
fi
grep -q '@[A-Z_]*@' "$man" && fail "the man page has unfilled @VARIABLES@: $(grep '@[A-Z_]*@' "$man")"
"$prefix/bin/tessera" --help | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p' | sort -u >"$work/help.txt"
[ "$(wc -l <"$work/help.txt")" -gt 40 ] || fail "--help listed only $(wc -l <"$work/help.txt") options"
# An entry is a .TP paragraph whose tag starts with an option: .B \-\-name or .BI \-\-name " ARG".
awk 'prev == ".TP" && /^\.BI? \\-\\-/ { print $2 } { prev = $0 }' "$man" |
    sed 's/\\-/-/g; s/^--//; s/=.*//' | sort -u >"$work/man.txt"
missing=$(comm -23 "$work/help.txt" "$work/man.txt" | tr '\n' ' ')
extra=$(comm -13 "$work/help.txt" "$work/man.txt" | tr '\n' ' ')
[ -z "$missing" ] || fail "options of --help missing from the man page: $missing"
[ -z "$extra" ] || fail "the man page documents options --help does not have: $extra"

# Every setting of the default configuration, the commented examples included, is one the
# server accepts with that value (--version returns after reading the file).
sed -E 's/^# ([a-z0-9-]+ = )/\1/' "$conf" >"$work/all-settings.conf"
[ "$(grep -cE '^[a-z0-9-]+ = ' "$work/all-settings.conf")" -gt 30 ] ||
    fail "the configuration shows too few settings"
"$prefix/bin/tessera" --config "$work/all-settings.conf" --version >"$work/conf.log" 2>&1 ||
    fail "the server refuses the configuration's settings: $(cat "$work/conf.log")"

# The installed server with the installed configuration. A mark added to the installed viewer
# page shows that the page comes from the installed folder.
echo "<!-- installed copy $$ -->" >>"$prefix/share/tessera/web/pages/viewer.html"
port=$(free_port)
"$prefix/bin/tessera" --config "$conf" --listen "127.0.0.1:$port" </dev/null >"$work/server.log" 2>&1 &
started $!
base="http://127.0.0.1:$port"
wait_http "$base/iiif/3/demo/info.json" || fail "the installed server did not answer: $(cat "$work/server.log")"

demo="$prefix/share/tessera/demo.tif"
code=$(curl -s -o "$work/info.json" -w '%{http_code}' "$base/iiif/3/demo/info.json")
[ "$code" = 200 ] || fail "info.json: HTTP $code"
got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%dx%d" % (d["width"], d["height"]))' "$work/info.json")
[ "$got" = "$(dims "$demo")" ] || fail "info.json says $got, the demo image is $(dims "$demo")"
code=$(curl -s -o "$work/tile.jpg" -w '%{http_code}' "$base/iiif/3/demo/0,0,512,512/256,/0/default.jpg")
[ "$code" = 200 ] || fail "tile: HTTP $code"
[ "$(dims "$work/tile.jpg")" = 256x256 ] || fail "the tile decodes to $(dims "$work/tile.jpg"), not 256x256"

code=$(curl -s -o "$work/viewer.html" -w '%{http_code}' "$base/viewer/demo")
[ "$code" = 200 ] || fail "viewer page: HTTP $code"
cmp -s "$work/viewer.html" "$prefix/share/tessera/web/pages/viewer.html" ||
    fail "the viewer page served is not the installed one"
code=$(curl -s -o "$work/osd.js" -w '%{http_code}' "$base/static/openseadragon/openseadragon.min.js")
[ "$code" = 200 ] || fail "OpenSeadragon: HTTP $code"
cmp -s "$work/osd.js" "$prefix/share/tessera/web/vendor/openseadragon/openseadragon.min.js" ||
    fail "the OpenSeadragon bundle served is not the installed one"
echo "PASS: cmake --install into $prefix: files, man page, configuration and a running server"
