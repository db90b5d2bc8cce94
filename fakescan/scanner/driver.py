"""The scan driver: inputs -> executor (core(s)) -> output file, with progress and summary;
and the Python ``scan()`` API over the same executors and counting.

Exit status as ``clamscan``: 0 no fake found, 1 at least one fake, 2 an error occurred
(any error row, or a fatal problem). Counts include rows kept from a resumed file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fakescan.scanner.executors import Stream, stream
from fakescan.scanner.model import resolve_scan_model
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.output import Output
from fakescan.scanner.rows import Row


@dataclass
class Summary:
    out: str
    model: str
    is_fake: Callable[[str], bool]  # the model card's rule for a verdict's label
    scanned: int = 0  # rows written by this run
    resumed: int = 0  # rows already in the file
    fake: int = 0
    real: int = 0
    errors: int = 0
    no_face: int = 0  # files a face model found no face in
    warnings: int = 0  # rows of this run with a warning
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.fake else 0

    def add(self, rows: list[Row]) -> None:
        for r in rows:
            if r.face not in (None, 1):  # --per-face: the file's further faces (fake and
                self.fake += self.is_fake(r.label)  # real then count faces, not files)
                self.real += not self.is_fake(r.label)
                continue
            self.scanned += 1
            self.warnings += bool(r.warning)
            if r.status == "no_face":
                self.no_face += 1
            elif r.status != "ok":
                self.errors += 1
                self.error_codes[r.error_code] = self.error_codes.get(r.error_code, 0) + 1
            elif self.is_fake(r.label):
                self.fake += 1
            else:
                self.real += 1

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "model": self.model, "scanned": self.scanned,
                "resumed": self.resumed, "fake": self.fake, "real": self.real,
                "errors": self.errors, "error_codes": self.error_codes,
                "no_face": self.no_face,
                "warnings": self.warnings,
                "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2),
                "exit_code": self.exit_code, **self.config}


def run_scan(paths: Iterable[str], opts: ScanOptions, *, out: str, fmt: str,
             resume: bool = False, overwrite: bool = False,
             on_rows: Callable[[Summary], None] | None = None) -> Summary:
    """Scan ``paths`` into the file ``out``; the summary (its ``exit_code`` as clamscan's)."""
    sm = resolve_scan_model(opts.model)
    output = Output(out, fmt, sm.card.identity, resume=resume, overwrite=overwrite,
                    meta={"threshold": opts.threshold if opts.threshold is not None
                          else sm.card.threshold})
    summary = Summary(out=out, model=sm.card.identity, is_fake=sm.card.is_fake)
    prev = output.previous
    summary.resumed = len(output.done)
    summary.fake = sum(n for label, n in prev["by_label"].items() if sm.card.is_fake(label))
    summary.errors = prev["error"]
    summary.real = prev["ok"] - summary.fake
    todo = (p for p in paths if p not in output.done)  # --resume: rows already written
    try:
        for rows in _summarised(stream(opts, sm, todo), summary, on_rows):
            output.write(rows)
    finally:
        output.close(summary.to_dict())
    return summary


def _summarised(s: Stream, summary: Summary,
                on_rows: Callable[[Summary], None] | None) -> Iterator[list[Row]]:
    """``s``'s batches, counted into ``summary`` as they pass; ``s`` closed at the end."""
    summary.config = s.config
    t0 = time.perf_counter()
    try:
        for rows in s.batches:
            summary.add(rows)
            summary.seconds = time.perf_counter() - t0
            yield rows
            if on_rows:
                on_rows(summary)
    finally:
        summary.seconds = time.perf_counter() - t0
        s.close()


def scan(paths: Iterable[str] | str, model: str | None = None,
         **options: Any) -> Iterator[Row]:
    """Yield one ``Row`` per input path (files or folders); ``options`` are ``ScanOptions``
    fields. The same executors and counting as ``fakescan scan``, without an output file::

        for row in fakescan.scan(["photos/"], model="resnet_ft"):
            print(row.path, row.label, row.p_fake)
    """
    from fakescan.scanner.inputs import iter_inputs

    if isinstance(paths, str | os.PathLike):
        paths = [str(paths)]
    opts = ScanOptions(model=model, **options)
    sm = resolve_scan_model(opts.model)
    summary = Summary(out="", model=sm.card.identity, is_fake=sm.card.is_fake)
    for rows in _summarised(stream(opts, sm, iter_inputs(paths)), summary, None):
        yield from rows
