"""Recognise and read the dataset layouts of SPEC into one ``Dataset`` object.

Layouts, tried in this order:

* ``manifest``: a CSV file with a header holding ``path`` and ``label`` (and optionally
  ``split``); relative paths are resolved against the CSV's folder.
* ``splits``: ``train|training/``, ``valid|val|validation/``, ``test/`` folders, each with one
  folder per class (Kaggle "140k real and fake faces").
* ``ciplab``: ``training_real/``, ``training_fake/`` (Kaggle ciplab); split by ratios.
* ``classes``: one folder per class (``real/``, ``fake/``, ...); split by ratios (seed 002).

Groups keep related images in one split (a face swap and the real video it was made from):
a ``groups.csv`` (``path,group``) or ``pairs.csv`` (two columns of paths, each row one pair,
DFDC's ``fake,made_from_real``) beside the class folders is read automatically, a manifest
may carry a ``group`` column, and ``groups=FILE`` names either kind of file for any layout.

A folder holding exactly one sub-folder and nothing recognisable is descended into, so the
root of an unpacked Kaggle archive works as is.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from fakescan.config import DEFAULT_RATIOS
from fakescan.data.dataset import SPLITS, Dataset, Sample, order_classes
from fakescan.data.kinds import fake_kind
from fakescan.data.split import stratified_split
from fakescan.errors import DataError, ManifestError

__all__ = ["SPLITS", "Dataset", "Sample", "is_image_file", "list_images", "load_dataset",
           "load_sources", "order_classes", "read_groups", "source_name"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "valid": "valid", "val": "valid", "validation": "valid",
    "test": "test", "testing": "test",
}
CIPLAB = re.compile(r"^(?:training|train)_(?P<label>[A-Za-z0-9-]+)$")


def is_image_file(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted, hidden files skipped)."""
    return sorted(p for p in folder.rglob("*") if is_image_file(p))


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_class_folders(folders: dict[str, Path]) -> list[Sample]:
    samples: list[Sample] = []
    for label, folder in folders.items():
        images = list_images(folder)
        if not images:
            raise DataError(f"class folder {folder} contains no images")
        samples += [Sample(p, label) for p in images]
    return samples


GROUP_FILES = ("groups.csv", "pairs.csv")


