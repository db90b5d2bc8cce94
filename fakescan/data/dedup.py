"""Exact and perceptual duplicates, within and across splits (train/test leakage).

Exact duplicates share a SHA-256 of their bytes. Near duplicates have 64-bit perceptual hashes
(imagehash's pHash: DCT of a 32x32 grey thumbnail, 8x8 lowest frequencies against their
median) within a Hamming distance. Candidate pairs come from multi-index hashing: split the
hash into ``max_distance + 1`` chunks; by the pigeonhole principle two hashes within that
distance agree exactly on at least one chunk, so only bucket-mates are compared (no N^2 scan).
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.data.layouts import Dataset

SPLIT_ORDER = {"train": 0, "all": 0, "valid": 1, "test": 2}


def phash(path: Path) -> int:
    """64-bit perceptual hash of an image file: imagehash's pHash, as an integer."""
    import imagehash
    from PIL import Image

    with Image.open(path) as im:
        im.draft("L", (64, 64))  # JPEG: decode at reduced size; pHash works on 32x32 anyway
        return int(str(imagehash.phash(im)), 16)


def _hash_file(path: Path) -> tuple[str, int | None, str | None]:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        return sha, phash(path), None
    except Exception as e:  # an unreadable image is reported, never fatal
        return sha, None, f"{type(e).__name__}: {e}"


@dataclass(frozen=True)
class Item:
    path: Path
    split: str
    label: str
    sha256: str
    phash: int | None


def _near_pairs(hashes: list[int | None], max_distance: int) -> dict[tuple[int, int], int]:
    """Index pairs (i < j) whose hashes differ in at most ``max_distance`` bits."""
    if max_distance < 0:
        return {}
    n_chunks = min(max_distance + 1, 64)
    bounds = [int(b) for b in np.linspace(0, 64, n_chunks + 1)]
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        if h is None:
            continue
        for c in range(n_chunks):
            lo, hi = bounds[c], bounds[c + 1]
            buckets[(c, (h >> lo) & ((1 << (hi - lo)) - 1))].append(i)
    pairs: dict[tuple[int, int], int] = {}
    for members in buckets.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                i, j = members[a], members[b]
                if (i, j) in pairs:
                    continue
                d = (hashes[i] ^ hashes[j]).bit_count()  # type: ignore[operator]
                if d <= max_distance:
                    pairs[(i, j)] = d
    return pairs


@dataclass(frozen=True)
class Member:
    path: str
    split: str
    label: str


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str  # "exact" (same bytes) or "near" (pHash within the distance)
    max_distance: int
    splits: list[str]
    leak: bool  # crosses splits
    labels_disagree: bool
    members: list[Member]  # the one to keep first (train before valid before test)


@dataclass(frozen=True)
class DuplicateSummary:
    groups: int
    exact_groups: int
    near_groups: int
    duplicate_files: int
    leaking_groups: int
    unreadable: int


@dataclass
class Duplicates:
    """What ``find_duplicates`` found (``to_dict``: the JSON report)."""

    dataset: str
    max_distance: int
    images: int
    summary: DuplicateSummary
    groups: list[DuplicateGroup]
    unreadable: list[dict[str, str]]  # path, error
    moved: list[str] | None = field(default=None)  # files moved away, when asked

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.moved is None:
            del d["moved"]
        return d


def find_duplicates(ds: Dataset, *, max_distance: int = 4, workers: int = 2) -> Duplicates:
    """Find exact and near-duplicate groups in ``ds``: each group's members, its kind
    (``exact`` or ``near``) and whether it crosses splits; counts; unreadable files."""
    entries = [(split, s) for split, samples in ds.splits.items() for s in samples]
    paths = [s.path for _, s in entries]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        hashed = list(pool.map(_hash_file, paths, chunksize=32))
    items = [
        Item(s.path, split, s.label, sha, ph)
        for (split, s), (sha, ph, _) in zip(entries, hashed, strict=True)
    ]
    unreadable = [
        {"path": str(p), "error": err} for p, (_, _, err) in zip(paths, hashed, strict=True) if err
    ]

    # Union-find over exact (same sha) and near (pHash) links.
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_sha[it.sha256].append(i)
    for members in by_sha.values():
        for j in members[1:]:
            union(members[0], j)
    near = _near_pairs([it.phash for it in items], max_distance)
    for i, j in near:
        union(i, j)

    groups_idx: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups_idx[find(i)].append(i)
    groups = []
    for members in groups_idx.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: (SPLIT_ORDER.get(items[i].split, 9), str(items[i].path)))
        exact = len({items[i].sha256 for i in members}) == 1
        splits = sorted({items[i].split for i in members}, key=lambda s: SPLIT_ORDER.get(s, 9))
        dist = max(
            (d for (i, j), d in near.items() if i in members and j in members), default=0
        )
        groups.append(DuplicateGroup(
            kind="exact" if exact else "near", max_distance=0 if exact else dist,
            splits=splits, leak=len(splits) > 1,
            labels_disagree=len({items[i].label for i in members}) > 1,
            members=[Member(str(items[i].path), items[i].split, items[i].label)
                     for i in members]))
    groups.sort(key=lambda g: g.members[0].path)
    summary = DuplicateSummary(
        groups=len(groups), exact_groups=sum(g.kind == "exact" for g in groups),
        near_groups=sum(g.kind == "near" for g in groups),
        duplicate_files=sum(len(g.members) - 1 for g in groups),
        leaking_groups=sum(g.leak for g in groups), unreadable=len(unreadable))
    return Duplicates(str(ds.root), max_distance, len(items), summary, groups, unreadable)


def move_duplicates(report: Duplicates, root: Path, move_to: Path) -> list[str]:
    """Keep the first member of each group (train before valid before test), move the rest.

    Files keep their path relative to the dataset root under ``move_to``. Returns moved paths.
    """
    moved = []
    base = root if root.is_dir() else root.parent
    for g in report.groups:
        for m in g.members[1:]:
            src = Path(m.path)
            try:
                rel = src.relative_to(base)
            except ValueError:
                rel = Path(src.name)
            dst = Path(move_to) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), dst)
            moved.append(str(src))
    return moved
