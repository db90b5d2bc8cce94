"""What a dataset is once read: labelled samples (each with its source) in named splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    source: str = ""  # the dataset it came from (several ``--data`` folders train together)
    # samples of one group never straddle splits (a face swap and the real video it was made
    # from, several photos of one person); "" is a group of its own
    group: str = ""


@dataclass
class Dataset:
    """A labelled dataset, split into ``train``/``valid``/``test`` (or ``all`` when unsplit).

    ``classes`` is the stable class order: index 0 is ``real`` (the negative class), then
    ``fake`` (the positive class), then any other class in sorted order.
    """

    root: Path
    layout: str
    classes: tuple[str, ...]
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    split_note: str = ""
    # one entry per source dataset (name, path, layout, split, fingerprint, counts) when the
    # dataset was put together from several (``load_sources``)
    sources: list[dict] = field(default_factory=list)

    def samples(self) -> list[Sample]:
        return [s for split in self.splits.values() for s in split]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class: count}}`` in split and class order."""
        out: dict[str, dict[str, int]] = {}
        for name, samples in self.splits.items():
            c = dict.fromkeys(self.classes, 0)
            for s in samples:
                c[s.label] += 1
            out[name] = c
        return out

    def fingerprint(self) -> str:
        """SHA-256 over (split, label, relative path, size) of every sample: cheap and stable
        (for a multi-source dataset: over its sources' fingerprints)."""
        h = hashlib.sha256()
        if self.sources:
            for src in self.sources:
                h.update(f"{src['name']}\0{src['fingerprint']}\n".encode())
            return h.hexdigest()
        for name, samples in self.splits.items():
            for s in sorted(samples, key=lambda s: str(s.path)):
                try:
                    rel = s.path.relative_to(self.root)
                except ValueError:
                    rel = s.path
                h.update(f"{name}\0{s.label}\0{rel}\0{s.path.stat().st_size}\n".encode())
        return h.hexdigest()


def order_classes(names: set[str] | list[str]) -> tuple[str, ...]:
    """Stable class order: ``real`` first (negative), ``fake`` second (positive), rest sorted."""
    names = set(names)
    head = [n for n in ("real", "fake") if n in names]
    return tuple(head + sorted(names - set(head)))
