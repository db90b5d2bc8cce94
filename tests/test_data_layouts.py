"""Dataset layouts, class order, stratified split, stats — on generated and real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fakescan.data import load_dataset, order_classes
from fakescan.data.split import stratified_split
from fakescan.errors import DataError, ManifestError
from tests.conftest import run_cli


def _img(path: Path, color=(10, 20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)
    return path


def _classes(root: Path, counts: dict[str, int]) -> Path:
    for label, n in counts.items():
        for i in range(n):
            _img(root / label / f"{label}{i}.png", (i, 0, 0))
    return root


def test_class_order_real_negative_fake_positive():
    assert order_classes(["fake", "real"]) == ("real", "fake")
    assert order_classes(["synthetic", "real", "deepfake"]) == ("real", "deepfake", "synthetic")
    assert order_classes(["fake", "real", "anime"]) == ("real", "fake", "anime")


def test_split_layout_with_aliases(tmp_path):
    for split in ("training", "validation", "test"):
        _classes(tmp_path / split, {"real": 2, "fake": 3})
    ds = load_dataset(tmp_path)
    assert ds.layout == "splits" and ds.classes == ("real", "fake")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 5, "valid": 5, "test": 5}


def test_wrapper_folder_is_descended(tmp_path):
    _classes(tmp_path / "real_vs_fake" / "real-vs-fake" / "train", {"real": 2, "fake": 2})
    assert load_dataset(tmp_path).layout == "splits"


def test_class_folders_three_classes_split_by_ratios(tmp_path):
    _classes(tmp_path, {"real": 10, "deepfake": 10, "synthetic": 10})
    ds = load_dataset(tmp_path, ratios=(0.6, 0.2, 0.2), seed=3)
    assert ds.layout == "classes"
    assert ds.classes == ("real", "deepfake", "synthetic")
    assert ds.counts()["test"] == {"real": 2, "deepfake": 2, "synthetic": 2}


def test_ciplab_layout(tmp_path):
    _classes(tmp_path / "real_and_fake_face", {"training_real": 5, "training_fake": 5})
    ds = load_dataset(tmp_path, ratios=(0.6, 0.2, 0.2))
    assert ds.layout == "ciplab" and ds.classes == ("real", "fake")
    assert sum(len(v) for v in ds.splits.values()) == 10


def test_manifest_with_and_without_split(tmp_path):
    _classes(tmp_path / "img", {"real": 4, "fake": 4})
    rows = [f"img/{lab}/{lab}{i}.png,{lab}" for lab in ("real", "fake") for i in range(4)]
    (tmp_path / "m.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    ds = load_dataset(tmp_path / "m.csv", ratios=(0.5, 0.25, 0.25))
    assert ds.layout == "manifest" and ds.counts()["train"] == {"real": 2, "fake": 2}
    splits = ["train", "train", "val", "test"] * 2
    lines = [f"{r},{s}" for r, s in zip(rows, splits, strict=True)]
    (tmp_path / "s.csv").write_text("path,label,split\n" + "\n".join(lines) + "\n")
    ds = load_dataset(tmp_path / "s.csv")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 4, "valid": 2, "test": 2}


def test_manifest_bad_split_value(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,label,split\na.png,real,holdout\n")
    with pytest.raises(ManifestError, match="unknown split 'holdout'"):
        load_dataset(tmp_path / "m.csv")


def test_single_class_is_refused(tmp_path):
    _classes(tmp_path, {"real": 3})
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError):
        load_dataset(tmp_path)


def test_stratified_split_is_reproducible_and_disjoint(tmp_path):
    _classes(tmp_path, {"real": 17, "fake": 23})
    a = load_dataset(tmp_path, seed=5)
    b = load_dataset(tmp_path, seed=5)
    c = load_dataset(tmp_path, seed=6)
    assert a.splits == b.splits and a.splits != c.splits
    paths = [s.path for s in a.samples()]
    assert len(paths) == len(set(paths)) == 40
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_split_matches_seed_002_table_1_counts():
    from fakescan.data.layouts import Sample

    samples = [Sample(Path(f"r{i}"), "real") for i in range(589)]
    samples += [Sample(Path(f"f{i}"), "fake") for i in range(700)]
    s = stratified_split(samples, (0.8, 0.1, 0.1), 0)
    assert [len(s[k]) for k in ("train", "valid", "test")] == [1031, 129, 129]


def test_stats_on_seed_002_dataset(hard_dataset):
    r = run_cli("data", "stats", hard_dataset, "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["split"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["total"]["counts"] == {"real": 589, "fake": 700}
    assert [rows[k]["total"] for k in ("train", "valid", "test", "total")] == [1031, 129, 129, 1289]
    table = run_cli("data", "stats", hard_dataset)
    assert "1,031" in table.stdout and "45.69" in table.stdout and "54.31" in table.stdout


def test_data_split_writes_folders_that_load_back(tmp_path):
    _classes(tmp_path / "src", {"real": 10, "fake": 10})
    r = run_cli("data", "split", tmp_path / "src", tmp_path / "out", "--seed", "2")
    assert r.returncode == 0, r.stderr
    ds = load_dataset(tmp_path / "out")
    assert ds.layout == "splits" and {k: len(v) for k, v in ds.splits.items()} == {
        "train": 16, "valid": 2, "test": 2}
    orig = load_dataset(tmp_path / "src", seed=2)
    assert sorted(s.path.name for s in ds.splits["test"]) == sorted(
        s.path.name for s in orig.splits["test"])
    shutil.rmtree(tmp_path / "src")  # hard links: the split survives its source
    assert len(load_dataset(tmp_path / "out").samples()) == 20
