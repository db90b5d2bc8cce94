"""Leave-one-source-out: train on every visible source but one, evaluate on the one left out;
and leave-one-kind-out: train without one kind of fake, evaluate on it.

    python benchmarks/experiments/loso.py NAME [--folds hard,ffhq,utkface,ciplab] -- TRAIN_ARGS
    python benchmarks/experiments/loso.py NAME --folds kind:faceswap,kind:diffusion -- ARGS
    python benchmarks/experiments/loso.py NAME --folds none --model DIR   # all kinds seen
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

Leave-one-kind-out folds (``kind:gan``, ``kind:diffusion``, ``kind:faceswap``) train on every
source (``sdfd`` diffusion portraits and ``dfdc`` face swaps included) with the fakes of one
kind taken out: a source left with reals only keeps them, through a manifest that carries the
source's own grouped split, so the test split is the same one every run is measured on. Each
fold is evaluated on the test split of every source (false alarms per real source, detection
per kind, ``by_kind``) and, whole, on the datasets of the kind left out.
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
ALL_SOURCES = [*(p for ps in TRAIN.values() for p in ps), D / "sdfd-stable-diffusion",
               D / "dfdc-faceswap-224"]
KIND_HELD_OUT = {  # kind -> datasets evaluated whole when that kind is left out
    "gan": [D / "ood-ffhq-vs-stylegan2-dev"],
    "diffusion": [D / "sdfd-stable-diffusion"],
    "faceswap": [],  # dfdc's fakes: its test split (its other fakes' reals were trained on)
}
HELD_OUT = {  # source -> datasets evaluated when it is left out
    "hard": [D / "hard-fake-vs-real-faces"],
    "ffhq": [D / "ffhq-vs-stylegan2", D / "ood-ffhq-vs-stylegan2-dev"],
    "utkface": [D / "utkface-real"],
    "ciplab": [D / "ciplab-real-and-edited-160"],
}


def fakescan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fakescan", *args], check=True)


def kind_manifests(kind: str, folder: Path) -> list[Path]:
    """Every source, as a manifest with its own split, less the fakes of ``kind`` (a source
    left with no image is dropped)."""
    import csv

    from fakescan.data.kinds import fake_kind
    from fakescan.data.layouts import load_dataset

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in ALL_SOURCES:
        ds = load_dataset(src, min_classes=1)
        rows = [(str(s.path.resolve()), s.label, split) for split, v in ds.splits.items()
                for s in v if not (s.label != "real" and fake_kind(src) == kind)]
        if not rows:
            continue
        m = folder / f"{src.name}.csv"
        with m.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "split"])
            w.writerows(rows)
        out.append(m)
    return out


def kind_fold(name: str, kind: str, root: Path, train_args: list[str]) -> dict:
    folder = root / f"without_{kind}"
    seconds = None
    if not (folder / "config.json").exists() or "stopped_early" not in json.loads(
            (folder / "config.json").read_text()).get("training", {}):
        data = kind_manifests(kind, root / f"manifests_without_{kind}")
        t0 = time.time()
        fakescan("train", *[x for p in data for x in ("--data", str(p))], "--class", "real",
                 "--class", "fake", "--out", str(folder), *train_args)
        seconds = time.time() - t0
    return evaluate_fold(name, f"kind:{kind}", folder, KIND_HELD_OUT[kind], train_args,
                         seconds)


def evaluate_fold(name: str, held_out: str, folder: Path, oods: list[Path],
                  train_args: list[str], seconds: float | None,
                  dest: Path | None = None) -> dict:
    """Every source's test split (by kind, by source) and ``oods`` whole, into ``dest``
    [default: the model folder's ``eval_all``]."""
    dest = dest or folder / "eval_all"
    fakescan("eval", str(folder), *[x for p in ALL_SOURCES for x in ("--data", str(p))],
             *[x for p in oods for x in ("--ood", str(p))], "--out", str(dest))
    m = json.loads((dest / "metrics.json").read_text())
    card = json.loads((folder / "config.json").read_text())
    return {"name": name, "held_out": held_out, "train_args": train_args,
            "train_seconds": seconds, "threshold": m["threshold"],
            "threshold_calibrated_on": m["threshold_calibrated_on"],
            "test_by_kind": m["by_kind"], "test_by_source": m["details"].get("by_source"),
            "valid_by_source": card["metrics"]["valid"].get("by_source"),
            "held_out_rows": m.get("cross_source", {}), "ood_by_kind": m.get("ood_by_kind")}


def kind_table(paths: list[Path]) -> str:
    """Leave-one-kind-out (and all-kinds) runs: detection per kind and false alarms per real
    source, on every source's test split, at each run's own threshold."""
    kinds = ("gan", "diffusion", "faceswap")
    out = ["| run | left out | GAN found | diffusion found | face swap found | face swap AUC "
           "| worst real source called fake | real called fake |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    for path in paths:
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if "test_by_kind" not in d:
                continue
            k = d["test_by_kind"]
            fs = k.get("faceswap", {})
            out.append(f"| {d['name']} | {d['held_out']} | "
                       + " | ".join(pct(k.get(x, {}).get("fakes_detected")) for x in kinds)
                       + f" | {fs.get('roc_auc', 0):.3f} | "
                       f"{pct(k['real']['worst_source_real_called_fake'])} | "
                       f"{pct(k['real']['real_called_fake'])} |")
    return "\n".join(out)


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
    if sys.argv[1:2] == ["--kind-table"]:
        print(kind_table([Path(p) for p in sys.argv[2:]]))
        return 0
    argv = sys.argv[1:]
    train_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--folds", default=",".join(TRAIN))
    ap.add_argument("--out", type=Path, default=Path("/tmp/loso"))
    ap.add_argument("--model", type=Path, help="fold 'none': a model trained on every kind "
                    "(e.g. fakescan/default_model), evaluated the same way")
    args = ap.parse_args(argv)
    root = args.out / args.name
    root.mkdir(parents=True, exist_ok=True)
    for fold in args.folds.split(","):
        if fold.startswith("kind:") or fold == "none":
            line = (kind_fold(args.name, fold[5:], root, train_args) if fold != "none" else
                    evaluate_fold(args.name, "none", args.model, [], train_args, None,
                                  root / "eval_all"))
            with open(root / "results.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
            print(json.dumps(line), flush=True)
            continue
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
