"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every writer goes through ``atomic_path``: a temporary name beside the destination, unique to
the call (two writers of one file never share it), renamed over the destination when the block
ends without error and removed when it raises.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """A fresh temporary path beside ``dest`` (same suffix, so tools that look at it - onnx,
    safetensors - are content) that becomes ``dest`` when the block succeeds; ``fsync``
    flushes it to disk first."""
    dest = Path(dest)
    # a name of this call's own, created with the mode a plain open() gives (the umask's:
    # mkstemp would make it 0600)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{dest.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(dest: str | Path, text: str) -> None:
    """``dest`` holds ``text`` (UTF-8), written atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
