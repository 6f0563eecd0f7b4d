#!/usr/bin/env python3
"""Writes the decompression-bomb fixtures in tests/data/bombs: tiny, well-formed headers that
declare images whose decoding would need gigabytes. Python 3 standard library only.

    python3 tools/make-bombs.py [OUTDIR]

Every file is built byte by byte here, so the fixtures are reproducible and public domain."""

import os
import struct
import sys
import zlib


def j2k_bomb(width, height, ncomps, levels, cblk_exp, tile=None):
    """A raw JPEG 2000 codestream: `levels` decompositions, 2^cblk_exp code-blocks, one tile
    over the whole canvas (or a grid of `tile` px tiles of which only the first is present),
    every packet empty (a single 0 bit: nothing included)."""
    tw, th = (tile, tile) if tile else (width, height)
    siz = struct.pack(">HIIIIIIIIH", 0, width, height, 0, 0, tw, th, 0, 0, ncomps)
    siz += bytes([7, 1, 1]) * ncomps  # 8-bit unsigned, no subsampling
    cod = bytes([0, 0]) + struct.pack(">H", 1) + bytes([1 if ncomps >= 3 else 0])
    cod += bytes([levels, cblk_exp - 2, cblk_exp - 2, 0, 1])  # 5-3 reversible, no precincts
    nbands = 3 * levels + 1
    qcd = bytes([0x40]) + bytes([10 << 3]) * nbands  # no quantisation, two guard bits

    def marker(code, body):
        return struct.pack(">HH", code, len(body) + 2) + body

    # One packet per layer, resolution, component and precinct (precincts are 2^15 by default).
    packets = 0
    for r in range(levels + 1):
        shift = levels - r
        rw = -(-tw >> shift)
        rh = -(-th >> shift)
        packets += ncomps * (-(-rw >> 15)) * (-(-rh >> 15))
    body = bytes(packets)
    sot_len = 12 + 2 + len(body)
    sot = marker(0xFF90, struct.pack(">HIBB", 0, sot_len, 0, 1))
    return (b"\xff\x4f" + marker(0xFF51, siz) + marker(0xFF52, cod) + marker(0xFF5C, qcd) + sot +
            b"\xff\x93" + body + b"\xff\xd9")


def jpeg_bomb(width, height):
    """A progressive JPEG (SOF2), YCbCr 4:2:0, with a DC scan and one AC scan of a few bytes:
    libjpeg keeps coefficients for the whole image in progressive mode, whatever is read."""

    def seg(code, body):
        return struct.pack(">HH", code, len(body) + 2) + body

    dqt = seg(0xFFDB, bytes([0]) + bytes([1]) * 64)
    sof = seg(0xFFC2, struct.pack(">BHHB", 8, height, width, 3) +
              bytes([1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]))
    # One code of length 1 per table: DC category 0, AC symbol 0x00 (end of band).
    dht = seg(0xFFC4, bytes([0x00, 1] + [0] * 15 + [0]) + bytes([0x10, 1] + [0] * 15 + [0]))
    dc_scan = seg(0xFFDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 0, 0]))
    ac_scan = seg(0xFFDA, bytes([1, 1, 0x00, 1, 63, 0]))
    data = bytes(8)
    return b"\xff\xd8" + dqt + sof + dht + dc_scan + data + ac_scan + data + b"\xff\xd9"


def tiff_bomb(side, spp, bps):
    """A little-endian TIFF with one side x side deflate tile holding a few bytes."""
    payload = zlib.compress(bytes(64))
    entries = []
    extra = b""
    header = 8
    nent = 12 if spp == 4 else 11
    ifd_len = 2 + nent * 12 + 4
    extra_off = header + ifd_len

    def add(tag, typ, count, value):
        entries.append((tag, typ, count, value))

    bps_off = extra_off
    extra += struct.pack("<" + "H" * spp, *([bps] * spp))
    data_off = extra_off + len(extra)
    add(256, 4, 1, side)
    add(257, 4, 1, side)
    add(258, 3, spp, bps_off if spp > 2 else bps)
    add(259, 3, 1, 8)  # deflate
    add(262, 3, 1, 2 if spp >= 3 else 1)
    add(277, 3, 1, spp)
    add(284, 3, 1, 1)
    if spp == 4:
        add(338, 3, 1, 2)  # unassociated alpha
    add(322, 4, 1, side)
    add(323, 4, 1, side)
    add(324, 4, 1, data_off)
    add(325, 4, 1, len(payload))
    entries.sort()
    assert len(entries) == nent
    out = b"II*\x00" + struct.pack("<I", header) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += b"\x00" * (extra_off - len(out))
    return out + extra + payload


def png_bomb(width, height, interlace):
    """An 8-bit RGB PNG with one IDAT of a few compressed bytes."""

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    idat = zlib.compress(bytes(256))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) +
            chunk(b"IEND", b""))


BOMBS = {
    # 2^31 pixels, 32 resolution levels, 32 x 32 code-blocks: OpenJPEG sets up every
    # code-block of every resolution of the tile before decoding any of them.
    "j2k-2g-32lvl.j2k": lambda: j2k_bomb(65536, 32768, 3, 31, 5),
    # 65025 tiles: OpenJPEG sets up every tile's coding parameters while reading the header.
    "j2k-65k-tiles.j2k": lambda: j2k_bomb(65280, 65280, 3, 5, 6, tile=256),
    "progressive-30000.jpg": lambda: jpeg_bomb(30000, 30000),
    "tiff-16384-tile.tif": lambda: tiff_bomb(16384, 4, 16),
    "png-60000-interlaced.png": lambda: png_bomb(60000, 60000, 1),
    # Not a memory bomb: rows decode one at a time, so this one is cheap and must stay so.
    "png-60000-rows.png": lambda: png_bomb(60000, 60000, 0),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "bombs")
    os.makedirs(out, exist_ok=True)
    for name, make in BOMBS.items():
        data = make()
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
