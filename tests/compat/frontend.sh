# The requests every web-server front end must answer, shared by nginx_rewrite.sh,
# lighttpd_rewrite.sh, apache_fcgid.sh and debian_stock.sh (sourced after lib.sh).
# Expected sizes come from the image files themselves (vipsheader), never from Tessera.

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

# frontend_begin SERVER HINT DIR: skips without SERVER (HINT says how to install it), vips or
# python3; makes WORK with out/ and DIR/, stops every server on exit, and sets up the images.
frontend_begin() {
    command -v "$1" >/dev/null || skip "$1 not installed ($2)"
    command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
    command -v python3 >/dev/null || skip "python3 not installed"
    [ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"
    rm -rf "$WORK" && mkdir -p "$WORK/out" "$WORK/$3" || fail "cannot make $WORK"
    chmod 755 "$WORK"
    trap stop_all EXIT
    trap 'exit 1' INT TERM HUP PIPE # the EXIT trap then stops every server
    OUT="$WORK/out"
    images_setup "$DATA" "$WORK/img"
}

# start_tessera VERSION: Tessera on the FastCGI socket $SOCK, as iipsrv would be set up
# (FILESYSTEM_PREFIX, IIIF_VERSION), once it listens.
start_tessera() {
    rm -f "$SOCK"
    FILESYSTEM_PREFIX="$WORK/img/" IIIF_VERSION=$1 "$TESSERA" --fcgi "$SOCK" --threads 2 \
        >"$WORK/tessera-$1.out" 2>&1 &
    TS_PID=$!
    started $TS_PID
    i=0
    while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$SOCK" ] || fail "tessera did not open its FastCGI socket: $(cat "$WORK/tessera-$1.out")"
}

# images_setup DATA DIR: the pyramid TIFF as a.tif and the tiled JPEG 2000 as sub/b.jp2.
images_setup() {
    mkdir -p "$2/sub" || fail "cannot make $2"
    cp "$1/retina-pyr-jpeg-256.tif" "$2/a.tif" || fail "no test TIFF"
    cp "$1/retina-tiled512-rpcl.jp2" "$2/sub/b.jp2" || fail "no test JPEG 2000"
    chmod -R a+rX "$2"
    TIF_W=$(vipsheader -f width "$2/a.tif") TIF_H=$(vipsheader -f height "$2/a.tif")
    JP2_W=$(vipsheader -f width "$2/sub/b.jp2") JP2_H=$(vipsheader -f height "$2/sub/b.jp2")
    TIF_LEVELS=$(vipsheader -f n-pages "$2/a.tif")
    # The smallest stored level: IIP resolution 0.
    SMALL=$(dims "$2/a.tif[page=$((TIF_LEVELS - 1))]")
}

# json_field FILE NAME: a top-level member of a JSON document.
json_field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null
}

# get URL OUT: the status code, the body in OUT.
get() {
    curl -s --max-time 20 -o "$2" -w '%{http_code}' "$1" || true
}

# check_image NAME URL WxH
check_image() {
    s=$(get "$2" "$OUT/img")
    d=$(dims "$OUT/img" 2>/dev/null)
    [ "$s" = 200 ] && [ "$d" = "$3" ] && ok "$1 ($d)" || nok "$1" "status $s, size $d, want $3: $2"
}

# check_info NAME URL ID WxH VERSION: info.json with the public id, size and context version.
check_info() {
    s=$(get "$2" "$OUT/info.json")
    id=$(json_field "$OUT/info.json" id)
    [ -n "$id" ] || id=$(json_field "$OUT/info.json" @id)
    w=$(json_field "$OUT/info.json" width) h=$(json_field "$OUT/info.json" height)
    ctx=$(json_field "$OUT/info.json" @context)
    if [ "$s" = 200 ] && [ "$id" = "$3" ] && [ "${w}x$h" = "$4" ] &&
        echo "$ctx" | grep -q "iiif.io/api/image/$5/context.json"; then
        ok "$1"
    else
        nok "$1" "status $s, id '$id' (want '$3'), size ${w}x$h, context $ctx"
    fi
}

