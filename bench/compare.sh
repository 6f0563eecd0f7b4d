#!/bin/bash
# A/B comparison of two Tessera binaries (Tessera vs Tessera; iipsrv and nginx take no part).
# Runs bench/run.sh --only tessera for binary A, then B, then A, B ... for R rounds, with the
# same workloads, concurrencies and duration, and prints per workload and concurrency the
# median req/s of A and B, B/A, p99 latency and peak RSS. run.sh does all the serving and
# measuring (each run starts the binary fresh, cold caches, on 127.0.0.1); this script only
# calls it and reads the JSON it writes.
#
# Usage: bash bench/compare.sh OLD_BIN NEW_BIN [--workloads a,b,...] [--duration N]
#                              [--rounds R] [--out DIR]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
WORK="$BENCH/work"
say() { echo "compare.sh: [$(date +%T)] $*" >&2; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

ROUNDS=2
DURATION=8
WORKLOADS="tiles-cold,tiles-hot,info,thumbs,regions,big,jp2,deflate,png,mixed" # run.sh's
OUTDIR=""
POS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --workloads) WORKLOADS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --out) OUTDIR=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    *) POS+=("$1") ;;
    esac
    shift
done
[ "${#POS[@]}" = 2 ] || { usage >&2; exit 2; }
for v in "$DURATION" "$ROUNDS"; do
    case "$v" in '' | *[!0-9]* | 0) echo "compare.sh: --duration and --rounds take whole numbers > 0" >&2; exit 2 ;; esac
done
BIN_A=$(realpath -e "${POS[0]}") || { echo "compare.sh: no such file ${POS[0]}" >&2; exit 2; }
BIN_B=$(realpath -e "${POS[1]}") || { echo "compare.sh: no such file ${POS[1]}" >&2; exit 2; }
for b in "$BIN_A" "$BIN_B"; do
    if [ ! -f "$b" ] || [ ! -x "$b" ]; then echo "compare.sh: $b is not an executable file" >&2; exit 2; fi
done
for w in ${WORKLOADS//,/ }; do
    case "$w" in
    tiles-cold | tiles-hot | info | thumbs | regions | big | jp2 | deflate | png | mixed) ;;
    *) echo "compare.sh: unknown workload $w" >&2; exit 2 ;;
    esac
done
[ -n "$OUTDIR" ] || OUTDIR="$WORK/compare/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUTDIR"
OUTDIR=$(realpath "$OUTDIR")

# Time bound of one run.sh call, from run.sh's own per-step timeouts: per run at most
# 10 s to start, duration + 60 s of wrk, 5 s to stop (+300 s for the tiles-hot warm-up);
# plus 600 s for checking the images and writing the URL lists.
RUN_LIMIT=600
for w in ${WORKLOADS//,/ }; do
    case "$w" in
    deflate | mixed) RUN_LIMIT=$((RUN_LIMIT + DURATION + 75)) ;;
    tiles-hot) RUN_LIMIT=$((RUN_LIMIT + 3 * (DURATION + 75 + 300))) ;;
    *) RUN_LIMIT=$((RUN_LIMIT + 3 * (DURATION + 75))) ;;
    esac
done

CHILD=""
on_signal() {
    say "stopped; ending run.sh (pid $CHILD)"
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    exit 130
}
trap on_signal INT TERM

# The images once, before any measurement (a no-op when bench/prepare.sh has already run), so
# no run.sh call below spends its time building them.
say "checking the images (bench/prepare.sh --no-install)"
timeout 3600 nice -n 10 sh "$BENCH/prepare.sh" --no-install

describe() { # BIN: what we can say about the binary
    local src
    src=$(git -C "$(dirname "$1")" rev-parse --short HEAD 2>/dev/null || echo "?")
    printf '%s sha256:%s (source tree HEAD %s, %s)' "$1" "$(sha256sum "$1" | cut -c1-12)" "$src" \
        "$(date -r "$1" '+built %Y-%m-%d %H:%M')"
}
{
    echo "A=$(describe "$BIN_A")"
    echo "B=$(describe "$BIN_B")"
    echo "workloads=$WORKLOADS duration=$DURATION rounds=$ROUNDS"
} > "$OUTDIR/binaries.txt"
cat "$OUTDIR/binaries.txt" >&2
say "$((2 * ROUNDS)) run.sh calls, each bounded at ${RUN_LIMIT} s; results in $OUTDIR"

