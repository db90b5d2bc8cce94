"""Train candidates for the default detector on a GPU node, side by side, in one command.

    python benchmarks/experiments/train_on_gpu.py --shared DIR --work DIR --out DIR \
        --minutes 6 --run lite0=effnet_lite0:7 --run lite2=effnet_lite2:7 [-- TRAIN FLAGS]

Each ``--run "NAME=ARCH:WORKERS[:RECIPE] [FLAGS]"`` (FLAGS: that run's own training flags, after
the shared ones) is ``make_default.py``'s training (the ``cross_source``
recipe on every labelled shared source, classes and sources sampled equally, 110 batches of
32 an epoch), with the epoch budget lifted and ``--max-minutes`` bounding the wall time
instead; the runs share the GPU and split the CPU cores between their loaders. Then each
model is evaluated (``fakescan eval --ood ood-ffhq-vs-stylegan2-dev --json``: its sources'
test splits by kind and by real source, and the held-out set), and its folder (less the
resume checkpoint) is packed into ``--out`` as ``NAME.tar.gz.*`` parts of under 16 MB, with
one log. Unpack here with ``cat NAME.tar.gz.* | tar xz``; ``make_default.py --from`` packs
the chosen one. The sources' paths in the cards are ``--shared``'s: link that path to
``../shared/datasets`` before packing, so the same files are found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_default import SOURCES, TRAIN_ARGS  # noqa: E402

PART = 15_000_000
OOD = "ood-ffhq-vs-stylegan2-dev"


def _train_args(extra: list[str]) -> list[str]:
    """make_default's flags, less its architecture and epoch budget (``extra`` may set one)."""
    args, skip = [], False
    for a in TRAIN_ARGS:
        if skip:
            skip = False
            continue
        if a in ("--epochs", "--model"):
            skip = True
            continue
        args.append(a)
    return args + (extra if "--epochs" in extra else ["--epochs", "1000", *extra])


def _pack(folder: Path, out: Path, name: str) -> list[str]:
    tgz = out / f"{name}.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.name.startswith("last."):
                tar.add(p, arcname=f"{name}/{p.relative_to(folder)}")
    data, parts = tgz.read_bytes(), []
    tgz.unlink()
    for k in range(0, len(data), PART):
        part = out / f"{name}.tar.gz.{k // PART:02d}"
        part.write_bytes(data[k: k + PART])
        parts.append(part.name)
    return parts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, required=True, help="the datasets folder")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, required=True, help="each run's --max-minutes")
    ap.add_argument("--run", action="append", required=True,
                    metavar="NAME=ARCH:WORKERS[:RECIPE] [FLAGS]")
    ap.add_argument("--sources", nargs="*", default=list(SOURCES))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-eval", action="store_true", help="evaluate elsewhere (device time)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    data = [x for s in args.sources for x in ("--data", str(args.shared / s))]
    log = open(args.out / "train_on_gpu.log", "w")  # noqa: SIM115
    summary: dict = {"minutes": args.minutes, "extra": extra, "runs": {}}

    def say(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    procs = {}
    for spec in args.run:
        head, *own = spec.split()
        name, rest = head.split("=", 1)
        arch, workers, *recipe = rest.split(":")
        cmd = [sys.executable, "-m", "fakescan", "train", *_train_args(extra), *own, *data,
               *(["--recipe", recipe[0]] if recipe else []),  # (the last --recipe counts)
               "--model", arch, "--workers", workers, "--device", args.device,
               "--max-minutes", str(args.minutes), "--out", str(args.work / name)]
        say(f"{name}: {' '.join(cmd[2:])}")
        f = open(args.work / f"{name}.log", "w")  # noqa: SIM115
        procs[name] = (subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                        env={**os.environ, "COLUMNS": "120"}), f,
                       time.monotonic())
    for name, (p, f, t0) in procs.items():
        rc = p.wait()
        f.close()
        summary["runs"][name] = {"train_rc": rc, "train_s": round(time.monotonic() - t0, 1)}
        say(f"{name}: train exited {rc} after {summary['runs'][name]['train_s']} s")
    for name, row in summary["runs"].items():
        folder = args.work / name
        if row["train_rc"] == 0 and not args.no_eval:
            t0 = time.monotonic()
            ood = [x for x in ("--ood", str(args.shared / OOD)) if (args.shared / OOD).is_dir()]
            ev = subprocess.run([sys.executable, "-m", "fakescan", "eval", str(folder), *ood,
                                 "--device", args.device, "--json"], capture_output=True,
                                text=True)
            row.update(eval_rc=ev.returncode, eval_s=round(time.monotonic() - t0, 1))
            (folder / "eval.json").write_text(ev.stdout)
            (folder / "eval.err").write_text(ev.stderr[-20000:])
            say(f"{name}: eval exited {ev.returncode} in {row['eval_s']} s")
        row["parts"] = _pack(folder, args.out, name) if folder.is_dir() else []
        text = (args.work / f"{name}.log").read_text(errors="replace")
        log.write(f"\n===== {name}.log (last 6000 chars) =====\n{text[-6000:]}\n")
    json.dump(summary, log, indent=1)
    log.close()
    return 0 if all(r["train_rc"] == 0 and r.get("eval_rc", 0) == 0
                    for r in summary["runs"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
