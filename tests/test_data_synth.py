"""The synthetic set: deterministic, balanced, and format/size carry no label signal."""

from __future__ import annotations

import filecmp
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def synth400(tmp_path_factory) -> tuple[Path, Path]:
    a, b = tmp_path_factory.mktemp("a") / "s", tmp_path_factory.mktemp("b") / "s"
    for d in (a, b):
        r = run_cli("data", "synth", d, "--n", "400", "--seed", "0")
        assert r.returncode == 0, r.stderr
    return a, b


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_byte_identical_trees(synth400):
    a, b = synth400
    files = _tree(a)
    assert files == _tree(b) and len(files) == 400
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors
    assert {f.split("/")[0] for f in files} == {"train", "valid", "test"}
    assert {f.split("/")[1] for f in files} == {"real", "fake"}


def test_other_seed_differs(tmp_path, synth400):
    r = run_cli("data", "synth", tmp_path / "s", "--n", "20", "--seed", "1", "--max-size", "160")
    assert r.returncode == 0, r.stderr
    assert len(_tree(tmp_path / "s")) == 20


def test_mixed_sizes_and_formats(synth400):
    a, _ = synth400
    fmts, sides = Counter(), []
    for p in a.rglob("*.*"):
        with Image.open(p) as im:
            fmts[im.format] += 1
            sides.append(max(im.size))
    assert set(fmts) == {"JPEG", "PNG", "WEBP"}
    assert min(sides) < 200 and max(sides) > 800


def test_format_and_size_do_not_predict_the_label(synth400):
    """A lookup table on (format, size bucket), fit on half the images, is at chance on the rest."""
    a, _ = synth400
    feats = []
    for p in sorted(a.rglob("*.*")):
        with Image.open(p) as im:
            w, h = im.size
            feats.append(((im.format, int(w * h).bit_length() // 2, w > h, w < h), p.parent.name))
    fit, held = feats[0::2], feats[1::2]
    table: dict = {}
    for f, label in fit:
        table.setdefault(f, Counter())[label] += 1
    majority = Counter(label for _, label in fit).most_common(1)[0][0]
    pred = [table[f].most_common(1)[0][0] if f in table else majority for f, _ in held]
    acc = sum(p == lab for p, (_, lab) in zip(pred, held, strict=True)) / len(held)
    # 200 held-out images: chance is 0.5 +- 0.035; a real signal would push well past 0.62.
    assert acc < 0.62, acc