FAILED=0
: > "$OUTDIR/runs.txt"
for r in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        bin=$BIN_A
        [ "$side" = B ] && bin=$BIN_B
        tag="r$r-$side"
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        say "round $r/$ROUNDS, $side: $bin (load average $load)"
        t0=$(date +%s)
        rm -f "$OUTDIR/$tag.json" "$OUTDIR/$tag.md"
        set +e
        BENCH_MAX_SECONDS=$RUN_LIMIT timeout -k 120 $((RUN_LIMIT + 60)) \
            bash "$BENCH/run.sh" --only tessera --tessera "$bin" --no-install \
            --workloads "$WORKLOADS" --duration "$DURATION" --cores "$(nproc)" --out "$OUTDIR/$tag" \
            > "$OUTDIR/$tag.stdout" 2> "$OUTDIR/$tag.log" &
        CHILD=$!
        wait "$CHILD"
        rc=$?
        set -e
        CHILD=""
        # run.sh's scratch files of this run: the raw wrk lines and the URL lists it used.
        if [ -s "$OUTDIR/$tag.json" ]; then
            cp "$WORK/run/runs.jsonl" "$OUTDIR/$tag.runs.jsonl" || true
            (cd "$WORK/run/lists-tessera" && md5sum -- *.txt) > "$OUTDIR/$tag.lists.md5" || true
        fi
        echo "$tag rc=$rc seconds=$(( $(date +%s) - t0 )) load=\"$load\" bin=$bin" >> "$OUTDIR/runs.txt"
        if [ "$rc" != 0 ]; then
            FAILED=1
            say "run.sh failed for $side in round $r (exit $rc); its log: $OUTDIR/$tag.log"
            tail -5 "$OUTDIR/$tag.log" >&2 || true
        fi
    done
done

python3 - "$OUTDIR" "$ROUNDS" "$DURATION" > "$OUTDIR/compare.md" <<'PY'
import json, os, re, statistics, sys

outdir, rounds, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ORDER = ["tiles-cold", "tiles-hot", "info", "thumbs", "regions", "big", "jp2", "deflate",
         "png", "mixed"]
bins = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(outdir, "binaries.txt"))
            if l[:2] in ("A=", "B="))
runs_txt = [l.split() for l in open(os.path.join(outdir, "runs.txt"))]
data = {"A": {}, "B": {}}     # side -> (workload, conc) -> [run per round]
missing, rcs = [], {}
for r in range(1, rounds + 1):
    for side in "AB":
        tag = "r%d-%s" % (r, side)
        path = os.path.join(outdir, tag + ".json")
        try:
            with open(path) as f:
                runs = json.load(f)["runs"]
        except (OSError, ValueError, KeyError):
            missing.append(tag)
            continue
        for run in runs:
            if run["server"] == "tessera":
                data[side].setdefault((run["workload"], run["conc"]), []).append(run)

def med(xs):
    return statistics.median(xs) if xs else None

def ok(run):  # report.py's rule: answered, and at most 1% errors
    return run["requests"] > 0 and run["error_rate"] <= 0.01

def f1(x):
    return "-" if x is None else "%.1f" % x

def f2(x):
    return "-" if x is None else "%.2f" % x

# The URL lists run.sh generated (from the image files, whatever the binary): the same
# requests for A and B only if these agree.
lists = {}
for name in sorted(os.listdir(outdir)):
    if name.endswith(".lists.md5"):
        for line in open(os.path.join(outdir, name)):
            h, fn = line.split()
            lists.setdefault(fn, set()).add(h)
differ = sorted(fn for fn, hs in lists.items() if len(hs) > 1)

out = []
out.append("## Tessera A/B: %s vs %s" % (bins.get("A", "?").split()[0], bins.get("B", "?").split()[0]))
out.append("")
out.append("Tessera against Tessera (not against iipsrv or nginx). A = %s; B = %s." %
           (bins.get("A"), bins.get("B")))
