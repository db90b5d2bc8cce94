"""Issue 20: group-aware splits, self-blended pseudo-fakes, figures by kind of fake."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fakescan.data.kinds import fake_kind
from fakescan.data.layouts import load_dataset, load_sources, read_groups
from fakescan.errors import ManifestError
from fakescan.train.metrics import per_kind
from tests.conftest import SHARED, run_cli


def _where(ds) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for split, samples in ds.splits.items():
        for s in samples:
            out.setdefault(s.group, set()).add(split)
    return out


@pytest.fixture(scope="module")
def swaps(tmp_path_factory) -> Path:
    """A face-swap style set: 40 reals, and 60 fakes each made from one of them (some reals
    have several), with a DFDC-style ``pairs.csv`` (``fake,made_from_real``)."""
    from fakescan.data.synth import make_synth

    src = tmp_path_factory.mktemp("swap_src")
    make_synth(src, n=200, seed=7, size_range=(48, 64))
    root = tmp_path_factory.mktemp("swaps")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    reals = sorted(src.rglob("real/*"))[:40]
    fakes = sorted(src.rglob("fake/*"))[:60]
    rows = []
    for i, p in enumerate(reals):
        shutil.copy(p, root / "real" / f"r{i:03d}{p.suffix}")
    for i, p in enumerate(fakes):
        shutil.copy(p, root / "fake" / f"f{i:03d}{p.suffix}")
        j = (i * 7) % 40
        rows.append((f"fake/f{i:03d}{p.suffix}", f"real/r{j:03d}{reals[j].suffix}"))
    with (root / "pairs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fake", "made_from_real"])
        w.writerows(rows)
    return root


def test_pairs_csv_keeps_every_fake_with_its_real(swaps):
    ds = load_dataset(swaps, ratios=(0.6, 0.2, 0.2), seed=3)
    assert "by group (40 groups)" in ds.split_note
    where = _where(ds)
    assert len(where) == 40 and all(len(v) == 1 for v in where.values())  # no group crosses
    split_of = {s.path.name: split for split, v in ds.splits.items() for s in v}
    with (swaps / "pairs.csv").open() as f:
        pairs = list(csv.reader(f))[1:]
    assert all(split_of[Path(a).name] == split_of[Path(b).name] for a, b in pairs)
    assert {k: len(v) for k, v in ds.splits.items()}.keys() == {"train", "valid", "test"}
    # the same seed gives the same split; groups are stratified too (every split gets some)
    assert load_dataset(swaps, ratios=(0.6, 0.2, 0.2), seed=3).splits == ds.splits


def test_groups_file_for_any_layout_and_manifest_group_column(synth_small, tmp_path):
    # a user's own groups: path,group (each "person" owns four images, of both classes)
    ds0 = load_dataset(synth_small, ratios=None)
    files = sorted(ds0.samples(), key=lambda s: str(s.path))
    rows = [(str(s.path), f"person{i // 4}") for i, s in enumerate(files)]
    groups = tmp_path / "people.csv"
    with groups.open("w", newline="") as f:
        csv.writer(f).writerows([("path", "group"), *rows])
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "group"),
                                 *[(str(s.path), s.label, f"person{i // 4}")
                                   for i, s in enumerate(files)]])
    for ds in (load_dataset(manifest), load_sources([manifest]),
               load_sources([manifest], groups=groups)):
        where = _where(ds)
        assert len(where) == len(files) // 4 + (len(files) % 4 > 0)
        assert all(len(v) == 1 for v in where.values())
    # the CLI names the file: `data split --groups` writes each person into one split
    out = tmp_path / "split"
    r = run_cli("data", "split", manifest, out, "--groups", groups)
    assert r.returncode == 0, r.stderr
    assert "by group" in r.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("path\nonly-one-column\n")
    with pytest.raises(ManifestError, match="two columns"):
        read_groups(bad)
    r = run_cli("data", "stats", manifest, "--groups", tmp_path / "missing.csv")
    assert r.returncode != 0 and "groups file not found" in r.stderr


def test_ungrouped_split_is_unchanged():
    """Groups of one reproduce the old per-class split exactly (the shipped model's split)."""
    from fakescan.data.dataset import Sample
    from fakescan.data.split import stratified_split

    samples = [Sample(Path(f"/x/{c}/{i:03d}.jpg"), c) for c in ("real", "fake")
               for i in range(37)]
    s = stratified_split(samples, (0.8, 0.1, 0.1), 0)
    import random

    for label in ("fake", "real"):
        items = sorted((x for x in samples if x.label == label), key=lambda x: str(x.path))
        random.Random(f"0:{label}").shuffle(items)
        assert [x for x in s["test"] if x.label == label] == items[-4:]


@pytest.fixture(scope="module")
def faces():
    """Six real faces (shared datasets) as 224 px uint8 tensors, with their landmarks."""
    from fakescan.config import Preprocess
    from fakescan.imaging import load_uint8
    from fakescan.train.selfblend import find_landmarks

    folder = SHARED / "datasets" / "utkface-real" / "real"
    if not folder.is_dir():
        pytest.skip("shared datasets not found")
    pp = Preprocess(input_size=224, mean=(0.5,) * 3, std=(0.5,) * 3)
    xs = [load_uint8(p, pp) for p in sorted(folder.iterdir())[:6]]
    marks = find_landmarks(xs, workers=1)
    assert all(m is not None for m in marks)
    return xs, marks


def test_self_blend_changes_the_face_only_inside_its_mask(faces):
    from fakescan.train.selfblend import self_blend

    xs, marks = faces
    rng = np.random.default_rng(0)
    for x, m in zip(xs, marks, strict=True):
        y, mask = self_blend(x, m, rng)
        inside = torch.from_numpy(mask > 0)
        assert y.shape == x.shape and y.dtype == torch.uint8
        assert torch.equal(y[:, ~inside], x[:, ~inside])  # bit for bit outside the mask
        assert (y[:, inside].int() - x[:, inside].int()).abs().float().mean() > 1.0
        # the mask covers the face the landmarks span (a tight crop: most of it), not the frame
        assert all(mask[round(py), round(px)] > 0 for px, py in m[:3])  # eyes, nose
        assert 0.05 < inside.float().mean() < 0.95
        assert mask[0, 0] == mask[-1, -1] == 0  # the corners are not face


def test_a_real_stays_real_without_self_blend_and_becomes_a_fake_with_it(faces, tmp_path):
    from fakescan.data.dataset import Sample
    from fakescan.train.data import ImageSamples
    from fakescan.train.fit import _with_self_blends

    xs, _ = faces
    samples = [Sample(tmp_path / f"{i}.png", "real", "src") for i in range(len(xs))]
    pp = None
    plain = ImageSamples(samples, ("real", "fake"), pp, cache=list(xs))
    assert all(plain[i][1] == 0 and torch.equal(plain[i][0], xs[i]) for i in range(len(xs)))
    from rich.console import Console

    s2, cache, blend = _with_self_blends(samples, list(xs), ("real", "fake"), pp, 1,
                                         Console(quiet=True))
    assert len(s2) == 2 * len(xs) and sorted(blend) == list(range(len(xs), 2 * len(xs)))
    assert all(s.label == "fake" and s.source == "self-blended" for s in s2[len(xs):])
    ds = ImageSamples(s2, ("real", "fake"), pp, cache=cache, blend=blend)
    for i in range(len(xs)):
        assert ds[i][1] == 0 and torch.equal(ds[i][0], xs[i])  # the real itself unchanged
        x, y = ds[len(xs) + i]
        assert y == 1 and not torch.equal(x, xs[i])


def test_per_kind_rows_detection_by_kind_and_false_alarms_by_source():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    score = np.array([0.1, 0.6, 0.9, 0.2, 0.3, 0.8, 0.5, 0.2])
    src = np.array(["gan_src", "gan_src", "gan_src", "gan_src", "swap", "swap", "diff", "utk"])
    kinds = {"gan_src": "gan", "swap": "faceswap", "diff": "diffusion", "utk": "other"}
    k = per_kind(y, score, src, kinds, 0.5)
    assert k["gan"] == {"fakes": 2, "fakes_detected": 0.5, "roc_auc": 0.75}  # its own reals
    assert k["faceswap"]["fakes_detected"] == 1.0 and k["faceswap"]["roc_auc"] == 1.0
    assert k["diffusion"]["fakes"] == 1 and k["diffusion"]["roc_auc"] == 0.75  # all reals
    assert k["real"] == {"reals": 4, "real_called_fake": 0.25,
                         "worst_source_real_called_fake": 0.5}
    assert fake_kind(SHARED / "datasets" / "dfdc-faceswap-224") == "faceswap"


def test_kind_txt_names_a_users_kind_and_each_source_keeps_its_own(synth_small, tmp_path):
    from fakescan.data.kinds import source_kinds

    for name, kind in (("mine", "diffusion"), ("theirs", "faceswap"), ("plain", None)):
        shutil.copytree(synth_small / "test", tmp_path / name)
        if kind:
            (tmp_path / name / "kind.txt").write_text(kind + "\n")
    assert fake_kind(tmp_path / "plain") == "other"
    assert fake_kind(tmp_path / "mine") == "diffusion"
    ds = load_sources([tmp_path / "mine", tmp_path / "theirs", tmp_path / "plain"])
    assert source_kinds(ds) == {"mine": "diffusion", "theirs": "faceswap", "plain": "other"}


def test_eval_writes_per_kind_rows(tiny_model, synth_small, tmp_path):
    """metrics.json holds detection per kind on the split and, pooled, on the OOD sets."""
    ood = tmp_path / "swapset"
    shutil.copytree(synth_small / "test", ood)
    (ood / "kind.txt").write_text("faceswap")
    r = run_cli("eval", tiny_model, "--data", synth_small, "--ood", ood, "--out",
                tmp_path / "ev", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["by_kind"]) == {"other", "real"}
    assert m["ood"]["swapset"]["kind"] == "faceswap"
    assert set(m["ood_by_kind"]) == {"faceswap", "real"}
    assert m["ood_by_kind"]["faceswap"]["fakes"] == sum(
        1 for p in (ood / "fake").iterdir())


def test_pair_groups_draws_each_fake_beside_its_real_and_keeps_classes_equal(swaps,
                                                                             synth_small):
    from fakescan.train.data import PairedSampler, balance_weights, group_partners

    train = load_dataset(swaps, ratios=(0.6, 0.2, 0.2), seed=3).splits["train"]
    other = load_dataset(synth_small).splits["train"]  # no groups
    samples = train + other
    partners = group_partners(samples)
    for s, ps in zip(samples, partners, strict=True):  # the same group, the other class
        assert all(samples[j].group == s.group and samples[j].label != s.label for j in ps)
        assert bool(ps) == (s in train)  # every swap has its real, every real a fake here
    targets = [("real", "fake").index(s.label) for s in samples]
    weights = balance_weights(samples, {swaps.name: 3})
    n = 40_000
    idx = list(PairedSampler(weights, partners, n, torch.Generator().manual_seed(0), targets))
    assert len(idx) == n
    # a partnered draw is followed at once by one of its partners
    i, pairs = 0, 0
    while i < n - 1:
        if partners[idx[i]]:
            assert idx[i + 1] in partners[idx[i]]
            i, pairs = i + 2, pairs + 1
        else:
            i += 1
    assert pairs > n // 10
    # the classes still weigh the same, and the grouped source keeps its share of each class
    share_fake = sum(targets[j] for j in idx) / n
    assert abs(share_fake - 0.5) < 0.02
    plain = list(torch.utils.data.WeightedRandomSampler(weights, n,
                                                        generator=torch.Generator().manual_seed(0)))
    in_swaps = [samples[j] in train for j in idx].count(True) / n
    in_swaps_plain = [samples[j] in train for j in plain].count(True) / n
    assert abs(in_swaps - in_swaps_plain) < 0.05


def test_pair_groups_trains_and_refuses_data_without_groups(swaps, synth_small, tmp_path):
    r = run_cli("train", "--model", "simplecnn", "--data", swaps, "--out", tmp_path / "p",
                "--epochs", "1", "--batch-size", "8", "--workers", "0", "--pair-groups")
    assert r.returncode == 0, r.stderr
    assert "drawn beside a partner" in r.stderr
    assert json.loads((tmp_path / "p" / "config.json").read_text())["recipe"]["pair_groups"]
    r = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out", tmp_path / "q",
                "--epochs", "1", "--workers", "0", "--pair-groups")
    assert r.returncode == 2 and "--pair-groups: no training image has a partner" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "q").exists()
