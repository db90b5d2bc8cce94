"""How much two candidate detectors differ in ROC-AUC on the same images, with a paired
bootstrap interval.

    python benchmarks/experiments/paired_auc.py A=MODEL_FOLDER B=MODEL_FOLDER [--n 2000]

Both are scored by ``candidates.py`` (its cached fp32 scores, made on first use). For each
set, B's ROC-AUC minus A's on the same images, and the 2.5% / 97.5% quantiles of that
difference over ``--n`` resamples of the images (fakes and reals drawn together, with
replacement): DFDC's face swaps against DFDC's reals, FFHQ's StyleGAN2 faces against FFHQ's
reals and the hard set, each on validation and test pooled, and ``ood-ffhq-vs-stylegan2-dev``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidates import scores  # noqa: E402

from fakescan.train.metrics import roc_auc  # noqa: E402

SETS = {"face swaps (DFDC, valid + test)": (("valid", "test"), "dfdc-faceswap-224"),
        "StyleGAN2 vs FFHQ (valid + test)": (("valid", "test"), "ffhq-vs-stylegan2"),
        "hard set (valid + test)": (("valid", "test"), "hard-fake-vs-real-faces"),
        "ood-ffhq-vs-stylegan2-dev": (("dev",), None)}


def pooled(s: dict, splits, source) -> tuple[np.ndarray, np.ndarray]:
    ys, ps = [], []
    for sp in splits:
        keep = np.ones(len(s[f"{sp}_y"]), bool) if source is None else s[f"{sp}_source"] == source
        ys.append(s[f"{sp}_y"][keep])
        ps.append(s[f"{sp}_score"][keep])
    return np.concatenate(ys), np.concatenate(ps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="NAME=MODEL_FOLDER")
    ap.add_argument("b", help="NAME=MODEL_FOLDER")
    ap.add_argument("--n", type=int, default=2000, help="bootstrap resamples")
    args = ap.parse_args()
    (na, _, fa), (nb, _, fb) = args.a.partition("="), args.b.partition("=")
    sa, sb = scores(Path(fa)), scores(Path(fb))
    rng = np.random.default_rng(0)
    print(f"| set (images) | {na} | {nb} | {nb} - {na} | 95% interval |\n|---|---:|---:|---:|---:|")
    for name, (splits, source) in SETS.items():
        y, pa = pooled(sa, splits, source)
        yb, pb = pooled(sb, splits, source)
        assert np.array_equal(y, yb), "the two candidates were scored on other images"
        diffs = []
        for _ in range(args.n):
            i = rng.integers(0, len(y), len(y))
            if y[i].min() != y[i].max():
                diffs.append(roc_auc(y[i], pb[i]) - roc_auc(y[i], pa[i]))
        a, b = roc_auc(y, pa), roc_auc(y, pb)
        lo, hi = np.quantile(diffs, [0.025, 0.975])
        print(f"| {name} ({len(y)}) | {a:.4f} | {b:.4f} | {b - a:+.4f} | {lo:+.4f} to {hi:+.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
