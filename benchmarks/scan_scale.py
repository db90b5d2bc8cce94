"""A million inputs through the real scan: memory, rows, time, and a kill -9 then --resume.

    .venv/bin/python benchmarks/scan_scale.py [--work DIR] [--sizes 20000,200000,1000000]
        [--list] [--kill] [--default N]

What breaks at scale (input enumeration, decode workers, the output writer, resume, the
summary, memory) does not depend on the model, so the scans use ``tinycnn`` (one conv, pool,
linear; random weights) on small JPEGs: the scan's own cost. Inputs: a tree of 1,000 folders of
hard links to ``--unique`` generated faces (every link a path of its own, so every input is a
distinct file to read, probe and decode); the first 20 / 200 / 1,000 folders give 20,000 /
200,000 / 1,000,000 inputs. Each scan runs in a fresh process; its peak RSS is the largest
``ru_maxrss`` of the processes it waited for (the scan, or one of its decode workers).

``--list``: 1,000,000 inputs as a list of the unique paths repeated (every listing gets its
row). ``--kill``: the 1,000,000-input scan killed with SIGKILL once ~60% of its rows are
written, then ``--resume``: how long resume takes to re-read the done rows (until its first
new row is written), and whether every input ends with exactly one row. ``--default N``: N
inputs with the shipped default detector, rows checked. Writes ``benchmarks/scan_scale.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PER_DIR = 1000
RESULTS: dict = {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def save() -> None:
    Path(__file__).with_name("scan_scale.json").write_text(json.dumps(RESULTS, indent=2) + "\n")


def make_inputs(work: Path, unique: int, total: int) -> tuple[list[str], Path]:
    import numpy as np

    from fakescan.data.synth import encode, render_face

    src = work / "unique"
    if not src.is_dir():
        src.mkdir(parents=True)
        for i in range(unique):
            rng = np.random.default_rng([11, i])
            w, h = (int(x) for x in rng.integers(40, 72, 2))
            (src / f"u{i:05d}.jpg").write_bytes(
                encode(render_face(rng, w, h, bool(i % 2)), "jpeg", 90))
    files = sorted(str(p) for p in src.iterdir())
    tree = work / "tree"
    if not (tree / f"d{(total - 1) // PER_DIR:04d}").is_dir():
        t0 = time.perf_counter()
        for k in range(total):
            d = tree / f"d{k // PER_DIR:04d}"
            if k % PER_DIR == 0:
                d.mkdir(parents=True, exist_ok=True)
            p = d / f"f{k % PER_DIR:04d}.jpg"
            if not p.exists():
                os.link(files[k % len(files)], p)
        log(f"made {total:,} links in {time.perf_counter() - t0:.0f} s")
    return files, tree


def count_rows(path: Path) -> tuple[int, int]:
    """(rows, distinct paths) of a CSV output."""
    paths = set()
    n = 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            n += 1
            paths.add(row["path"])
    return n, len(paths)


def measured(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh wrapper process; its peak RSS, seconds and exit status."""
    code = ("import json, resource, subprocess, sys, time\n"
            "t0 = time.perf_counter()\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,"
            " text=True)\n"
            "print(json.dumps({'rc': p.returncode, 'seconds': time.perf_counter() - t0,"
            " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,"
            " 'stderr': p.stderr[-1500:]}))\n")
    r = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    return json.loads(r.stdout)


def scan_cmd(model: str, inputs: list[str], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fakescan", "scan", *inputs, "--model", model, "--out",
            str(out), "-q", "--batch-size", "256", *extra]


def lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))


