#!/bin/sh
# Images read from remote sources started here on loopback, compared with the same files read
# from disk:
#   remote_sources.sh TESSERA DATA WORK http   nginx serving files (with Range) as an HTTP source,
#                                              and sources that stall, break off or are down
#   remote_sources.sh TESSERA DATA WORK s3     s3rver (npm) and a SigV4-checking S3 stub
# Exits 77 (skipped) with the reason when nginx, vips, python3 or s3rver is missing.
set -u
TESSERA=$1 DATA=$2 WORK=$3 MODE=$4
. "$(dirname "$0")/lib.sh"
STUB="$(dirname "$0")/remote_stub.py"

command -v vips >/dev/null || skip "vips not installed (apt-get install libvips-tools)"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$TESSERA" ] || fail "no tessera binary at $TESSERA"
if [ "$MODE" = http ]; then
    command -v nginx >/dev/null || skip "nginx not installed (apt-get install nginx)"
fi

rm -rf "$WORK" && mkdir -p "$WORK/disk" "$WORK/out" || fail "cannot make $WORK"
trap stop_all EXIT INT TERM
cp "$DATA/retina-pyr-jpeg-256.tif" "$WORK/disk/pyr.tif"
cp "$DATA/retina-1411x1411.jpg" "$WORK/disk/plain.jpg"
cp "$DATA/retina-tiled512-rpcl.jp2" "$WORK/disk/tiled.jp2"

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

# wait_file FILE: up to 10 s for a stub's port file.
wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$1" ]
}

# start_tessera NAME ARGS...: a server on a free port; sets BASE.
start_tessera() {
    name=$1
    shift
    port=$(free_port)
    "$TESSERA" --root "$WORK/disk" --listen "127.0.0.1:$port" --workers 4 "$@" \
        >"$WORK/$name.log" 2>&1 &
    started $!
    BASE="http://127.0.0.1:$port"
    wait_http "$BASE/iiif/3/pyr.tif/info.json" || fail "$name did not start: $(cat "$WORK/$name.log")"
}

# get URL OUT: prints "status seconds" (every request bounded by 20 s).
get() {
    curl -s --max-time 20 -o "$2" -w '%{http_code} %{time_total}' "$1"
}

# same_pixels NAME A B: both decode to the same size and the same pixels.
same_pixels() {
    da=$(dims "$2" 2>/dev/null) db=$(dims "$3" 2>/dev/null)
    if [ -z "$da" ] || [ "$da" != "$db" ]; then
        nok "$1" "sizes $da and $db"
        return
    fi
    d=$(mean_diff "$2" "$3" "$WORK/out")
    awk "BEGIN { exit !($d == 0) }" && ok "$1 ($da)" || nok "$1" "mean difference $d"
}

