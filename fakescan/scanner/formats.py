"""Image containers by their bytes: which format a file is (magic bytes, never the extension),
whether it looks whole, and what size its header declares - all without a decoder.
"""

from __future__ import annotations

import struct


def sniff(data: bytes) -> str | None:
    """The format by magic bytes: jpeg, png, gif, bmp, tiff, webp; ``None`` if unknown."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def looks_whole(fmt: str, data: bytes) -> bool:
    """A cheap end-of-file check: does the container end where it says it does?"""
    if fmt == "jpeg":
        return b"\xff\xd9" in data[-4096:]
    if fmt == "png":
        return b"IEND" in data[-64:]
    if fmt == "webp":
        return int.from_bytes(data[4:8], "little") + 8 <= len(data)
    if fmt == "gif":
        return data.rstrip(b"\x00")[-1:] == b";"
    return True


def declared_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """The width and height a file's header declares, read with ``struct`` alone (no
    decoder has allocated anything yet); ``None`` when the header cannot be read here.

    Pillow's own bomb check runs after its plugin opened the file, and some plugins allocate
    on open (WebP sets up a canvas of the declared size); this check runs before any of them.
    """
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24])
        if fmt == "gif":
            w, h = struct.unpack("<HH", data[6:10])
            i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
            while i < len(data) and data[i] == 0x21:  # extensions before the first frame
                i += 2
                while i < len(data) and data[i]:
                    i += data[i] + 1
                i += 1
            if i + 9 <= len(data) and data[i] == 0x2C:  # the first frame may reach further
                x, y, fw, fh = struct.unpack("<HHHH", data[i + 1: i + 9])
                w, h = max(w, x + fw), max(h, y + fh)
            return w, h
        if fmt == "bmp":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 header
                return struct.unpack("<HH", data[18:22])
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "jpeg":
            i = 2
            while i + 9 <= len(data):
                if data[i] != 0xFF:
                    return None
                marker, n = data[i + 1], struct.unpack(">H", data[i + 2: i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5: i + 9])
                    return w, h
                if marker == 0xDA:
                    return None
                i += 2 + n
            return None
        if fmt == "webp":
            i = 12
            while i + 8 <= len(data):
                kind, n = data[i: i + 4], struct.unpack("<I", data[i + 4: i + 8])[0]
                c = data[i + 8: i + 8 + min(n, 32)]
                if kind == b"VP8X":
                    return (int.from_bytes(c[4:7], "little") + 1,
                            int.from_bytes(c[7:10], "little") + 1)
                if kind == b"VP8 ":
                    w, h = struct.unpack("<HH", c[6:10])
                    return w & 0x3FFF, h & 0x3FFF
                if kind == b"VP8L":
                    b = int.from_bytes(c[1:5], "little")
                    return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
                i += 8 + n + (n & 1)
            return None
        if fmt == "tiff" and data[2:4] in (b"*\x00", b"\x00*"):
            e = "<" if data[:2] == b"II" else ">"
            ifd = struct.unpack(e + "I", data[4:8])[0]
            (count,) = struct.unpack(e + "H", data[ifd: ifd + 2])
            size: dict[int, int] = {}
            for k in range(min(count, 4096)):
                tag, typ, _, raw = struct.unpack(e + "HHI4s", data[ifd + 2 + 12 * k:
                                                               ifd + 14 + 12 * k])
                if tag in (256, 257):
                    size[tag] = struct.unpack(e + ("H" if typ == 3 else "I"),
                                              raw[:2] if typ == 3 else raw)[0]
            return (size[256], size[257]) if len(size) == 2 else None
    except (struct.error, IndexError, KeyError):
        return None
    return None