def kill_and_resume(model: str, tree: Path, total: int, out: Path, at: float) -> dict:
    cmd = scan_cmd(model, [str(tree)], out, "--overwrite")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None:
        time.sleep(2)
        if out.exists() and lines(out) - 1 >= at * total:
            break
    assert p.poll() is None, "the scan ended before it was killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_after = time.perf_counter() - t0
    size = out.stat().st_size
    done = lines(out) - 1
    log(f"killed after {killed_after:.0f} s with {done:,} rows written")
    t0 = time.perf_counter()
    p = subprocess.Popen(scan_cmd(model, [str(tree)], out, "--resume"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_new = None
    while p.poll() is None:
        if first_new is None and out.stat().st_size > size:
            first_new = time.perf_counter() - t0
        time.sleep(0.05 if first_new is None else 1)
    took = time.perf_counter() - t0
    err = p.stderr.read()
    rows, distinct = count_rows(out)
    return {"killed_after_s": round(killed_after, 1), "rows_when_killed": done,
            "resume_rc": p.returncode, "resume_first_new_row_s": first_new and round(first_new, 1),
            "resume_total_s": round(took, 1), "rows": rows, "distinct_paths": distinct,
            "stderr": err[-1000:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/fakescan-scale"))
    ap.add_argument("--sizes", default="20000,200000,1000000")
    ap.add_argument("--unique", type=int, default=1000)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--kill", action="store_true")
    ap.add_argument("--kill-at", type=float, default=0.6)
    ap.add_argument("--default", type=int, default=0, metavar="N")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    total = max(sizes + [a.default])
    a.work.mkdir(parents=True, exist_ok=True)
    prev = Path(__file__).with_name("scan_scale.json")
    if prev.is_file():
        RESULTS.update(json.loads(prev.read_text()))
    from fakescan.bench import machine_info, model_or_random
    from fakescan.store import versions

    RESULTS["machine"], RESULTS["versions"] = machine_info().to_dict(), versions()
    files, tree = make_inputs(a.work, a.unique, total)
    model_dir = a.work / "models" / "tinycnn"
    model = str(model_dir) if model_dir.is_dir() else model_or_random(
        "tinycnn", a.work / "models")[0]
    RESULTS.setdefault("tree", {})
    for n in sizes:
        dirs = [str(tree / f"d{k:04d}") for k in range(n // PER_DIR)]
        out = a.work / f"tree_{n}.csv"
        log(f"tree scan of {n:,} inputs ...")
        r = measured(scan_cmd(model, dirs, out, "--overwrite"))
        r["rows"], r["distinct_paths"] = count_rows(out)
        r["images_per_s"] = round(n / r["seconds"], 1)
        r["seconds"] = round(r["seconds"], 1)
        RESULTS["tree"][str(n)] = r
        log(f"  {json.dumps(r)[:400]}")
        save()
    t = RESULTS["tree"]
    if str(sizes[0]) in t and str(sizes[-1]) in t:
        RESULTS["rss_ratio_largest_over_smallest"] = round(
            t[str(sizes[-1])]["peak_rss_mb"] / t[str(sizes[0])]["peak_rss_mb"], 3)
    if a.list:
        lst = a.work / "list_1000000.txt"
        with open(lst, "w") as f:
            for k in range(1_000_000):
                f.write(files[k % len(files)] + "\n")
        out = a.work / "list.csv"
        log("list scan of 1,000,000 inputs (the unique paths repeated) ...")
        r = measured(scan_cmd(model, ["--files-from", str(lst)], out, "--overwrite"))
        r["rows"], r["distinct_paths"] = count_rows(out)
        r["images_per_s"] = round(1_000_000 / r["seconds"], 1)
        RESULTS["list_1000000"] = r
        log(f"  {json.dumps(r)[:400]}")
        save()
    if a.kill:
        log(f"kill -9 at {a.kill_at:.0%} of {total:,}, then --resume ...")
        RESULTS["kill_resume"] = kill_and_resume(model, tree, total, a.work / "killed.csv",
                                                 a.kill_at)
        log(f"  {json.dumps(RESULTS['kill_resume'])[:600]}")
        save()
    if a.default:
        dirs = [str(tree / f"d{k:04d}") for k in range(a.default // PER_DIR)]
        out = a.work / "default.csv"
        log(f"default-model scan of {a.default:,} inputs ...")
        r = measured([sys.executable, "-m", "fakescan", "scan", *dirs, "--out", str(out), "-q",
                      "--overwrite"])
        r["rows"], r["distinct_paths"] = count_rows(out)
        r["images_per_s"] = round(a.default / r["seconds"], 1)
        RESULTS[f"default_{a.default}"] = r
        log(f"  {json.dumps(r)[:400]}")
        save()


if __name__ == "__main__":
    main()
