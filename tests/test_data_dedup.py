"""Duplicate finding: planted exact and near duplicates, cross-split leakage, --move-to."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image

from fakescan.data.dedup import phash
from tests.conftest import run_cli


def _recompress(src: Path, dst: Path, quality: int = 60, scale: float = 0.9) -> None:
    with Image.open(src) as im:
        im = im.convert("RGB")
        im = im.resize((int(im.width * scale), int(im.height * scale)))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
    dst.write_bytes(buf.getvalue())


def test_planted_duplicates_and_leakage(synth_small, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(synth_small, data)
    train_real = sorted((data / "train" / "real").iterdir())
    test_fake = data / "test" / "fake"
    # exact copy inside train, near copy (resized + recompressed) inside train,
    # and an exact copy of a train image planted in test: leakage.
    shutil.copy(train_real[0], data / "train" / "real" / "copy_exact.png")
    _recompress(train_real[1], data / "train" / "real" / "copy_near.jpg")
    shutil.copy(train_real[2], test_fake / "leaked.png")

    r = run_cli("data", "dedup", data, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    groups = {frozenset(Path(m["path"]).name for m in g["members"]): g for g in rep["groups"]}
    g_exact = groups[frozenset({train_real[0].name, "copy_exact.png"})]
    g_near = groups[frozenset({train_real[1].name, "copy_near.jpg"})]
    g_leak = groups[frozenset({train_real[2].name, "leaked.png"})]
    assert g_exact["kind"] == "exact" and not g_exact["leak"]
    assert g_near["kind"] == "near" and not g_near["leak"]
    assert g_leak["leak"] and g_leak["splits"] == ["train", "test"] and g_leak["labels_disagree"]
    assert rep["summary"]["leaking_groups"] == 1 and rep["summary"]["duplicate_files"] == 3

    table = run_cli("data", "dedup", data)
    assert "LEAK" in table.stdout and "1 groups cross splits" in table.stdout

    moved = tmp_path / "moved"
    r = run_cli("data", "dedup", data, "--move-to", moved, "--json")
    assert r.returncode == 0, r.stderr
    assert (moved / "test" / "fake" / "leaked.png").is_file()  # train copy kept, test copy out
    assert train_real[2].is_file()
    again = json.loads(run_cli("data", "dedup", data, "--json").stdout)
    assert again["summary"]["groups"] == 0


def test_phash_is_stable_under_recompression_and_distinguishes_images(synth_small, tmp_path):
    a, b = sorted((synth_small / "train" / "fake").iterdir())[:2]
    _recompress(a, tmp_path / "a.jpg", quality=50, scale=0.7)
    assert (phash(a) ^ phash(tmp_path / "a.jpg")).bit_count() <= 4
    assert (phash(a) ^ phash(b)).bit_count() > 8


def test_real_dataset_dedup_reports_its_count(hard_dataset):
    r = run_cli("data", "dedup", hard_dataset, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["images"] == 1289
    # Seed 002 found no duplicates; at the default distance neither do we.
    assert rep["summary"]["groups"] == 0 and rep["summary"]["unreadable"] == 0
