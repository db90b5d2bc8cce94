"""Parity of the bf16 fast paths that ship on CPUs, as a scan runs them, against onnxruntime
fp32: every image of every shared labelled folder (up to ``--cap`` per folder).

    python benchmarks/guard_parity.py [--cap 2000] [--json benchmarks/guard_parity_cpu.json]

For each runtime (``openvino`` bf16 and ``torch`` bf16, each alone and behind the
``VerdictGuard`` that ``make_runtime`` puts in front of it: the bf16 scores are computed once
and the guard's own rule, ``near_threshold``, says which of them fp32 replaces): verdict
agreement with fp32 per folder, ROC-AUC change, the largest score change (probability and
log-odds), and the share of images the guard scores twice; then, every folder pooled, what
each margin would re-score and which flips it would miss. Needs a CPU with bf16
(AVX512-BF16 or AMX); the shipped default detector.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"
FOLDERS = ("hard-fake-vs-real-faces", "ffhq-vs-stylegan2", "utkface-real",
           "ciplab-real-and-edited-160", "sdfd-stable-diffusion", "dfdc-faceswap-224",
           "ood-ffhq-vs-stylegan2-dev")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=int, default=2000, help="images per folder at most")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "guard_parity_cpu.json")
    args = ap.parse_args()
    from fakescan.bench import machine_info
    from fakescan.device import cpu_has_fast_bf16
    from fakescan.quantize import decoded_inputs, labelled_sources
    from fakescan.scanner.model import resolve_scan_model
    from fakescan.scanner.runtimes import (
        BF16_VERDICT_MARGIN,
        log_odds,
        make_runtime,
        near_threshold,
        openvino_installed,
    )
    from fakescan.store import versions
    from fakescan.train.metrics import roc_auc

    if not cpu_has_fast_bf16():
        print("this CPU has no fast bf16: nothing ships in bf16 here", file=sys.stderr)
        return 2
    sm = resolve_scan_model(None)
    card = sm.card
    t = card.threshold
    sources = labelled_sources(card, [SHARED / f for f in FOLDERS])
    exact = make_runtime(sm, "onnx", "cpu", "fp32")
    names = (["openvino"] if openvino_installed() else []) + ["torch"]
    guards = {name: make_runtime(sm, name, "cpu", "bf16", threshold=t) for name in names}
    out: dict = {"command": "python benchmarks/guard_parity.py " + " ".join(sys.argv[1:]),
                 "machine": machine_info().to_dict(), "versions": versions(),
                 "model": card.identity, "threshold": t, "margin": BF16_VERDICT_MARGIN,
                 "rows": []}

    def scores(rt, x: np.ndarray) -> np.ndarray:
        return card.p_fake(np.concatenate([rt(x[i: i + 32]) for i in range(0, len(x), 32)]))

    pooled: dict[str, list] = {"ref": [], **{name: [] for name in guards}}
    for folder, samples in sources.items():
        samples = samples[:: max(1, -(-len(samples) // args.cap))]
        x = decoded_inputs(card, samples)
        y = np.array([int(card.is_fake(s.label)) for s in samples])
        ref = scores(exact, x)
        pooled["ref"].append(ref)
        for name, guard in guards.items():  # make_runtime guards bf16 on a CPU
            fast = scores(guard.fast, x)  # bf16 alone, once; the guard's rule applied to it
            pooled[name].append(fast)
            near = near_threshold(fast, t, BF16_VERDICT_MARGIN)
            for guarded in (False, True):
                p = np.where(near, ref, fast) if guarded else fast
                both = len(set(y.tolist())) == 2
                row = {"folder": folder, "images": len(x), "runtime": name,
                       "guarded": guarded,
                       "verdict_agreement": float(((p >= t) == (ref >= t)).mean()),
                       "flips": int(((p >= t) != (ref >= t)).sum()),
                       "max_abs_delta_p": float(np.abs(p - ref).max()),
                       "max_abs_delta_logit": float(np.abs(log_odds(p) - log_odds(ref)).max()),
                       "roc_auc_delta": abs(roc_auc(y, p) - roc_auc(y, ref)) if both else None,
                       "rescored_share": float(near.mean()) if guarded else None}
                out["rows"].append(row)
                print(f"{folder:28s} {name:8s} {'guarded' if guarded else 'alone  '} "
                      f"{len(x):5d} images: verdicts {100 * row['verdict_agreement']:.2f}% "
                      f"({row['flips']} flips), max|dp| {row['max_abs_delta_p']:.3f}, "
                      f"max|dlogit| {row['max_abs_delta_logit']:.2f}"
                      + (f", rescored {100 * row['rescored_share']:.1f}%" if guarded else ""),
                      flush=True)
    # the margin's price and cover, every folder pooled: the share a margin scores twice and
    # the flips it would miss, in logit space (the guard's) and in probability (the old rule)
    ref = np.concatenate(pooled["ref"])
    for name in guards:
        fast = np.concatenate(pooled[name])
        flip = (fast >= t) != (ref >= t)
        # how far bf16 moves the log-odds of the scores where a verdict is at stake (fp32
        # within 2 of the threshold's), against anywhere
        dl = np.abs(log_odds(fast) - log_odds(ref))
        close = near_threshold(ref, t, 2.0)
        out.setdefault("logit_change", {})[name] = {
            "max_within_2_of_threshold": float(dl[close].max()) if close.any() else None,
            "p999_within_2_of_threshold": float(np.quantile(dl[close], 0.999))
            if close.any() else None,
            "images_within_2": int(close.sum()), "max_anywhere": float(dl.max())}
        print(f"{name}: log-odds change within 2 of the threshold max "
              f"{out['logit_change'][name]['max_within_2_of_threshold']:.2f} "
              f"({int(close.sum())} images), anywhere {dl.max():.2f}", flush=True)
        for space, margins in (("logit", (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)),
                               ("p", (0.1, 0.15, 0.2, 0.25))):
            for m in margins:
                near = (near_threshold(fast, t, m) if space == "logit"
                        else np.abs(fast - t) < m)
                row = {"runtime": name, "space": space, "margin": m, "images": len(ref),
                       "rescored_share": float(near.mean()),
                       "flips_missed": int((flip & ~near).sum()), "flips": int(flip.sum())}
                out.setdefault("margins", []).append(row)
                print(f"margin {space} {m:5.2f} {name:8s}: rescores "
                      f"{100 * row['rescored_share']:.1f}%, misses {row['flips_missed']} of "
                      f"{row['flips']} flips", flush=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
