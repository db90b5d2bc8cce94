"""Leave-one-source-out: train on every visible source but one, evaluate on the one left out.

    python benchmarks/experiments/loso.py NAME [--folds hard,ffhq,utkface,ciplab] -- TRAIN_ARGS
    python benchmarks/experiments/loso.py --table OUT/NAME/results.jsonl ...   # markdown

e.g. (the table in benchmarks/README.md, pretrained and from scratch):

    python benchmarks/experiments/loso.py effnet_pre -- --model effnet_lite0 --recipe cross_source
    python benchmarks/experiments/loso.py effnet_scratch -- --model effnet_lite0 \\
        --recipe cross_source --no-pretrained

Sources (``../shared/datasets/``; the two FFHQ-vs-StyleGAN2 folders are one source):
``hard`` (Unsplash reals + StyleGAN2 fakes), ``ffhq`` (FFHQ reals + StyleGAN2 fakes;
``ood-ffhq-vs-stylegan2-dev`` is only ever evaluated), ``utkface`` (real only), ``ciplab``
(reals + hand-edited composites; training keeps its reals only, ``--class real --class
fake``; evaluation counts its edited faces as fakes). Every fold appends one JSON line to
``OUT/NAME/results.jsonl``: the held-out datasets' rows (accuracy, ROC-AUC, real called fake,
fakes detected, TPR at 5% FPR) at the threshold calibrated on the training sources'
validation split, and the training time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("FAKESCAN_SHARED", Path(__file__).resolve().parents[3] / "shared"))
D = SHARED / "datasets"
TRAIN = {  # source -> datasets that may be trained on
    "hard": [D / "hard-fake-vs-real-faces"],
    "ffhq": [D / "ffhq-vs-stylegan2"],
    "utkface": [D / "utkface-real"],
    "ciplab": [D / "ciplab-real-and-edited-160"],
}
HELD_OUT = {  # source -> datasets evaluated when it is left out
    "hard": [D / "hard-fake-vs-real-faces"],
    "ffhq": [D / "ffhq-vs-stylegan2", D / "ood-ffhq-vs-stylegan2-dev"],
    "utkface": [D / "utkface-real"],
    "ciplab": [D / "ciplab-real-and-edited-160"],
}


def fakescan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fakescan", *args], check=True)


def table(paths: list[Path]) -> str:
    """The markdown table of one or more results.jsonl files: a row per held-out dataset."""
    out = ["| run | held out | dataset | accuracy | ROC-AUC | real called fake | fakes "
           "detected | TPR@5%FPR | threshold |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]

    def f(v, pct=False):
        return "-" if v is None else (f"{100 * v:.1f}%" if pct else f"{v:.3f}")

    for path in paths:
        for line in path.read_text().splitlines():
            d = json.loads(line)
            for name, r in d["held_out_rows"].items():
                out.append(f"| {d['name']} | {d['held_out']} | {name} | {f(r['accuracy'])} | "
                           f"{f(r['roc_auc'])} | {f(r['real_called_fake'], True)} | "
                           f"{f(r['fakes_detected'], True)} | {f(r['tpr_at_fpr_0.05'])} | "
                           f"{d['threshold']:.3f} |")
    return "\n".join(out)


def main() -> int:
    if sys.argv[1:2] == ["--table"]:
        print(table([Path(p) for p in sys.argv[2:]]))
        return 0
    argv = sys.argv[1:]
    train_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--folds", default=",".join(TRAIN))
    ap.add_argument("--out", type=Path, default=Path("/tmp/loso"))
    args = ap.parse_args(argv)
    root = args.out / args.name
    root.mkdir(parents=True, exist_ok=True)
    for fold in args.folds.split(","):
        folder = root / f"without_{fold}"
        done = (folder / "config.json").exists() and "stopped_early" in json.loads(
            (folder / "config.json").read_text()).get("training", {})
        if not done:
            data = [str(p) for src, ps in TRAIN.items() if src != fold for p in ps]
            t0 = time.time()
            fakescan("train", *[x for p in data for x in ("--data", p)], "--class", "real",
                     "--class", "fake", "--out", str(folder), *train_args)
            seconds = time.time() - t0
        else:
            seconds = None
        fakescan("eval", str(folder), *[x for p in HELD_OUT[fold] for x in ("--ood", str(p))],
                 "--out", str(folder / "eval"))
        m = json.loads((folder / "eval" / "metrics.json").read_text())
        card = json.loads((folder / "config.json").read_text())
        line = {"name": args.name, "held_out": fold, "train_args": train_args,
                "train_seconds": seconds, "threshold": m["threshold"],
                "threshold_calibrated_on": m["threshold_calibrated_on"],
                "in_source_test": {k: m[k] for k in ("accuracy", "roc_auc")},
                "valid_by_source": card["metrics"]["valid"].get("by_source"),
                "held_out_rows": m["cross_source"], "worst": m["ood_worst"]}
        with open(root / "results.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