# check_iiif IIIF_BASE ID_BASE ID JP2_ID VERSION [TIF_ID_URL JP2_ID_URL]: IIIF through the
# front end's public prefix IIIF_BASE (what precedes "/{id}" in the client's URL); info.json ids
# must be ID_BASE/{id}, or the two URLs given.
check_iiif() {
    check_info "IIIF $5 info.json (TIFF)" "$1/$3/info.json" "${6:-$2/$3}" "${TIF_W}x$TIF_H" "$5"
    check_info "IIIF $5 info.json (JPEG 2000)" "$1/$4/info.json" "${7:-$2/$4}" "${JP2_W}x$JP2_H" "$5"
    check_image "IIIF $5 region and size" "$1/$3/0,0,700,350/350,/0/default.jpg" 350x175
    if [ "$5" = 3 ]; then max=max; else max=full; fi
    check_image "IIIF $5 JPEG 2000 full at 300 wide" "$1/$4/full/300,/0/default.jpg" \
        "300x$((JP2_H * 300 / JP2_W))"
    check_image "IIIF $5 $max size" "$1/$3/full/$max/0/default.png" "${TIF_W}x$TIF_H"
}

# check_iipsrv ENDPOINT FIF: IIP, Zoomify and DeepZoom, as iipsrv's viewers ask for them.
# FIF is the image as the client names it (relative to FILESYSTEM_PREFIX, or a full path).
check_iipsrv() {
    s=$(get "$1?FIF=$2&obj=IIP,1.0&obj=Max-size&obj=Tile-size&obj=Resolution-number" "$OUT/obj")
    tr -d '\r' <"$OUT/obj" >"$OUT/obj.txt"
    if [ "$s" = 200 ] && grep -qx "Max-size:$TIF_W $TIF_H" "$OUT/obj.txt" &&
        grep -qx "Tile-size:256 256" "$OUT/obj.txt" &&
        grep -qx "Resolution-number:$TIF_LEVELS" "$OUT/obj.txt"; then
        ok "IIP objects"
    else
        nok "IIP objects" "status $s: $(head -c 300 "$OUT/obj.txt")"
    fi
    check_image "IIP JTL full-resolution tile" "$1?FIF=$2&JTL=$((TIF_LEVELS - 1)),0" 256x256
    check_image "IIP JTL smallest resolution" "$1?FIF=$2&JTL=0,0" "$SMALL"
    check_image "IIP CVT" "$1?FIF=$2&WID=200&CVT=jpeg" "200x$((TIF_H * 200 / TIF_W))"

    s=$(get "$1?Zoomify=$2/ImageProperties.xml" "$OUT/zoomify.xml")
    if [ "$s" = 200 ] && grep -q "WIDTH=\"$TIF_W\"" "$OUT/zoomify.xml" &&
        grep -q "HEIGHT=\"$TIF_H\"" "$OUT/zoomify.xml"; then
        ok "Zoomify ImageProperties.xml"
    else
        nok "Zoomify" "status $s: $(head -c 300 "$OUT/zoomify.xml")"
    fi
    # Zoomify's level 0 is the largest stored level that fits one 256 tile.
    check_image "Zoomify TileGroup0 tile" "$1?Zoomify=$2/TileGroup0/0-0-0.jpg" "$SMALL"

    s=$(get "$1?DeepZoom=$2.dzi" "$OUT/a.dzi")
    if [ "$s" = 200 ] && grep -q "Width=\"$TIF_W\"" "$OUT/a.dzi" &&
        grep -q "Height=\"$TIF_H\"" "$OUT/a.dzi"; then
        ok "DeepZoom .dzi"
    else
        nok "DeepZoom .dzi" "status $s: $(head -c 300 "$OUT/a.dzi")"
    fi
    # Level ceil(log2(max side)) is the full size, tiled 256 without overlap; level 0 is 1x1.
    top=$(python3 -c "import math; print(math.ceil(math.log2(max($TIF_W, $TIF_H))))")
    check_image "DeepZoom full-level tile" "$1?DeepZoom=$2_files/$top/0_0.jpg" 256x256
    check_image "DeepZoom level 0" "$1?DeepZoom=$2_files/0/0_0.jpg" 1x1
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
}
