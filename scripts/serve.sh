#!/bin/sh
# Installs what is missing, builds Tessera and serves the demo image plus a folder of images
# on http://127.0.0.1:8080 (folder: the first argument, default ./images).
set -eu
cd "$(dirname "$0")/.."

IMAGES="${1:-images}"
PORT="${TESSERA_PORT:-8080}"
mkdir -p "$IMAGES"

sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

echo "Open http://127.0.0.1:$PORT/ (demo: http://127.0.0.1:$PORT/iiif/3/demo/info.json)"
exec build/tessera --root "$IMAGES" --demo build/demo/demo.tif \
    --listen "127.0.0.1:$PORT" --access-log -
