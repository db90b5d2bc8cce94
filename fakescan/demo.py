"""``fakescan demo``: the embedded default, end to end on synthetic data, in a few minutes.

synth -> train simplecnn -> eval -> export ONNX -> scan (torch, then onnx) -> bench, all under
one output folder, with a closing list of where everything landed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescan.scanner.summary import Summary


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and where it landed: ``steps`` is ``demo.json`` (``to_dict``), the
    properties read it."""

    steps: dict[str, Any]  # every step's own record
    scans: dict[str, Summary]  # runtime -> its scan

    def to_dict(self) -> dict[str, Any]:
        return self.steps

    seconds = property(lambda self: self.steps["seconds"])
    accuracy = property(lambda self: self.steps["eval"]["accuracy"])
    roc_auc = property(lambda self: self.steps["eval"]["roc_auc"])
    threshold = property(lambda self: self.steps["eval"]["threshold"])
    where = property(lambda self: self.steps["where"])  # what -> path(s)


def run_demo(out: Path, *, n: int = 2000, epochs: int = 6, bench_images: int = 64,
             log: Callable[[str], None] = print, console=None) -> DemoResult:
    from fakescan.bench import bench
    from fakescan.data.synth import make_synth
    from fakescan.export import export_onnx
    from fakescan.nets import get_arch
    from fakescan.scanner.driver import run_scan
    from fakescan.scanner.inputs import iter_inputs
    from fakescan.scanner.options import ScanOptions
    from fakescan.train.evaluate import evaluate
    from fakescan.train.fit import TrainConfig, train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    steps: dict[str, Any] = {}

    def step(name: str) -> None:
        log(f"[{time.perf_counter() - t0:5.0f} s] {name}")

    data, model = out / "data", out / "models" / "simplecnn_demo"
    step(f"1/6 synth: {n} labelled face images -> {data}")
    if not (data / "test").is_dir():
        make_synth(data, n=n, seed=0)
    step(f"2/6 train simplecnn ({epochs} epochs max) -> {model}")
    if not (model / "weights.safetensors").is_file() or not (model / "config.json").is_file():
        recipe = get_arch("simplecnn").recipe.replace(epochs=epochs)
        import shutil

        shutil.rmtree(model, ignore_errors=True)
        train(TrainConfig("simplecnn", data, model, recipe), console=console)
    step("3/6 eval on the test split")
    m = evaluate(str(model), data, split="test")
    steps["eval"] = {"accuracy": m.figures.accuracy, "roc_auc": m.figures.roc_auc,
                     "threshold": m.threshold}
    step("4/6 export to ONNX (with parity check)")
    rep = export_onnx(model)
    steps["export"] = rep.to_dict()
    if rep.parity is not None and not rep.parity.ok:
        from fakescan.errors import ModelError

        raise ModelError(f"ONNX parity check failed: {rep.parity}")
    scans: dict[str, Summary] = {}
    for rt in ("torch", "onnx"):
        step(f"5/6 scan {data / 'test'} with the {rt} runtime")
        dest = out / f"scan_{rt}.csv"
        s = run_scan(iter_inputs([str(data / "test")]), ScanOptions(model=str(model), runtime=rt),
                     out=str(dest), fmt="csv", overwrite=True)
        scans[rt] = s
    steps["scan"] = {rt: s.to_dict() for rt, s in scans.items()}
    step("6/6 bench (decode, model, end-to-end, naive) on cpu")
    res = bench(str(model), None, ["cpu"], ["torch", "onnx"], n_images=bench_images, repeats=2)
    bench_path = out / "bench.json"
    bench_path.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    steps["bench"] = {"json": str(bench_path), "results": res.to_dict()["results"]}
    steps["seconds"] = time.perf_counter() - t0
    steps["where"] = {
        "data": str(data), "model folder": str(model),
        "curves": [str(model / "loss.png"), str(model / "accuracy.png")],
        "eval": [str(model / f) for f in ("metrics.json", "confusion.png", "roc.png",
                                          "misclassified.csv", "misclassified.png")],
        "onnx": rep.path, "verdicts": [s.out for s in scans.values()],
        "bench": str(bench_path),
    }
    (out / "demo.json").write_text(json.dumps(steps, indent=2, default=str) + "\n")
    step("done")
    return DemoResult(steps, scans)
