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


def grid_info(width, height, tile):
    """A square tile grid of TILE px with scale factors 1, 2, 4, ... up to the first level that
    fits in one tile: the same request units for every server, whatever grid it advertises."""
    sfs, sf = [], 1
    while True:
        sfs.append(sf)
        if math.ceil(width / sf) <= tile and math.ceil(height / sf) <= tile:
            break
        sf *= 2
    return {"width": width, "height": height,
            "tiles": [{"width": tile, "height": tile, "scaleFactors": sfs}]}


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


def odd_region(rnd, width, height):
    """x,y,w,h of a region 1,000..4,000 x 600..3,000 px at a random, off-grid place."""
    w, h = rnd.randint(1000, 4000), rnd.randint(600, 3000)
    x, y = rnd.randint(0, width - w), rnd.randint(0, height - h)
    return "%d,%d,%d,%d" % (x, y, w, h)


def ids(prefix, ext, first, count):
    return ["%s%04d.%s" % (prefix, i, ext) for i in range(first, first + count)]


def write(out, lines):
    with open(out + ".tmp", "w") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(out + ".tmp", out)


def tile_source(a):
    if a.grid:
        return grid_info(a.width, a.height, a.grid)
    return load_info(a.info, a.info_fallback)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=["tiles", "static-tiles", "info", "thumbs", "regions",
                                     "big", "mixed"])
    ap.add_argument("--base", required=True, help="URL path before the identifier")
    ap.add_argument("--out", required=True)
    ap.add_argument("--info", help="info.json whose tile grid to use")
    ap.add_argument("--info-fallback", help="info.json to use if --info is not one")
    ap.add_argument("--grid", type=int, default=0,
                    help="ignore the info.json grid: TILE px tiles of --width x --height")
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
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    lines = []
    if a.kind == "tiles":
        tails = osd_tile_tails(tile_source(a), a.ext)
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
        # Odd regions off the tile grid, 1,000 to 4,000 px wide, each rendered 800 px wide, over
        # the copies in turn (every URL differs, so no response cache can answer one).
        all_ids = ids(a.id_prefix, a.id_ext, 1, a.images) if not a.id else [a.id]
        for n in range(a.count):
            lines.append("%s%s/%s/800,/0/default.jpg" % (a.base, all_ids[n % len(all_ids)],
                                                        odd_region(rnd, a.width, a.height)))
    elif a.kind == "big":
        # A 4,000 px wide render of the whole image, one per copy.
        all_ids = ids(a.id_prefix, a.id_ext, 1, a.images) if not a.id else [a.id]
        lines = ["%s%s/full/4000,/0/default.jpg" % (a.base, i) for i in all_ids]
    elif a.kind == "mixed":
        # A viewer-heavy mix: per 200 requests, 150 tiles, 20 info.json, 16 thumbnails,
        # 13 odd regions (800 px) and 1 render 4,000 px wide, over many images.
        tails = osd_tile_tails(tile_source(a), "jpg")
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
                lines.append("%s%s/%s/800,/0/default.jpg" % (
                    a.base, ident, odd_region(rnd, a.width, a.height)))
            else:
                lines.append("%s%s/full/4000,/0/default.jpg" % (
                    a.base, all_ids[rnd.randrange(len(all_ids))]))
    write(a.out, lines)
    print("urls.py: %s: %d URLs" % (os.path.basename(a.out), len(lines)), file=sys.stderr)


if __name__ == "__main__":
    main()
