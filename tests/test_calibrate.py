"""``fakescan calibrate``: a model's threshold fitted to the user's own real photos."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fakescan.calibrate import calibrate
from fakescan.card import ModelCard
from fakescan.errors import UsageError
from fakescan.train.metrics import allowed_false_alarms, calibrate_threshold, reals_threshold
from tests.conftest import run_cli


@pytest.mark.parametrize("bound", [0.0, 0.01, 0.02, 0.05, 0.1, 0.5])
def test_reals_threshold_calls_at_most_the_bound_fake_and_no_stricter(bound):
    rng = np.random.default_rng(3)
    for n in (1, 7, 100, 1000):
        s = rng.beta(2, 5, n)
        t = reals_threshold(s, bound)
        called = (s >= t).mean()
        assert called <= bound + 1e-12
        # the most sensitive such threshold: the next real down would break the allowance
        assert (s >= t).sum() == allowed_false_alarms(n, bound)


def test_allowed_false_alarms_counts():
    # floor(bound * (n + 1) - 1/2), never below 0
    assert [allowed_false_alarms(n, 0.05) for n in (0, 10, 20, 40, 50, 59, 108, 150, 200)] == \
        [0, 0, 0, 1, 2, 2, 4, 7, 9]
    assert allowed_false_alarms(50, 0.0) == 0 and allowed_false_alarms(9, 0.5) == 4


@pytest.mark.parametrize("n", [20, 40, 50, 200])
def test_reals_threshold_bounds_the_share_of_new_reals_called_fake(n):
    """The promise is about reals the threshold never saw: over many draws of ``n``
    calibration reals, new reals from the same source are called fake at most ``bound`` of
    the time on average (exactly: a uniform score is its own CDF). The plain share of the
    ``n`` (10 of 200 for 5%), the rule before, breaks that promise where ``bound * n`` is
    whole."""
    rng = np.random.default_rng(n)
    draws, bound = 4000, 0.05
    cal = np.sort(rng.uniform(size=(draws, n)), axis=1)
    new = np.array([1.0 - reals_threshold(c, bound) for c in cal])  # P(new >= threshold)
    assert new.mean() <= bound
    if n >= 50:
        assert new.mean() > 0.045  # and no stricter than it needs to be
    k = int(np.floor(bound * n))  # the plain share, midway below the k-th highest
    plain = 1.0 - (cal[:, n - k - 1] + cal[:, n - k]) / 2
    assert (plain.mean() > bound) == (n != 50)  # 50: 2 of 50 is what both allow


def test_reals_threshold_with_ties_stays_within_the_bound():
    s = np.array([0.2] * 5 + [0.9] * 5)
    t = reals_threshold(s, 0.3)  # 3 may be called fake, but the top 5 tie: call none of them
    assert (s >= t).mean() <= 0.3
    assert reals_threshold(np.array([1.0, 1.0]), 0.0) > 1.0  # nothing can be called fake


def test_calibrate_threshold_on_reals_only_holds_the_bound_in_every_source():
    rng = np.random.default_rng(0)
    score = np.concatenate([rng.uniform(0, 0.5, 200), rng.uniform(0.3, 1.0, 200)])
    groups = np.array(["easy"] * 200 + ["hard"] * 200)
    t = calibrate_threshold(np.zeros(400, int), score, 0.05, groups)
    for g in ("easy", "hard"):
        assert (score[groups == g] >= t).mean() <= 0.05
    assert calibrate_threshold(np.zeros(400, int), score, None) == 0.5  # no bound: no signal


def _reals(synth_small, tmp_path):
    reals = tmp_path / "my_reals"
    shutil.copytree(synth_small / "train" / "real", reals)
    return reals


def test_calibrated_copy_holds_the_bound_in_a_later_scan(tiny_model, synth_small, tmp_path):
    reals = _reals(synth_small, tmp_path)
    before = ModelCard.load(tiny_model)
    out = tmp_path / "calibrated"
    cal = calibrate(tiny_model, [reals], max_fpr=0.05, out=out)
    assert ModelCard.load(tiny_model) == before  # the source model is untouched
    card = ModelCard.load(out)
    assert card.threshold == cal.threshold >= before.threshold
    assert card.weights_sha256 == before.weights_sha256
    if cal.tightened:
        assert "max FPR 0.05" in card.threshold_calibrated_on
    # what the scan then says about the same photos keeps within the bound
    r = run_cli("scan", reals, "--model", out, "--out", tmp_path / "rows.jsonl", "-q")
    assert r.returncode in (0, 1), r.stderr
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == cal.folders[0].scored > 0
    assert sum(row["label"] == "fake" for row in ok) / len(ok) <= 0.05
    assert all(row["threshold"] == pytest.approx(card.threshold) for row in ok)


def test_in_place_calibration_restamps_exported_onnx(tiny_model, synth_small, tmp_path):
    from fakescan.export import export_onnx
    from fakescan.scanner.model import read_onnx_metadata

    model = tmp_path / "mine"
    shutil.copytree(tiny_model, model)
    export_onnx(model, parity=False)
    reals = _reals(synth_small, tmp_path)
    cal = calibrate(model, [reals], max_fpr=0.0)  # strictest: always tightens here
    assert cal.tightened and cal.folders[0].called_fake_after == 0.0
    meta = read_onnx_metadata(model / "model.onnx")
    assert meta["threshold"] == pytest.approx(ModelCard.load(model).threshold)
    assert meta["threshold"] == pytest.approx(cal.threshold)


def test_loose_bound_leaves_the_threshold_alone_and_dry_run_writes_nothing(
        tiny_model, synth_small, tmp_path):
    reals = _reals(synth_small, tmp_path)
    cal = calibrate(tiny_model, [reals], max_fpr=0.99, out=tmp_path / "same")
    assert not cal.tightened and cal.threshold == cal.threshold_before
    dry = calibrate(tiny_model, [reals], max_fpr=0.0, out=tmp_path / "never", dry_run=True)
    assert not (tmp_path / "never").exists() and dry.folders[0].scored > 0


def test_refuses_to_write_into_the_shipped_default_or_a_full_folder(tiny_model, tmp_path):
    (tmp_path / "reals").mkdir()
    with pytest.raises(UsageError, match="output folder"):
        calibrate(None, [tmp_path / "reals"], max_fpr=0.02)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(UsageError, match="not empty"):
        calibrate(tiny_model, [tmp_path / "reals"], max_fpr=0.02, out=tmp_path / "full")
    with pytest.raises(UsageError, match="could be scored"):
        calibrate(tiny_model, [tmp_path / "reals"], max_fpr=0.02, dry_run=True)
    r = run_cli("calibrate", tmp_path / "reals")  # the default, no --out: one clear line
    assert r.returncode == 2 and "output folder" in r.stderr and "Traceback" not in r.stderr


def test_eval_calibrates_on_a_real_only_set_only_with_a_bound(tiny_model, synth_small, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    ds = tmp_path / "reals_ds"
    shutil.copytree(synth_small / "train" / "real", ds / "real")
    r = run_cli("eval", model, "--data", ds, "--calibrate", "--out", tmp_path / "e1")
    assert r.returncode == 2 and "one class" in r.stderr, r.stderr  # not a silent 0.5
    r = run_cli("eval", model, "--data", ds, "--calibrate", "--max-fpr", "0.1",
                "--out", tmp_path / "e2", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["calibrated_now"] and ModelCard.load(model).threshold == pytest.approx(m["threshold"])
    assert m["valid"]["real_called_fake"] <= 0.1


def test_a_calibrated_copy_says_so_in_its_model_card(synth_small, tmp_path):
    from fakescan.store import DEFAULT_MODEL_DIR

    src = tmp_path / "default_copy"  # the shipped default with a threshold that must rise
    shutil.copytree(DEFAULT_MODEL_DIR, src)
    ModelCard.load(src).replace(threshold=0.0).save(src)
    reals = _reals(synth_small, tmp_path)
    cal = calibrate(src, [reals], max_fpr=0.0, out=tmp_path / "mine")
    assert cal.tightened and cal.folders[0].called_fake_after == 0.0
    text = (tmp_path / "mine" / "README.md").read_text()
    assert text.startswith((DEFAULT_MODEL_DIR / "README.md").read_text())
    assert f"threshold is {cal.threshold:.4f}" in text
    assert ModelCard.load(tmp_path / "mine").threshold == cal.threshold


def test_the_table_says_how_many_may_be_fake_and_when_a_folder_is_too_small(
        tiny_model, synth_small, tmp_path):
    reals = _reals(synth_small, tmp_path)
    n = len(list(reals.iterdir()))
    assert n < 74  # at 2%, a folder needs 74 photos before one of them may be called fake
    r = run_cli("calibrate", reals, "--model", tiny_model, "--max-fpr", "0.02", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "may be fake" in r.stdout
    assert f"none of its {n} photos may be called fake" in " ".join(r.stdout.split())
    assert "74 or more photos" in " ".join(r.stdout.split())
    r = run_cli("calibrate", reals, "--model", tiny_model, "--max-fpr", "0.5", "--dry-run",
                "--json")
    assert r.returncode == 0, r.stderr
    folder = json.loads(r.stdout)["folders"][0]
    assert folder["allowed"] == allowed_false_alarms(n, 0.5) > 0
