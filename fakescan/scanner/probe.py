"""Reading a file and looking at it before decoding: content sniffing and error classification.

``read_bytes`` turns every way a read can fail into a stable error code. ``sniff`` detects
the format from magic bytes (never the extension). ``probe`` opens the header with Pillow
(no pixel decode) for size, mode and frames, refuses decompression bombs, and decides
whether a file is *plain* - whole, 8-bit RGB/grey, single-frame, upright - which is what the
DALI decoder takes; everything else goes through the reference (Pillow) decoder.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
from dataclasses import dataclass

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's "decompression bomb" error threshold
DEFAULT_MAX_BYTES = 512 << 20


class ScanError(Exception):
    """A per-file failure with a stable ``code`` (see ``rows.ERROR_CODES``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # crosses process boundaries (decode workers) intact
        return ScanError, (self.code, str(self))


def read_bytes(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, or ``ScanError`` naming why not."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ScanError("not_found", "no such file (vanished after listing?)") from None
    except PermissionError:
        raise ScanError("permission_denied", "permission denied") from None
    except IsADirectoryError:
        raise ScanError("not_a_file", "is a directory") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ScanError("not_found", "symlink loop") from None
        raise ScanError("read_error", f"cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ScanError("not_a_file", kind)
        if st.st_size > max_bytes:
            raise ScanError("too_large", f"{st.st_size} bytes is over --max-bytes {max_bytes}")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):  # the file may grow after fstat
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ScanError("too_large", f"over --max-bytes {max_bytes}")
        data = b"".join(chunks)
    except OSError as e:
        raise ScanError("read_error", f"read failed: {e.strerror}") from None
    finally:
        os.close(fd)
    if not data:
        raise ScanError("empty_file", "zero-byte file")
    return data


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
    if data[:4] in (b"II*\x00", b"MM\x00*"):
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


@dataclass
class Probe:
    format: str
    width: int
    height: int
    plain: bool  # DALI-eligible: whole, 8-bit RGB/L, one frame, no EXIF rotation


def probe(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Probe:
    """Header-only look at ``data``; raises ``ScanError`` for unknown or oversized images."""
    from PIL import Image, UnidentifiedImageError

    fmt = sniff(data)
    if fmt is None:
        raise ScanError("unsupported_format", "not a JPEG, PNG, GIF, BMP, TIFF or WebP file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            mode = im.mode
            frames = getattr(im, "n_frames", 1)
            orientation = im.getexif().get(0x0112, 1) if fmt in ("jpeg", "webp", "tiff") else 1
    except Image.DecompressionBombError as e:
        raise ScanError("too_large", str(e)) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError, OSError, struct.error) as e:
        if not looks_whole(fmt, data):
            raise ScanError("truncated", f"{fmt} file ends early: {e}") from None
        raise ScanError("corrupt", f"{fmt} header cannot be parsed: {e}") from None
    if w * h > max_pixels:
        raise ScanError("too_large", f"{w}x{h} pixels is over the limit of {max_pixels}")
    if w < 1 or h < 1:
        raise ScanError("corrupt", f"{w}x{h} image")
    plain = (
        fmt in ("jpeg", "png", "bmp", "webp")
        and mode in ("RGB", "L")
        and frames == 1
        and orientation in (1, None)
        and looks_whole(fmt, data)
    )
    return Probe(fmt, w, h, plain)
