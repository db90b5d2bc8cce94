"""A scan test corpus: valid images of every awkward kind, and broken files with known codes.

``make_corpus(root, n_valid, n_broken)`` returns ``(valid_paths, broken: {path: code})``.
Valid kinds cover JPEG/PNG/WebP/GIF/BMP/TIFF, grayscale, CMYK, 16-bit, palette (with and
without transparency), alpha, EXIF-rotated, animated, 1x1 and very wide images.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fakescan.data.synth import render_face

VALID_KINDS = (
    "jpeg", "jpeg_gray", "jpeg_cmyk", "jpeg_exif_rot", "jpeg_progressive", "png", "png_rgba",
    "png_palette", "png_palette_trns", "png_16bit", "png_gray", "webp", "webp_alpha",
    "webp_animated", "gif", "gif_animated", "bmp", "tiff", "tiff_16bit", "tiny_1x1",
    "very_wide",
)
BROKEN_KINDS = (
    ("empty", "empty_file"), ("jpeg_cut", "truncated"), ("png_cut", "truncated"),
    ("webp_cut", "truncated"), ("garbage", "unsupported_format"), ("text", "unsupported_format"),
    ("jpeg_header_only", "corrupt"), ("png_bad_ihdr", "corrupt"), ("bomb", "too_large"),
    ("directory", "not_a_file"),
)


def _face(rng, w, h, fake):
    return render_face(rng, w, h, fake)


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def valid_bytes(kind: str, i: int) -> tuple[bytes, str]:
    rng = np.random.default_rng([99, i])
    w, h = int(rng.integers(48, 320)), int(rng.integers(48, 320))
    arr = _face(rng, max(w, 16), max(h, 16), fake=bool(i % 2))
    im = Image.fromarray(arr)
    if kind == "jpeg":
        return _save(im, "JPEG", quality=int(rng.integers(60, 96))), ".jpg"
    if kind == "jpeg_gray":
        return _save(im.convert("L"), "JPEG", quality=85), ".jpg"
    if kind == "jpeg_cmyk":
        return _save(im.convert("CMYK"), "JPEG", quality=90), ".jpg"
    if kind == "jpeg_exif_rot":
        exif = Image.Exif()
        exif[0x0112] = int(rng.choice([3, 6, 8]))
        return _save(im, "JPEG", quality=90, exif=exif.tobytes()), ".jpeg"
    if kind == "jpeg_progressive":
        return _save(im, "JPEG", quality=80, progressive=True), ".jpg"
    if kind == "png":
        return _save(im, "PNG"), ".png"
    if kind == "png_rgba":
        a = Image.fromarray(rng.integers(0, 256, (im.height, im.width), dtype=np.uint8))
        rgba = im.copy()
        rgba.putalpha(a)
        return _save(rgba, "PNG"), ".png"
    if kind == "png_palette":
        return _save(im.quantize(64), "PNG"), ".png"
    if kind == "png_palette_trns":
        p = im.quantize(64)
        p.info["transparency"] = 0
        return _save(p, "PNG", transparency=0), ".png"
    if kind == "png_16bit":
        g = (np.asarray(im.convert("L"), np.uint16) * 257).astype(np.uint16)
        return _save(Image.fromarray(g), "PNG"), ".png"
    if kind == "png_gray":
        return _save(im.convert("L"), "PNG"), ".png"
    if kind == "webp":
        return _save(im, "WEBP", quality=85), ".webp"
    if kind == "webp_alpha":
        rgba = im.convert("RGBA")
        return _save(rgba, "WEBP", quality=85), ".webp"
    if kind == "webp_animated":
        f2 = Image.fromarray(255 - arr)
        return _save(im, "WEBP", save_all=True, append_images=[f2], duration=100), ".webp"
    if kind == "gif":
        return _save(im.convert("P"), "GIF"), ".gif"
    if kind == "gif_animated":
        f2 = Image.fromarray(255 - arr).convert("P")
        return _save(im.convert("P"), "GIF", save_all=True, append_images=[f2]), ".gif"
    if kind == "bmp":
        return _save(im, "BMP"), ".bmp"
    if kind == "tiff":
        return _save(im, "TIFF"), ".tif"
    if kind == "tiff_16bit":
        g = (np.asarray(im.convert("L"), np.uint16) * 257).astype(np.uint16)
        return _save(Image.fromarray(g), "TIFF"), ".tiff"
    if kind == "tiny_1x1":
        return _save(Image.new("RGB", (1, 1), (200, 100, 50)), "PNG"), ".png"
    if kind == "very_wide":
        wide = Image.fromarray(_face(rng, 3000, 24, fake=bool(i % 2)))
        return _save(wide, "JPEG", quality=90), ".jpg"
    raise ValueError(kind)


def broken_bytes(kind: str, i: int) -> bytes | None:
    rng = np.random.default_rng([7, i])
    arr = _face(rng, 96, 96, fake=False)
    im = Image.fromarray(arr)
    if kind == "empty":
        return b""
    if kind == "jpeg_cut":
        b = _save(im, "JPEG", quality=90)
        return b[: len(b) // 2]
    if kind == "png_cut":
        b = _save(im, "PNG")
        return b[: len(b) // 2]
    if kind == "webp_cut":
        b = _save(im, "WEBP", quality=90)
        return b[: len(b) // 2]
    if kind == "garbage":
        return rng.integers(1, 256, 2000, dtype=np.uint8).tobytes()
    if kind == "text":
        return b"this is not an image, just text pretending to be one\n" * 20
    if kind == "jpeg_header_only":
        body = rng.integers(0, 256, 500, dtype=np.uint8).tobytes().replace(b"\xff\xd9", b"")
        return b"\xff\xd8\xff\xe0" + body + b"\xff\xd9"  # a whole file of nonsense
    if kind == "png_bad_ihdr":
        b = bytearray(_save(im, "PNG"))
        b[16:24] = b"\x00" * 8  # width = height = 0
        return bytes(b)
    if kind == "bomb":
        # A valid 1-bit PNG of 20000 x 20000 (400 Mpx): tiny on disk, huge decoded.
        big = Image.new("1", (20000, 20000))
        return _save(big, "PNG")
    if kind == "directory":
        return None
    raise ValueError(kind)


def make_corpus(root: Path, n_valid: int = 500, n_broken: int = 50):
    """Write the corpus under ``root``; return (valid paths, {broken path: expected code})."""
    root = Path(root)
    (root / "ok").mkdir(parents=True, exist_ok=True)
    (root / "bad").mkdir(parents=True, exist_ok=True)
    valid = []
    for i in range(n_valid):
        kind = VALID_KINDS[i % len(VALID_KINDS)]
        data, ext = valid_bytes(kind, i)
        p = root / "ok" / f"{i:04d}_{kind}{ext}"
        p.write_bytes(data)
        valid.append(str(p))
    broken = {}
    bomb = None
    for i in range(n_broken):
        kind, code = BROKEN_KINDS[i % len(BROKEN_KINDS)]
        p = root / "bad" / f"{i:03d}_{kind}.jpg"
        if kind == "directory":
            p.mkdir()
        elif kind == "bomb":
            bomb = bomb or broken_bytes(kind, i)
            p.write_bytes(bomb)
        else:
            p.write_bytes(broken_bytes(kind, i))
        broken[str(p)] = code
    return valid, broken


def corrupt_jpeg(i: int = 0) -> bytes:
    """A JPEG whose header parses but whose Huffman table is garbage: DALI's decoder fails."""
    rng = np.random.default_rng([11, i])
    good = _save(Image.fromarray(_face(rng, 200, 160, fake=False)), "JPEG", quality=90)
    dht = good.find(b"\xff\xc4")
    return good[: dht + 4] + b"\xff" * 16 + good[dht + 20:]


def vanished_path(root: Path) -> str:
    p = Path(root) / "listed_then_deleted.jpg"
    p.write_bytes(b"x")
    os.unlink(p)
    return str(p)
