# Sourced by passthrough_psnr.sh and passthrough_tradeoff.sh: start_server RULE starts $bin on a
# free loopback port over $root with that --passthrough rule at --jpeg-quality $q, response cache
# off, logging to $work/log; sets pid and port, and returns once it listens.
start_server() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$bin" --root "$root" --listen "127.0.0.1:$port" --passthrough "$1" \
        --jpeg-quality "$q" --response-cache 0 >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        grep -q "listening on" "$work/log" 2>/dev/null && break
        sleep 0.1
    done
}
