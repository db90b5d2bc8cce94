"""The shipped default detector's throughput on this machine, every runtime beside the naive
baseline, and (``--old DIR``) a previous default measured in the same run on the same images.

    python benchmarks/bench_default.py [--old DIR] [--json benchmarks/bench_default_cpu.json]

``DIR`` is a default-model folder as an earlier commit shipped it, e.g.
``mkdir old && for f in config.json weights.safetensors; do git show REV:fakescan/default_model/$f
> old/$f; done``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="a previous default model folder")
    ap.add_argument("--n", type=int, default=128, help="generated images per pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "bench_default_cpu.json")
    args = ap.parse_args()
    from fakescan.bench import bench, make_bench_images
    from fakescan.store import DEFAULT_MODEL_DIR

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    out = {"command": "python benchmarks/bench_default.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        make_bench_images(images, args.n, workers=2)
        new = bench(str(DEFAULT_MODEL_DIR), images, ["cpu"], n_images=args.n,
                    repeats=args.repeats, log=log).to_dict()
        out.update(machine=new["machine"], versions=new["versions"], new=new)
        if args.old:
            out["old"] = bench(str(args.old), images, ["cpu"], ["torch", "onnx"],
                               n_images=args.n, repeats=args.repeats,
                               stages=("decode", "model", "end_to_end"), log=log).to_dict()
    for name in ("new", "old"):
        for r in out.get(name, {}).get("results", []):
            print(json.dumps({"model": name, **{k: r.get(k) for k in (
                "runtime", "precision", "stage", "images_per_s_median", "ratio_vs_naive",
                "ratio_vs_harmonic")}}))
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
