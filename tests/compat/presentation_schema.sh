#!/bin/sh
# Every collection and manifest a server with sidecars, tags and a multi-page TIFF publishes
# validates against the IIIF Presentation 3.0 JSON schema (tests/data, from the official
# validator), checked with Debian's python3-jsonschema.
set -u
TESSERA=$1 DATA=$2 WORK=$3
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
python3 -c 'import jsonschema' 2>/dev/null ||
    skip "python3-jsonschema not installed (apt-get install python3-jsonschema)"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"

rm -rf "$WORK" && mkdir -p "$WORK/img/maps/deeper" || fail "cannot make $WORK"
trap stop_all EXIT INT TERM
cp "$DATA/multipage-2p-gray.tif" "$WORK/img/book.tif"
cp "$DATA/retina-pyr-jpeg-256.tif" "$WORK/img/maps/retina.tif"
cp "$DATA/camera-512-gray.png" "$WORK/img/maps/deeper/camera.png"
cp "$DATA/rocket-640x427-adobergb.jpg" "$WORK/img/maps/rocket.jpg"
cat >"$WORK/img/maps/retina.tif.json" <<'JSON'
{"label": {"en": ["Retina"], "fr": ["Rétine"]}, "summary": "A fundus photograph.",
 "metadata": [{"label": "Subject", "value": {"en": ["Eye", "Retina"]}}],
 "requiredStatement": {"label": {"en": ["Attribution"]}, "value": "Mikael Häggström"},
 "rights": "https://creativecommons.org/publicdomain/zero/1.0/",
 "navDate": "2010-06-01T00:00:00Z"}
JSON
cat >"$WORK/img/maps/_folder.json" <<'JSON'
{"label": "Maps and more", "summary": {"en": ["Test folder"]},
 "rights": "free text that must not become rights",
 "metadata": [{"label": {"en": ["Curator"]}, "value": {"none": ["Test"]}}]}
JSON
printf '{"label": ' >"$WORK/img/maps/rocket.jpg.json" # broken on purpose: ignored

PORT=$(free_port)
COPYRIGHT="Test server statement" "$TESSERA" --root "$WORK/img" --listen "127.0.0.1:$PORT" \
    --max-area 100000 >"$WORK/tessera.out" 2>&1 &
started $!
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/health" || fail "tessera did not start: $(cat "$WORK/tessera.out")"

python3 "$(dirname "$0")/presentation_schema.py" "$DATA/iiif-presentation-3.0.schema.json" \
    "$BASE" 4 || fail "a collection or manifest does not validate"
echo "PASS"
