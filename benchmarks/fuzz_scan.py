"""Fuzz the scan: mutate valid images of every supported format and kind, scan them with each
decoder through the real command line, and check that every input got exactly one row, that
no scan crashed or hung, and that nothing but the summary reached the terminal.

    python benchmarks/fuzz_scan.py --n 20000                 # both decoders, seed 0
    python benchmarks/fuzz_scan.py --n 2000 --seed 3 --decoders pil --keep /tmp/fuzz

The valid images are the test corpus's (``tests/corpus.py``: JPEG plain/grey/CMYK/EXIF-rotated/
progressive, PNG RGB/RGBA/palette/16-bit/grey, WebP plain/alpha/animated, GIF plain/animated,
BMP, TIFF 8/16-bit, 1x1, 3000x24); the mutations are ``tests/mutate.py``'s (bit and byte
flips, truncation at random and at structural boundaries, corrupted size/count/offset/palette
fields, swapped, duplicated and repeated chunks, absurd dimensions). The model is a simplecnn
with random weights (verdicts do not matter here, rows do). Results go to
``benchmarks/fuzz_scan.json`` (``--json``) and the summary is printed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.mutate import write_mutants  # noqa: E402


def scan_once(paths_dir: Path, model: str, decoder: str, out: Path, timeout_s: float,
              per_file_timeout: float) -> dict:
    """One ``fakescan scan`` of the folder with ``decoder``; the checks and the counts."""
    cmd = [sys.executable, "-m", "fakescan", "scan", str(paths_dir), "--model", model,
           "--decoder", decoder, "--device", "cpu", "--out", str(out), "--overwrite",
           "--timeout", str(per_file_timeout)]
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        hung, rc, stdout, stderr = False, r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        hung, rc = True, None
        stdout = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        stderr = (e.stderr or b"").decode("utf-8", "replace") if isinstance(e.stderr, bytes) \
            else (e.stderr or "")
    seconds = time.perf_counter() - t0
    rows = []
    if out.exists():
        with open(out, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.DictReader(f))
    return {"decoder": decoder, "rc": rc, "hung": hung, "seconds": round(seconds, 1),
            "rows": rows, "stdout": stdout, "stderr": stderr}


def check(files: list[str], res: dict) -> dict:
    """Exactly one row per input, none extra, a clean terminal; counts of every code."""
    paths = [r["path"] for r in res["rows"]]
    counts = collections.Counter(paths)
    missing = sorted(set(files) - set(counts))
    extra = sorted(set(counts) - set(files))
    dupes = sorted(p for p, c in counts.items() if c > 1)
    codes = collections.Counter(r["error_code"] or "ok" for r in res["rows"])
    noise = res["stderr"].strip()
    summary_only = "scan summary" in res["stdout"] and "Traceback" not in res["stdout"]
    crashed = res["rc"] not in (0, 1, 2)
    return {
        "decoder": res["decoder"], "files": len(files), "rows": len(paths),
        "missing": len(missing), "extra": len(extra), "duplicates": len(dupes),
        "scan_crashed": bool(crashed and not res["hung"]), "scan_hung": res["hung"],
        "exit_status": res["rc"], "seconds": res["seconds"],
        "rows_with_warning": sum(1 for r in res["rows"] if r.get("warning")),
        "codes": dict(sorted(codes.items())), "terminal_noise": noise[:500],
        "terminal_clean": not noise and summary_only,
        "ok": not (missing or extra or dupes or crashed or res["hung"] or noise
                   or not summary_only),
        "examples": {"missing": missing[:5], "duplicates": dupes[:5]},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="mutants to make and scan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--decoders", default="pil,dali")
    ap.add_argument("--per-file-timeout", type=float, default=30.0)
    ap.add_argument("--keep", type=Path, help="write the mutants here and keep them")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "fuzz_scan.json")
    args = ap.parse_args(argv)

    from fakescan.bench import model_or_random

    with tempfile.TemporaryDirectory(prefix="fakescan-fuzz-") as tmp:
        tmp = Path(tmp)
        root = args.keep or tmp / "mutants"
        t0 = time.perf_counter()
        files = write_mutants(root, args.n, args.seed)
        made = time.perf_counter() - t0
        print(f"{len(files)} mutants in {root} ({made:.0f} s)", flush=True)
        model, _ = model_or_random("simplecnn", tmp / "model")
        results = []
        for dec in args.decoders.split(","):
            res = scan_once(root, model, dec, tmp / f"rows_{dec}.csv",
                            timeout_s=max(600.0, 0.5 * len(files)),
                            per_file_timeout=args.per_file_timeout)
            c = check(files, res)
            results.append(c)
            print(json.dumps({k: v for k, v in c.items() if k != "examples"}), flush=True)
    record = {"command": "python benchmarks/fuzz_scan.py " + " ".join(argv or sys.argv[1:]),
              "n": args.n, "seed": args.seed, "results": results}
    from fakescan.bench import machine_info
    from fakescan.store import versions

    record["machine"] = machine_info().to_dict()
    record["versions"] = versions()
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    ok = all(r["ok"] for r in results)
    print(("PASS" if ok else "FAIL") + f": wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
