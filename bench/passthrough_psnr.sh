#!/bin/sh
# What a passed-through tile and a re-encoded one look like against the master they came from:
# PSNR (all bands, over a spread of interior level-0 tiles) of the answer under each rule
# against the reference image's decoded pixels, and the mean bytes of those tiles.
# Usage: passthrough_psnr.sh TESSERA_BIN REFERENCE PYRAMID.tif [PYRAMID.tif ...]
#   RULES="always quality" JPEG_QUALITY=85 (defaults) may be set.
set -eu
. "$(dirname "$0")/passthrough_server.sh"
bin=$1
ref=$2
shift 2
rules=${RULES:-always quality}
q=${JPEG_QUALITY:-85}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=
echo "| pyramid | rule | tiles | mean bytes/tile | PSNR vs master (dB) |"
echo "|---|---|---|---|---|"
for tif in "$@"; do
    name=$(basename "$tif")
    root=$(cd "$(dirname "$tif")" && pwd)
    w=$(vipsheader -f width "$tif")
    h=$(vipsheader -f height "$tif")
    for rule in $rules; do
        start_server "$rule"
        sq=0
        n=0
        bytes=0
        # A 4x4 spread of interior tiles on the 256 grid.
        for i in 1 2 3 4; do
            for j in 1 2 3 4; do
                x=$(((w / 256) * i / 5 * 256))
                y=$(((h / 256) * j / 5 * 256))
                curl -s -o "$work/t.jpg" \
                    "http://127.0.0.1:$port/iiif/3/$name/$x,$y,256,256/256,/0/default.jpg"
                bytes=$((bytes + $(stat -c %s "$work/t.jpg")))
                vips crop "$ref" "$work/r.v" "$x" "$y" 256 256
                vips subtract "$work/t.jpg" "$work/r.v" "$work/d.v"
                vips stats "$work/d.v" "$work/s.csv"
                # Row 0 is all bands; its fourth column is the sum of squares.
                sq=$(head -1 "$work/s.csv" | awk -F'\t' -v s="$sq" '{ printf "%.0f", s + $4 }')
                n=$((n + 256 * 256 * 3))
            done
        done
        psnr=$(echo "$sq $n" | awk '{ printf "%.2f", 10 * log(255 * 255 * $2 / $1) / log(10) }')
        echo "| $name | $rule | 16 | $((bytes / 16)) | $psnr |"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=
    done
done
