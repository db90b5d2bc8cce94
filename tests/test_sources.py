"""Training across sources: several --data folders (one-class ones included), balanced
sampling, source-neutral augmentation, a threshold bounded in every source."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fakescan.data.layouts import load_sources
from fakescan.errors import DataError
from fakescan.train.data import RandomReencode, RandomZoom, balance_weights
from fakescan.train.metrics import calibrate_threshold
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    """Two labelled synthetic sets and a folder of real images only."""
    from fakescan.data.synth import make_synth

    root = tmp_path_factory.mktemp("sources")
    make_synth(root / "alpha", n=60, seed=31, size_range=(64, 128))
    make_synth(root / "beta", n=40, seed=32, size_range=(64, 128))
    reals = root / "gamma_reals" / "real"
    reals.mkdir(parents=True)
    for i, p in enumerate(sorted((root / "beta").rglob("*"))):
        if p.is_file() and p.parent.name == "real":
            shutil.copy(p, reals / f"g{i}{p.suffix}")
    edited = root / "delta" / "edited"
    edited.mkdir(parents=True)
    (root / "delta" / "real").mkdir()
    for i, p in enumerate(sorted((root / "alpha" / "train" / "fake").iterdir())[:6]):
        shutil.copy(p, edited / f"e{i}{p.suffix}")
        shutil.copy(p, root / "delta" / "real" / f"r{i}{p.suffix}")
    return root


def test_sources_are_joined_split_by_split_and_keep_their_names(three_sources):
    r = three_sources
    ds = load_sources([r / "alpha", r / "beta", r / "gamma_reals"])
    assert ds.classes == ("real", "fake") and ds.layout == "sources"
    assert [s["name"] for s in ds.sources] == ["alpha", "beta", "gamma_reals"]
    valid = Counter(s.source for s in ds.splits["valid"])
    assert set(valid) == {"alpha", "beta", "gamma_reals"}  # validation covers every source
    assert all(s.label == "real" for s in ds.samples() if s.source == "gamma_reals")
    assert ds.fingerprint() == load_sources([r / "alpha", r / "beta",
                                             r / "gamma_reals"]).fingerprint()
    with pytest.raises(DataError, match="only the class real"):
        load_sources([r / "gamma_reals"])
    kept = load_sources([r / "alpha", r / "delta"], classes=("real", "fake"))
    assert kept.classes == ("real", "fake")
    assert "edited" in load_sources([r / "alpha", r / "delta"]).classes


def _mass(samples, weights) -> dict:
    """The sampling mass of each (class, source) under per-sample ``weights``."""
    mass: dict = {}
    for s, x in zip(samples, weights.numpy(), strict=True):
        mass[(s.label, s.source)] = mass.get((s.label, s.source), 0.0) + x
    return mass


def test_balanced_weights_give_each_class_and_each_source_in_it_the_same_mass(three_sources):
    ds = load_sources([three_sources / "alpha", three_sources / "gamma_reals"])
    train = ds.splits["train"]
    mass = _mass(train, balance_weights(train))
    assert mass[("fake", "alpha")] == pytest.approx(0.5)
    assert mass[("real", "alpha")] == pytest.approx(0.25)
    assert mass[("real", "gamma_reals")] == pytest.approx(0.25)
    # a source weighted 3 gets three times its class's share, the classes stay equal
    mass = _mass(train, balance_weights(train, {"gamma_reals": 3.0}))
    assert mass[("fake", "alpha")] == pytest.approx(0.5)
    assert mass[("real", "alpha")] == pytest.approx(0.125)
    assert mass[("real", "gamma_reals")] == pytest.approx(0.375)
    # SOURCE/CLASS weighs one class of a source alone, and wins over SOURCE: alpha's reals
    # drawn 3x, its fakes as before; the classes stay equal
    mass = _mass(train, balance_weights(train, {"alpha/real": 3.0, "alpha": 5.0}))
    assert mass[("fake", "alpha")] == pytest.approx(0.5)
    assert mass[("real", "alpha")] == pytest.approx(0.375)
    assert mass[("real", "gamma_reals")] == pytest.approx(0.125)


def test_source_neutral_augmentations_keep_shape_and_change_the_image():
    torch.manual_seed(0)
    x = (torch.rand(3, 96, 96) * 255).to(torch.uint8)
    for aug in (RandomZoom(0.55, 1.25), RandomZoom(1.25, 1.25), RandomZoom(0.55, 0.55),
                RandomReencode()):
        y = aug(x)
        assert y.shape == x.shape and y.dtype == torch.uint8
        assert not torch.equal(x, y)
    # zooming out shows the whole frame smaller (mirrored beyond its edges): a centred dot
    # stays near the middle, at half its size
    img = torch.zeros(3, 100, 100, dtype=torch.uint8)
    img[:, 45:55, 45:55] = 255
    torch.manual_seed(1)
    out = RandomZoom(2.0, 2.0)(img)
    assert out[:, 40:60, 40:60].max() > 128  # the dot is near the middle still
    centre = (out[:, 35:65, 35:65] > 128).sum().item()
    assert 0 < centre < (img > 128).sum().item() / 2  # and smaller


def test_threshold_bound_holds_in_every_source_not_only_pooled():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(300, int), np.ones(150, int)]
    g = np.r_[np.zeros(200), np.ones(100), np.zeros(150)]  # source 1's reals score higher
    s = np.r_[rng.uniform(0, 0.6, 200), rng.uniform(0.3, 0.9, 100), rng.uniform(0.5, 1, 150)]
    pooled = calibrate_threshold(y, s, 0.05)
    each = calibrate_threshold(y, s, 0.05, g)
    fpr = lambda t, k: ((s >= t) & (y == 0) & (g == k)).sum() / ((y == 0) & (g == k)).sum()  # noqa: E731
    assert fpr(pooled, 1) > 0.05  # pooled hides the harder source
    assert fpr(each, 0) <= 0.05 and fpr(each, 1) <= 0.05
    assert each > pooled


def test_training_on_several_sources_records_them(three_sources, tmp_path):
    from fakescan.nets import get_arch
    from fakescan.train.fit import TrainConfig, train

    r = three_sources
    recipe = get_arch("simplecnn").recipe.replace(epochs=1, batch_size=16, max_fpr=0.1,
                                                   zoom=(0.8, 1.2), reencode=True,
                                                   source_weights={"delta": 2,
                                                                   "alpha/real": 1.5})
    out = tmp_path / "multi"
    card = train(TrainConfig("simplecnn", [r / "alpha", r / "gamma_reals", r / "delta"], out,
                             recipe, workers=0, classes=("real", "fake")))
    srcs = card.data["sources"]
    assert [s["name"] for s in srcs] == ["alpha", "gamma_reals", "delta"]
    assert all(len(s["fingerprint"]) == 64 and s["counts"] for s in srcs)
    assert card.data["classes_kept"] == ["real", "fake"]
    assert card.labels == ("real", "fake")
    assert card.threshold_calibrated_on == "valid, max FPR 0.1 in each of 3 sources"
    by = card.metrics["valid"]["by_source"]
    assert set(by) == {"alpha", "gamma_reals", "delta"}
    assert by["gamma_reals"]["fakes_detected"] is None
    saved = json.loads((Path(out) / "config.json").read_text())
    assert saved["recipe"]["zoom"] == [0.8, 1.2] and saved["recipe"]["reencode"]
    assert saved["recipe"]["source_weights"] == {"delta": 2.0, "alpha/real": 1.5}
    assert saved["data"]["sources"] == srcs


def test_a_source_weight_must_name_a_source_of_the_run(three_sources, tmp_path):
    r = three_sources
    for spec, msg in (("nosuch=2", "names no source of this run: nosuch"),
                      ("gamma_reals/fake=2", "names no source of this run: gamma_reals/fake"),
                      ("alpha/edited=2", "names no source of this run: alpha/edited"),
                      ("alpha=0", "must be above 0: alpha"),
                      ("alpha", "write SOURCE=W")):
        res = run_cli("train", "--model", "simplecnn", "--data", r / "alpha", "--data",
                      r / "gamma_reals", "--epochs", "1", "--source-weight", spec,
                      "--out", tmp_path / spec)
        assert res.returncode == 2, res.stderr
        assert msg in res.stderr and "Traceback" not in res.stderr
