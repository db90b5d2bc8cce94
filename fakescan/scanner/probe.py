"""Reading a file and looking at it before decoding.

``read_bytes`` turns every way a read can fail into a stable error code. ``probe`` refuses
unknown formats (``formats.sniff``) and decompression bombs (the size the header declares,
``formats.declared_size``), then opens the header with Pillow (no pixel decode) for size,
mode and frames, and decides whether a file is *plain* - whole, 8-bit RGB/grey,
single-frame, upright - which is what the DALI decoder takes; everything else goes through
the reference (Pillow) decoder.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass

from fakescan.scanner.formats import declared_size, looks_whole, sniff
from fakescan.scanner.guard import ScanError, classify

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "Probe", "looks_whole",
           "probe", "read_bytes", "sniff"]

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's "decompression bomb" error threshold
DEFAULT_MAX_BYTES = 512 << 20


def read_bytes(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, or ``ScanError`` naming why not."""
    try:  # O_NONBLOCK: a FIFO must not block the open (it is refused just below)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
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
            raise ScanError("too_large", f"{st.st_size} bytes is over the limit of {max_bytes}")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):  # the file may grow after fstat
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ScanError("too_large", f"over the limit of {max_bytes} bytes")
        data = b"".join(chunks)
    except OSError as e:
        raise ScanError("read_error", f"read failed: {e.strerror}") from None
    finally:
        os.close(fd)
    if not data:
        raise ScanError("empty_file", "zero-byte file")
    return data


@dataclass
class Probe:
    format: str
    width: int
    height: int
    plain: bool  # DALI-eligible: whole, 8-bit RGB/L, one frame, no EXIF rotation


def orientation(im) -> int | None:
    """The EXIF orientation (1 = upright); ``None`` when the EXIF block cannot be read."""
    try:
        return im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not a broken image
        return None


def probe(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Probe:
    """Header-only look at ``data``; raises ``ScanError`` for unknown, broken or oversized
    images (any exception from the header parsers becomes one, see ``guard.classify``)."""
    from PIL import Image

    fmt = sniff(data)
    if fmt is None:
        raise ScanError("unsupported_format", "not a JPEG, PNG, GIF, BMP, TIFF or WebP file")
    declared = declared_size(fmt, data)
    if declared and declared[0] * declared[1] > max_pixels:
        w, h = declared
        raise ScanError("too_large", f"{w}x{h} pixels (declared in the header) is over the "
                        f"limit of {max_pixels}")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:  # before anything decodes a pixel
                raise ScanError("too_large", f"{w}x{h} pixels is over the limit of {max_pixels}")
            mode = im.mode
            if fmt == "tiff":  # walking the page chain is cheap (tags only) and finds the
                animated = im.n_frames > 1  # files whose later pages are broken
            else:  # is_animated stops at the second frame; n_frames would decode them all
                animated = bool(getattr(im, "is_animated", False))
            orient = orientation(im) if fmt in ("jpeg", "webp", "tiff") else 1
    except Exception as e:  # noqa: BLE001 - every header failure is this file's row
        raise classify(e, fmt, data) from None
    if w < 1 or h < 1:
        raise ScanError("corrupt", f"{w}x{h} image")
    plain = (
        fmt in ("jpeg", "png", "bmp", "webp")
        and mode in ("RGB", "L")
        and not animated
        and orient == 1
        and looks_whole(fmt, data)
    )
    return Probe(fmt, w, h, plain)
