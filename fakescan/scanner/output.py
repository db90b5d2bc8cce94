"""Scan output files: CSV (default), JSONL or one JSON document; crash-safe and resumable.

Rows are appended and flushed with ``fsync`` per batch, so a killed scan loses at most the
batch in flight. ``--resume`` cuts a half-written last line, skips every path that already has
a row, and refuses a file written by another model. An exclusive ``lockf`` on the file stops
two scans writing it at once. JSON is assembled atomically at the end from a ``.partial.jsonl``
beside it (the file a killed JSON scan resumes from).

CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or CR) are
prefixed with ``'``. Paths that are not valid UTF-8 survive: CSV keeps their bytes
(surrogateescape), JSON/JSONL escape them as ``\\udcXX``, which ``json.loads`` +
``os.fsencode`` turn back into the exact bytes.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fakescan.errors import UsageError
from fakescan.scanner.rows import FIELDS, Row

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(v: Any) -> Any:
    """Prefix ``'`` to cells a spreadsheet would run as a formula (and to cells that already
    start with ``'``, so the escape can always be undone exactly)."""
    if isinstance(v, str) and v.startswith((*FORMULA_START, "'")):
        return "'" + v
    return v


def csv_unsafe(v: str) -> str:
    return v[1:] if v.startswith("'") else v


def _fmt_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}"
    return csv_safe(v)


class CsvCodec:
    """CSV rows: a header line, formula-guarded cells, floats to 6 decimals."""

    header = ",".join(FIELDS) + "\n"

    def encode(self, rows: Iterable[Row]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow([_fmt_cell(v) for v in r.to_dict().values()])
        return buf.getvalue()

    def decode(self, text: str, source: str) -> Iterator[dict[str, Any]]:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None:
            return
        if tuple(header[: len(FIELDS)]) != FIELDS[: len(header)]:
            raise UsageError(f"{source} is not a fakescan CSV (header {header[:3]}...)")
        for r in reader:
            if r:
                yield {k: csv_unsafe(v) for k, v in zip(header, r, strict=False)}


class JsonlCodec:
    """One JSON object per line, ASCII only (non-UTF-8 names as \\udcXX escapes)."""

    header = ""

    def encode(self, rows: Iterable[Row]) -> str:
        return "".join(json.dumps(r.to_dict(), ensure_ascii=True) + "\n" for r in rows)

    def decode(self, text: str, source: str) -> Iterator[dict[str, Any]]:
        return (json.loads(line) for line in text.splitlines() if line.strip())


# The output-format registry. ``json`` is written as JSONL while the scan runs (the
# ``.partial.jsonl`` file) and assembled into one document at the end.
CODECS: dict[str, CsvCodec | JsonlCodec] = {"csv": CsvCodec(), "jsonl": JsonlCodec(),
                                            "json": JsonlCodec()}
FORMATS = tuple(CODECS)


def format_for(path: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"output format must be one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "csv"


class Output:
    """Append rows to a scan file; see module docstring for the guarantees."""

    def __init__(self, path: str, fmt: str, model_id: str, *, resume: bool = False,
                 overwrite: bool = False, meta: dict[str, Any] | None = None,
                 on_previous: Callable[[list[Row]], None] | None = None) -> None:
        """``on_previous``: called with the rows a resumed file already holds (in chunks,
        each file's first row once), so they are counted like the new ones."""
        self.final = path
        self.fmt = fmt
        self.model_id = model_id
        self.meta = meta or {}
        self.done: set[str] = set()
        self._on_previous = on_previous
        self.stdout = path == "-"
        self.codec = CODECS[fmt]
        if self.stdout:
            if resume:
                raise UsageError("resuming needs an output file, not stdout")
            self.path = "-"
            self._f = sys.stdout
            self._fd = None
            self._f.write(self.codec.header)
            return
        self.path = path + ".partial.jsonl" if fmt == "json" else path
        if fmt == "json" and os.path.exists(path) and not resume and not overwrite:
            raise UsageError(f"{path} exists: resume it to complete it, or overwrite it")
        if fmt == "json" and resume and os.path.exists(path) and not os.path.exists(self.path):
            _json_to_partial(path, self.path)  # resuming a finished JSON scan: reopen its rows
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if exists and not resume and not overwrite:
            raise UsageError(f"{self.path} exists: resume it to complete it, or overwrite it "
                             "to start again")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # A POSIX record lock: held by this process only (decode workers forked later do
            # not inherit it) and released by the kernel when the process dies, even by -9.
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise UsageError(f"{self.path} is being written by another scan (locked)") from None
        if exists and resume:
            self._load_existing()
        else:
            os.ftruncate(self._fd, 0)
        self._f = open(self._fd, "a", encoding="utf-8", errors="surrogateescape",  # noqa: SIM115
                       newline="", closefd=False)
        if os.fstat(self._fd).st_size == 0 and self.codec.header:
            self._f.write(self.codec.header)
            self._sync()

    # ------------------------------------------------------------------ resume
    def _load_existing(self) -> None:
        with open(self._fd, "rb", closefd=False) as f:
            f.seek(0)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a half-written last line from a killed scan
            os.ftruncate(self._fd, cut)
            data = data[:cut]
        text = data.decode("utf-8", errors="surrogateescape")
        chunk: list[Row] = []
        for r in self.codec.decode(text, self.path):
            model = r.get("model")
            if model and model != self.model_id:
                raise UsageError(
                    f"{self.path} holds rows of model {model}, not {self.model_id}: refusing "
                    "to mix models in one file (use another --out)"
                )
            path = r["path"]
            row = Row.from_dict(r)
            if row.face in (None, 1):  # a file's row (its first face's, for --per-face)
                if path in self.done:
                    continue
                self.done.add(path)
            chunk.append(row)
            if len(chunk) >= 10_000 and self._on_previous:
                self._on_previous(chunk)
                chunk = []
        if chunk and self._on_previous:
            self._on_previous(chunk)

    # ------------------------------------------------------------------ writing
    def write(self, rows: Iterable[Row]) -> None:
        self._f.write(self.codec.encode(rows))
        self._sync()

    def _sync(self) -> None:
        self._f.flush()
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self.stdout:
            self._f.flush()
            return
        self._f.close()
        try:
            if self.fmt == "json":
                self._assemble_json(summary or {})
        finally:
            os.close(self._fd)

    def _assemble_json(self, summary: dict[str, Any]) -> None:
        """Stream the partial JSONL into one JSON document, atomically, then drop the partial."""
        from fakescan.atomic import atomic_path

        with atomic_path(self.final, fsync=True) as tmp, open(
                self.path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
            head = {"model": self.model_id, **self.meta, "summary": summary}
            dst.write(json.dumps(head, ensure_ascii=True)[:-1] + ', "rows": [\n')
            first = True
            for line in src:
                if line.strip():
                    dst.write(("" if first else ",\n") + line.rstrip("\n"))
                    first = False
            dst.write("\n]}\n")
        os.unlink(self.path)


def _json_to_partial(final: str, partial: str) -> None:
    try:
        rows = json.loads(Path(final).read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{final} is not a fakescan JSON scan: {e}") from None
    with open(partial, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=True) + "\n")


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a scan file of any format (CSV values as strings, formula guards removed)."""
    p = Path(path)
    if p.suffix == ".json" and p.is_file():
        return json.loads(p.read_text())["rows"]
    text = p.read_bytes().decode("utf-8", errors="surrogateescape")
    codec = CODECS["jsonl"] if p.suffix == ".jsonl" else CODECS["csv"]
    return list(codec.decode(text, path))
