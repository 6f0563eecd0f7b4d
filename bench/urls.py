#!/usr/bin/env python3
"""Writes the benchmark's URL lists (one request path per line) for wrk's cycle.lua."""
import argparse
import json
import math
import os
import random
import sys


def osd_tile_tails(info, ext="jpg"):
    """Tile request tails ("region/size/0/default.ext") in the order OpenSeadragon's IIIF
    tile source builds them: every level from the smallest up, each level row by row.
    Sizes are "w,h" as OpenSeadragon 5 sends for IIIF 3 (and for IIIF 2 above level 0)."""
    width, height = int(info["width"]), int(info["height"])
    tiles = info["tiles"][0]
    tw = int(tiles["width"])
    th = int(tiles.get("height", tw))
    tails = []
    for sf in sorted((int(s) for s in tiles["scaleFactors"]), reverse=True):
        level_w, level_h = round(width / sf), round(height / sf)
        if level_w < tw and level_h < th:
            if level_w == width and level_h == height:
                size = "max"
            else:
                size = "%d,%d" % (level_w, level_h)
            tails.append("full/%s/0/default.%s" % (size, ext))
            continue
        rw, rh = tw * sf, th * sf
        for y in range(0, height, rh):
            for x in range(0, width, rw):
                w, h = min(rw, width - x), min(rh, height - y)
                if x == 0 and y == 0 and w == width and h == height:
                    region = "full"
                else:
                    region = "%d,%d,%d,%d" % (x, y, w, h)
                sw, sh = math.ceil(w / sf), math.ceil(h / sf)
                size = "max" if (sw == width and sh == height) else "%d,%d" % (sw, sh)
                tails.append("%s/%s/0/default.%s" % (region, size, ext))
    return tails


def load_info(path, fallback=None):
    try:
        with open(path) as f:
            info = json.load(f)
        if "width" in info and "tiles" in info:
            return info
    except (OSError, ValueError):
        pass
    if fallback:
        print("urls.py: %s is not an info.json; using %s's tile grid" % (path, fallback),
              file=sys.stderr)
        return load_info(fallback)
    sys.exit("urls.py: cannot read tile grid from %s" % path)


def ids(prefix, ext, first, count):
    return ["%s%04d.%s" % (prefix, i, ext) for i in range(first, first + count)]


def write(out, lines):
    with open(out + ".tmp", "w") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(out + ".tmp", out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=["tiles", "static-tiles", "info", "thumbs", "regions",
                                     "big", "mixed"])
    ap.add_argument("--base", required=True, help="URL path before the identifier")
    ap.add_argument("--out", required=True)
    ap.add_argument("--info", help="info.json whose tile grid to use")
    ap.add_argument("--info-fallback", help="info.json to use if --info is not one")
    ap.add_argument("--id", help="one identifier")
    ap.add_argument("--id-prefix", default="c", help="copies are PREFIX0001.EXT ...")
    ap.add_argument("--id-ext", default="tif")
    ap.add_argument("--images", type=int, default=1, help="how many copies to walk")
    ap.add_argument("--ext", default="jpg", help="output format of tiles")
    ap.add_argument("--width", type=int, default=10000)
    ap.add_argument("--height", type=int, default=5625)
    ap.add_argument("--static-dir", help="check static tiles exist under this directory")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--big-id", help="identifier of the big-render image (mixed)")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    lines = []
    if a.kind == "tiles":
        tails = osd_tile_tails(load_info(a.info, a.info_fallback), a.ext)
        for ident in ids(a.id_prefix, a.id_ext, 1, a.images):
            lines += ["%s%s/%s" % (a.base, ident, t) for t in tails]
    elif a.kind == "static-tiles":
        # Tails of the pre-cut tiles, taken from their own info.json so they exist on disk.
        tails = osd_tile_tails(load_info(a.info), a.ext)
        if a.static_dir:
            missing = [t for t in tails if not os.path.exists(os.path.join(a.static_dir, t))]
            if missing:
                print("urls.py: %d static tiles missing, e.g. %s" % (len(missing), missing[0]),
                      file=sys.stderr)
                tails = [t for t in tails if t not in set(missing)]
        lines = ["%s%s/%s" % (a.base, a.id, t) for t in tails]
    elif a.kind == "info":
        if a.id:
            lines = ["%s%s/info.json" % (a.base, a.id)]
        else:
            lines = ["%s%s/info.json" % (a.base, i) for i in ids(a.id_prefix, a.id_ext, 1,
                                                                  a.images)]
    elif a.kind == "thumbs":
        for ident in ids(a.id_prefix, a.id_ext, 1, a.images):
            lines.append("%s%s/full/!200,200/0/default.jpg" % (a.base, ident))
            lines.append("%s%s/full/,150/0/default.jpg" % (a.base, ident))
    elif a.kind == "regions":
        # Odd regions off the tile grid, each downscaled by a factor of 2.2 to 5.5.
        for _ in range(a.count):
            w, h = rnd.randint(300, 3000), rnd.randint(300, 3000)
            x, y = rnd.randint(0, a.width - w), rnd.randint(0, a.height - h)
            ow = max(1, round(w / rnd.uniform(2.2, 5.5)))
            lines.append("%s%s/%d,%d,%d,%d/%d,/0/default.jpg" % (a.base, a.id, x, y, w, h, ow))
    elif a.kind == "big":
        # One big render, at slightly different widths so no response cache can answer it.
        lines = ["%s%s/full/%d,/0/default.jpg" % (a.base, a.id, 3900 + i)
                 for i in range(a.count)]
    elif a.kind == "mixed":
        # A viewer-heavy mix: per 200 requests, 150 tiles, 20 info.json, 16 thumbnails,
        # 13 odd regions and 1 big render, over many images.
        tails = osd_tile_tails(load_info(a.info, a.info_fallback), "jpg")
        all_ids = ids(a.id_prefix, a.id_ext, 1, a.images)
        ti = 0
        for n in range(a.count):
            ident = all_ids[(n // 40) % len(all_ids)]
            slot = n % 200
            if slot < 150:
                lines.append("%s%s/%s" % (a.base, ident, tails[ti % len(tails)]))
                ti += 1
            elif slot < 170:
                lines.append("%s%s/info.json" % (a.base, all_ids[rnd.randrange(len(all_ids))]))
            elif slot < 186:
                size = "!200,200" if slot % 2 else ",150"
                lines.append("%s%s/full/%s/0/default.jpg" % (
                    a.base, all_ids[rnd.randrange(len(all_ids))], size))
            elif slot < 199:
                w, h = rnd.randint(300, 3000), rnd.randint(300, 3000)
                x, y = rnd.randint(0, a.width - w), rnd.randint(0, a.height - h)
                ow = max(1, round(w / rnd.uniform(2.2, 5.5)))
                lines.append("%s%s/%d,%d,%d,%d/%d,/0/default.jpg" % (a.base, ident, x, y, w,
                                                                      h, ow))
            else:
                lines.append("%s%s/full/%d,/0/default.jpg" % (a.base, a.big_id,
                                                               3000 + rnd.randrange(200)))
    write(a.out, lines)
    print("urls.py: %s: %d URLs" % (os.path.basename(a.out), len(lines)), file=sys.stderr)


if __name__ == "__main__":
    main()
