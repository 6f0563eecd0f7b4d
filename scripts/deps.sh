#!/bin/sh
# Installs the Debian 12 packages Tessera needs (skips what is present).
# Usage: deps.sh         what building and serving need
#        deps.sh --test  that, plus the test suite's tools (oracles, encoders, browser,
#                        clang-format for scripts/check-format.sh)
set -eu

PACKAGES="build-essential cmake pkg-config
libtiff-dev libgif-dev libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libspng-dev libwebp-dev
libmicrohttpd-dev libjansson-dev libinih-dev liblcms2-dev libopenjp2-7-dev libfcgi-dev
libmemcached-dev zlib1g-dev libcurl4-openssl-dev libssl-dev libcrypt-dev"
TEST_PACKAGES="libcmocka-dev libvips-tools libopenjp2-tools openjph-tools
webp curl chromium clang libclang-rt-14-dev clang-format nginx iipimage-server memcached
lighttpd apache2 libapache2-mod-fcgid prometheus python3-jsonschema
adduser"

# adduser: the Debian package's maintainer scripts (the package_deb test installs it); building
# the package needs dpkg-shlibdeps, which comes with build-essential's dpkg-dev.
[ "${1:-}" = "--test" ] && PACKAGES="$PACKAGES $TEST_PACKAGES"
# The browser tests drive Chromium through playwright-core, and the S3 tests run s3rver, both
# from the npm registry (the viewer's own bundles ship in web/vendor, so building and serving
# need no npm); a newer Node may already be installed (the browser tests want Node 20+), so Debian's is only a fallback.
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi

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
