"""Peak memory of a scan against the number of inputs (SPEC: it must not grow with them).

    .venv/bin/python benchmarks/scan_memory.py --model models/simplecnn_synth [--work DIR]

Makes 2,000 small synthetic images, then scans a list of 2,000 paths and a list of 20,000
(every file listed ten times: each listing is an input and gets its row), each in a fresh
process, and prints the peak resident memory of each scan process (``ru_maxrss`` of the
largest waited-for process) and the ratio. Writes ``benchmarks/scan_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"scan failed ({p.returncode}): {p.stderr[-2000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the peak of the largest child waited for so far, so run
    # each measurement in its own python process.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, \
        time.perf_counter() - t0, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", default="/tmp/fakescan-memory")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:  # child mode: measure one scan
        lst, out = a.one
        mb, secs, _ = peak_rss_mb([sys.executable, "-m", "fakescan", "scan", "--files-from", lst,
                                   "--model", a.model, "--out", out, "--overwrite", "-q"])
        print(json.dumps({"peak_rss_mb": mb, "seconds": secs}))
        return
    work = Path(a.work)
    data = work / "images"
    if not data.is_dir():
        from fakescan.data.synth import make_synth

        make_synth(data, n=2000, seed=5, size_range=(96, 256))
    files = sorted(str(p) for p in data.rglob("*.*"))
    res = {}
    for n in (2000, 20000):
        lst = work / f"list_{n}.txt"
        with open(lst, "w") as f:
            for i in range(n):
                f.write(files[i % len(files)] + "\n")
        r = subprocess.run([sys.executable, __file__, "--model", a.model, "--one", str(lst),
                            str(work / f"out_{n}.csv")], capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        res[n] = json.loads(r.stdout)
        rows = sum(1 for _ in open(work / f"out_{n}.csv")) - 1
        res[n]["rows"] = rows
        print(f"{n:>6} inputs: peak RSS {res[n]['peak_rss_mb']:.0f} MB, {rows} rows, "
              f"{res[n]['seconds']:.0f} s", flush=True)
    ratio = res[20000]["peak_rss_mb"] / res[2000]["peak_rss_mb"]
    print(f"peak RSS 20,000 / 2,000 = {ratio:.3f}")
    out = {"model": a.model, "results": res, "ratio_20000_over_2000": ratio}
    Path(__file__).with_name("scan_memory.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
