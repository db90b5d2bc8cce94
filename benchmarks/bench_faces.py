"""Scan throughput with the face stage beside the whole-image scan, in one run: the default
detector as shipped, and the same weights behind MTCNN face crops (``crop="face"``), on the
same real face photos.

    python benchmarks/bench_faces.py [--images DIR] [--n 64] [--json FILE]

(The face variant's verdicts mean nothing - its weights never saw face crops; throughput does
not depend on them.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=SHARED / "ood-ffhq-vs-stylegan2-dev")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--runtime", default="onnx",
                    help="RUNTIME or RUNTIME:PRECISION, e.g. onnx:int8")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "bench_faces_cpu.json")
    args = ap.parse_args()
    from fakescan.bench import bench, machine_info
    from fakescan.card import ModelCard
    from fakescan.store import DEFAULT_MODEL_DIR, versions

    with tempfile.TemporaryDirectory() as tmp:
        face = Path(tmp) / "default_face_crops"
        shutil.copytree(DEFAULT_MODEL_DIR, face)
        card = ModelCard.load(face)
        card.replace(name="default_face_crops", preprocess=dataclasses.replace(
            card.preprocess, crop="face")).save(face)
        results = []
        for model in (str(DEFAULT_MODEL_DIR), str(face)):
            r = bench(model, args.images, ["cpu"], [args.runtime], n_images=args.n,
                      stages=("decode", "model", "end_to_end"),
                      log=lambda s: print(s, file=sys.stderr)).to_dict()
            for x in r["results"]:
                x["crop"] = "face" if model == str(face) else "none"
                results.append(x)
                print(json.dumps({k: x[k] for k in ("crop", "stage", "runtime",
                                                     "images_per_s_median")}), flush=True)
    args.json.write_text(json.dumps({
        "command": "python benchmarks/bench_faces.py " + " ".join(sys.argv[1:]),
        "machine": machine_info().to_dict(), "versions": versions(), "results": results},
        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
