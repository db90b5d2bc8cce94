"""The Ray engine beside the local one on the same inputs, in one run: where the time goes.

    .venv/bin/python benchmarks/ray_vs_local.py [--n 5000] [--model ARCH_OR_FOLDER]
        [--address HOST:PORT] [--actors N]

Each scan is the command line (``fakescan scan``) in a fresh process; its output file is
watched while it runs, so each gets three figures: the time to its first row (process and
library start, Ray's start or join, actors and their model loads), the steady rate after that
(rows per second between the first row and the last), and the whole wall time. Without
``--address`` the Ray scan starts a local Ray. Writes ``benchmarks/ray_vs_local.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def watched(cmd: list[str], out: Path, n: int) -> dict:
    """Run ``cmd``; sample its output's row count over time."""
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    samples = []
    while p.poll() is None:
        time.sleep(0.1)
        if out.exists():
            with open(out, "rb") as f:
                rows = f.read().count(b"\n") - 1
            if rows > 0:
                samples.append((time.perf_counter() - t0, rows))
                first = first or samples[-1][0]
    wall = time.perf_counter() - t0
    with open(out, "rb") as f:
        rows = f.read().count(b"\n") - 1
    samples.append((wall, rows))
    steady = None
    if first is not None and wall > first:
        r0 = next(r for t, r in samples if t >= first)
        steady = (rows - r0) / (wall - first)
    return {"rc": p.returncode, "rows": rows, "wall_s": round(wall, 1),
            "first_row_s": first and round(first, 1),
            "steady_images_per_s": steady and round(steady, 1),
            "images_per_s_overall": round(rows / wall, 1), "stderr": p.stderr.read()[-800:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--model", default="simplecnn")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fakescan-rayvslocal"))
    ap.add_argument("--address", default=None)
    ap.add_argument("--actors", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    from fakescan.bench import machine_info, model_or_random
    from fakescan.data.synth import make_synth
    from fakescan.store import versions

    a.work.mkdir(parents=True, exist_ok=True)
    src = a.work / "synth"
    if not src.is_dir():
        make_synth(src, n=500, seed=4, size_range=(96, 256))
    files = sorted(p for p in src.rglob("*.*") if p.is_file())
    tree = a.work / f"inputs_{a.n}"
    if not tree.is_dir():
        for k in range(a.n):
            d = tree / f"d{k // 1000:03d}"
            d.mkdir(parents=True, exist_ok=True)
            os.link(files[k % len(files)], d / f"{k:06d}{files[k % len(files)].suffix}")
    model_dir = a.work / "models" / a.model
    model = str(model_dir) if model_dir.is_dir() else model_or_random(a.model,
                                                                      a.work / "models")[0]
    common = [sys.executable, "-m", "fakescan", "scan", str(tree), "--model", model,
              "--runtime", "torch", "--batch-size", str(a.batch_size), "-q"]
    res = {"machine": machine_info().to_dict(), "versions": versions(), "n": a.n, "model": a.model,
           "batch_size": a.batch_size}
    res["local"] = watched([*common, "--out", str(a.work / "local.csv")], a.work / "local.csv",
                           a.n)
    print("local", json.dumps(res["local"])[:300], flush=True)
    ray = [*common, "--out", str(a.work / "ray.csv"), "--engine", "ray"]
    if a.address:
        ray += ["--ray-address", a.address]
    if a.actors:
        ray += ["--ray-actors", str(a.actors)]
    res["ray"] = watched(ray, a.work / "ray.csv", a.n)
    print("ray", json.dumps(res["ray"])[:300], flush=True)
    Path(__file__).with_name("ray_vs_local.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
