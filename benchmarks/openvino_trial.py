"""OpenVINO beside onnxruntime on the model stage of the shipped default (issue 22): the same
fp32 and int8 (QDQ) ONNX files, batch 32, one process, alternating, median of the passes.

    pip install openvino   # not a dependency of fakescan: this trial decides whether it earns one
    python benchmarks/openvino_trial.py [--json benchmarks/openvino_trial.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _rate(fn, x, passes: int = 5, reps: int = 3) -> float:
    fn(x)
    rates = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(x)
        rates.append(reps * len(x) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "openvino_trial.json")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--int8", type=Path, action="append", default=[],
                    help="int8 files to time [default: the default's model_int8.onnx]")
    args = ap.parse_args()
    import openvino as ov

    from fakescan.bench import machine_info
    from fakescan.export import export_onnx
    from fakescan.onnxrt import onnx_session
    from fakescan.store import DEFAULT_MODEL_DIR, versions

    int8s = args.int8 or [DEFAULT_MODEL_DIR / "model_int8.onnx"]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (args.batch, 3, 224, 224)).astype(np.float32)
    core = ov.Core()
    out: dict = {"command": "python benchmarks/openvino_trial.py " + " ".join(sys.argv[1:]),
                 "machine": machine_info().to_dict(), "versions": {**versions(),
                                                         "openvino": ov.__version__},
                 "batch": args.batch, "images_per_s": {}, "max_abs_delta_probs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export_onnx(DEFAULT_MODEL_DIR, fp32, parity=False)
        runners = {}
        files = [("fp32", fp32)] + [(f"int8 {p.parent.name}/{p.name}", p) for p in int8s]
        for name, path in files:
            if not path.is_file():
                continue
            s = onnx_session(path, "cpu")
            runners[f"onnxruntime {name}"] = lambda a, s=s: s.run(["probs"], {"image": a})[0]
            for hint in ("LATENCY", "THROUGHPUT"):
                c = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": hint})
                req = c.create_infer_request()
                runners[f"openvino {name} {hint.lower()}"] = (
                    lambda a, req=req: req.infer({0: a})[0])
        ref = runners["onnxruntime fp32"](x)
        for name, fn in runners.items():
            out["max_abs_delta_probs"][name] = float(np.abs(fn(x) - ref).max())
        for _ in range(2):  # two rounds, alternating, so drift hits every runner alike
            for name, fn in runners.items():
                out["images_per_s"].setdefault(name, []).append(_rate(fn, x))
    for name, v in out["images_per_s"].items():
        print(f"{name:32s} {max(v):8.1f} img/s  max|dprobs| vs ort fp32 "
              f"{out['max_abs_delta_probs'][name]:.2e}")
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
