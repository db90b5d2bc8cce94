"""Fit a model's threshold to the user's own real photos (``fakescan calibrate``).

Why it exists: a false-alarm bound holds on the sources it was measured on, and on few others.
Held out one at a time (``benchmarks/README.md``, leave-one-source-out), the threshold that
called 5% of the training sources' validation reals fake called 14-22% of FFHQ's and 19.5% of
ciplab's reals fake. The remedy that needs no fakes and no retraining: score a folder of real
photos from *your* source (the camera, the collection, the platform you will scan), and raise
the threshold until, on average, at most ``max_fpr`` of new photos like them would be called
fake (``allowed_false_alarms``: of n photos, floor(max_fpr (n + 1) - 1/2) may be).

The threshold only ever goes up (``tighten``): the training sources' own bound still holds,
and a calibration folder whose photos happen to be easy cannot loosen the model. Every folder
given is its own source: the bound holds in each. Photos are scored by the scan itself (same
decoder, preprocessing and face stage as ``fakescan scan``), so the threshold applies to
exactly the score later scans compare with it. Unreadable files and photos with no face (face
models) are skipped and counted.

The result is written into a model folder: ``out`` (a copy: the way to calibrate the shipped
default, which is read-only), or the model's own folder. The card records what the threshold
was calibrated on; exported ``.onnx`` files in the folder get the new threshold too.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.card import ModelCard
from fakescan.errors import UsageError
from fakescan.store import DEFAULT_MODEL_DIR, WEIGHTS, resolve_model_dir
from fakescan.train.metrics import allowed_false_alarms, reals_threshold

# What a copy takes from the model folder besides its card (written anew) and exported
# ``*.onnx`` files: the model itself, not evaluation outputs.
KEEP = (WEIGHTS, "README.md")


@dataclass
class FolderResult:
    path: str
    scored: int
    skipped: dict[str, int]  # status or error code -> count
    threshold_needed: float  # what this folder alone needs for the bound
    called_fake_before: float
    called_fake_after: float
    allowed: int  # how many of its photos the bound lets be called fake


@dataclass
class Calibration:
    model: str
    folder: str  # where the calibrated card was written
    max_fpr: float
    threshold_before: float
    threshold: float
    tightened: bool
    calibrated_on: str
    folders: list[FolderResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _scores(model_dir: Path, folder: Path, scan_options: dict[str, Any]
            ) -> tuple[np.ndarray, dict[str, int]]:
    from fakescan.scanner.driver import scan

    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of real photos")
    scores, skipped = [], Counter()
    for row in scan([str(folder)], model=str(model_dir), **scan_options):
        if row.status == "ok" and row.p_fake is not None:
            scores.append(row.p_fake)
        else:
            skipped[row.error_code or row.status] += 1
    return np.asarray(scores, dtype=np.float64), dict(skipped)


def calibrate(model: str | Path | None, reals: list[Path], *, max_fpr: float,
              out: Path | None = None, dry_run: bool = False,
              **scan_options: Any) -> Calibration:
    """Raise ``model``'s threshold so that at most ``allowed_false_alarms(n, max_fpr)`` of the
    ``n`` photos in each folder of ``reals`` are called fake; write the card into ``out`` (a
    copy of the model) or, without ``out``, into the model's folder. ``scan_options`` are
    ``ScanOptions`` fields (device, decoder, batch size...). ``dry_run`` measures and writes
    nothing."""
    if not reals:
        raise UsageError("name at least one folder of real photos")
    if not 0.0 <= max_fpr < 1.0:
        raise UsageError(f"the false-alarm bound must be in [0, 1), not {max_fpr}")
    src = resolve_model_dir(model)
    card = ModelCard.load(src)
    dest = Path(out) if out is not None else src
    if not dry_run and out is None and (src.resolve() == DEFAULT_MODEL_DIR.resolve()
                                        or not os.access(src, os.W_OK)):
        raise UsageError(f"{src} is the shipped default (or read-only): give an output folder "
                         f"for the calibrated copy")
    if not dry_run and out is not None and dest.exists() and any(dest.iterdir()) \
            and dest.resolve() != src.resolve():
        raise UsageError(f"{dest} exists and is not empty: choose a new folder")

    scored = []
    for folder in reals:
        s, skipped = _scores(src, Path(folder), scan_options)
        if len(s) == 0:
            raise UsageError(f"no photo in {folder} could be scored ({skipped or 'empty'})")
        scored.append((str(folder), s, skipped, reals_threshold(s, max_fpr)))
    new = max([card.threshold, *(need for *_, need in scored)])
    results = [FolderResult(path, len(s), skipped, need, float((s >= card.threshold).mean()),
                            float((s >= new).mean()), allowed_false_alarms(len(s), max_fpr))
               for path, s, skipped, need in scored]
    tightened = new > card.threshold
    names = ", ".join(f"{r.scored} real photos in {Path(r.path).name}" for r in results)
    label = (f"max FPR {max_fpr:g} on {names}; before: {card.threshold_calibrated_on}"
             if tightened else card.threshold_calibrated_on)
    cal = Calibration(card.identity, str(dest), max_fpr, card.threshold, new, tightened, label,
                      results)
    if dry_run:
        return cal
    if dest.resolve() != src.resolve():
        dest.mkdir(parents=True, exist_ok=True)
        for f in [*(src / name for name in KEEP), *src.glob("*.onnx")]:
            if f.is_file():
                shutil.copy2(f, dest / f.name)
    new_card = card.replace(threshold=new, threshold_calibrated_on=label)
    new_card.save(dest)
    if tightened:
        from fakescan.export import restamp_onnx

        for f in sorted(dest.glob("*.onnx")):
            restamp_onnx(f, new_card)
        readme = dest / "README.md"
        if readme.is_file():  # the model card's figures are the old threshold's
            with open(readme, "a") as f:
                f.write(f"\n## Recalibrated\n\nThis model's threshold is {new:.4f} (was "
                        f"{card.threshold:.4f}): {label}. Figures above are at the old "
                        f"threshold; `config.json` is authoritative.\n")
    return cal
