"""Evaluation: metric definitions, threshold calibration, and the files eval leaves behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakescan.card import DecisionRule
from fakescan.train.metrics import (
    allowed_false_alarms,
    average_precision,
    calibrate_threshold,
    classification_report,
    roc_auc,
)
from tests.conftest import run_cli


def test_roc_auc_equals_pairwise_ranking_probability():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 2)  # rounding makes ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(y, s) == pytest.approx(pairs, abs=1e-12)


def test_average_precision_known_value():
    # ranks: + - + -  -> precision at the recalls: 1/1, 2/3 -> AP = (1 + 2/3) / 2
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)


def test_threshold_separates_separable_scores():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.05, 0.1, 0.2, 0.6, 0.7, 0.9])
    t = calibrate_threshold(y, s)
    assert 0.2 < t <= 0.6
    assert ((s >= t) == y.astype(bool)).all()


def test_multiclass_report_treats_every_non_real_class_as_fake():
    labels = ["real", "deepfake", "synthetic"]
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.3, 0.2, 0.5], [0.6, 0.3, 0.1]])
    targets = np.array([0, 1, 2, 2])
    rule = DecisionRule(tuple(labels))
    assert rule.verdict(probs, 0.5).tolist() == [0, 1, 2, 0]
    r = classification_report(probs, targets, rule, 0.5)
    assert r["accuracy"] == 0.75 and r["precision"] == 1.0 and r["recall"] == pytest.approx(2 / 3)
    assert np.array(r["confusion_matrix"]).sum() == 4
    assert set(r["per_class"]) == set(labels)


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("eval") / "cnn"  # eval writes into it: a private copy
    shutil.copytree(tiny_model, out)
    return out


def test_eval_leaves_metrics_figures_and_calibrates_only_when_asked(trained, synth_small,
                                                                   tmp_path):
    from fakescan.data.synth import make_synth

    ood = tmp_path / "ood"
    make_synth(ood, n=30, seed=7, size_range=(64, 128))
    card_before = (trained / "config.json").read_bytes()
    r = run_cli("eval", trained, "--data", synth_small, "--ood", ood)
    assert r.returncode == 0, r.stderr
    assert "other sources" in r.stdout and "roc_auc" in r.stdout and "worst" in r.stdout
    assert (trained / "config.json").read_bytes() == card_before  # eval changed nothing
    m = json.loads((trained / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                "threshold", "confusion_matrix"):
        assert key in m, key
    assert m["split"] == "test" and not m["calibrated_now"]
    assert m["threshold"] == json.loads(card_before)["threshold"]
    assert np.array(m["confusion_matrix"]).sum() == 12  # the test split of synth_small
    assert m["ood"]["ood"]["n"] == 30 and "real_called_fake" in m["ood"]["ood"]
    assert set(m["cross_source"]["ood"]) >= {"accuracy", "roc_auc", "real_called_fake",
                                             "fakes_detected", "tpr_at_fpr_0.05"}
    for f in ("confusion.png", "roc.png", "misclassified.csv", "misclassified.png",
              "confusion_ood_ood.png"):
        assert (trained / f).is_file(), f
    r = run_cli("eval", trained, "--data", synth_small, "--calibrate")
    assert r.returncode == 0, r.stderr
    m = json.loads((trained / "metrics.json").read_text())
    assert m["calibrated_now"] and m["threshold_calibrated_on"].startswith("valid")
    card = json.loads((trained / "config.json").read_text())
    assert card["threshold"] == m["threshold"]
    # on the validation split itself: calibrated too (it used to be ignored in silence)
    before = card["threshold"]
    r = run_cli("eval", trained, "--data", synth_small, "--split", "valid", "--calibrate",
                "--max-fpr", "0")
    assert r.returncode == 0, r.stderr
    m = json.loads((trained / "metrics.json").read_text())
    assert m["split"] == "valid" and m["calibrated_now"] and "max FPR 0" in \
        m["threshold_calibrated_on"]
    card = json.loads((trained / "config.json").read_text())
    assert card["threshold"] == m["threshold"]
    assert m["threshold"] >= before and m["details"]["real_called_fake"] == 0.0
    # the validation figures the card keeps are the new threshold's, not the old one's
    assert card["metrics"]["valid"]["by_kind"]["real"]["real_called_fake"] == 0.0


def test_eval_reports_one_row_per_ood_set_and_the_worst(trained, synth_small, tmp_path):
    """Several --ood sets, one of them a folder of real photos only."""
    import shutil

    from fakescan.data.synth import make_synth

    a, b = tmp_path / "a", tmp_path / "b"
    make_synth(a, n=24, seed=21, size_range=(64, 128))
    make_synth(b, n=40, seed=22, size_range=(64, 128))
    reals = tmp_path / "reals_only"
    (reals / "real").mkdir(parents=True)
    for p in (b / "train" / "real").iterdir():
        shutil.copy(p, reals / "real" / p.name)
    r = run_cli("eval", trained, "--data", synth_small, "--ood", a, "--ood", reals, "--json",
                "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    rows = m["cross_source"]
    assert set(rows) == {"a", "reals_only"}
    assert rows["reals_only"]["fakes_detected"] is None  # no fakes there
    assert rows["reals_only"]["roc_auc"] is None
    assert rows["reals_only"]["n"] == len(list((reals / "real").iterdir()))
    w = m["ood_worst"]
    assert w["real_called_fake"] == max(r["real_called_fake"] for r in rows.values())
    assert w["accuracy"] == min(r["accuracy"] for r in rows.values())
    assert (tmp_path / "ev" / "metrics.json").is_file()


def test_eval_unknown_split_is_one_error_line(trained, synth_small):
    r = run_cli("eval", trained, "--data", synth_small, "--split", "holdout")
    assert r.returncode == 2 and "no 'holdout' split" in r.stderr and "Traceback" not in r.stderr


def test_robustness_sweep_reports_every_perturbation(trained, synth_small, tmp_path):
    from fakescan.data.synth import make_synth
    from fakescan.train.robustness import SWEEP, Perturb

    ood = tmp_path / "ood"
    make_synth(ood, n=20, seed=8, size_range=(64, 128))
    r = run_cli("eval", trained, "--data", synth_small, "--ood", ood, "--robustness",
                "--batch-size", "16")
    assert r.returncode == 0, r.stderr
    assert "robustness on test" in r.stdout and "JPEG q30" in r.stdout
    m = json.loads((trained / "metrics.json").read_text())
    assert set(m["robustness"]) == {"test", "OOD ood"}
    for rows in m["robustness"].values():
        assert [x["perturbation"] for x in rows] == ["none"] + [p.name for p in SWEEP]
        assert all(0.0 <= x["accuracy"] <= 1.0 for x in rows)
    # The split's rows say, per kind of fake, what is still found after each damage.
    assert "robustness by kind of fake, on test" in r.stdout
    rows = m["robustness"]["test"]
    assert rows[0]["by_kind"] == m["by_kind"]
    n_fakes = m["by_kind"]["other"]["fakes"]
    for x in rows[1:]:
        assert set(x["by_kind"]) == {"other", "real"}
        assert x["by_kind"]["other"]["fakes"] == n_fakes
        # one kind here: its figures are the split's own under that damage
        assert x["by_kind"]["other"]["roc_auc"] == pytest.approx(x["roc_auc"])
        assert x["by_kind"]["real"]["real_called_fake"] == pytest.approx(x["real_called_fake"])
    assert all("by_kind" not in x for x in m["robustness"]["OOD ood"])
    assert (trained / "robustness.png").is_file()
    # The perturbations really change the image.
    from PIL import Image

    im = Image.new("RGB", (64, 48), (120, 80, 40))
    assert Perturb("downscale", 0.5)(im).size == (32, 24)
    noisy = Image.effect_noise((64, 64), 60).convert("RGB")
    assert Perturb("blur", 2.0)(noisy).tobytes() != noisy.tobytes()


def test_max_fpr_threshold_bounds_false_alarms_on_validation():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    s = np.r_[rng.normal(0.4, 0.15, 200), rng.normal(0.6, 0.15, 200)]
    youden = calibrate_threshold(y, s)
    for target in (0.01, 0.05, 0.2):
        t = calibrate_threshold(y, s, max_fpr=target)
        called = ((s >= t) & (y == 0)).sum()
        assert called / 200 <= target
        assert called == allowed_false_alarms(200, target)  # new reals: <= target expected
        # the most sensitive such threshold: one score lower would break the allowance
        below = s[s < t].max()
        assert ((s >= below) & (y == 0)).sum() > allowed_false_alarms(200, target)
    assert calibrate_threshold(y, s, max_fpr=0.01) > youden
    # the top score is a real one: nothing can be called fake at 0 FPR but the threshold is valid
    assert 0.0 < calibrate_threshold(np.array([0, 1]), np.array([0.9, 0.8]), max_fpr=0.0) <= 1.0
