"""Issue 7's experiment loop: train on the hard set, evaluate on its test split and the OOD set.

    python benchmarks/experiments/ood_sweep.py NAME [--seeds 0,1,2] -- TRAIN_ARGS...

Each seed trains ``fakescan train --data HARD --seed S TRAIN_ARGS`` into ``OUT/NAME-sS``, runs
``fakescan eval --ood OOD`` and appends one JSON line per seed to ``OUT/results.jsonl``
(test accuracy; OOD accuracy, ROC-AUC, real called fake, TPR at 5% FPR; training time). The
threshold is always the one calibrated on the hard set's validation split. The OOD set is only
read by ``eval``; nothing here chooses anything by it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
HARD = Path(os.environ.get("FAKESCAN_HARD", SHARED / "hard-fake-vs-real-faces"))
OOD = Path(os.environ.get("FAKESCAN_OOD", SHARED / "ood-ffhq-vs-stylegan2-dev"))


def run_one(name: str, seed: int, train_args: list[str], out: Path) -> dict:
    folder = out / f"{name}-s{seed}"
    t0 = time.time()
    subprocess.run(["fakescan", "train", "--data", str(HARD), "--out", str(folder),
                    "--seed", str(seed), *train_args], check=True, stdout=subprocess.DEVNULL)
    train_s = time.time() - t0
    subprocess.run(["fakescan", "eval", str(folder), "--data", str(HARD), "--ood", str(OOD)],
                   check=True, stdout=subprocess.DEVNULL)
    m = json.loads((folder / "metrics.json").read_text())
    o = m["ood"]
    return {
        "name": name, "seed": seed, "train_args": " ".join(train_args),
        "test_acc": m["accuracy"], "test_auc": m["roc_auc"],
        "ood_acc": o["accuracy"], "ood_auc": o["roc_auc"],
        "ood_real_called_fake": o["real_called_fake"], "ood_tpr_at_fpr_0.05": o["tpr_at_fpr_0.05"],
        "threshold": m["threshold"], "train_s": round(train_s, 1),
    }


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", type=Path, default=Path("/tmp/ood"))
    a = ap.parse_args(argv[:split])
    a.out.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in a.seeds.split(",")):
        row = run_one(a.name, seed, argv[split + 1:], a.out)
        with open(a.out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
