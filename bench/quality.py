#!/usr/bin/env python3
"""Downscale quality: PSNR of a server's renders against libvips's Lanczos3 resize of the same
region of the full-resolution image (vips resize, its own kernel and integer pre-shrink).

Usage: quality.py HOST BASE_PATH NAME IMG_DIR REF_DIR OUT_JSON [--formats jpg,png]

Prints one JSON line per render and appends them to OUT_JSON. The reference is made once per
(image, region, size) in REF_DIR. Sizes that come back a pixel off the reference are compared on
their common part (the 1 px is reported). Runs vips on the command line: no Python packages."""
import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.request

# (image, IIIF region, IIIF size): thumbnails, a mid-size view, an odd region, a big render; on
# the pyramidal TIFF-JPEG and on the JPEG 2000 copy of the same picture.
CASES = [
    ("k10-jpeg.tif", "full", "!200,200"),
    ("k10-jpeg.tif", "full", "1000,"),
    ("k10-jpeg.tif", "1234,567,3000,2000", "800,"),
    ("k10-jpeg.tif", "full", "4000,"),
    ("k10.jp2", "full", "!200,200"),
    ("k10.jp2", "1234,567,3000,2000", "800,"),
]


def vips(*args):
    subprocess.run(["vips"] + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=300)


def header(path, field):
    out = subprocess.run(["vipsheader", "-f", field, path], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return int(out.strip())


def full_copy(img_dir, ref_dir, image):
    """The image's full resolution as an uncompressed .v file (page 0 of a pyramid)."""
    dst = os.path.join(ref_dir, image + ".full.v")
    if not os.path.exists(dst):
        src = os.path.join(img_dir, image)
        vips("copy", src + ("[page=0]" if image.endswith(".tif") else ""), dst + ".part.v")
        os.rename(dst + ".part.v", dst)
    return dst


def out_size(region, size, fw, fh):
    """Region x, y, w, h and output w, h, for the few IIIF forms CASES uses."""
    if region == "full":
        x, y, w, h = 0, 0, fw, fh
    else:
        x, y, w, h = (int(v) for v in region.split(","))
    if size.startswith("!"):
        bw, bh = (int(v) for v in size[1:].split(","))
        s = min(bw / w, bh / h)
        return (x, y, w, h), (max(1, int(w * s + 0.5)), max(1, int(h * s + 0.5)))
    ow = int(size.rstrip(","))
    return (x, y, w, h), (ow, max(1, int(h * ow / w + 0.5)))


def reference(img_dir, ref_dir, image, region, size):
    full = full_copy(img_dir, ref_dir, image)
    fw, fh = header(full, "width"), header(full, "height")
    (x, y, w, h), (ow, oh) = out_size(region, size, fw, fh)
    name = "%s_%s_%s.v" % (image, region.replace(",", "-"), size.replace(",", "-").replace("!", "b"))
    dst = os.path.join(ref_dir, name)
    if not os.path.exists(dst):
        crop = dst + ".crop.v"
        vips("crop", full, crop, x, y, w, h)
        vips("resize", crop, dst + ".part.v", ow / w, "--vscale", oh / h, "--kernel", "lanczos3")
        os.remove(crop)
        os.rename(dst + ".part.v", dst)
    return dst, (ow, oh)


def mse(a, b, tmp):
    """Mean squared error over the common top-left part of two 3-band 8-bit images."""
    w = min(header(a, "width"), header(b, "width"))
    h = min(header(a, "height"), header(b, "height"))
    ca, cb = os.path.join(tmp, "ca.v"), os.path.join(tmp, "cb.v")
    vips("extract_area", a, ca, 0, 0, w, h)
    vips("extract_area", b, cb, 0, 0, w, h)
    d, st = os.path.join(tmp, "d.v"), os.path.join(tmp, "s.mat")
    vips("subtract", ca, cb, d)
    vips("stats", d, st)
    with open(st) as f:
        f.readline()
        row = f.readline().split()
    bands = header(a, "bands")
    return float(row[3]) / (w * h * bands)


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    host, base, name, img_dir, ref_dir, out_json = sys.argv[1:7]
    formats = ["jpg"]
    if "--formats" in sys.argv:
        formats = sys.argv[sys.argv.index("--formats") + 1].split(",")
    os.makedirs(ref_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, open(out_json, "a") as out:
        for image, region, size in CASES:
            if not os.path.exists(os.path.join(img_dir, image)):
                continue
            ref, (ow, oh) = reference(img_dir, ref_dir, image, region, size)
            for fmt in formats:
                url = "%s%s%s/%s/%s/0/default.%s" % (host, base, image, region, size, fmt)
                rec = {"server": name, "image": image, "region": region, "size": size,
                       "format": fmt, "want": [ow, oh]}
                got = os.path.join(tmp, "got." + fmt)
                try:
                    with urllib.request.urlopen(url, timeout=120) as r, open(got, "wb") as f:
                        f.write(r.read())
                    gw, gh = header(got, "width"), header(got, "height")
                    rec["got"] = [gw, gh]
                    m = mse(ref, got, tmp)
                    rec["psnr"] = round(99.0 if m == 0 else 10 * math.log10(255 * 255 / m), 2)
                except Exception as e:  # a failed render is a result too
                    rec["error"] = str(e)[:200]
                print(json.dumps(rec), flush=True)
                out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