# compare PREFIX: the same requests under PREFIX/ and from disk give the same pixels.
compare() {
    for req in "pyr.tif/full/max/0/default.png" "pyr.tif/256,512,300,200/150,/0/default.png" \
        "plain.jpg/100,100,500,400/max/0/default.png" "tiled.jp2/0,0,700,700/350,/0/default.png" \
        "pyr.tif/0,0,256,256/256,/0/default.jpg"; do
        id=${req%%/*} rest=${req#*/}
        ext=${rest##*.}
        s1=$(get "$BASE/iiif/3/$1%2F$id/$rest" "$WORK/out/remote.$ext")
        s2=$(get "$BASE/iiif/3/$id/$rest" "$WORK/out/disk.$ext")
        if [ "${s1% *}" != 200 ] || [ "${s2% *}" != 200 ]; then
            nok "$1 $req" "status ${s1% *} remote, ${s2% *} disk: $(head -c 200 "$WORK/out/remote.$ext")"
            continue
        fi
        same_pixels "$1/$req equals disk" "$WORK/out/remote.$ext" "$WORK/out/disk.$ext"
    done
}

# expect NAME URL STATUS SECONDS [TEXT]: the answer's status, within SECONDS, naming TEXT.
expect() {
    r=$(get "$2" "$WORK/out/err.txt")
    s=${r% *} t=${r#* }
    if [ "$s" = "$3" ] && awk "BEGIN { exit !($t < $4) }" &&
        { [ -z "${5:-}" ] || grep -q "$5" "$WORK/out/err.txt"; }; then
        ok "$1: $s in ${t}s"
    else
        nok "$1" "status $s in ${t}s (want $3 under $4 s${5:+ saying '$5'}): $(head -c 200 "$WORK/out/err.txt")"
    fi
}

# counters KIND: "ok error bytes count" of the KIND source (http, s3) in BASE's /metrics.
counters() {
    echo "$(metric_at "$BASE" "tessera_source_requests_total{source=\"$1\",outcome=\"ok\"}")" \
        "$(metric_at "$BASE" "tessera_source_requests_total{source=\"$1\",outcome=\"error\"}")" \
        "$(metric_at "$BASE" "tessera_source_bytes_total{source=\"$1\"}")" \
        "$(metric_at "$BASE" "tessera_source_duration_seconds_count{source=\"$1\"}")"
}

# metrics_valid WHAT: promtool accepts BASE's /metrics.
metrics_valid() {
    why=$(promtool_at "$BASE")
    [ -z "$why" ] && ok "promtool accepts /metrics $1" || nok "promtool check metrics $1" "$why"
}

# counted NAME BEFORE AFTER OK ERRORS BYTES: the source counters moved from BEFORE to AFTER
# (each "ok error bytes count") by exactly OK requests, ERRORS failed ones and BYTES bytes, and
# the latency histogram counted every request once.
counted() {
    set -- "$1" $2 $3 "$4" "$5" "$6"
    name=$1 ok0=$2 err0=$3 b0=$4 n0=$5 ok1=$6 err1=$7 b1=$8 n1=$9
    shift 9
    if [ $((ok1 - ok0)) = "$1" ] && [ $((err1 - err0)) = "$2" ] && [ $((b1 - b0)) = "$3" ] &&
        [ $((n1 - n0)) = $(($1 + $2)) ]; then
        ok "$name: /metrics counted $1 requests, $2 failed, $3 bytes"
    else
        nok "$name" "/metrics moved by ok $((ok1 - ok0)), error $((err1 - err0)), bytes $((b1 - b0)), latency count $((n1 - n0)); expected $1, $2, $3, $(($1 + $2))"
    fi
}

still_serving() {
    s=$(get "$BASE/iiif/3/$1%2Fpyr.tif/512,512,256,256/256,/0/default.jpg" "$WORK/out/after.jpg")
    [ "${s% *}" = 200 ] && [ "$(dims "$WORK/out/after.jpg")" = 256x256 ] &&
        ok "still serving $1 after $2" || nok "serving after $2" "status $s"
}

if [ "$MODE" = http ]; then
    # ---- nginx as the HTTP source ----
    mkdir -p "$WORK/www/masters" "$WORK/broken"
    cp "$WORK/disk/"* "$WORK/www/masters/"
    cp "$WORK/disk/"* "$WORK/broken/"
    # A 10,000 px tiled pyramid: what a tile should cost is a few blocks of it.
    vips resize "$DATA/retina-1411x1411.jpg" "$WORK/big.v" 7.0871 >/dev/null &&
        vips tiffsave "$WORK/big.v" "$WORK/www/masters/big.tif" --tile --tile-width 256 \
            --tile-height 256 --pyramid --compression jpeg --Q 90 >/dev/null &&
        rm -f "$WORK/big.v" || fail "vips cannot write the big TIFF"
    [ "$(vipsheader -f width "$WORK/www/masters/big.tif")" = 10000 ] || fail "big TIFF is not 10000 px"
    NGINX_PORT=$(free_port)
    nginx_head "$WORK/nginx.conf" "$WORK" "$NGINX_PORT"
    # Bytes each answer carried, as nginx counts them.
    sed -i "s|^    access_log .*|    log_format sent '\$request \$status \$body_bytes_sent';\n    access_log $WORK/sent.log sent;|" "$WORK/nginx.conf"
    cat >>"$WORK/nginx.conf" <<CONF
        root $WORK/www;
    }
}
CONF
    nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
    started $!
    wait_http "http://127.0.0.1:$NGINX_PORT/masters/pyr.tif" || fail "nginx did not start: $(cat "$WORK/nginx-error.log")"

    python3 "$STUB" stall "$WORK/stall.port" &
    started $!
    python3 "$STUB" truncate "$WORK/broken" "$WORK/truncate.port" &
    started $!
    wait_file "$WORK/stall.port" && wait_file "$WORK/truncate.port" || fail "stubs did not start"
    DOWN=$(free_port) # nothing listens there

    start_tessera http --remote-connect-timeout-ms 1000 --remote-timeout-ms 1500 --remote-recheck 0 \
        --source "web=http://127.0.0.1:$NGINX_PORT/masters/" \
        --source "stalled=http://127.0.0.1:$(cat "$WORK/stall.port")/" \
        --source "cut=http://127.0.0.1:$(cat "$WORK/truncate.port")/" \
        --source "down=http://127.0.0.1:$DOWN/"

    compare web

    # A tile from the big TIFF, its reader opened cold: the bytes nginx sent for it.
    : >"$WORK/sent.log"
    before=$(counters http)
    s=$(get "$BASE/iiif/3/web%2Fbig.tif/4096,4096,256,256/256,/0/default.jpg" "$WORK/out/big.jpg")
    after=$(counters http)
    size=$(stat -c %s "$WORK/www/masters/big.tif")
    sent=$(awk '{ s += $NF } END { print s + 0 }' "$WORK/sent.log")
    reqs=$(wc -l <"$WORK/sent.log")
    if [ "${s% *}" = 200 ] && [ "$(dims "$WORK/out/big.jpg")" = 256x256 ] &&
        [ "$sent" -gt 0 ] && [ $((sent * 20)) -lt "$size" ]; then
        ok "a tile of a 10000 px TIFF read $sent of $size bytes in $reqs requests (< 5%)"
    else
        nok "tile of the big TIFF" "status $s, $sent of $size bytes in $reqs requests"
    fi
    # What Tessera counts is what nginx logged: every request, none failed, the same bytes.
    counted "the big TIFF's tile at the source" "$before" "$after" "$reqs" 0 "$sent"
    # The same pixels as the file on disk gives.
    cp "$WORK/www/masters/big.tif" "$WORK/disk/big.tif"
    get "$BASE/iiif/3/big.tif/4096,4096,256,256/256,/0/default.jpg" "$WORK/out/big-disk.jpg" >/dev/null
    same_pixels "big TIFF tile equals disk" "$WORK/out/big.jpg" "$WORK/out/big-disk.jpg"

    # A second tile nearby costs no more than a block or two, and a repeat nothing at the source.
    : >"$WORK/sent.log"
    get "$BASE/iiif/3/web%2Fbig.tif/4352,4096,256,256/256,/0/default.jpg" "$WORK/out/b2.jpg" >/dev/null
    sent=$(awk '$1 == "GET" { s += $NF } END { print s + 0 }' "$WORK/sent.log")
    [ "$sent" -le 262144 ] && ok "a neighbouring tile fetched $sent bytes" || nok "neighbour tile" "$sent bytes"

    # Validators follow the object: 304 on revalidation, a new ETag once it is replaced.
    url="$BASE/iiif/3/web%2Fpyr.tif/full/64,/0/default.jpg"
    etag=$(curl -s -D - -o /dev/null --max-time 20 "$url" | tr -d '\r' | awk 'tolower($1) == "etag:" { print $2 }')
    s=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' -H "If-None-Match: $etag" "$url")
    [ -n "$etag" ] && [ "$s" = 304 ] && ok "remote image revalidates (304)" || nok "304" "etag '$etag', status $s"
    vips resize "$WORK/disk/plain.jpg" "$WORK/half.jpg" 0.5 >/dev/null || fail "vips resize"
    cp "$WORK/half.jpg" "$WORK/www/masters/pyr.tif.new" && mv "$WORK/www/masters/pyr.tif.new" "$WORK/www/masters/pyr.tif"
    s=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' -H "If-None-Match: $etag" "$url")
    get "$BASE/iiif/3/web%2Fpyr.tif/info.json" "$WORK/out/replaced.json" >/dev/null
    [ "$s" = 200 ] && grep -q '"width": 706' "$WORK/out/replaced.json" &&
        ok "a replaced object is served anew (200, its own size)" ||
        nok "replaced object" "status $s: $(head -c 300 "$WORK/out/replaced.json")"
    cp "$WORK/disk/pyr.tif" "$WORK/www/masters/pyr.tif"

    # With --remote-recheck, a version seen is trusted for that long: a burst of tiles costs
    # one HEAD, and the bytes still come through the shared block cache.
    HTTP_BASE=$BASE
    start_tessera recheck --remote-recheck 60 --source "web=http://127.0.0.1:$NGINX_PORT/masters/"
    : >"$WORK/sent.log"
    for t in 0 256 512 768; do
        get "$BASE/iiif/3/web%2Fpyr.tif/$t,0,256,256/256,/0/default.jpg" "$WORK/out/r$t.jpg" >/dev/null
    done
    heads=$(grep -c '^HEAD' "$WORK/sent.log")
    get "$BASE/iiif/3/pyr.tif/512,0,256,256/256,/0/default.jpg" "$WORK/out/d512.jpg" >/dev/null
    same_pixels "a tile read with a trusted version equals disk" "$WORK/out/r512.jpg" "$WORK/out/d512.jpg"
    [ "$heads" = 1 ] && ok "four tiles, one HEAD with --remote-recheck 60" ||
        nok "--remote-recheck" "$heads HEADs: $(cat "$WORK/sent.log")"
    BASE=$HTTP_BASE

    # Access rules hold for remote images as for files: a click-through rule on the prefix.
    printf '[auth]\nsecret = %s\n[access closed]\nmatch = web/\nprofile = clickthrough\n' \
        "0123456789abcdef0123456789abcdef" >"$WORK/access.ini"
    start_tessera access --config "$WORK/access.ini" \
        --source "web=http://127.0.0.1:$NGINX_PORT/masters/"
    expect "a remote image under a click-through rule without credentials" \
        "$BASE/iiif/3/web%2Fpyr.tif/0,0,256,256/256,/0/default.jpg" 401 3
    expect "a file outside the rule stays open" "$BASE/iiif/3/pyr.tif/0,0,256,256/256,/0/default.jpg" 200 3
    BASE=$HTTP_BASE

    # The viewer page and the manifest of a remote image; a missing one is said so.
    expect "viewer of a remote image" "$BASE/viewer/web%2Fpyr.tif" 200 3
    expect "manifest of a remote image" "$BASE/manifest/web%2Fpyr.tif" 200 3 '"height": 1411'
    expect "viewer of a missing remote image" "$BASE/viewer/web%2Fnone.tif" 404 3

    # Failures: each answered quickly with its status and reason, and the server goes on.
    before=$(counters http)
    expect "missing object" "$BASE/iiif/3/web%2Fnone.tif/info.json" 404 3
    counted "a missing object (one HEAD, 404)" "$before" "$(counters http)" 0 1 0
    still_serving web "a missing object"
    expect "source down" "$BASE/iiif/3/down%2Fpyr.tif/info.json" 502 3 "unreachable"
    ! grep -q "127.0.0.1:$DOWN" "$WORK/out/err.txt" && grep -q "down/pyr.tif" "$WORK/out/err.txt" &&
        ok "the reason names the identifier, not the source's address" ||
        nok "source address hidden" "$(head -c 200 "$WORK/out/err.txt")"
    still_serving web "a source that is down"
    expect "stalled source" "$BASE/iiif/3/stalled%2Fpyr.tif/info.json" 504 5 "in time"
    # Stalls on three workers at once leave the fourth serving.
    stalled=""
    for n in 1 2 3; do
        curl -s --max-time 20 -o /dev/null "$BASE/iiif/3/stalled%2Fpyr.tif/full/$n$n,/0/default.jpg" &
        stalled="$stalled $!"
    done
    sleep 0.3
    expect "tile while three requests stall" "$BASE/iiif/3/web%2Fpyr.tif/0,0,256,256/128,/0/default.jpg" 200 3
    for p in $stalled; do wait "$p"; done
    still_serving web "a stalled source"
    expect "truncated object" "$BASE/iiif/3/cut%2Fpyr.tif/full/200,/0/default.jpg" 502 5 "truncated"
    expect "truncated object (info)" "$BASE/iiif/3/cut%2Fplain.jpg/full/200,/0/default.png" 502 5 "truncated"
    still_serving web "a truncated object"
    metrics_valid "after every kind of failure"
    expect "escape below a source" "$BASE/iiif/3/web%2F..%2F..%2Fetc%2Fpasswd/info.json" 403 3
    kill -0 "$(echo "$PIDS" | awk '{ print $NF }')" 2>/dev/null || nok "tessera alive" "it exited"
