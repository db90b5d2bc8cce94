"""Format-aware mutations of valid image files: the fuzzer behind ``benchmarks/fuzz_scan.py``
and the seeded fuzz test.

``mutate(data, fmt, rng)`` returns ``(mutant, operator_name)``. Besides blind bit and byte
damage it knows each container's structure, so mutants reach the code behind the first
sanity check: JPEG segments, PNG chunks (CRC recomputed, so the damage is not caught by the
checksum), GIF blocks, BMP and TIFF header fields, RIFF/WebP chunks. Header fields get the
values decoders trip on: 0, 1, the type's maximum, absurd sizes, offsets past the end.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np

ABSURD_16 = (0, 1, 0x7FFF, 0xFFFF)
ABSURD_32 = (0, 1, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


# ---------------------------------------------------------------------------- generic damage
def bit_flips(d: bytes, rng) -> bytes:
    b = bytearray(d)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(b)))
        b[i] ^= 1 << int(rng.integers(8))
    return bytes(b)


def byte_overwrite(d: bytes, rng) -> bytes:
    b = bytearray(d)
    for _ in range(int(rng.integers(1, 17))):
        b[int(rng.integers(len(b)))] = int(rng.choice([0, 0xFF, 0x7F, 0x80, rng.integers(256)]))
    return bytes(b)


def header_damage(d: bytes, rng) -> bytes:
    """Random bytes in the first 64 bytes, where every format keeps its sizes and counts."""
    b = bytearray(d)
    n = min(64, len(b))
    for _ in range(int(rng.integers(1, 5))):
        b[int(rng.integers(n))] = int(rng.integers(256))
    return bytes(b)


def truncate_random(d: bytes, rng) -> bytes:
    return d[: int(rng.integers(1, len(d)))]


def zero_region(d: bytes, rng) -> bytes:
    i = int(rng.integers(len(d)))
    n = int(rng.integers(1, 256))
    return d[:i] + b"\0" * min(n, len(d) - i) + d[i + n:]


def duplicate_region(d: bytes, rng) -> bytes:
    i = int(rng.integers(len(d)))
    n = int(rng.integers(1, 512))
    return d[: i + n] + d[i: i + n] + d[i + n:]


def delete_region(d: bytes, rng) -> bytes:
    i = int(rng.integers(len(d)))
    return d[:i] + d[i + int(rng.integers(1, 256)):]


def append_garbage(d: bytes, rng) -> bytes:
    return d + rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()


GENERIC: tuple[Callable, ...] = (bit_flips, byte_overwrite, header_damage, truncate_random,
                                 zero_region, duplicate_region, delete_region, append_garbage)


def _cut_or_shuffle(parts: list[bytes], rng, name: str) -> tuple[bytes, str]:
    """Structural damage on a list of container parts: cut at a boundary, swap, duplicate,
    drop, or repeat one part many times."""
    op = int(rng.integers(5))
    if len(parts) < 2:
        return b"".join(parts), f"{name}_intact"
    i, j = (int(x) for x in rng.choice(len(parts), 2, replace=False))
    if op == 0:
        return b"".join(parts[: max(i, 1)]), f"{name}_cut_at_boundary"
    if op == 1:
        parts[i], parts[j] = parts[j], parts[i]
        return b"".join(parts), f"{name}_swap"
    if op == 2:
        return b"".join(parts[: i + 1] + [parts[i]] + parts[i + 1:]), f"{name}_duplicate"
    if op == 3:
        return b"".join(parts[:i] + parts[i + 1:]), f"{name}_drop"
    k = int(rng.integers(2, 200))
    return b"".join(parts[: i + 1] + [parts[i]] * k + parts[i + 1:]), f"{name}_repeat"


# ---------------------------------------------------------------------------- JPEG
def jpeg_segments(d: bytes) -> list[bytes]:
    """SOI, each marker segment, the entropy-coded data with its SOS, EOI (best effort)."""
    out, i = [d[:2]], 2
    while i + 4 <= len(d) and d[i] == 0xFF:
        marker = d[i + 1]
        if marker == 0xD9:
            out.append(d[i: i + 2])
            i += 2
            break
        n = struct.unpack(">H", d[i + 2: i + 4])[0]
        if marker == 0xDA:  # SOS: the scan data runs to the next non-RST marker
            j = i + 2 + n
            while j + 1 < len(d) and not (d[j] == 0xFF and d[j + 1] not in (0, *range(0xD0, 0xD8))):
                j += 1
            out.append(d[i:j])
            i = j
            continue
        out.append(d[i: i + 2 + n])
        i += 2 + n
    if i < len(d):
        out.append(d[i:])
    return out


def jpeg_fields(d: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(d)
    sof = next((k for k in range(len(b) - 9) if b[k] == 0xFF and b[k + 1] in
                (0xC0, 0xC1, 0xC2)), None)
    if sof is None:
        return byte_overwrite(d, rng), "jpeg_no_sof"
    what = int(rng.integers(5))
    if what == 0:  # precision 8 -> 12 / 16 / 0
        b[sof + 4] = int(rng.choice([0, 12, 16, 255]))
        return bytes(b), "jpeg_sof_precision"
    if what in (1, 2):  # height / width
        off = sof + 5 + 2 * (what - 1)
        b[off: off + 2] = struct.pack(">H", int(rng.choice(ABSURD_16)))
        return bytes(b), "jpeg_sof_dimension"
    if what == 3:  # number of components
        b[sof + 9] = int(rng.choice([0, 2, 4, 255]))
        return bytes(b), "jpeg_sof_components"
    # a sampling factor or table index
    k = sof + 10 + int(rng.integers(0, 9))
    if k < len(b):
        b[k] = int(rng.integers(256))
    return bytes(b), "jpeg_sof_component_field"


# ---------------------------------------------------------------------------- PNG
def png_chunks(d: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 8
    while i + 8 <= len(d):
        n = struct.unpack(">I", d[i: i + 4])[0]
        out.append((d[i + 4: i + 8], d[i + 8: i + 8 + n]))
        i += 12 + n
    return out


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_fields(d: bytes, rng) -> tuple[bytes, str]:
    chunks = png_chunks(d)
    if not chunks:
        return byte_overwrite(d, rng), "png_no_chunks"
    what = int(rng.integers(6))
    kind, data = chunks[0]
    if what <= 1 and kind == b"IHDR" and len(data) >= 13:  # width / height
        data = bytearray(data)
        data[4 * what: 4 * what + 4] = struct.pack(">I", int(rng.choice(ABSURD_32)))
        chunks[0] = (kind, bytes(data))
        name = "png_ihdr_dimension"
    elif what == 2 and kind == b"IHDR" and len(data) >= 13:  # bit depth / colour type / ...
        data = bytearray(data)
        data[8 + int(rng.integers(5))] = int(rng.choice([0, 1, 2, 3, 4, 6, 8, 16, 255]))
        chunks[0] = (kind, bytes(data))
        name = "png_ihdr_field"
    elif what == 3:  # a palette of the wrong length, or a tRNS longer than the palette
        n = int(rng.choice([0, 1, 2, 255, 256 * 3 + 3, 4000]))
        new = (b"PLTE" if rng.random() < 0.5 else b"tRNS",
               rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        chunks.insert(1 + int(rng.integers(max(len(chunks) - 1, 1))), new)
        name = f"png_{new[0].decode().lower()}_length"
    elif what == 4:  # an IDAT's compressed stream damaged (CRC kept valid)
        idats = [k for k, (t, _) in enumerate(chunks) if t == b"IDAT"]
        if not idats:
            return bit_flips(d, rng), "png_no_idat"
        k = idats[int(rng.integers(len(idats)))]
        chunks[k] = (b"IDAT", bit_flips(chunks[k][1], rng) if chunks[k][1] else b"")
        name = "png_idat_damage"
    else:
        parts = [png_chunk(t, x) for t, x in chunks]
        body, name = _cut_or_shuffle(parts, rng, "png_chunks")
        return d[:8] + body, name
    return d[:8] + b"".join(png_chunk(t, x) for t, x in chunks), name


# ---------------------------------------------------------------------------- GIF
def gif_fields(d: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(d)
    what = int(rng.integers(5))
    if what == 0 and len(b) >= 10:  # logical screen width / height
        off = 6 + 2 * int(rng.integers(2))
        b[off: off + 2] = struct.pack("<H", int(rng.choice(ABSURD_16)))
        return bytes(b), "gif_screen_dimension"
    if what == 1 and len(b) >= 11:  # global colour table flag and size
        b[10] = int(rng.integers(256))
        return bytes(b), "gif_palette_flags"
    desc = [k for k in range(13, len(b) - 10) if b[k] == 0x2C]
    if what == 2 and desc:  # an image descriptor's position or size
        k = desc[int(rng.integers(len(desc)))]
        off = k + 1 + 2 * int(rng.integers(4))
        b[off: off + 2] = struct.pack("<H", int(rng.choice(ABSURD_16)))
        return bytes(b), "gif_frame_dimension"
    if what == 3 and desc:  # LZW minimum code size
        k = desc[int(rng.integers(len(desc)))]
        flags = b[k + 9]
        lzw = k + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        if lzw < len(b):
            b[lzw] = int(rng.choice([0, 1, 12, 13, 255]))
        return bytes(b), "gif_lzw_code_size"
    # many frames: repeat the last image block (frame-count bombs)
    if desc:
        k = desc[-1]
        block = bytes(b[k:-1])
        reps = int(rng.integers(2, 400))
        return bytes(b[:k]) + block * reps + b";", "gif_many_frames"
    return bit_flips(d, rng), "gif_bits"


# ---------------------------------------------------------------------------- BMP
def bmp_fields(d: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(d)
    fields = {  # offset: (format, interesting values)
        2: ("<I", ABSURD_32), 10: ("<I", ABSURD_32), 14: ("<I", (0, 12, 40, 56, 108, 124, 9999)),
        18: ("<i", (0, -1, 1, 0x7FFFFFFF, -0x7FFFFFFF, 65536)),
        22: ("<i", (0, -1, 1, 0x7FFFFFFF, -0x7FFFFFFF, 65536)), 26: ("<H", (0, 2, 0xFFFF)),
        28: ("<H", (0, 1, 3, 4, 8, 15, 16, 24, 32, 64, 0xFFFF)),
        30: ("<I", (0, 1, 2, 3, 4, 5, 6, 99)), 34: ("<I", ABSURD_32), 46: ("<I", ABSURD_32),
    }
    off = int(rng.choice(list(fields)))
    fmt, values = fields[off]
    if off + struct.calcsize(fmt) > len(b):
        return bit_flips(d, rng), "bmp_bits"
    b[off: off + struct.calcsize(fmt)] = struct.pack(fmt, int(rng.choice(values)))
    return bytes(b), f"bmp_field_{off}"


# ---------------------------------------------------------------------------- TIFF
TIFF_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 338, 339)


def tiff_fields(d: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(d)
    if len(b) < 8 or b[:2] != b"II":
        return bit_flips(d, rng), "tiff_bits"
    ifd = struct.unpack("<I", b[4:8])[0]
    if ifd + 2 > len(b):
        return bit_flips(d, rng), "tiff_bits"
    n = struct.unpack("<H", b[ifd: ifd + 2])[0]
    entries = [ifd + 2 + 12 * k for k in range(n) if ifd + 14 + 12 * k <= len(b)]
    what = int(rng.integers(6))
    if what == 0 and entries:  # a value of a size/offset/count tag
        cands = [e for e in entries if struct.unpack("<H", b[e: e + 2])[0] in TIFF_TAGS] or entries
        e = cands[int(rng.integers(len(cands)))]
        b[e + 8: e + 12] = struct.pack("<I", int(rng.choice(ABSURD_32)))
        return bytes(b), "tiff_tag_value"
    if what == 1 and entries:  # a tag's type or count
        e = entries[int(rng.integers(len(entries)))]
        if rng.random() < 0.5:
            b[e + 2: e + 4] = struct.pack("<H", int(rng.choice([0, 1, 2, 5, 7, 12, 13, 99])))
        else:
            b[e + 4: e + 8] = struct.pack("<I", int(rng.choice(ABSURD_32)))
        return bytes(b), "tiff_tag_type_or_count"
    if what == 2 and entries:  # a tag renamed: e.g. no ImageWidth ("Missing dimensions")
        e = entries[int(rng.integers(len(entries)))]
        b[e: e + 2] = struct.pack("<H", int(rng.choice([0, 1, 999, 65000])))
        return bytes(b), "tiff_tag_removed"
    if what == 3:  # the entry count
        b[ifd: ifd + 2] = struct.pack("<H", int(rng.choice([0, 1, 0x7FFF, 0xFFFF])))
        return bytes(b), "tiff_entry_count"
    if what == 4:  # the next-IFD pointer: to itself (a loop), past the end, into the pixels
        nxt = ifd + 2 + 12 * n
        if nxt + 4 <= len(b):
            b[nxt: nxt + 4] = struct.pack("<I", int(rng.choice([ifd, 8, len(b) + 100,
                                                                 0xFFFFFFF0, len(b) // 2])))
        return bytes(b), "tiff_next_ifd"
    # a second page whose IFD lacks the dimensions (frame counting fails)
    return _tiff_bad_second_page(bytes(b)), "tiff_bad_second_page"


def _tiff_bad_second_page(d: bytes) -> bytes:
    ifd = struct.unpack("<I", d[4:8])[0]
    n = struct.unpack("<H", d[ifd: ifd + 2])[0]
    nxt = ifd + 2 + 12 * n
    if nxt + 4 > len(d):
        return d
    page2 = len(d) + (len(d) % 2)
    body = bytearray(d) + b"\0" * (page2 - len(d))
    body[nxt: nxt + 4] = struct.pack("<I", page2)
    # one entry (Compression = 1), no ImageWidth/ImageLength, then no further page
    body += struct.pack("<H", 1) + struct.pack("<HHII", 259, 3, 1, 1) + struct.pack("<I", 0)
    return bytes(body)


# ---------------------------------------------------------------------------- WebP / RIFF
def riff_chunks(d: bytes) -> list[bytes]:
    out, i = [], 12
    while i + 8 <= len(d):
        n = struct.unpack("<I", d[i + 4: i + 8])[0]
        end = i + 8 + n + (n & 1)
        out.append(d[i:end])
        i = end
    return out


def webp_fields(d: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(d)
    what = int(rng.integers(4))
    if what == 0 and len(b) >= 8:  # the RIFF size
        b[4:8] = struct.pack("<I", int(rng.choice(ABSURD_32)))
        return bytes(b), "webp_riff_size"
    chunks = riff_chunks(d)
    if what == 1 and chunks:  # a chunk's size field
        k = int(rng.integers(len(chunks)))
        off = 12 + sum(len(c) for c in chunks[:k]) + 4
        b[off: off + 4] = struct.pack("<I", int(rng.choice(ABSURD_32)))
        return bytes(b), "webp_chunk_size"
    if what == 2 and chunks:  # the frame / canvas dimensions inside VP8, VP8L, VP8X, ANMF
        k = int(rng.integers(len(chunks)))
        c = bytearray(chunks[k])
        for off in range(8, min(len(c), 30)):
            if rng.random() < 0.25:
                c[off] = int(rng.choice([0, 0xFF, int(rng.integers(256))]))
        chunks[k] = bytes(c)
        body = b"".join(chunks)
        return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body, "webp_frame_header"
    body, name = _cut_or_shuffle(chunks, rng, "webp_chunks")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body, name


# ---------------------------------------------------------------------------- dispatch
def _structural_jpeg(d: bytes, rng) -> tuple[bytes, str]:
    if rng.random() < 0.5:
        return jpeg_fields(d, rng)
    return _cut_or_shuffle(jpeg_segments(d), rng, "jpeg_segments")


STRUCTURAL: dict[str, Callable] = {
    "jpeg": _structural_jpeg, "png": png_fields, "gif": gif_fields, "bmp": bmp_fields,
    "tiff": tiff_fields, "webp": webp_fields,
}


def mutate(data: bytes, fmt: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutant of ``data`` (a valid ``fmt`` file): structural two times in three."""
    if fmt in STRUCTURAL and rng.random() < 2 / 3:
        out, name = STRUCTURAL[fmt](data, rng)
    else:
        op = GENERIC[int(rng.integers(len(GENERIC)))]
        out, name = op(data, rng), op.__name__
    if rng.random() < 0.15:  # sometimes a second, blind blow on top
        out = bit_flips(out, rng) if out else out
        name += "+bits"
    return out or data[:1], name


def format_of_kind(kind: str) -> str:
    """The container of a ``tests.corpus.VALID_KINDS`` entry."""
    return {"very_wide": "jpeg", "tiny_1x1": "png"}.get(kind, kind.split("_")[0])


def write_mutants(root, n: int, seed: int = 0, bases_per_kind: int = 8) -> list[str]:
    """``n`` mutants of the test corpus's valid kinds (every format and kind in turn) under
    ``root``, one file each; returns their paths in order."""
    from pathlib import Path

    from tests.corpus import VALID_KINDS, valid_bytes

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases: dict[tuple[str, int], tuple[bytes, str]] = {}
    paths = []
    for k in range(n):
        kind = VALID_KINDS[k % len(VALID_KINDS)]
        b = (k // len(VALID_KINDS)) % bases_per_kind
        if (kind, b) not in bases:
            bases[(kind, b)] = valid_bytes(kind, 1000 * seed + b)
        data, ext = bases[(kind, b)]
        mutant, op = mutate(data, format_of_kind(kind), rng)
        p = root / f"{k:06d}_{kind}_{op.replace('+', '_')}{ext}"
        p.write_bytes(mutant)
        paths.append(str(p))
    return paths
