"""The scan driver: inputs -> executor (core(s)) -> output file, with progress and summary;
and the Python ``scan()`` API over the same executors and counting.

Exit status as ``clamscan``: 0 no fake found, 1 at least one fake, 2 an error occurred
(any error row, or a fatal problem). Counts include rows kept from a resumed file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fakescan.scanner.executors import Stream, stream
from fakescan.scanner.model import resolve_scan_model
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.output import Output
from fakescan.scanner.rows import Row
from fakescan.scanner.summary import Summary


def run_scan(paths: Iterable[str], opts: ScanOptions, *, out: str, fmt: str,
             resume: bool = False, overwrite: bool = False,
             on_rows: Callable[[Summary], None] | None = None) -> Summary:
    """Scan ``paths`` into the file ``out``; the summary (its ``exit_code`` as clamscan's)."""
    sm = resolve_scan_model(opts.model)
    summary = Summary(out=out, model=sm.card.identity, is_fake=sm.card.is_fake)
    # --resume: the file's earlier rows are counted by the same rule as this run's
    output = Output(out, fmt, sm.card.identity, resume=resume, overwrite=overwrite,
                    meta={"threshold": opts.threshold if opts.threshold is not None
                          else sm.card.threshold},
                    on_previous=lambda rows: summary.add(rows, resumed=True))
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
