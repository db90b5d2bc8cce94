"""Candidate default detectors under everyday damage, per kind of fake and per real source.

    python benchmarks/experiments/damage.py NAME=MODEL_FOLDER ... [--dev] [--json OUT]

Scores each model once, in float32, on its training sources' validation and test splits
(split as trained) as they are and after JPEG q50, blur sigma 2, and downscaling to a half and
a quarter (``fakescan.train.robustness.Perturb``, the damages of ``eval --robustness``); the
scores are cached beside the weights (``damage_scores.npz``). Each model's threshold is set on
its undamaged validation scores by the product's rule (``allowed_false_alarms``, 5% in each
real source), as ``candidates.py`` sets it. Prints one line per split and damage: fakes found
and ROC-AUC per kind, their means, and the reals called fake, all and per source. ``--dev``
adds ``ood-ffhq-vs-stylegan2-dev`` under the same damages at the same threshold (fakes found,
reals called fake, ROC-AUC; cached in ``damage_dev_scores.npz``): a check, never a choice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import fakescan.train.metrics as metrics
from fakescan.data.kinds import source_kinds
from fakescan.train.evaluate import known_samples, score_samples
from fakescan.train.robustness import Perturb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidates import DEV, on_cpu  # noqa: E402

DAMAGES = {"none": None, "jpeg50": Perturb("jpeg", 50), "blur2": Perturb("blur", 2.0),
           "down05": Perturb("downscale", 0.5), "down025": Perturb("downscale", 0.25)}
KINDS = ("gan", "diffusion", "faceswap")


def _under_damage(lm, dev, smp, key: str) -> dict[str, np.ndarray]:
    """p_fake of ``smp`` under each damage (``KEY_DAMAGE``) and their labels (``KEY_y``, 1:
    fake)."""
    out: dict[str, np.ndarray] = {}
    for name, damage in DAMAGES.items():
        p, t, _ = score_samples(lm, smp, dev, None, 64, 2, perturb=damage)
        out[f"{key}_{name}"] = lm.card.p_fake(p)
    out[f"{key}_y"] = (t != lm.card.negative_index).astype(int)
    return out


def scores(folder: Path) -> dict[str, np.ndarray]:
    cache = folder / "damage_scores.npz"
    if cache.exists():
        return dict(np.load(cache))
    lm, dev, ds = on_cpu(folder)
    card = lm.card
    out: dict[str, np.ndarray] = {}
    for split in ("valid", "test"):
        smp = known_samples(ds.splits[split], card.labels, strict=True)
        out.update(_under_damage(lm, dev, smp, split))
        out[f"{split}_source"] = np.array([s.source for s in smp])
    kinds = source_kinds(ds)
    out["kind_sources"], out["kind_names"] = np.array(list(kinds)), np.array(list(kinds.values()))
    np.savez(cache, **out)
    return out


def dev_scores(folder: Path) -> dict[str, np.ndarray]:
    """The dev set's images under each damage (``_under_damage``, keys ``dev_*``)."""
    from fakescan.data.layouts import load_sources

    cache = folder / "damage_dev_scores.npz"
    if cache.exists():
        return dict(np.load(cache))
    lm, dev, _ = on_cpu(folder)
    smp = known_samples(load_sources([DEV], ratios=None, min_classes=1).samples(),
                        lm.card.labels, strict=False)
    out = _under_damage(lm, dev, smp, "dev")
    np.savez(cache, **out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="NAME=MODEL_FOLDER")
    ap.add_argument("--dev", action="store_true", help="also the dev set, as a check")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = {}
    for spec in args.models:
        name, _, folder = spec.partition("=")
        s = scores(Path(folder))
        kind_of = dict(zip(s["kind_sources"].tolist(), s["kind_names"].tolist(), strict=True))
        thr = metrics.calibrate_threshold(s["valid_y"], s["valid_none"], 0.05, s["valid_source"],
                                          allowed=metrics.allowed_false_alarms)
        print(f"## {name}: threshold {thr:.3f}")
        for split in ("valid", "test"):
            y, src = s[f"{split}_y"], s[f"{split}_source"]
            for damage in DAMAGES:
                sc = s[f"{split}_{damage}"]
                k = metrics.per_kind(y, sc, src, kind_of, thr)
                by_src = {x: float((sc[(y == 0) & (src == x)] >= thr).mean())
                          for x in sorted(set(src[y == 0].tolist()))}
                found = float(np.mean([k[x]["fakes_detected"] for x in KINDS]))
                auc = float(np.mean([k[x]["roc_auc"] for x in KINDS]))
                out[f"{name}|{split}|{damage}"] = {"threshold": thr, "kinds": k,
                                                   "mean_found": found, "mean_auc": auc,
                                                   "reals_by_source": by_src}
                print(f"{split:5s} {damage:8s} " + " ".join(
                    f"{x} {k[x]['fakes_detected']:.1%} ({k[x]['roc_auc']:.3f})" for x in KINDS)
                    + f" | mean found {found:.3f}, AUC {auc:.4f} | reals "
                    f"{k['real']['real_called_fake']:.1%}: "
                    + ", ".join(f"{a.split('-')[0]} {b:.1%}" for a, b in by_src.items()))
        if args.dev:
            d = dev_scores(Path(folder))
            y = d["dev_y"]
            for damage in DAMAGES:
                sc = d[f"dev_{damage}"]
                row = {"threshold": thr, "fakes_detected": float((sc[y == 1] >= thr).mean()),
                       "real_called_fake": float((sc[y == 0] >= thr).mean()),
                       "roc_auc": metrics.roc_auc(y, sc)}
                out[f"{name}|dev|{damage}"] = row
                print(f"dev   {damage:8s} found {row['fakes_detected']:.1%}, reals called fake "
                      f"{row['real_called_fake']:.1%}, ROC-AUC {row['roc_auc']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
