#!/bin/sh
# Differential test: the same IIP, DeepZoom and Zoomify requests to Debian's iipsrv (behind a
# loopback nginx) and to Tessera, on the same pyramidal TIFF. Same status, same metadata text,
# images of the same size with closely matching pixels.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"

IIPSRV=/usr/lib/iipimage-server/iipsrv.fcgi
[ -x "$IIPSRV" ] || skip "iipsrv not installed (apt-get install iipimage-server)"
command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/img" "$WORK/out" || fail "cannot make $WORK"
trap stop_all EXIT INT TERM
cp "$DATA/retina-pyr-jpeg-256.tif" "$WORK/img/retina.tif"
# A non-square pyramid too, so width and height cannot be confused.
vips crop "$WORK/img/retina.tif" "$WORK/crop.v" 100 50 1000 700 &&
    vips tiffsave "$WORK/crop.v" "$WORK/img/wide.tif" --tile --tile-width 256 \
        --tile-height 256 --pyramid --compression jpeg --Q 90 || fail "cannot make test pyramid"

IIP_PORT=$(free_port) NGINX_PORT=$(free_port) TS_PORT=$(free_port)
FILESYSTEM_PREFIX="$WORK/img/" LOGFILE="$WORK/iipsrv.log" VERBOSITY=1 \
    "$IIPSRV" --bind "127.0.0.1:$IIP_PORT" >"$WORK/iipsrv.out" 2>&1 &
started $!
nginx_conf "$WORK/nginx.conf" "$WORK" "$NGINX_PORT" "127.0.0.1:$IIP_PORT"
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
started $!
"$TESSERA" --root "$WORK/img" --listen "127.0.0.1:$TS_PORT" >"$WORK/tessera.out" 2>&1 &
started $!
IIP="http://127.0.0.1:$NGINX_PORT/fcgi-bin/iipsrv.fcgi"
TS="http://127.0.0.1:$TS_PORT/fcgi-bin/iipsrv.fcgi"
wait_http "$IIP" || fail "iipsrv behind nginx did not start: $(cat "$WORK/nginx-error.log")"
wait_http "http://127.0.0.1:$TS_PORT/health" || fail "tessera did not start: $(cat "$WORK/tessera.out")"

passed=0 failed=0
check() { # kind query
    kind=$1 q=$2 a="$WORK/out/a" b="$WORK/out/b"
    sa=$(curl -s --max-time 20 -o "$a" -w '%{http_code}' "$IIP?$q")
    sb=$(curl -s --max-time 20 -o "$b" -w '%{http_code}' "$TS?$q")
    why=""
    if [ "$sa" != "$sb" ]; then
        why="status iipsrv $sa, tessera $sb"
    elif [ "$sa" = 200 ] && [ "$kind" = text ]; then
        cmp -s "$a" "$b" || why="text differs: $(diff "$a" "$b" | head -5 | tr '\n' ' ')"
    elif [ "$sa" = 200 ] && [ "$kind" = image ]; then
        cp "$a" "$a.jpg" && cp "$b" "$b.jpg"
        da=$(dims "$a.jpg") db=$(dims "$b.jpg")
        if [ "$da" != "$db" ]; then
            why="size iipsrv $da, tessera $db"
        else
            m=$(mean_diff "$a.jpg" "$b.jpg" "$WORK/out")
            # JPEG re-encoding and different resamplers: a few levels on average at most.
            python3 -c "import sys; sys.exit(0 if float('$m') < 6.0 else 1)" ||
                why="pixels differ: mean abs diff $m"
        fi
    fi
    if [ -n "$why" ]; then
        echo "not ok - $q: $why"
        failed=$((failed + 1))
    else
        echo "ok - $q"
        passed=$((passed + 1))
    fi
}

for f in wide.tif retina.tif; do
    check text "FIF=$f&obj=IIP,1.0&obj=Max-size&obj=Tile-size&obj=Resolution-number&obj=Vertical-views&obj=Horizontal-views&obj=bits-per-channel&obj=min-max-sample-values&obj=colorspace"
    check text "FIF=$f&obj=iip-server&obj=resolutions&obj=basic-info"
    check text "DeepZoom=$f.dzi"
    check text "Zoomify=$f/ImageProperties.xml"
    check image "FIF=$f&JTL=0,0"
    check image "FIF=$f&JTL=1,3"
    check image "FIF=$f&JTL=2,5"
    check image "FIF=$f&WID=300&CVT=jpeg"
    check image "FIF=$f&HEI=200&CVT=jpeg"
    check image "FIF=$f&WID=300&HEI=300&CVT=jpeg"
    check image "FIF=$f&RGN=0.25,0.25,0.5,0.5&WID=200&CVT=jpeg"
    check image "FIF=$f&RGN=0.2,0.1,0.6,0.3&WID=400&CVT=jpeg"
    check image "FIF=$f&RGN=0,0,0.5,1&HEI=200&CVT=jpeg"
    check image "FIF=$f&RGN=0.1,0.2,0.37,0.41&WID=333&CVT=jpeg"
    check image "FIF=$f&WID=300&ROT=90&CVT=jpeg"
    check image "FIF=$f&WID=250&QLT=60&CVT=jpeg"
    check text "FIF=$f&JTL=9,0"
    check text "FIF=$f&obj=no-such-object"
done
# DeepZoom and Zoomify tiles at levels the stored pyramid has (iipsrv 1.1 answers the smallest
# stored level for anything below it, where Tessera renders the real DeepZoom size).
check image "DeepZoom=wide.tif_files/10/0_0.jpg"
check image "DeepZoom=wide.tif_files/10/3_2.jpg"
check image "DeepZoom=wide.tif_files/9/1_1.jpg"
check image "DeepZoom=wide.tif_files/8/0_0.jpg"
check image "DeepZoom=retina.tif_files/11/5_5.jpg"
check image "DeepZoom=retina.tif_files/9/1_0.jpg"
check image "Zoomify=wide.tif/TileGroup0/0-0-0.jpg"
check image "Zoomify=wide.tif/TileGroup0/1-1-1.jpg"
check image "Zoomify=wide.tif/TileGroup0/2-3-2.jpg"
check image "Zoomify=retina.tif/TileGroup0/3-5-5.jpg"
check text "FIF=missing.tif&obj=IIP,1.0"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