else
    # ---- s3rver, and a stub that checks SigV4 signatures ----
    start_s3rver "$WORK" masters
    for f in pyr.tif plain.jpg tiled.jp2; do
        s3_put "$WORK/disk/$f" "$S3/masters/archive/$f"
    done
    # s3rver knows its own access key only: another one is refused (403 InvalidAccessKeyId).
    s=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user NOSUCHKEY:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3/masters/archive/pyr.tif")
    [ "$s" = 403 ] || fail "s3rver accepted an unknown access key ($s): the test below would prove nothing"

    start_tessera s3 --source "s3=s3://masters/archive/" --s3-endpoint "$S3" \
        --s3-access-key S3RVER --s3-secret-key S3RVER --remote-timeout-ms 3000
    counted "a fresh server" "0 0 0 0" "$(counters s3)" 0 0 0
    compare s3
    # Three objects read: a HEAD each at least, bytes of each, none read twice over (the block
    # cache keeps what was fetched).
    read -r n_ok n_err n_bytes n_count <<EOF
$(counters s3)
EOF
    total=$(($(stat -c %s "$WORK/disk/pyr.tif") + $(stat -c %s "$WORK/disk/plain.jpg") + $(stat -c %s "$WORK/disk/tiled.jp2")))
    [ "$n_ok" -ge 6 ] && [ "$n_err" = 0 ] && [ "$n_bytes" -gt 0 ] && [ "$n_bytes" -le "$total" ] &&
        [ "$n_count" = $((n_ok + n_err)) ] &&
        ok "/metrics after the s3 images: $n_ok requests to s3, $n_bytes of their $total bytes" ||
        nok "s3 counters after the images" "ok $n_ok, error $n_err, bytes $n_bytes (objects $total), latency count $n_count"
    before=$(counters s3)
    expect "missing object (s3rver)" "$BASE/iiif/3/s3%2Fnone.tif/info.json" 404 3
    counted "a missing object (one HEAD, 404)" "$before" "$(counters s3)" 0 1 0
    still_serving s3 "a missing object"
    metrics_valid "with an s3 source"

    # Credentials from the environment, as AWS's tools read them; a key s3rver does not know.
    AWS_ACCESS_KEY_ID=NOSUCHKEY AWS_SECRET_ACCESS_KEY=S3RVER start_tessera s3-wrong \
        --source "s3=s3://masters/archive/" --s3-endpoint "$S3" --remote-timeout-ms 3000
    expect "unknown access key (s3rver)" "$BASE/iiif/3/s3%2Fpyr.tif/info.json" 502 3 "refused credentials"
    counted "refused credentials (one HEAD, 403)" "0 0 0 0" "$(counters s3)" 0 1 0
    ! grep -q "S3RVER" "$WORK/s3-wrong.log" && ok "the secret is not in the log" ||
        nok "secret kept out of the log" "it is there"

    # s3rver 3.7.1 does not verify SigV4 signatures (its authentication middleware says so), so
    # a wrong secret is checked against the stub, which does.
    mkdir -p "$WORK/stub/masters/archive"
    cp "$WORK/disk/"* "$WORK/stub/masters/archive/"
    python3 "$STUB" s3 "$WORK/stub" "$WORK/stub.port" AKIDTESSERA "s3cr3t/Key+1" eu-west-3 &
    started $!
    wait_file "$WORK/stub.port" || fail "the S3 stub did not start"
    STUB_URL="http://127.0.0.1:$(cat "$WORK/stub.port")"
    s=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' --aws-sigv4 "aws:amz:eu-west-3:s3" \
        --user "AKIDTESSERA:wrong" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$STUB_URL/masters/archive/pyr.tif")
    [ "$s" = 403 ] || fail "the S3 stub accepted a wrong secret ($s)"
    start_tessera sig --source "s3=s3://masters/archive/" --s3-endpoint "$STUB_URL" \
        --s3-region eu-west-3 --s3-access-key AKIDTESSERA --s3-secret-key "s3cr3t/Key+1"
    compare s3
    start_tessera sig-wrong --source "s3=s3://masters/archive/" --s3-endpoint "$STUB_URL" \
        --s3-region eu-west-3 --s3-access-key AKIDTESSERA --s3-secret-key "not-the-secret"
    expect "wrong secret (SigV4 checked)" "$BASE/iiif/3/s3%2Fpyr.tif/info.json" 502 3 "refused credentials"
    expect "wrong secret, tile" "$BASE/iiif/3/s3%2Fpyr.tif/0,0,256,256/256,/0/default.jpg" 502 3
    s=$(get "$BASE/iiif/3/pyr.tif/0,0,256,256/256,/0/default.jpg" "$WORK/out/local.jpg")
    [ "${s% *}" = 200 ] && ok "the disk still serves beside a refused source" || nok "disk after refusal" "$s"
    ! grep -q "not-the-secret" "$WORK/sig-wrong.log" && ok "the wrong secret is not in the log" ||
        nok "secret kept out of the log" "it is there"
fi

echo "passed $passed, failed $failed"
[ "$failed" = 0 ]
