#!/bin/sh
# Runs the official IIIF Image API validator (github.com/IIIF/image-validator, not part of this
# repository: clone it anywhere) against a Tessera started here on loopback, for 3.0, 2.1 and
# 1.1 at levels 0, 1 and 2, and prints one line per run plus every failing test.
# Usage: scripts/iiif-validate.sh VALIDATOR_CHECKOUT [TESSERA_BINARY]
# The validator wants Python 3 with lxml, Pillow, bottle and python-magic (Debian:
# python3-lxml python3-pil python3-bottle python3-magic) and its own test image, which it ships.
set -eu
VAL=${1:?usage: $0 VALIDATOR_CHECKOUT [TESSERA_BINARY]}
BIN=${2:-build/tessera}
IMAGE=67352ccc-d1b0-11e1-89ae-279075081939
PY=${PYTHON:-/usr/bin/python3}
[ -f "$VAL/iiif-validate.py" ] || { echo "no iiif-validate.py in $VAL" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no tessera binary at $BIN" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cp "$VAL/html/$IMAGE.png" "$WORK/"
"$BIN" --root "$WORK" --listen 127.0.0.1:0 >"$WORK/log" 2>&1 &
PID=$!
port=""
for _ in $(seq 50); do
    port=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$WORK/log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "tessera did not start: $(cat "$WORK/log")" >&2; exit 1; }

# The validator names 2.1 "2.0" (its 2.x test set).
for v in 3.0 2.0 1.1; do
    for level in 0 1 2; do
        out=$(cd "$VAL" && timeout 300 "$PY" iiif-validate.py -s "127.0.0.1:$port" \
            -p "iiif/${v%%.*}" -i "$IMAGE" --version="$v" --level="$level" 2>&1 || true)
        echo "$v level $level: $(echo "$out" | grep -o 'Done ([^)]*)' || echo "no summary")"
        echo "$out" | grep -E '^\[[0-9]+\] test .* FAIL' | sed 's/^/    /' || true
    done
done
