#!/usr/bin/env python3
"""Checks a sample of a workload's URLs against a running server before it is measured:
every answer must be 200 with the pixel size the URL asks for (decoded with vipsheader), or a
JSON document for info.json. Prints one JSON line: {"checked": N, "failures": M, "first": ...}.

Usage: check.py HOST LISTFILE [--sample N]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request


def expected_size(path):
    """(w, h, exact) from the IIIF size segment, None where a side is free."""
    parts = path.split("?")[-1].split("/")
    if len(parts) < 4:
        return None
    size = parts[-3]
    m = re.fullmatch(r"(\d+),(\d+)", size)
    if m:
        return int(m.group(1)), int(m.group(2)), True
    m = re.fullmatch(r"(\d+),", size)
    if m:
        return int(m.group(1)), None, True
    m = re.fullmatch(r",(\d+)", size)
    if m:
        return None, int(m.group(1)), True
    m = re.fullmatch(r"!(\d+),(\d+)", size)
    if m:
        return int(m.group(1)), int(m.group(2)), False
    return None


def pixel_size(body):
    with tempfile.NamedTemporaryFile(suffix=".img", delete=False) as f:
        f.write(body)
        name = f.name
    try:
        out = subprocess.run(["vipsheader", "-f", "width", name], capture_output=True,
                             text=True, timeout=30)
        outh = subprocess.run(["vipsheader", "-f", "height", name], capture_output=True,
                              text=True, timeout=30)
        if out.returncode or outh.returncode:
            return None
        return int(out.stdout), int(outh.stdout)
    finally:
        os.unlink(name)


def check_one(host, path):
    try:
        with urllib.request.urlopen(host + path, timeout=60) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        return "status %d" % e.code
    except Exception as e:  # connection refused, timeout
        return "no answer (%s)" % e
    if status != 200 or not body:
        return "status %d, %d bytes" % (status, len(body))
    if path.endswith("info.json"):
        try:
            info = json.loads(body)
        except ValueError:
            return "info.json is not JSON"
        return None if info.get("width") and info.get("height") else "info.json without size"
    got = pixel_size(body)
    if got is None:
        return "body does not decode as an image"
    want = expected_size(path)
    if want is None:
        return None
    w, h, exact = want
    if exact:
        if (w is not None and got[0] != w) or (h is not None and got[1] != h):
            return "%dx%d, asked %s x %s" % (got[0], got[1], w, h)
    elif got[0] > w or got[1] > h or (got[0] != w and got[1] != h):
        return "%dx%d does not fit !%d,%d" % (got[0], got[1], w, h)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("host")
    ap.add_argument("list")
    ap.add_argument("--sample", type=int, default=12)
    a = ap.parse_args()
    with open(a.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    step = max(1, len(paths) // a.sample)
    sample = paths[::step][:a.sample]
    failures, first = 0, None
    for p in sample:
        why = check_one(a.host, p)
        if why:
            failures += 1
            first = first or "%s: %s" % (p, why)
    print(json.dumps({"checked": len(sample), "failures": failures, "first": first}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
