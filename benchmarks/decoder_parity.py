"""DALI against the reference decoder (Pillow) with a real detector, as a scan runs them: the
same folders scanned with ``--decoder pil``, ``--decoder dali --no-dali-guard`` (DALI's own
output) and ``--decoder dali`` (the guard: files scored near the threshold decoded again by
Pillow), everything else equal (``--runtime onnx --precision fp32``).

    python benchmarks/decoder_parity.py [--model MODEL] [--json benchmarks/decoder_parity_cpu.json]
        [FOLDER ...]

Per folder: verdicts that differ from Pillow's, the largest log-odds change (within 2 of the
threshold, and anywhere; scores kept 1e-3 away from 0 and 1, where the CSV's six decimals
say too little), ROC-AUC with each decoder (labels from ``real``/``fake`` folders), and the
share of files the guard decoded twice; and each scan's images/s by its own clock. On a
machine without a GPU, DALI runs its CPU operators (``device_id=None``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"
FOLDERS = ("ood-ffhq-vs-stylegan2-dev", "dfdc-faceswap-224", "ciplab-real-and-edited-160")
SCANS = {"pil": ["--decoder", "pil"], "dali_raw": ["--decoder", "dali", "--no-dali-guard"],
         "dali_guarded": ["--decoder", "dali"]}


def scan(folders: list[Path], flags: list[str], model: str | None, out: Path) -> dict:
    cmd = [sys.executable, "-m", "fakescan", "scan", *map(str, folders), *flags, "--runtime",
           "onnx", "--precision", "fp32", "--out", str(out), "--overwrite", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd + (["--model", model] if model else []), check=False,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    rows = {r["path"]: r for r in csv.DictReader(out.open())}
    return {"rows": rows, "seconds": seconds}


def compare(ref: dict, other: dict, folder: Path) -> dict:
    from sklearn.metrics import roc_auc_score

    from fakescan.scanner.runtimes import log_odds

    paths = [p for p, r in ref.items() if Path(p).is_relative_to(folder) and r["status"] == "ok"
             and other[p]["status"] == "ok"]
    a = np.array([float(ref[p]["p_fake"]) for p in paths])
    b = np.array([float(other[p]["p_fake"]) for p in paths])
    thr = float(ref[paths[0]]["threshold"])
    y = np.array([0 if "/real/" in p else 1 for p in paths])
    keep = (np.minimum(a, b) > 1e-3) & (np.maximum(a, b) < 1 - 1e-3)
    d = np.abs(log_odds(a[keep]) - log_odds(b[keep]))
    near = np.abs(log_odds(a[keep]) - log_odds(thr)) < 2
    return {"files": len(paths),
            "verdicts_differ": int(sum(ref[p]["label"] != other[p]["label"] for p in paths)),
            "max_logit_change_near_threshold": float(d[near].max()) if near.any() else None,
            "max_logit_change": float(d.max()) if d.size else None,
            "roc_auc": {"pil": float(roc_auc_score(y, a)), "other": float(roc_auc_score(y, b))}
            if 0 < y.sum() < len(y) else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="*",
                    default=[SHARED / f for f in FOLDERS])
    ap.add_argument("--model", help="a model folder (default: the shipped default)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "decoder_parity_cpu.json")
    args = ap.parse_args()
    from fakescan.bench import machine_info

    res: dict = {"command": "python benchmarks/decoder_parity.py " + " ".join(sys.argv[1:]),
                 "machine": machine_info().to_dict(), "scans": {}, "folders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        got = {name: scan(args.folders, flags, args.model, Path(tmp) / f"{name}.csv")
               for name, flags in SCANS.items()}
    n = sum(r["status"] == "ok" for r in got["pil"]["rows"].values())
    for name, g in got.items():
        res["scans"][name] = {"seconds": g["seconds"], "images_per_s": n / g["seconds"],
                              "dali_rows": sum(r["decoder"] == "dali"
                                               for r in g["rows"].values())}
    for folder in args.folders:
        res["folders"][folder.name] = {
            name: compare(got["pil"]["rows"], got[name]["rows"], folder)
            for name in ("dali_raw", "dali_guarded")}
        raw, guarded = got["dali_raw"]["rows"], got["dali_guarded"]["rows"]
        mine = [p for p in raw if Path(p).is_relative_to(folder)]
        res["folders"][folder.name]["dali_guarded"]["decoded_twice"] = sum(
            raw[p]["decoder"] == "dali" and guarded[p]["decoder"] == "pil" for p in mine)
    args.json.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("scans", "folders")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
