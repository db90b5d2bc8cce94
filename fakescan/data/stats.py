"""Per-split, per-class counts and percentages (seed 000, Table 2; seed 002, Table 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fakescan.data.layouts import Dataset


@dataclass(frozen=True)
class SplitRow:
    """One split (or ``total``): counts and percentages within it; ``share`` of all images."""

    split: str
    counts: dict[str, int]
    percent: dict[str, float]
    total: int
    share: float


@dataclass(frozen=True)
class DatasetStats:
    dataset: str
    layout: str
    split: str  # how the splits were made
    classes: list[str]
    rows: list[SplitRow]  # each split, then ``total``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dataset_stats(ds: Dataset) -> DatasetStats:
    """Counts and percentages per split and class, plus a ``total`` row.

    Class percentages are within the row's split; ``share`` is the split's share of all images.
    """
    counts = ds.counts()
    grand = sum(sum(c.values()) for c in counts.values())
    rows = []
    totals = dict.fromkeys(ds.classes, 0)
    for split, c in counts.items():
        n = sum(c.values())
        for k, v in c.items():
            totals[k] += v
        rows.append(_row(split, c, n, grand))
    rows.append(_row("total", totals, grand, grand))
    return DatasetStats(str(ds.root), ds.layout, ds.split_note, list(ds.classes), rows)


def _row(name: str, c: dict[str, int], n: int, grand: int) -> SplitRow:
    return SplitRow(name, dict(c), {k: (100.0 * v / n if n else 0.0) for k, v in c.items()}, n,
                    100.0 * n / grand if grand else 0.0)