out.append("")
out.append("Each figure is the median over %d round(s) of `bench/run.sh --only tessera` "
           "(%d s per run; rounds alternate A, B, A, B, ...; with 2 rounds the median is the "
           "mean of the two). As in run.sh, every workload and concurrency starts the binary "
           "fresh (cold caches in the process; tiles-hot after one warm-up pass; the kernel's "
           "page cache is not dropped, for either binary) on 127.0.0.1 with "
           "`--jpeg-quality 85` and defaults otherwise, driven by wrk over the same URL list "
           "for A and B." % (rounds, duration))
out.append("")
out.append("Responses are checked as run.sh checks them: wrk counts HTTP >= 400, socket "
           "errors and timeouts as errors (wrk does not look at bodies); B/A is n/a when any "
           "run of either side had over 1% errors, as in report.py. KB/resp (wrk's bytes, "
           "headers included, per response) is shown so a binary answering with different "
           "bodies stands out. p99 is wrk's (closed loop); peak RSS is VmHWM at the end of the "
           "run. \"range\" is the lowest and highest req/s over the rounds: a B/A whose ranges "
           "overlap is within this run-to-run noise.")
out.append("")
if missing:
    out.append("**Missing runs** (run.sh failed; see their .log): %s" % ", ".join(missing))
    out.append("")
if differ:
    out.append("**The URL lists differed between runs** (%s): the images changed between "
               "runs, so A and B were not sent the same requests." % ", ".join(differ))
    out.append("")
bad_bytes = []
keys = sorted(set(data["A"]) | set(data["B"]),
              key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
for w in [w for w in ORDER if any(k[0] == w for k in keys)]:
    out.append("### %s" % w)
    out.append("")
    out.append("| conc | A req/s | B req/s | B/A | A range | B range | A p99 ms | B p99 ms | "
               "A RSS MB | B RSS MB | A KB/resp | B KB/resp | errors A / B | runs A / B |")
    out.append("|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for c in sorted(k[1] for k in keys if k[0] == w):
        a, b = data["A"].get((w, c), []), data["B"].get((w, c), [])
        ra, rb = med([x["rps"] for x in a]), med([x["rps"] for x in b])
        ratio = "n/a"
        if a and b and all(map(ok, a + b)) and ra:
            ratio = "%.3f" % (rb / ra)
            lo_a, hi_a = min(x["rps"] for x in a), max(x["rps"] for x in a)
            lo_b, hi_b = min(x["rps"] for x in b), max(x["rps"] for x in b)
            if len(a) > 1 and len(b) > 1 and (hi_b < lo_a or lo_b > hi_a):
                ratio = "**%s**" % ratio  # outside each other's range
        def rng(xs):
            return "-" if not xs else "%.0f-%.0f" % (min(x["rps"] for x in xs),
                                                     max(x["rps"] for x in xs))
        def kb(xs):
            v = [x["mb_per_s"] * 1000 / x["rps"] for x in xs if x["rps"] > 0]
            return med(v)
        ka, kb_ = kb(a), kb(b)
        if ka and kb_ and abs(kb_ / ka - 1) > 0.10:
            bad_bytes.append("%s c=%d" % (w, c))
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d | %d / %d |" % (
            c, f1(ra), f1(rb), ratio, rng(a), rng(b),
            f2(med([x["p99_ms"] for x in a])), f2(med([x["p99_ms"] for x in b])),
            f1(med([x["rss_mb"] for x in a])), f1(med([x["rss_mb"] for x in b])),
            f2(ka), f2(kb_),
            sum(x["errors"] for x in a), sum(x["errors"] for x in b), len(a), len(b)))
    out.append("")
if bad_bytes:
    out.append("**Response sizes differ by over 10%% between A and B** (%s): check that both "
               "binaries return the same images before trusting req/s." % ", ".join(bad_bytes))
    out.append("")
out.append("B/A above 1: B serves more requests per second. Bold: A's and B's ranges do not "
           "overlap. Runs, with the load average at their start:")
out.append("")
for parts in runs_txt:
    out.append("- " + " ".join(parts))
print("\n".join(out))
PY
cat "$OUTDIR/compare.md"
say "table in $OUTDIR/compare.md"
if [ "$FAILED" = 1 ]; then
    say "some run.sh calls failed (see above and the table's notes); do not trust this comparison"
    exit 1
fi
