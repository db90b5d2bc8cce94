"""The ``--json`` outputs are an interface scripts read: their keys are pinned here, so a
refactor of the objects behind them cannot drop or rename one unnoticed (issue 23)."""

from __future__ import annotations

import json
import shutil

from tests.conftest import run_cli

KEYS = {
    "models": ["input_size", "name", "options", "params", "preprocess", "source",
               "trainable_params", "variant"],
    "stats": ["classes", "dataset", "layout", "rows", "split"],
    "dedup": ["dataset", "groups", "images", "max_distance", "summary", "unreadable"],
    "dedup.summary": ["duplicate_files", "exact_groups", "groups", "leaking_groups",
                      "near_groups", "unreadable"],
    "eval": ["accuracy", "average_precision", "by_kind", "calibrated_now", "confusion_matrix",
             "cross_source", "dataset", "details", "f1", "model", "ood", "ood_by_kind",
             "ood_worst", "precision", "recall", "roc_auc", "split", "threshold",
             "threshold_calibrated_on", "written_to"],
    "calibrate": ["calibrated_on", "folder", "folders", "max_fpr", "model", "threshold",
                  "threshold_before", "tightened"],
    "export": ["bytes", "opset", "parity", "path", "precision"],
    "export.parity": ["images", "max_abs_delta_p_fake", "ok", "tolerance",
                      "verdict_agreement"],
    "report": ["bytes", "error_codes", "errors", "fake", "models", "no_face", "ok", "path",
               "real", "rows", "scanned", "threshold", "thumbnails", "warnings"],
}


def _keys(name: str, *args) -> None:
    r = run_cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert sorted(d[0] if isinstance(d, list) else d) == KEYS[name], name
    for sub in ("summary", "parity"):
        if f"{name}.{sub}" in KEYS:
            assert sorted(d[sub]) == KEYS[f"{name}.{sub}"], f"{name}.{sub}"


def test_json_keys_of_every_command(tiny_model, synth_small, tmp_path):
    _keys("models", "models")
    _keys("stats", "data", "stats", synth_small)
    _keys("dedup", "data", "dedup", synth_small)
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    _keys("eval", "eval", model, "--data", synth_small, "--ood", synth_small / "test",
          "--out", tmp_path / "ev")
    _keys("calibrate", "calibrate", synth_small / "test" / "real", "--model", model,
          "--dry-run")
    _keys("export", "export", model)
    out = tmp_path / "v.csv"
    r = run_cli("scan", synth_small / "test", "--model", model, "--out", out)
    assert r.returncode in (0, 1), r.stderr
    _keys("report", "report", out, "--top", "2")
