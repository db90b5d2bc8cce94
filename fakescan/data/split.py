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
    """Split each class separately (so class balance is kept), reproducibly for ``seed``;
    samples that share a ``group`` move together, so no group straddles two splits.

    Per class of n images: ``round(n * valid)`` go to valid, ``round(n * test)`` to test and the
    rest to train. Seed 002's 1,289 images with 0.8/0.1/0.1 give 1,031 / 129 / 129. Groups are
    split the same way, stratified by the classes they hold (a group of one real and one fake
    is a unit of its own kind): ``round(g * valid)`` of the g groups of a kind go to valid.
    """
    check_ratios(ratios)
    units: dict[str, list[Sample]] = {}
    for s in samples:
        units.setdefault(s.group or f"\0{s.label}\0{s.path}", []).append(s)
    by_kind: dict[str, list[list[Sample]]] = {}
    for members in sorted(units.values(), key=lambda m: min(str(s.path) for s in m)):
        members.sort(key=lambda s: (s.label, str(s.path)))
        kind = "+".join(sorted({s.label for s in members}))
        by_kind.setdefault(kind, []).append(members)
    out: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for kind in sorted(by_kind):
        items = by_kind[kind]
        random.Random(f"{seed}:{kind}").shuffle(items)
        n_valid, n_test = round(len(items) * ratios[1]), round(len(items) * ratios[2])
        n_train = len(items) - n_valid - n_test
        for name, part in (("train", items[:n_train]),
                           ("valid", items[n_train: n_train + n_valid]),
                           ("test", items[n_train + n_valid:])):
            out[name] += [s for members in part for s in members]
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
