"""Stratified, seeded train/valid/test split, and writing a split out as folders."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from fakescan.data.dataset import SPLITS, Dataset, Sample
from fakescan.errors import UsageError


def check_ratios(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise UsageError("split ratios need three non-negative numbers that sum to 1, got "
                         f"{ratios}")
    return ratios


def stratified_split(
    samples: list[Sample], ratios: tuple[float, float, float], seed: int
) -> dict[str, list[Sample]]:
    """Split each class separately (so class balance is kept), reproducibly for ``seed``.

    Per class of n images: ``round(n * valid)`` go to valid, ``round(n * test)`` to test and the
    rest to train. Seed 002's 1,289 images with 0.8/0.1/0.1 give 1,031 / 129 / 129.
    """
    check_ratios(ratios)
    by_label: dict[str, list[Sample]] = {}
    for s in sorted(samples, key=lambda s: (s.label, str(s.path))):
        by_label.setdefault(s.label, []).append(s)
    out: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for label in sorted(by_label):
        items = by_label[label]
        random.Random(f"{seed}:{label}").shuffle(items)
        n_valid, n_test = round(len(items) * ratios[1]), round(len(items) * ratios[2])
        n_train = len(items) - n_valid - n_test
        out["train"] += items[:n_train]
        out["valid"] += items[n_train : n_train + n_valid]
        out["test"] += items[n_train + n_valid :]
    return {k: v for k, v in out.items() if v}


def write_split(ds: Dataset, out: Path, *, link: bool = True) -> dict[str, int]:
    """Materialise ``ds`` as ``out/{train,valid,test}/{class}/file`` (hard links, else copies).

    Returns the number of files written per split. A ``split.json`` beside records where
    every file came from.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"output folder {out} exists and is not empty")
    record: dict[str, list[dict[str, str]]] = {}
    counts: dict[str, int] = {}
    for split, samples in ds.splits.items():
        used: set[Path] = set()
        record[split] = []
        for s in samples:
            dst = out / split / s.label / s.path.name
            k = 1
            while dst in used:  # manifests may hold equal file names from different folders
                dst = dst.with_name(f"{s.path.stem}_{k}{s.path.suffix}")
                k += 1
            used.add(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                if not link:
                    raise OSError
                os.link(s.path, dst)
            except OSError:
                shutil.copy2(s.path, dst)
            record[split].append({"src": str(s.path), "dst": str(dst.relative_to(out))})
        counts[split] = len(samples)
    meta = {"source": str(ds.root), "layout": ds.layout, "split": ds.split_note,
            "classes": list(ds.classes), "files": record}
    (out / "split.json").write_text(json.dumps(meta, indent=1))
    return counts
