"""Compare candidate default detectors and threshold policies from one scoring of each.

    python benchmarks/experiments/candidates.py NAME=MODEL_FOLDER ... [--json OUT]

Scores each model once, in float32 (the scores a scan's verdicts come from), on its training
sources' validation and test splits (split as trained) and on ``ood-ffhq-vs-stylegan2-dev``;
the scores are cached beside the weights (``candidate_scores.npz``). Then, for each threshold
policy, sets the threshold on the validation split exactly as training and ``eval
--calibrate`` do (``calibrate_threshold``, 5% in each real source) and prints one row: test
fakes detected and ROC-AUC by kind, test reals called fake (all, and each source), the dev
set's row, and the validation split's mean ROC-AUC per kind, the figure that ranks candidates.

Policies, by how many of a source's n validation reals the threshold may call fake:
``mean``, the product's since 2026-11-26 (``allowed_false_alarms``: k = floor(0.05 (n + 1) -
1/2), which keeps the *expected* share of new reals called fake at or under 5%: the threshold
sits midway between two scores, passed by a new real with probability (k + 1/2) / (n + 1) for
continuous scores); ``share``, the rule before it (k = floor(0.05 n): 5.05% expected on
ciplab's 108 validation reals, 5.2% on UTKFace's 200); and ``conformal``, k = floor(0.05 (n +
1)) - 1, under 5% whatever the scores ((k + 1) / (n + 1), split conformal prediction); and
``card``, the threshold the model's card records (a packed default as it ships: its threshold was
set on the float32 weights' scores, and float16 scores can put the rule's midpoint elsewhere in
the same gap).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import fakescan.train.metrics as metrics
from fakescan.card import ModelCard
from fakescan.data.kinds import source_kinds
from fakescan.data.layouts import load_sources
from fakescan.device import pick_device
from fakescan.store import load_model
from fakescan.train.evaluate import known_samples, score_samples, split_as_trained

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"
DEV = SHARED / "ood-ffhq-vs-stylegan2-dev"
BOUND = 0.05
KINDS = ("gan", "diffusion", "faceswap")


ALLOWED = {"share": lambda n, b: int(np.floor(b * n + 1e-9)),
           "mean": metrics.allowed_false_alarms,
           "conformal": lambda n, b: max(int(np.floor(b * (n + 1) + 1e-9)) - 1, 0)}


def threshold(s: dict[str, np.ndarray], pol: str, folder: Path) -> float:
    """``calibrate_threshold`` on the validation split, each source's reals allowed
    ``ALLOWED[pol](n, BOUND)`` false alarms; for ``card``, the card's own threshold."""
    if pol == "card":
        return float(ModelCard.load(folder).threshold)
    return metrics.calibrate_threshold(s["valid_y"], s["valid_score"], BOUND, s["valid_source"],
                                       allowed=ALLOWED[pol])


def on_cpu(folder: Path):
    """The model in ``folder`` on the CPU, the device, and its data split as it trained."""
    lm, dev = load_model(folder), pick_device("cpu")
    lm.model.to(dev)
    _, ds = split_as_trained(lm.card)
    return lm, dev, ds


def scores(folder: Path) -> dict[str, np.ndarray]:
    cache = folder / "candidate_scores.npz"
    if cache.exists():
        return dict(np.load(cache))
    lm, dev, ds = on_cpu(folder)
    card = lm.card
    kind_of = source_kinds(ds)
    out: dict[str, np.ndarray] = {}
    sets = {s: known_samples(ds.splits[s], card.labels, strict=True) for s in ("valid", "test")}
    sets["dev"] = known_samples(load_sources([DEV], ratios=None, min_classes=1).samples(),
                                card.labels, strict=False)
    for name, smp in sets.items():
        p, t, _ = score_samples(lm, smp, dev, None, 64, 2)  # dtype None: float32
        out[f"{name}_score"] = card.p_fake(p)
        out[f"{name}_y"] = (t != card.negative_index).astype(int)
        out[f"{name}_source"] = np.array([s.source for s in smp])
    out["kind_sources"] = np.array(list(kind_of))
    out["kind_names"] = np.array([kind_of[s] for s in kind_of])
    np.savez(cache, **out)
    return out


def row(name: str, s: dict[str, np.ndarray], pol: str, folder: Path) -> dict:
    kind_of = dict(zip(s["kind_sources"].tolist(), s["kind_names"].tolist(), strict=True))
    thr = threshold(s, pol, folder)
    test = metrics.per_kind(s["test_y"], s["test_score"], s["test_source"], kind_of, thr)
    valid = metrics.per_kind(s["valid_y"], s["valid_score"], s["valid_source"], kind_of, thr)
    by_src = metrics.per_source(s["test_y"], s["test_score"], s["test_source"], thr)
    dy, ds_ = s["dev_y"], s["dev_score"]
    return {
        "candidate": name, "policy": pol, "threshold": thr,
        "test": {k: test[k] for k in KINDS if k in test},
        "test_reals": test["real"],
        "test_reals_by_source": {k: v["real_called_fake"] for k, v in by_src.items()
                                 if v["real_called_fake"] is not None},
        "dev": {"fakes_detected": float((ds_[dy == 1] >= thr).mean()),
                "real_called_fake": float((ds_[dy == 0] >= thr).mean()),
                "roc_auc": metrics.roc_auc(dy, ds_)},
        "valid_mean_auc": float(np.mean([valid[k]["roc_auc"] for k in KINDS])),
        "valid_faceswap_auc": valid["faceswap"]["roc_auc"],
    }


def line(r: dict) -> str:
    t, rs, d = r["test"], r["test_reals"], r["dev"]
    kinds = " | ".join(f"{t[k]['fakes_detected']:.1%} ({t[k]['roc_auc']:.3f})" for k in KINDS)
    src = ", ".join(f"{k.split('-')[0]} {v:.1%}" for k, v in r["test_reals_by_source"].items())
    return (f"| {r['candidate']} | {r['policy']} | {r['threshold']:.3f} | {kinds} | "
            f"{rs['real_called_fake']:.1%} / {rs['worst_source_real_called_fake']:.1%} ({src}) | "
            f"{d['fakes_detected']:.0%} / {d['real_called_fake']:.0%} / {d['roc_auc']:.3f} | "
            f"{r['valid_mean_auc']:.4f} ({r['valid_faceswap_auc']:.3f}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="NAME=MODEL_FOLDER")
    ap.add_argument("--policies", default="mean,share,conformal",
                    help="comma-separated: mean, share, conformal, card")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    print("| candidate | policy | threshold | GAN found (AUC) | diffusion | face swaps | test "
          "reals all / worst (by source) | dev found / reals / AUC | valid mean AUC (swaps) |\n"
          "|---|---|---:|---:|---:|---:|---|---:|---:|")
    for spec in args.models:
        name, _, folder = spec.partition("=")
        s = scores(Path(folder))
        for pol in args.policies.split(","):
            rows.append(row(name, s, pol, Path(folder)))
            print(line(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