def read_groups(csv_path: Path) -> dict[Path, str]:
    """``{resolved file path: group}`` from a groups file: either a ``path,group`` CSV, or a
    pairs CSV (any two columns of paths, a header row first: each row puts its two files in
    one group, and chains join up). Relative paths are resolved against the file's folder."""
    if not csv_path.is_file():
        raise ManifestError(f"groups file not found: {csv_path}")
    try:
        with csv_path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ManifestError(f"groups file {csv_path}: {e}") from None
    if len(rows) < 2 or any(len(r) < 2 for r in rows):
        raise ManifestError(f"groups file {csv_path}: need a header and rows of two columns "
                            "(path,group, or two paths that belong together)")
    header = [c.strip().lower() for c in rows[0]]
    base = csv_path.parent

    def resolve(p: str) -> Path:
        q = Path(p.strip())
        return (q if q.is_absolute() else base / q).resolve()

    if header[:2] == ["path", "group"]:
        return {resolve(r[0]): r[1].strip() for r in rows[1:]}
    parent: dict[Path, Path] = {}  # union-find over the pairs

    def find(p: Path) -> Path:
        while parent.setdefault(p, p) != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for line, r in enumerate(rows[1:], start=2):
        if not r[0].strip() or not r[1].strip():
            raise ManifestError(f"groups file {csv_path} line {line}: an empty path")
        a, b = find(resolve(r[0])), find(resolve(r[1]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {p: str(find(p)) for p in parent}


def _with_groups(samples: list[Sample], root: Path,
                 group_of: dict[Path, str] | None) -> list[Sample]:
    if group_of is None:
        found = [root / n for n in GROUP_FILES if (root / n).is_file()]
        if not found:
            return samples
        group_of = read_groups(found[0])
    return [Sample(s.path, s.label, s.source, group_of.get(s.path.resolve(), s.group))
            for s in samples]


def load_dataset(
    path: str | Path,
    *,
    ratios: tuple[float, float, float] | None = DEFAULT_RATIOS,
    seed: int = 0,
    min_classes: int = 2,
    groups: str | Path | None = None,
) -> Dataset:
    """Read the dataset at ``path`` (a folder or a CSV manifest).

    Args:
        path: dataset folder or manifest file.
        ratios: train/valid/test ratios for layouts without predefined splits; ``None``
            keeps such a dataset unsplit (one split named ``all``).
        seed: seed of the stratified split.
        min_classes: 1 accepts a folder of one class (``real/`` only: a source of real
            photos that widens the real side of a multi-source training set).
        groups: a ``path,group`` or pairs CSV (see the module's docstring); files in one
            group land in one split. Without it, a ``groups.csv``/``pairs.csv`` in the
            dataset folder is used.

    Raises:
        DataError: missing path, empty class folder, or unrecognised layout.
        ManifestError: malformed manifest or groups file.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"dataset not found: {root}")
    group_of = read_groups(Path(groups)) if groups is not None else None
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DataError(f"{root} is a file but not a CSV manifest (path,label columns)")
        return _load_manifest(root, ratios, seed, min_classes, group_of)

    for _ in range(4):  # descend through wrapper folders of unpacked archives
        subdirs = _subdirs(root)
        names = {d.name.lower(): d for d in subdirs}
        split_dirs = {SPLIT_ALIASES[n]: d for n, d in names.items() if n in SPLIT_ALIASES}
        if split_dirs:
            return _load_splits(root, split_dirs, min_classes)
        ciplab = {m["label"].lower(): d for d in subdirs if (m := CIPLAB.match(d.name))}
        if len(ciplab) >= 2:
            samples = _with_groups(_read_class_folders(ciplab), root, group_of)
            return _finish(root, "ciplab", samples, ratios, seed, min_classes)
        class_dirs = {d.name: d for d in subdirs}
        has_own_images = any(is_image_file(p) for p in root.iterdir())
        one_class = (min_classes == 1 and len(subdirs) == 1
                     and any(is_image_file(p) for p in subdirs[0].iterdir()))
        if (len(class_dirs) >= 2 or one_class) and not has_own_images:
            samples = _with_groups(_read_class_folders(class_dirs), root, group_of)
            return _finish(root, "classes", samples, ratios, seed, min_classes)
        if len(subdirs) == 1 and not has_own_images:
            root = subdirs[0]
            continue
        break
    raise DataError(
        f"cannot recognise the dataset layout at {path}: expected split folders "
        "(train/ valid/ test/ with one folder per class), class folders (real/ fake/ ...), "
        "ciplab folders (training_real/ training_fake/), or a CSV manifest (path,label)"
    )


def _load_splits(root: Path, split_dirs: dict[str, Path], min_classes: int = 2) -> Dataset:
    splits: dict[str, list[Sample]] = {}
    labels: set[str] = set()
    for name in SPLITS:
        if name not in split_dirs:
            continue
        class_dirs = {d.name: d for d in _subdirs(split_dirs[name])}
        if not class_dirs:
            raise DataError(f"split folder {split_dirs[name]} has no class folders")
        splits[name] = _read_class_folders(class_dirs)
        labels |= set(class_dirs)
    if "train" not in splits:
        raise DataError(f"{root} has split folders but no train/ (or training/) folder")
    classes = order_classes(labels)
    _check_classes(root, classes, min_classes)
    return Dataset(root, "splits", classes, splits, "predefined splits")


def _check_classes(root: Path, classes: tuple[str, ...], min_classes: int) -> None:
    if len(classes) < min_classes:
        raise DataError(f"{root} has only one class ({classes[0]}); need at least two (a "
                        "one-class folder can join others: train --data A --data B)")


def _finish(
    root: Path,
    layout: str,
    samples: list[Sample],
    ratios: tuple[float, float, float] | None,
    seed: int,
    min_classes: int = 2,
) -> Dataset:
    classes = order_classes({s.label for s in samples})
    _check_classes(root, classes, min_classes)
    if ratios is None:
        return Dataset(root, layout, classes, {"all": samples}, "unsplit")
    splits = stratified_split(samples, ratios, seed)
    note = f"stratified split {'/'.join(f'{r:g}' for r in ratios)}, seed {seed}"
    n_groups = len({s.group for s in samples if s.group})
    if n_groups:
        note += f", by group ({n_groups:,} groups)"
    return Dataset(root, layout, classes, splits, note)


def _load_manifest(
    manifest: Path, ratios: tuple[float, float, float] | None, seed: int, min_classes: int = 2,
    group_of: dict[Path, str] | None = None,
) -> Dataset:
    base = manifest.parent
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in reader.fieldnames or []]
            if "path" not in fields or "label" not in fields:
                raise ManifestError(
                    f"manifest {manifest}: header must name 'path' and 'label' columns "
                    f"(found: {', '.join(fields) or 'nothing'})"
                )
            reader.fieldnames = fields
            rows = list(enumerate(reader, start=2))
    except UnicodeDecodeError as e:
        raise ManifestError(f"manifest {manifest} is not UTF-8 text: {e.reason}") from None
    except csv.Error as e:
        raise ManifestError(f"manifest {manifest}: {e}") from None
    if not rows:
        raise ManifestError(f"manifest {manifest} has a header but no rows")

    samples: list[Sample] = []
    split_of: dict[int, str] = {}
    for line, row in rows:
        p, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not p or not label:
            raise ManifestError(f"manifest {manifest} line {line}: empty path or label")
        fp = Path(p) if Path(p).is_absolute() else base / p
        if not fp.is_file():
            raise ManifestError(f"manifest {manifest} line {line}: no such file {p}")
        split = (row.get("split") or "").strip().lower()
        if split:
            if split not in SPLIT_ALIASES:
                raise ManifestError(
                    f"manifest {manifest} line {line}: unknown split {split!r} "
                    "(use train, valid or test)"
                )
            split_of[len(samples)] = SPLIT_ALIASES[split]
        samples.append(Sample(fp, label, group=(row.get("group") or "").strip()))

    if group_of is not None:
        samples = _with_groups(samples, base, group_of)
    if split_of and len(split_of) != len(samples):
        raise ManifestError(f"manifest {manifest}: the split column is filled on some rows only")
    if split_of:
        classes = order_classes({s.label for s in samples})
        splits = {
            name: [s for i, s in enumerate(samples) if split_of[i] == name] for name in SPLITS
        }
        splits = {k: v for k, v in splits.items() if v}
        _check_classes(manifest, classes, min_classes)
        return Dataset(manifest, "manifest", classes, splits, "splits from the manifest")
    return _finish(manifest, "manifest", samples, ratios, seed, min_classes)


def source_name(path: str | Path) -> str:
    """The name a dataset goes by as a source: its folder's (or manifest's) name."""
    p = Path(path)
    return p.stem if p.is_file() else (p.resolve().name or str(p))


def load_sources(
    paths: list[str | Path],
    *,
    ratios: tuple[float, float, float] | None = DEFAULT_RATIOS,
    seed: int = 0,
    classes: tuple[str, ...] | None = None,
    min_classes: int = 2,
    groups: str | Path | None = None,
) -> Dataset:
    """Several datasets as one: each is read and split on its own (so validation and test
    hold every source), every sample keeps its source's name, and the splits are joined.

    Args:
        paths: dataset folders or manifests, in any layout; one-class folders are welcome.
        ratios, seed: as for ``load_dataset``, applied to each source.
        classes: keep only these classes (e.g. ``("real", "fake")`` to leave out a source's
            ``edited`` class); ``None`` keeps every class.
        min_classes: classes needed in all (1 for evaluating on real photos alone).
        groups: a groups file for all the sources (``load_dataset``); each source's own
            ``groups.csv``/``pairs.csv`` is read without it.

    Raises:
        DataError: a source that cannot be read, or fewer than two classes in all.
    """
    parts, names, kinds = [], [], []
    for p in paths:
        ds = load_dataset(p, ratios=ratios, seed=seed, min_classes=1, groups=groups)
        name, k = source_name(p), 2
        while name in names:
            name, k = f"{source_name(p)}_{k}", k + 1
        names.append(name)
        parts.append((name, ds))
        kinds.append(fake_kind(p))
    splits: dict[str, list[Sample]] = {}
    sources = []
    for (name, ds), kind in zip(parts, kinds, strict=True):
        for split, samples in ds.splits.items():
            splits.setdefault(split, []).extend(
                Sample(s.path, s.label, name, s.group) for s in samples
                if classes is None or s.label in classes)
        sources.append({"name": name, "path": str(ds.root), "kind": kind,
                        "layout": ds.layout,
                        "split": ds.split_note, "fingerprint": ds.fingerprint(),
                        "counts": ds.counts()})
    splits = {k: splits[k] for k in (*SPLITS, "all") if splits.get(k)}
    found = order_classes({s.label for v in splits.values() for s in v})
    root = parts[0][1].root if len(parts) == 1 else Path(os.path.commonpath(
        [str(ds.root.resolve()) for _, ds in parts]))
    if len(found) < max(min_classes, 1):
        raise DataError(f"{', '.join(names)}: only the class {found[0] if found else '-'}; "
                        "training needs at least two")
    note = "; ".join(f"{n}: {ds.split_note}" for n, ds in parts)
    layout = parts[0][1].layout if len(parts) == 1 else "sources"
    return Dataset(root, layout, found, splits, note, sources)
