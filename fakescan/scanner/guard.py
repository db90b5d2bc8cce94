"""Where a bad file is handled: every failure of one file becomes that file's error row.

``classify`` is the one place an exception raised while probing, opening, seeking frames,
transposing, converting, resizing or normalising a file turns into a stable error code
(``rows.ERROR_CODES``); it takes any exception type, so a decoder that raises something
nobody listed (Pillow's ``TypeError: Missing dimensions`` on a malformed TIFF) still gives a
row. ``guarded`` runs a per-file function at that boundary and also keeps what libraries say
about the file - Python warnings, and in a decode worker the native messages libtiff or
libpng write to standard error - for the row's ``warning`` field instead of the terminal.

``quiet_process`` does the same for the scan process itself (DALI, onnxruntime, torch):
warnings and native messages go to a log file, never to the progress bar.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fakescan.scanner.formats import looks_whole

MAX_WARNING = 300  # characters of warnings kept per row
# Pillow's words for a variant of a known format that it cannot decode (12-bit JPEG, a TIFF
# compression it lacks): the file may well be fine, so it is not called corrupt.
UNSUPPORTED_HINTS = ("not supported", "unsupported", "not available", "unknown raw mode",
                     "unknown compression", "cannot handle")


class ScanError(Exception):
    """A per-file failure with a stable ``code`` (see ``rows.ERROR_CODES``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # crosses process boundaries (decode workers) intact
        return ScanError, (self.code, str(self))


def classify(e: BaseException, fmt: str | None, data: bytes | None = None) -> ScanError:
    """The stable error for exception ``e`` raised while handling a ``fmt`` file."""
    if isinstance(e, ScanError):
        return e
    from PIL import Image

    msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    if isinstance(e, Image.DecompressionBombError):
        return ScanError("too_large", str(e))
    if isinstance(e, MemoryError):
        return ScanError("too_large", f"decoding needs more memory than allowed ({msg})")
    what = fmt or "image"
    low = msg.lower()
    if any(h in low for h in UNSUPPORTED_HINTS):
        return ScanError("unsupported_format", f"{what} variant this decoder cannot read: {msg}")
    # Pillow's "image file is truncated" (not "Truncated File Read", which it also says of a
    # whole file full of nonsense)
    if isinstance(e, EOFError) or "truncated" in msg or (
            fmt and data is not None and not looks_whole(fmt, data)):
        return ScanError("truncated", f"{what} data ends early: {msg}")
    return ScanError("corrupt", f"{what} data cannot be decoded: {msg}")


class StderrTap:
    """Standard error (fd 2, and Python's ``sys.stderr`` with it) of this process redirected
    into a private file, read back on demand: what native decoders print about one file ends
    up in that file's row."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self._file.fileno(), 2)
        sys.stderr = open(2, "w", buffering=1, errors="replace", closefd=False)  # noqa: SIM115

    def take(self) -> str:
        sys.stderr.flush()
        fd = 2
        end = os.lseek(fd, 0, os.SEEK_CUR)
        if end <= 0:
            return ""
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, min(end, 4 * MAX_WARNING)).decode("utf-8", "replace")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return " ".join(text.split())


def _warning_text(caught: list[warnings.WarningMessage], native: str) -> str:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {w.message}", None)
    if native:
        seen.setdefault(native, None)
    text = "; ".join(seen)
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 3] + "..."


class _Records(logging.Handler):
    """Log records (Pillow logs some problems instead of warning) kept for the row."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(f"{record.levelname.lower()}: {record.getMessage()}")


def guarded(fn: Callable[[str, Any], Any], path: str, ctx: Any,
            tap: StderrTap | None = None) -> tuple[Any, ScanError | None, str]:
    """``fn(path, ctx)`` at the per-file boundary: ``(value, error, warning)``, never raises
    (but for ``KeyboardInterrupt``/``SystemExit``)."""
    value, error = None, None
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = fn(path, ctx)
            except Exception as e:  # noqa: BLE001 - the per-file boundary: any failure is a row
                error = classify(e, None)
    finally:
        root.removeHandler(records)
    native = " ".join([*records.messages, tap.take() if tap else ""]).strip()
    return value, error, _warning_text(caught, native)


@dataclass
class Quieted:
    """Where ``quiet_process`` kept the messages it caught (None: there were none)."""

    log: str | None = None


@contextlib.contextmanager
def quiet_process(log_path: str) -> Iterator[Quieted]:
    """Warnings and native messages of this process go to ``log_path`` (kept only if
    something was written); Python's ``sys.stderr`` - the progress bar, error messages - stays
    on the terminal. Yields a ``Quieted`` whose ``log`` is the path when it was kept."""
    state = Quieted()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        log = open(log_path + ".tmp", "w+b")  # noqa: SIM115 - closed below
    except OSError:  # the output's folder is not writable (the scan will say so): keep quiet
        log_path = os.path.join(tempfile.gettempdir(), f"fakescan-{os.getpid()}.log")
        log = open(log_path + ".tmp", "w+b")  # noqa: SIM115
    os.dup2(log.fileno(), 2)
    old_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                  encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                                  errors="backslashreplace", write_through=True)
    old_show = warnings.showwarning

    def to_log(message, category, filename, lineno, file=None, line=None):
        os.write(2, warnings.formatwarning(message, category, filename, lineno, line).encode(
            "utf-8", "replace"))

    warnings.showwarning = to_log
    to_file = logging.StreamHandler(open(2, "w", buffering=1, errors="replace",  # noqa: SIM115
                                         closefd=False))
    to_file.setLevel(logging.WARNING)
    logging.getLogger().addHandler(to_file)  # else logging's last resort prints to sys.stderr
    try:
        yield state
    finally:
        logging.getLogger().removeHandler(to_file)
        with contextlib.suppress(Exception):
            to_file.stream.close()
        warnings.showwarning = old_show
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)
        size = log.seek(0, os.SEEK_END)
        log.close()
        if size:
            os.replace(log_path + ".tmp", log_path)
            state.log = log_path
        else:
            os.unlink(log_path + ".tmp")
