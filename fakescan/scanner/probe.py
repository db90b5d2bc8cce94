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

    from fakescan.scanner.guard import classify

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
