"""OpenVINO beside onnxruntime on the model stage of the shipped default (issue 22): the same
fp32 (and any int8 QDQ) ONNX files, OpenVINO in f32 and in bf16 (where the CPU has it), batch
32, one process, alternating, median of the passes; and each runner's verdicts against
onnxruntime fp32 on real images of every labelled source the default was trained on.

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
    ap.add_argument("--parity-per-source", type=int, default=200,
                    help="real images per labelled source for the verdict check")
    ap.add_argument("--int8", type=Path, action="append", default=[],
                    help="int8 files to time [default: the default's model_int8.onnx]")
    args = ap.parse_args()
    import openvino as ov

    from fakescan.bench import machine_info
    from fakescan.card import ModelCard
    from fakescan.export import export_onnx
    from fakescan.onnxrt import onnx_session
    from fakescan.quantize import decoded_inputs, labelled_sources, normalized
    from fakescan.store import DEFAULT_MODEL_DIR, versions

    card = ModelCard.load(DEFAULT_MODEL_DIR)
    sources = {k: v[:: max(1, len(v) // args.parity_per_source)][: args.parity_per_source]
               for k, v in labelled_sources(card, None).items()}
    real_x = {k: normalized(card, decoded_inputs(card, v)) for k, v in sources.items()}

    int8s = args.int8 or [DEFAULT_MODEL_DIR / "model_int8.onnx"]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (args.batch, 3, 224, 224)).astype(np.float32)
    core = ov.Core()
    out: dict = {"command": "python benchmarks/openvino_trial.py " + " ".join(sys.argv[1:]),
                 "machine": machine_info().to_dict(), "versions": {**versions(),
                                                         "openvino": ov.__version__},
                 "batch": args.batch, "images_per_s": {}, "max_abs_delta_probs": {},
                 "verdict_agreement_by_source": {}}
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
                for prec in ("f32", "bf16"):
                    try:
                        c = core.compile_model(str(path), "CPU", {
                            "PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": prec})
                    except Exception as e:  # noqa: BLE001 - a CPU without bf16 says so
                        print(f"openvino {name} {prec}: {e}", file=sys.stderr)
                        continue
                    req = c.create_infer_request()
                    runners[f"openvino {name} {prec} {hint.lower()}"] = (
                        lambda a, req=req: req.infer({0: a})[0])
        ref = runners["onnxruntime fp32"](x)

        def batched(fn, a):
            return np.concatenate([fn(a[i: i + args.batch]) for i in range(0, len(a),
                                                                          args.batch)])

        ref_real = {k: batched(runners["onnxruntime fp32"], v) for k, v in real_x.items()}
        for name, fn in runners.items():
            out["max_abs_delta_probs"][name] = float(np.abs(fn(x) - ref).max())
            out["verdict_agreement_by_source"][name] = {
                k: float((card.verdict(batched(fn, v)) == card.verdict(ref_real[k])).mean())
                for k, v in real_x.items()}
        for _ in range(2):  # two rounds, alternating, so drift hits every runner alike
            for name, fn in runners.items():
                out["images_per_s"].setdefault(name, []).append(_rate(fn, x))
    for name, v in out["images_per_s"].items():
        worst = min(out["verdict_agreement_by_source"][name].values())
        print(f"{name:36s} {statistics.median(v):8.1f} img/s  max|dprobs| vs ort fp32 "
              f"{out['max_abs_delta_probs'][name]:.2e}  worst source same verdict "
              f"{100 * worst:.2f}%")
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
