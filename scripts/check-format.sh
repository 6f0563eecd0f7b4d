#!/bin/sh
# Fails when a C file under src/, tests/, tools/ or bench/ differs from what clang-format (Debian 12's
# clang-format 14, with the checked-in .clang-format) would make of it. Changes nothing.
# Usage: check-format.sh [REPO]   (default: this script's repository)
set -eu

repo=${1:-"$(dirname "$0")/.."}
cd "$repo"
if [ ! -f .clang-format ]; then
    echo "format: no .clang-format in $(pwd)" >&2
    exit 2
fi

# Other major versions format some constructs differently: prefer the one CI installs.
cf=""
for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null 2>&1; then
        cf=$c
        break
    fi
done
if [ -z "$cf" ]; then
    echo "format: clang-format not found (sh scripts/deps.sh --test installs it)" >&2
    exit 2
fi
case "$("$cf" --version)" in
*"version 14."*) ;;
*) echo "format: note: $("$cf" --version) is not clang-format 14; results may differ" >&2 ;;
esac

files=$(mktemp)
trap 'rm -f "$files"' EXIT
{
    for d in src tests/unit tests/http tests/support tests/fuzz tools; do
        [ -d "$d" ] && find "$d" -type f \( -name '*.c' -o -name '*.h' \)
    done
    # bench/work holds fetched sources (iipsrv) that are not ours.
    find bench -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \)
} | sort >"$files"

count=0
bad=0
while IFS= read -r f; do
    count=$((count + 1))
    if ! "$cf" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "$f"
        bad=$((bad + 1))
    fi
done <"$files"

if [ "$bad" -gt 0 ]; then
    echo "format: $bad of $count files differ from .clang-format (clang-format -i FILE fixes one)"
    exit 1
fi
echo "format: ok ($count files)"
