#!/bin/sh
# Installs the benchmark's tools and builds its images under bench/work/ (kept between runs).
#
# Usage: sh bench/prepare.sh [--quick] [--no-install]
#   --quick       20 copies of each image instead of 300 (what the CI smoke run needs), and no
#                 attempt to fetch iipsrv 1.3 (one already built, or IIPSRV13_SRC, is used)
#   --no-install  do not run apt-get (tools must already be there)
# IIPSRV13_SRC=DIR: an iipsrv source tree, or a git directory holding the tag iipsrv-1.3, to
# build iipsrv 1.3 from (into bench/work/iipsrv-1.3); without it a full run tries a shallow
# clone from GitHub, and if neither works the benchmark runs without iipsrv 1.3.
set -eu
BENCH=$(cd "$(dirname "$0")" && pwd)
WORK="$BENCH/work"
IMG="$WORK/images"
QUICK=0
INSTALL=1
for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    --no-install) INSTALL=0 ;;
    *) echo "prepare.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

# Debian package names. The photograph comes from lomiri-wallpapers-20.04; if that package
# is gone, any large Debian wallpaper JPEG will do (see pick_source below).
PKGS="iipimage-server nginx-light spawn-fcgi memcached wrk libvips-tools curl python3 procps coreutils"
PHOTO_PKG="lomiri-wallpapers-20.04"
# What iipsrv 1.3 needs to build from source (installed only when it is to be built).
IIP13_DEPS="git g++ make autoconf automake libtool pkg-config libtiff-dev libjpeg-dev libopenjp2-7-dev libfcgi-dev libmemcached-dev libpng-dev libwebp-dev zlib1g-dev"
PHOTO="/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"

need_install() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || return 0
    done
    return 1
}

if [ "$INSTALL" = 1 ] && need_install $PKGS $PHOTO_PKG; then
    # nginx-light is enough; a full nginx already installed is fine too.
    if dpkg-query -W -f='${Status}\n' nginx 2>/dev/null | grep -q 'install ok installed'; then
        PKGS=$(echo "$PKGS" | sed 's/nginx-light/nginx/')
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || true
    timeout 900 apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
    timeout 300 apt-get install -y -qq --no-install-recommends "$PHOTO_PKG" >/dev/null ||
        echo "prepare.sh: $PHOTO_PKG is not installable; falling back to another Debian photo" >&2
fi

pick_source() {
    if [ -f "$PHOTO" ]; then echo "$PHOTO"; return; fi
    # Fallback: the largest JPEG under /usr/share/backgrounds or /usr/share/wallpapers.
    find /usr/share/backgrounds /usr/share/wallpapers /usr/share/images -type f \
        \( -name '*.jpg' -o -name '*.jpeg' \) -printf '%s %p\n' 2>/dev/null |
        sort -n | tail -1 | cut -d' ' -f2-
}
SRC=$(pick_source)
if [ -z "$SRC" ]; then
    echo "prepare.sh: no source photograph found (install $PHOTO_PKG)" >&2
    exit 1
fi

mkdir -p "$IMG"
echo "$SRC" > "$WORK/source.txt"
SRCW=$(vipsheader -f width "$SRC")

# make OUT CMD...: runs CMD (which writes OUT.tmp-named file) only when OUT is missing, so a
# half-written image from an interrupted run is never reused.
make_image() {
    out=$1; shift
    if [ -s "$out" ]; then return 0; fi
    echo "prepare.sh: building $(basename "$out")" >&2
    start=$(date +%s)
    "$@"
    echo "prepare.sh:   done in $(( $(date +%s) - start )) s" >&2
}

scale_for() { python3 -c "print($1 / $SRCW)"; }

TIFF_JPEG="tile,pyramid,compression=jpeg,Q=85,tile-width=256,tile-height=256"
TIFF_DEFLATE="tile,pyramid,compression=deflate,predictor=horizontal,tile-width=256,tile-height=256"

build_size() {
    w=$1; name=$2; bigtiff=$3
    s=$(scale_for "$w")
    v="$WORK/$name.v"
    # An uncompressed upscaled master, reused for every format of this size.
    make_image "$v" sh -c "timeout 1200 vips resize '$SRC' '$v.tmp.v' $s && mv '$v.tmp.v' '$v'"
    make_image "$IMG/$name-jpeg.tif" sh -c \
        "timeout 1200 vips tiffsave '$v' '$IMG/$name-jpeg.tmp.tif' --$(echo "$TIFF_JPEG$bigtiff" | sed 's/,/ --/g; s/=/ /g') && mv '$IMG/$name-jpeg.tmp.tif' '$IMG/$name-jpeg.tif'"
    make_image "$IMG/$name-deflate.tif" sh -c \
        "timeout 1200 vips tiffsave '$v' '$IMG/$name-deflate.tmp.tif' --$(echo "$TIFF_DEFLATE$bigtiff" | sed 's/,/ --/g; s/=/ /g') && mv '$IMG/$name-deflate.tmp.tif' '$IMG/$name-deflate.tif'"
    make_image "$IMG/$name.jp2" sh -c \
        "timeout 1800 vips jp2ksave '$v' '$IMG/$name.tmp.jp2' --tile-width 512 --tile-height 512 && mv '$IMG/$name.tmp.jp2' '$IMG/$name.jp2'"
}

build_size 10000 k10 ""

