#!/bin/sh
# Fails when a file under src/ includes a project header from a higher layer (DESIGN.md:
# layers point down only). Usage: check-layers.sh [REPO]   (default: this script's repository)
#
# Layers, low to high; a file may include its own layer and any below it:
#   0 util      src/util/, src/config.[ch], src/config_env.[ch]
#   1 image, encode
#   2 cache, render
#   3 core
#   4 protocol, web
#   5 server    front ends and the router
#   6 main      src/main.c
set -eu

repo=${1:-"$(dirname "$0")/.."}
src="$repo/src"
if [ ! -d "$src" ]; then
    echo "layers: no src/ directory in $repo" >&2
    exit 2
fi

# Prints the layer number of a path relative to src/, or nothing when it has none.
layer_of() {
    case "$1" in
    util/* | config.h | config.c | config_env.h | config_env.c) echo 0 ;;
    image/* | encode/*) echo 1 ;;
    cache/* | render/*) echo 2 ;;
    core/*) echo 3 ;;
    protocol/* | web/*) echo 4 ;;
    server/*) echo 5 ;;
    main.c) echo 6 ;;
    *) echo "" ;;
    esac
}

# Folds "a/./b" and "a/x/../b" into "a/b" and drops a leading "./".
normalize() {
    echo "$1" | awk -F/ '{
        n = 0
        for (i = 1; i <= NF; i++) {
            if ($i == "" || $i == ".") continue
            if ($i == ".." && n > 0 && part[n] != "..") { n--; continue }
            part[++n] = $i
        }
        out = ""
        for (i = 1; i <= n; i++) out = out (i > 1 ? "/" : "") part[i]
        print out
    }'
}

files=$(mktemp)
trap 'rm -f "$files"' EXIT
(cd "$src" && find . -type f \( -name '*.c' -o -name '*.h' \)) | sed 's|^\./||' | sort >"$files"

count=0
bad=0
while IFS= read -r rel; do
    count=$((count + 1))
    own=$(layer_of "$rel")
    if [ -z "$own" ]; then
        echo "src/$rel: is in no layer (add its folder to scripts/check-layers.sh)"
        bad=$((bad + 1))
        continue
    fi
    dir=$(dirname "$rel")
    # Quoted includes only: <...> names system and library headers.
    includes=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$src/$rel")
    for inc in $includes; do
        # The compiler looks beside the including file first, then in src/.
        if [ -f "$src/$dir/$inc" ]; then
            target=$(normalize "$dir/$inc")
        elif [ -f "$src/$inc" ]; then
            target=$(normalize "$inc")
        else
            continue # not a project header
        fi
        theirs=$(layer_of "$target")
        if [ -z "$theirs" ] || [ "$theirs" -gt "$own" ]; then
            echo "src/$rel: includes $inc (layer ${theirs:-none} above layer $own)"
            bad=$((bad + 1))
        fi
    done
done <"$files"

if [ "$bad" -gt 0 ]; then
    echo "layers: $bad problem(s) in $count files"
    exit 1
fi
echo "layers: ok ($count files)"
