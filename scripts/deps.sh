#!/bin/sh
# Installs the Debian 12 packages Tessera needs to build, run and test (skips what is present).
set -eu

PACKAGES="build-essential cmake pkg-config
libtiff-dev libgif-dev libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libspng-dev libwebp-dev
libmicrohttpd-dev libjansson-dev libinih-dev liblcms2-dev libopenjp2-7-dev
libcmocka-dev libcurl4-openssl-dev libvips-tools libopenjp2-tools openjph-tools webp curl"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "tessera: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
