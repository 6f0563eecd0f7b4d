#!/usr/bin/env python3
"""Checks a sample of a workload's URLs against a running server (run.sh calls it after each
measured run): every answer must be 200, in the format the URL asks for (JPEG or PNG, by its
magic bytes), with the pixel size the URL asks for (from the JPEG's SOF or the PNG's IHDR, and
a JPEG must end with EOI; anything else goes to vipsheader), or a JSON document with a width
and height for info.json. The sample is spread evenly over the list. Prints one JSON line:
{"checked": N, "failures": M, "first": ..., "near": K, "first_near": ...}.

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


def header_size(body):
    """(w, h) from a JPEG's SOF or a PNG's IHDR, else None (then vipsheader decides)."""
    if body.startswith(b"\x89PNG\r\n\x1a\n") and body[12:16] == b"IHDR":
        return int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
    if not body.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(body):
        if body[i] != 0xFF:
            return None
        marker = body[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        seglen = int.from_bytes(body[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h = int.from_bytes(body[i + 5:i + 7], "big")
            w = int.from_bytes(body[i + 7:i + 9], "big")
            return w, h
        i += 2 + seglen
    return None


def pixel_size(body):
    got = header_size(body)
    # A header that parses is enough for the size; the end of a JPEG must be there too.
    if got and (body.startswith(b"\x89PNG") or body.rstrip(b"\0").endswith(b"\xff\xd9")):
        return got
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
    ext = path.rsplit(".", 1)[-1]
    magic = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG"}.get(ext)
    if magic and not body.startswith(magic):
        return "not a %s body (%r...)" % (ext, body[:4])
    got = pixel_size(body)
    if got is None:
        return "body does not decode as an image"
    want = expected_size(path)
    if want is None:
        return None
    w, h, exact = want
    region = parts_region(path)
    if exact and region and (w is None or h is None):
        # "w," or ",h" of an x,y,w,h region: the free side follows the region's aspect ratio
        if h is None:
            h = w * region[1] / region[0]
        else:
            w = h * region[0] / region[1]
        h_free = want[1] is None
        w_free = want[0] is None
    else:
        w_free = h_free = False
    if exact:
        dw = 0 if w is None else abs(got[0] - w)
        dh = 0 if h is None else abs(got[1] - h)
        # a side the URL leaves free may round either way: within 1 px is right
        ok_w = dw < 1 if w_free else dw == 0
        ok_h = dh < 1 if h_free else dh == 0
        if ok_w and ok_h:
            return None
        if dw <= 1.5 and dh <= 1.5:
            return NEAR + "%dx%d, asked %s x %s" % (got[0], got[1], fmt(w), fmt(h))
        return "%dx%d, asked %s x %s" % (got[0], got[1], fmt(w), fmt(h))
    if got[0] > w or got[1] > h or (got[0] != w and got[1] != h):
        if got[0] <= w + 1 and got[1] <= h + 1 and (abs(got[0] - w) <= 1 or abs(got[1] - h) <= 1):
            return NEAR + "%dx%d does not quite fit !%d,%d" % (got[0], got[1], w, h)
        return "%dx%d does not fit !%d,%d" % (got[0], got[1], w, h)
    return None


NEAR = "1 px off: "


def fmt(x):
    return "-" if x is None else ("%d" % x if x == int(x) else "%.1f" % x)


def parts_region(path):
    """(w, h) of an x,y,w,h region in the URL, else None."""
    parts = path.split("?")[-1].split("/")
    if len(parts) < 4:
        return None
    m = re.fullmatch(r"\d+,\d+,(\d+),(\d+)", parts[-4])
    return (int(m.group(1)), int(m.group(2))) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("host")
    ap.add_argument("list")
    ap.add_argument("--sample", type=int, default=12)
    a = ap.parse_args()
    with open(a.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    # Evenly spaced from the first URL to the last (a fixed step could keep to one parity
    # of a list that alternates kinds, as the thumbnails' does).
    k = min(a.sample, len(paths))
    picks = sorted({round(i * (len(paths) - 1) / max(1, k - 1)) for i in range(k)})
    sample = [paths[i] for i in picks]
    # An answer 1 px off the asked size is counted apart ("near"), not as a failure: it is a
    # rounding difference (iipsrv renders some "800," regions 799 px wide), not less work.
    failures, first, near, first_near = 0, None, 0, None
    for p in sample:
        why = check_one(a.host, p)
        if why and why.startswith(NEAR):
            near += 1
            first_near = first_near or "%s: %s" % (p, why[len(NEAR):])
        elif why:
            failures += 1
            first = first or "%s: %s" % (p, why)
    print(json.dumps({"checked": len(sample), "failures": failures, "first": first,
                      "near": near, "first_near": first_near}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
