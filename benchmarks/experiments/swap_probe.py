"""Is there face-swap signal in a detector's features that its head does not use, or in
simple pixel statistics of the face against its surround? Linear probes, no training of the
network.

    python benchmarks/experiments/swap_probe.py [--model DIR] --work DIR [--json OUT]

1. The model (default: the shipped detector) scores every train/valid/test image of its
   training sources and the dev set as a scan does (its input size, both views averaged), and
   keeps, per image, pooled features of four depths (the outputs of blocks 4, 10 and 14, 40,
   112 and 192 channels, and the 1280-channel head input): the mean, the standard deviation,
   and the mean inside the central half of the frame minus the mean outside it (a face swap is
   made inside the face and blended at its edge); the head's 256 hidden units; and its logit
   margin (cached in ``--work``).
2. A logistic regression (standardised features, C in 0.001-0.1) per feature group, trained
   on DFDC's training split and measured on its validation split (the backbone fit the
   training images, so the probe learns on features that separate them better than new
   ones: hence also) a 5-fold cross-validation on DFDC's validation and test images pooled,
   folds grouped by ``pairs.csv`` (a fake and its real together).
3. Hand-made statistics of each 224 px DFDC crop (noise residual energy at three scales,
   Laplacian energy, YCbCr means and spreads, 8x8 JPEG-grid energy, each inside an ellipse
   over the face against a ring around it, and at its edge), alone and beside the logit.

The probes' figures are exploration: nothing here ships or sets a threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"
DFDC = "dfdc-faceswap-224"
BLOCKS = {4: "s40", 10: "s112", 14: "s192"}
WIDTHS = {"s40": 40, "s112": 112, "s192": 192, "f1280": 1280}
POOLS = ("mean", "std", "inner_minus_outer")


def pools(f):
    """Mean, spread and central-half-minus-rest mean of a (N, C, H, W) map, per channel."""
    _, _, h, w = f.shape
    h0, h1, w0, w1 = h // 4, h - h // 4, w // 4, w - w // 4
    inner_sum = f[:, :, h0:h1, w0:w1].sum((2, 3))
    inner = inner_sum / ((h1 - h0) * (w1 - w0))
    outer = (f.sum((2, 3)) - inner_sum) / (h * w - (h1 - h0) * (w1 - w0))
    return [f.mean((2, 3)), f.std((2, 3)), inner - outer]


def features(folder: Path, cache: Path) -> dict[str, np.ndarray]:
    if cache.exists():
        return dict(np.load(cache))
    import torch

    from fakescan.data.layouts import load_sources
    from fakescan.store import load_model
    from fakescan.train.data import ImageSamples, make_loader
    from fakescan.train.evaluate import known_samples, split_as_trained
    from fakescan.train.fit import _model_input

    lm = load_model(folder)
    card, net = lm.card, lm.model.net.eval()  # the network inside the two-view wrapper
    grab = {}
    for i, name in BLOCKS.items():
        net._blocks[i].register_forward_hook(
            lambda m, a, o, name=name: grab.__setitem__(name, o))

    def one_view(x):
        feat = net.features(x)
        hid = net.head[:4](net.pool(feat))  # flatten, dropout, linear, relu
        logit = net.head[4:](hid)
        parts = [p for name in BLOCKS.values() for p in pools(grab[name])] + pools(feat)
        return torch.cat(parts + [hid, (logit[:, 1] - logit[:, 0])[:, None]], 1)

    _, ds = split_as_trained(card)
    sets = {s: known_samples(ds.splits[s], card.labels, strict=True)
            for s in ("train", "valid", "test")}
    sets["dev"] = known_samples(load_sources([SHARED / "ood-ffhq-vs-stylegan2-dev"],
                                             ratios=None, min_classes=1).samples(),
                                card.labels, strict=False)
    out = {}
    with torch.inference_mode():
        for name, smp in sets.items():
            loader = make_loader(ImageSamples(smp, tuple(card.labels), card.preprocess), 64,
                                 shuffle=False, seed=0, workers=1, pin=False)
            feats, ys = [], []
            for x, y in loader:
                x = _model_input(x, torch.device("cpu"), card.preprocess)
                feats.append(((one_view(x) + one_view(torch.flip(x, dims=[3]))) / 2).numpy())
                ys.append(y.numpy())
            out[f"{name}_X"] = np.concatenate(feats).astype(np.float32)
            out[f"{name}_y"] = (np.concatenate(ys) != card.labels.index("real")).astype(int)
            out[f"{name}_source"] = np.array([s.source for s in smp])
            out[f"{name}_path"] = np.array([str(s.path) for s in smp])
            print(f"features: {name} {len(smp)} images", flush=True)
    np.savez(cache, **out)
    return out


def columns() -> dict[str, np.ndarray]:
    cols, off = {}, 0
    for name, width in WIDTHS.items():
        for pool in POOLS:
            cols[f"{name}.{pool}"] = np.arange(off, off + width)
            off += width
    cols["hidden"] = np.arange(off, off + 256)
    cols["logit"] = np.array([off + 256])
    return cols


def hand_made(path: str) -> list[float]:
    from PIL import Image
    from scipy import ndimage

    im = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    yy, xx = np.mgrid[0:224, 0:224]

    def ellipse(a, b):
        return ((xx - 112) / a) ** 2 + ((yy - 112) / b) ** 2

    inner = ellipse(60, 75) <= 1
    ring = (ellipse(60, 75) > 1.2) & (ellipse(100, 110) <= 1)
    edge = (ellipse(60, 75) > 0.8) & (ellipse(60, 75) <= 1.2)
    g = np.asarray(im, np.float32).mean(2)
    out = []
    for sigma in (0.5, 1.0, 2.0):
        r = g - ndimage.gaussian_filter(g, sigma)
        e_in, e_out = np.log(r[inner].var() + 1e-3), np.log(r[ring].var() + 1e-3)
        out += [e_in, e_out, e_in - e_out, np.log(np.abs(r[edge]).mean() + 1e-3)]
    lap = ndimage.laplace(g)
    out.append(np.log(lap[inner].var() + 1e-3) - np.log(lap[ring].var() + 1e-3))
    ycc = np.asarray(im.convert("YCbCr"), np.float32)
    for c in range(3):
        ch = ycc[..., c]
        out += [ch[inner].mean() - ch[ring].mean(),
                np.log(ch[inner].std() + 1e-3) - np.log(ch[ring].std() + 1e-3)]
    dx = np.abs(np.diff(g, axis=1))
    grid = np.arange(223) % 8 == 7

    def blockiness(mask):
        m = mask[:, :-1]
        return dx[:, grid][m[:, grid]].mean() / (dx[:, ~grid][m[:, ~grid]].mean() + 1e-3)

    out += [blockiness(inner), blockiness(ring), blockiness(inner) - blockiness(ring)]
    return out


def probe(xtr, ytr, xva, yva, xcv, ycv, gcv, c: float) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(x, y):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(x, y)

    out = {}
    if xtr is not None:
        out["valid_auc"] = float(roc_auc_score(yva, fit(xtr, ytr).decision_function(xva)))
    oof = np.zeros(len(ycv))
    for a, b in GroupKFold(5).split(xcv, ycv, gcv):
        oof[b] = fit(xcv[a], ycv[a]).decision_function(xcv[b])
    out["cv_auc"] = float(roc_auc_score(ycv, oof))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "fakescan" / "default_model")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    args.work.mkdir(parents=True, exist_ok=True)
    d = features(args.model, args.work / "probe_features.npz")
    cols = columns()
    partner = {os.path.basename(r["fake"]): os.path.basename(r["made_from_real"])
               for r in csv.DictReader(open(SHARED / DFDC / "pairs.csv"))}
    m = {s: d[f"{s}_source"] == DFDC for s in ("train", "valid", "test")}

    def part(split, idx):
        return d[f"{split}_X"][m[split]][:, idx]

    y = {s: d[f"{s}_y"][m[s]] for s in m}
    ycv = np.concatenate([y["valid"], y["test"]])
    paths_cv = np.concatenate([d["valid_path"][m["valid"]], d["test_path"][m["test"]]])
    gcv = np.array([partner.get(os.path.basename(p), os.path.basename(p)) for p in paths_cv])
    logit = cols["logit"][0]
    rows = [{"features": "the head's own logit (no probe)",
             "valid_auc": float(roc_auc_score(y["valid"], part("valid", logit))),
             "test_auc": float(roc_auc_score(y["test"], part("test", logit)))}]
    groups = {"logit": ["logit"], "hidden": ["hidden"]}
    groups.update({f"{n}.{p}": [f"{n}.{p}"] for n in ("f1280",) for p in POOLS})
    groups.update({n: [f"{n}.{p}" for p in POOLS] for n in ("s192", "s112", "s40")})
    groups["every inner_minus_outer"] = [f"{n}.inner_minus_outer" for n in WIDTHS]
    groups["everything"] = list(cols)
    for name, names in groups.items():
        idx = np.concatenate([cols[n] for n in names])
        xcv = np.concatenate([part("valid", idx), part("test", idx)])
        for c in (0.001, 0.01, 0.1):
            r = {"features": name, "C": c, **probe(part("train", idx), y["train"],
                                                   part("valid", idx), y["valid"], xcv, ycv,
                                                   gcv, c)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    hand = {s: np.array([hand_made(p) for p in d[f"{s}_path"][m[s]]]) for s in m}
    xcv = np.concatenate([hand["valid"], hand["test"]])
    for c in (0.01, 0.1, 1.0):
        r = {"features": "hand-made, inner against outer", "C": c,
             **probe(hand["train"], y["train"], hand["valid"], y["valid"], xcv, ycv, gcv, c)}
        rows.append(r)
        print(json.dumps(r), flush=True)
    lg = np.concatenate([part("valid", [logit]), part("test", [logit])])
    for name, x in (("logit alone (cross-validated)", lg),
                    ("logit + hand-made (cross-validated)", np.c_[xcv, lg])):
        r = {"features": name, "C": 0.1, **probe(None, None, None, None, x, ycv, gcv, 0.1)}
        rows.append(r)
        print(json.dumps(r), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        model = args.model.resolve()
        named = model.relative_to(REPO) if model.is_relative_to(REPO) else model
        args.json.write_text(json.dumps({"model": str(named), "rows": rows}, indent=1)
                             + "\n")


if __name__ == "__main__":
    main()
