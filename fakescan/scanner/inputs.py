"""Where scan inputs come from: paths, directories and lists, streamed one path at a time.

Nothing here holds the whole input list: directories are walked lazily (sorted per folder, so
runs are reproducible), ``--files-from`` is read line by line (or NUL-separated with ``-0``).
Paths stay ``str`` with surrogate escapes, so names that are not valid UTF-8 survive exactly
(``os.fsencode`` gives back the original bytes).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from fakescan.errors import UsageError


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return False
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def walk(
    root: str, *, follow_symlinks: bool = False, exclude: tuple[str, ...] = ()
) -> Iterator[str]:
    """Files under ``root`` depth-first, sorted by name in each folder.

    Symlinks (to files or folders) are skipped unless ``follow_symlinks``; then a folder is
    entered at most once (keyed by device and inode), which guards against loops.
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: str) -> Iterator[str]:
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                return
            seen.add(key)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            # An unreadable folder: report it as an input so it gets an error row.
            yield folder
            return
        for e in entries:
            if _excluded(e.path, exclude):
                continue
            try:
                is_link = e.is_symlink()
                if is_link and not follow_symlinks:
                    continue
                if e.is_dir(follow_symlinks=follow_symlinks):
                    yield from visit(e.path)
                else:
                    yield e.path
            except OSError:
                yield e.path

    yield from visit(root)


def read_list(src: str, *, null_sep: bool = False) -> Iterator[str]:
    """Paths from a list file (``-`` is stdin), newline- or NUL-separated, blank entries skipped."""
    sep = b"\0" if null_sep else b"\n"
    f = sys.stdin.buffer if src == "-" else open(src, "rb")  # noqa: SIM115
    try:
        buf = b""
        while chunk := f.read(1 << 16):
            buf += chunk
            *parts, buf = buf.split(sep)
            for p in parts:
                if not null_sep:
                    p = p.rstrip(b"\r")
                if p:
                    yield os.fsdecode(p)
        if not null_sep:
            buf = buf.rstrip(b"\r")
        if buf:
            yield os.fsdecode(buf)
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def iter_inputs(
    paths: Iterable[str] = (),
    *,
    files_from: str | None = None,
    null_sep: bool = False,
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = False,
) -> Iterator[str]:
    """Every input path, lazily: named files as given, folders walked, then the list file.

    A named path that does not exist is still yielded (it becomes a ``not_found`` row).
    """
    if files_from is not None and files_from != "-" and not Path(files_from).is_file():
        raise UsageError(f"list of files {files_from}: no such file")
    for p in paths:
        p = str(p)
        if p == "-":
            yield from _filtered(read_list("-", null_sep=null_sep), exclude)
            continue
        try:
            st = os.stat(p) if follow_symlinks else os.lstat(p)
        except OSError:
            yield p
            continue
        if stat.S_ISLNK(st.st_mode):
            try:  # a symlink named on the command line is followed, as ls/find -H do
                st = os.stat(p)
            except OSError:
                yield p
                continue
        if stat.S_ISDIR(st.st_mode):
            yield from walk(p, follow_symlinks=follow_symlinks, exclude=exclude)
        elif not _excluded(p, exclude):
            yield p
    if files_from is not None:
        yield from _filtered(read_list(files_from, null_sep=null_sep), exclude)


def _filtered(it: Iterable[str], exclude: tuple[str, ...]) -> Iterator[str]:
    return (p for p in it if not _excluded(p, exclude))