# "Cold" workloads: many distinct images, so that no cache can answer the first pass. They are
# real copies, not links: Tessera's caches key by file identity (device and inode), so links
# would all be one warm image to it. Enough for what run.sh walks (20 images in quick runs,
# 300 in full ones; 40 of the deflate TIFF).
copies() {
    src=$1; prefix=$2; ext=$3; n=$4
    i=1
    while [ "$i" -le "$n" ]; do
        f=$(printf '%s/%s%04d.%s' "$IMG" "$prefix" "$i" "$ext")
        # A hard link left by an older prepare.sh is replaced by a copy.
        if [ ! -s "$f" ] || [ "$(stat -c %h "$f")" -gt 1 ]; then
            rm -f "$f"
            cp --reflink=never "$src" "$f.tmp" && mv "$f.tmp" "$f"
        fi
        i=$((i + 1))
    done
}
if [ "$QUICK" = 1 ]; then N_COLD=20; N_DEFLATE=20; else N_COLD=300; N_DEFLATE=40; fi
copies "$IMG/k10-jpeg.tif" c tif "$N_COLD"
copies "$IMG/k10-deflate.tif" d tif "$N_DEFLATE"
copies "$IMG/k10.jp2" j jp2 "$N_COLD"

# nginx's static tiles: the 10k image cut into IIIF 3 tiles, as a level-0 server would hold them.
# The id in info.json is rewritten by run.sh for the port it picks.
if [ ! -s "$WORK/static/k10/info.json" ]; then
    echo "prepare.sh: cutting static IIIF tiles" >&2
    rm -rf "$WORK/static.tmp"
    mkdir -p "$WORK/static.tmp"
    timeout 1200 vips dzsave "$WORK/k10.v" "$WORK/static.tmp/k10" --layout iiif3 --tile-size 256 \
        --overlap 0 --suffix '.jpg[Q=85]' --id "http://127.0.0.1/static"
    rm -rf "$WORK/static"
    mv "$WORK/static.tmp" "$WORK/static"
fi
echo "prepare.sh: images ready in $IMG" >&2

# iipsrv 1.3 beside Debian's 1.1: built from source into work/iipsrv-1.3 when it can be.
IIP13="$WORK/iipsrv-1.3"
IIP13_LOG="$WORK/iipsrv-1.3.log"
iipsrv13_source() { # fills $IIP13 with a source tree; fails when there is none to be had
    rm -rf "$IIP13"
    mkdir -p "$IIP13"
    if [ -n "${IIPSRV13_SRC:-}" ]; then
        if [ -f "$IIPSRV13_SRC/configure.ac" ]; then
            (cd "$IIPSRV13_SRC" && tar --exclude=.git -cf - .) | (cd "$IIP13" && tar -xf -) && return 0
        elif git -C "$IIPSRV13_SRC" rev-parse -q --verify 'iipsrv-1.3^{commit}' >/dev/null 2>&1; then
            git -C "$IIPSRV13_SRC" archive iipsrv-1.3 | (cd "$IIP13" && tar -xf -) && return 0
        fi
        echo "prepare.sh: IIPSRV13_SRC=$IIPSRV13_SRC is neither an iipsrv tree nor a git dir with tag iipsrv-1.3" >&2
        return 1
    fi
    rmdir "$IIP13"
    GIT_TERMINAL_PROMPT=0 timeout 60 git clone -q --depth 1 --branch iipsrv-1.3 \
        https://github.com/ruven/iipsrv "$IIP13" >>"$IIP13_LOG" 2>&1 && return 0
    echo "prepare.sh: could not clone iipsrv 1.3 from GitHub (see $IIP13_LOG)" >&2
    return 1
}
if [ -x "$IIP13/src/iipsrv.fcgi" ] && { [ -z "${IIPSRV13_SRC:-}" ] ||
    [ "$(cat "$IIP13/.from" 2>/dev/null)" = "$IIPSRV13_SRC" ]; }; then
    : # built by an earlier run (from this IIPSRV13_SRC, if one is given)
elif [ -z "${IIPSRV13_SRC:-}" ] && [ "$QUICK" = 1 ]; then
    echo "prepare.sh: no iipsrv 1.3 (a quick run does not fetch it; set IIPSRV13_SRC or run a full prepare.sh)" >&2
else
    : > "$IIP13_LOG"
    if [ "$INSTALL" = 1 ] && need_install $IIP13_DEPS; then
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
            $IIP13_DEPS >>"$IIP13_LOG" 2>&1 || true
    fi
    if iipsrv13_source; then
        echo "prepare.sh: building iipsrv 1.3 in $IIP13 (log: $IIP13_LOG)" >&2
        start=$(date +%s)
        if (cd "$IIP13" && timeout 300 sh ./autogen.sh && timeout 300 ./configure --enable-openjpeg &&
            timeout 1200 make -j"$(nproc)") >>"$IIP13_LOG" 2>&1 && [ -x "$IIP13/src/iipsrv.fcgi" ]; then
            echo "${IIPSRV13_SRC:-}" > "$IIP13/.from"
            echo "prepare.sh:   done in $(( $(date +%s) - start )) s" >&2
        else
            echo "prepare.sh: iipsrv 1.3 did not build (see $IIP13_LOG); running without it" >&2
            rm -f "$IIP13/src/iipsrv.fcgi"
        fi
    else
        echo "prepare.sh: no iipsrv 1.3 source; running without it" >&2
    fi
fi
if [ -x "$IIP13/src/iipsrv.fcgi" ]; then
    # configure's summary says "JPEG2000    :  OpenJPEG" when JP2 support is built in.
    grep -q 'JPEG2000 *:.*OpenJPEG' "$IIP13_LOG" 2>/dev/null ||
        echo "prepare.sh: note: iipsrv 1.3 may lack OpenJPEG (JP2) support; see $IIP13_LOG" >&2
fi
