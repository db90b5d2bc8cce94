"""Would averaging the leave-one-source-out models help? Read off their cached scores.

    python benchmarks/experiments/loso_ensemble.py /tmp/loso pre,scratch pre,face pre,scratch,face

Needs ``threshold_policy.py`` run first on each ``/tmp/loso/effnet_NAME`` (it caches every fold
model's validation and held-out scores). An ensemble averages its members' logits of
``p_fake``; its threshold is calibrated as training does (<= 5% false alarms in each training
source's validation reals); the held-out rows are read at it. Nothing is trained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loso import HELD_OUT  # noqa: E402
from threshold_policy import at, pct  # noqa: E402

from fakescan.data.layouts import source_name  # noqa: E402
from fakescan.train.metrics import calibrate_threshold, roc_auc  # noqa: E402


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _mean(scores: list[np.ndarray]) -> np.ndarray:
    return 1 / (1 + np.exp(-np.mean([_logit(s) for s in scores], 0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="the loso.py output folder (holds effnet_NAME/)")
    ap.add_argument("combos", nargs="+", help="comma lists of run names without 'effnet_'")
    args = ap.parse_args()
    print("| members | held out | ROC-AUC | real called fake | fakes detected |\n"
          "|---|---|---:|---:|---:|")
    for combo in args.combos:
        names = combo.split(",")
        for fold, paths in HELD_OUT.items():
            runs = [dict(np.load(args.root / f"effnet_{n}" / f"without_{fold}" /
                                 "policy_scores.npz")) for n in names]
            first = runs[0]
            for r in runs[1:]:  # same samples in the same order, or the average means nothing
                assert (r["valid_y"] == first["valid_y"]).all()
            thr = calibrate_threshold(first["valid_y"], _mean([r["valid_score"] for r in runs]),
                                      0.05, first["valid_group"])
            for path in paths:
                name = source_name(path)
                y = first[f"held_{name}_y"]
                s = _mean([r[f"held_{name}_score"] for r in runs])
                r = at(thr, s, y)
                auc = "-" if y.min() == y.max() else f"{roc_auc(y, s):.3f}"
                print(f"| {' + '.join(names)} | {name} | {auc} | {pct(r['real_called_fake'])} | "
                      f"{pct(r['fakes_detected'])} |")


if __name__ == "__main__":
    main()
