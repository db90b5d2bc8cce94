"""``fakescan scan`` end to end: inputs -> core(s) -> output file, with progress and summary.

Exit status as ``clamscan``: 0 no fake found, 1 at least one fake, 2 an error occurred
(any error row, or a fatal problem). Counts include rows kept from a resumed file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fakescan.scanner.engine import (
    ScanOptions,
    build_core,
    parse_devices,
    scan_batches,
    scan_multi,
)
from fakescan.scanner.model import resolve_scan_model
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
            self.scanned += 1
            self.warnings += bool(r.warning)
            if r.status != "ok":
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
                "warnings": self.warnings,
                "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2),
                "exit_code": self.exit_code, **self.config}


def run_scan(paths: Iterable[str], opts: ScanOptions, *, out: str, fmt: str,
             resume: bool = False, overwrite: bool = False,
             on_rows: Callable[[Summary], None] | None = None) -> Summary:
    sm = resolve_scan_model(opts.model)
    output = Output(out, fmt, sm.identity, resume=resume, overwrite=overwrite,
                    meta={"threshold": opts.threshold if opts.threshold is not None
                          else sm.threshold})
    summary = Summary(out=out, model=sm.identity, is_fake=sm.card.is_fake)
    prev = output.previous
    summary.resumed = len(output.done)
    summary.fake = sum(n for label, n in prev["by_label"].items() if sm.card.is_fake(label))
    summary.errors = prev["error"]
    summary.real = prev["ok"] - summary.fake
    todo = (p for p in paths if p not in output.done)  # --resume: rows already written
    t0 = time.perf_counter()
    try:
        devices = parse_devices(opts.device)
        if opts.engine == "ray":
            from fakescan.scanner.ray_engine import scan_ray

            summary.config = {"engine": "ray", "actors": opts.ray_actors or "auto",
                              "gpus_per_actor": opts.gpus_per_actor, "decoder": opts.decoder,
                              "runtime": opts.runtime}
            stream = scan_ray(opts, todo, address=opts.ray_address,
                              actors=opts.ray_actors, gpus_per_actor=opts.gpus_per_actor)
            core = None
        elif len(devices) > 1:
            summary.config = {"devices": devices, "decoder": opts.decoder,
                              "runtime": opts.runtime}
            stream = scan_multi(opts, devices, todo)
            core = None
        else:
            core = build_core(opts, devices[0], sm)
            summary.config = {"device": core.runtime.device, "decoder": core.decoder.name,
                              "runtime": core.runtime.name,
                              "precision": core.runtime.precision,
                              "batch_size": opts.batch_size, "threshold": core.threshold}
            stream = scan_batches(core, todo, opts.batch_size)
        t0 = time.perf_counter()
        try:
            for rows in stream:
                output.write(rows)
                summary.add(rows)
                summary.seconds = time.perf_counter() - t0
                if on_rows:
                    on_rows(summary)
        finally:
            if core is not None:
                core.decoder.close()
    finally:
        summary.seconds = time.perf_counter() - t0
        output.close(summary.to_dict())
    return summary
