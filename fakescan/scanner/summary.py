"""The one count of a scan's verdict rows: ``Summary``.

The scan counts its rows as it writes them, a resumed scan counts the rows its file held by
the same rule (``Output`` hands them back as ``Row`` s), and ``fakescan report`` counts a
finished file with it too, so the three always agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakescan.scanner.rows import Row


@dataclass
class Summary:
    out: str
    model: str
    is_fake: Callable[[str], bool]  # the model card's rule for a verdict's label
    scanned: int = 0  # files this run wrote a row for
    resumed: int = 0  # files the resumed file held already
    fake: int = 0
    real: int = 0
    errors: int = 0
    no_face: int = 0  # files a face model found no face in
    warnings: int = 0  # files with a warning
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

    def add(self, rows: list[Row], *, resumed: bool = False) -> None:
        """Count ``rows``: this run's, or (``resumed``) those a resumed file already held.
        ``fake``, ``real``, ``errors``, ``no_face`` and ``warnings`` count both."""
        for r in rows:
            if r.face not in (None, 1):  # --per-face: the file's further faces (fake and
                self.fake += self.is_fake(r.label)  # real then count faces, not files)
                self.real += not self.is_fake(r.label)
                continue
            if resumed:
                self.resumed += 1
            else:
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
