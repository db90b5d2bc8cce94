"""How strict should the false-alarm bound be? Read off the leave-one-source-out folds.

    python benchmarks/experiments/threshold_policy.py /tmp/loso/effnet_pre [--bounds 0.01,0.02,0.05]

For every fold model ``RUN/without_SOURCE`` that ``loso.py`` trained, scores the training
sources' validation split and the held-out datasets once (cached in
``RUN/without_SOURCE/policy_scores.npz``), then, for each bound, calibrates the threshold
exactly as training does (``calibrate_threshold``: the most sensitive threshold that calls at
most that share of *each* training source's validation reals fake) and reports what that
threshold does on the source the fold never saw: real called fake, fakes detected, accuracy.

This is how the default detector's bound is chosen: on the visible sources, held out one at a
time, never on a set reported as held out elsewhere. Prints a markdown table; ``--json``
writes the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loso import HELD_OUT  # noqa: E402

from fakescan.data.layouts import load_sources, source_name  # noqa: E402
from fakescan.device import pick_device, pick_dtype  # noqa: E402
from fakescan.store import load_model  # noqa: E402
from fakescan.train.evaluate import known_samples, score_samples  # noqa: E402
from fakescan.train.metrics import calibrate_threshold  # noqa: E402


def scores(folder: Path, held_out: list[Path]) -> dict[str, np.ndarray]:
    """Validation scores of the training sources and the held-out datasets' scores."""
    cache = folder / "policy_scores.npz"
    if cache.exists():
        return dict(np.load(cache))
    lm = load_model(folder)
    card = lm.card
    dev = pick_device("cpu")
    dtype = pick_dtype(dev, "auto")
    lm.model.to(dev)
    d = card.data
    kept = tuple(d["classes_kept"]) if d.get("classes_kept") else None
    ds = load_sources([Path(s["path"]) for s in d["sources"]], ratios=tuple(d["ratios"]),
                      seed=d.get("seed", 0), classes=kept, min_classes=1)
    neg = card.negative_index
    vs = known_samples(ds.splits["valid"], lm.card.labels, strict=True)
    vp, vt, _ = score_samples(lm, vs, dev, dtype, 64, 2)
    out = {"valid_score": card.p_fake(vp), "valid_y": (vt != neg).astype(int),
           "valid_group": np.array([s.source for s in vs])}
    for path in held_out:
        smp = known_samples(load_sources([path], ratios=None, min_classes=1).samples(),
                            lm.card.labels, strict=False)
        p, t, _ = score_samples(lm, smp, dev, dtype, 64, 2)
        out[f"held_{source_name(path)}_score"] = card.p_fake(p)
        out[f"held_{source_name(path)}_y"] = (t != neg).astype(int)
    np.savez(cache, **out)
    return out


def at(threshold: float, score: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    called = score >= threshold
    real, fake = y == 0, y == 1
    return {"n": int(len(y)),
            "real_called_fake": float(called[real].mean()) if real.any() else None,
            "fakes_detected": float(called[fake].mean()) if fake.any() else None,
            "accuracy": float((called == fake).mean())}


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a loso.py output folder, e.g. /tmp/loso/effnet_pre")
    ap.add_argument("--bounds", default="0.01,0.02,0.05,0.1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    bounds = [float(b) for b in args.bounds.split(",")]
    rows = []
    for fold, held in HELD_OUT.items():
        folder = next(args.run.glob(f"without_{fold}*"), None)
        if folder is None or not (folder / "weights.safetensors").exists():
            print(f"# {fold}: no fold model in {args.run}", file=sys.stderr)
            continue
        s = scores(folder, held)
        for b in bounds:
            thr = calibrate_threshold(s["valid_y"], s["valid_score"], b, s["valid_group"])
            for path in held:
                name = source_name(path)
                rows.append({"held_out": fold, "dataset": name, "bound": b, "threshold": thr,
                             **at(thr, s[f"held_{name}_score"], s[f"held_{name}_y"])})
    print("| held out | dataset | bound | threshold | real called fake | fakes detected | "
          "accuracy |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['held_out']} | {r['dataset']} | {r['bound']:g} | {r['threshold']:.3f} | "
              f"{pct(r['real_called_fake'])} | {pct(r['fakes_detected'])} | "
              f"{r['accuracy']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
