"""Per-split, per-class counts and percentages (seed 000, Table 2; seed 002, Table 1)."""

from __future__ import annotations

from typing import Any

from fakescan.data.layouts import Dataset


def dataset_stats(ds: Dataset) -> dict[str, Any]:
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
    return {
        "dataset": str(ds.root),
        "layout": ds.layout,
        "split": ds.split_note,
        "classes": list(ds.classes),
        "rows": rows,
    }


def _row(name: str, c: dict[str, int], n: int, grand: int) -> dict[str, Any]:
    return {
        "split": name,
        "counts": dict(c),
        "percent": {k: (100.0 * v / n if n else 0.0) for k, v in c.items()},
        "total": n,
        "share": 100.0 * n / grand if grand else 0.0,
    }
