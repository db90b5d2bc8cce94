"""Specialists behind one verdict: a whole-image detector and a face-swap detector, the file
called fake when either calls it fake (the most suspicious). Measured, nothing trained.

    python benchmarks/experiments/specialists.py --whole DIR --specialist DIR [--work DIR]
        [--json FILE]

Both models score the validation and test splits of every source the whole-image model was
trained on (split as its training split them: same ratios, seed, classes and groups) and
``ood-ffhq-vs-stylegan2-dev`` whole. The whole-image model keeps its own threshold; the
specialist's is calibrated on validation as training calibrates (the highest one whose
*combined* false alarms stay <= 5% of every source's validation reals, so the pair keeps the
product's false-alarm bound). Rows: each kind of fake found and its ROC-AUC (the combined
score is the larger of the two scores' margins over their thresholds), reals called fake
(all, worst source), and the held-out set; the whole-image model alone beside it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from fakescan.data.layouts import load_sources
from fakescan.device import pick_device, pick_dtype
from fakescan.store import load_model
from fakescan.train.evaluate import score_samples, split_as_trained
from fakescan.train.metrics import per_kind, roc_auc

SHARED = Path(os.environ.get("FAKESCAN_SHARED", Path(__file__).resolve().parents[3] /
                             "shared")) / "datasets"
OOD = "ood-ffhq-vs-stylegan2-dev"
MAX_FPR = 0.05


def _splits(card) -> dict[str, list]:
    _, ds = split_as_trained(card)
    ood = load_sources([SHARED / OOD], ratios=None, min_classes=1)
    kinds = {s["name"]: s["kind"] for s in card.data["sources"]}
    return {"valid": ds.splits["valid"], "test": ds.splits["test"],
            "ood": ood.samples()}, kinds


def _scores(model_dir: Path, sets: dict[str, list], work: Path) -> dict[str, np.ndarray]:
    cache = work / f"{model_dir.name}_scores.npz"
    if cache.exists():
        return dict(np.load(cache))
    lm = load_model(model_dir)
    dev = pick_device("cpu")
    dtype = pick_dtype(dev, "fp32")
    out = {}
    for name, samples in sets.items():
        probs, targets, _ = score_samples(lm, samples, dev, dtype, 64, 2)
        out[name] = lm.card.p_fake(probs)
    np.savez(cache, **out)
    return out


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _specialist_threshold(w_logit, s_logit, t_w, y, src) -> float:
    """The specialist's threshold, as a logit, beside the whole-image model's ``t_w``: the most
    sensitive one at which every source's validation reals are called fake by the pair at
    most ``MAX_FPR`` of the time (+inf: the specialist can call nothing within the bound)."""
    best = np.inf
    for v in sorted(set(s_logit[y == 0].tolist()), reverse=True):
        t = np.nextafter(v, np.inf)  # the reals scoring v stay real
        called = (w_logit >= t_w) | (s_logit >= t)
        if all(called[(y == 0) & (src == g)].mean() <= MAX_FPR
               for g in set(src[y == 0].tolist())):
            best = t
        else:
            break
    return float(best)


def _pair_thresholds(w_valid, s_valid, t_w0, y, src, kind) -> tuple[float, float]:
    """Both thresholds (logits), chosen on validation: the whole-image model's from its own
    threshold upwards (making room in the false-alarm bound for the specialist), the
    specialist's the most sensitive that keeps the bound; the pair that finds the most fakes,
    each kind weighing the same."""
    wl, sl = _logit(w_valid), _logit(s_valid)
    above = np.unique(wl[(y == 0) & (wl >= t_w0)])
    grid = [t_w0, *np.nextafter(above, np.inf)]
    best, best_found = (t_w0, np.inf), -1.0
    for t_w in grid:
        t_s = _specialist_threshold(wl, sl, t_w, y, src)
        called = (wl >= t_w) | (sl >= t_s)
        found = np.mean([called[(y == 1) & (kind == k)].mean()
                         for k in set(kind[y == 1].tolist())])
        if found > best_found:
            best, best_found = (float(t_w), t_s), found
    return best


def _row(name, y, src, kinds, score, thr, ood_y, ood_score) -> dict:
    pk = per_kind(y, score, src, kinds, thr)
    return {"design": name, "by_kind": pk,
            "ood": {"roc_auc": roc_auc(ood_y, ood_score),
                    "fakes_detected": float((ood_score[ood_y == 1] >= thr).mean()),
                    "real_called_fake": float((ood_score[ood_y == 0] >= thr).mean())}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--whole", type=Path, required=True)
    ap.add_argument("--specialist", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/specialists"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    whole = load_model(args.whole).card
    sets, kinds = _splits(whole)
    y = {k: np.array([s.label != "real" for s in v], int) for k, v in sets.items()}
    src = {k: np.array([s.source for s in v]) for k, v in sets.items()}
    w, s = _scores(args.whole, sets, args.work), _scores(args.specialist, sets, args.work)
    t_w = whole.threshold
    kind_valid = np.array([kinds.get(g, "other") for g in src["valid"]])
    tw2, t_s = _pair_thresholds(w["valid"], s["valid"], float(_logit(t_w)), y["valid"],
                                src["valid"], kind_valid)
    # the pair's score: the larger margin over its own threshold, in logits (>= 0: fake)
    both = {k: np.maximum(_logit(w[k]) - tw2, _logit(s[k]) - t_s) for k in sets}
    rows = [_row(f"whole image alone ({args.whole.name}, t={t_w:.3f})", y["test"], src["test"],
                 kinds, w["test"], t_w, y["ood"], w["ood"]),
            _row(f"whole (p>={1 / (1 + np.exp(-tw2)):.3f}) + face-swap specialist "
                 f"({args.specialist.name}, p>={1 / (1 + np.exp(-t_s)):.3f})",
                 y["test"], src["test"], kinds, both["test"], 0.0, y["ood"], both["ood"]),
            _row("specialist alone, same threshold", y["test"], src["test"], kinds,
                 _logit(s["test"]), t_s, y["ood"], _logit(s["ood"]))]
    print("| design | StyleGAN2 found (AUC) | diffusion found (AUC) | face swaps found (AUC) | "
          "reals called fake: all / worst | ood-dev: found / reals called fake / AUC |\n"
          "|---|---:|---:|---:|---:|---:|")
    for r in rows:
        k, o = r["by_kind"], r["ood"]
        cell = [f"{100 * k[n]['fakes_detected']:.1f}% ({k[n]['roc_auc']:.3f})"
                for n in ("gan", "diffusion", "faceswap")]
        print(f"| {r['design']} | {' | '.join(cell)} | "
              f"{100 * k['real']['real_called_fake']:.1f}% / "
              f"{100 * k['real']['worst_source_real_called_fake']:.1f}% | "
              f"{100 * o['fakes_detected']:.0f}% / {100 * o['real_called_fake']:.0f}% / "
              f"{o['roc_auc']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"whole": str(args.whole),
                                         "specialist": str(args.specialist),
                                         "whole_threshold_logit": tw2,
                                         "specialist_threshold_logit": t_s, "rows": rows},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
