"""Everything one GPU session measures, in one command (device time is short and costly).

    python benchmarks/gpu_session.py --out DIR [--real DIR] [--sections a,b,...]

Sections (each guarded: one that fails is recorded and the rest still run; results land in
``DIR/gpu_session.json`` after every section, so a run cut short keeps what it measured):

- ``env``: GPU, driver, torch/DALI/onnxruntime versions and providers.
- ``images``: ``--unique`` synthetic 256-600 px JPEG faces rendered on every core, hard-linked
  up to ``--total`` files (each link is a file the scan reads and decodes; the page cache
  holds the unique ones).
- ``stages``: each stage alone for ResNet50 (random weights): read + probe in the worker pool;
  DALI ``mixed`` decode + resize on pre-read bytes, output kept on the GPU or copied to the
  host; the model on a uint8 batch already on the GPU (the product's runtime, a plain
  ``.half()`` copy, the same under a CUDA graph); rows + CSV writes.
- ``bench``: ``fakescan bench`` (decode / model / end-to-end / naive in one run) for
  ``resnet_ft``, before (DALI output via the host) and after (kept on the GPU), the shipped
  default, and ``--real`` photos if given.
- ``scan``: ``fakescan scan`` over ``--total`` files from the command line, rows checked
  (one per input, no duplicates, all ``ok``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from functools import partialmethod
from pathlib import Path

RESULTS: dict = {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def save(out: Path) -> None:
    (out / "gpu_session.json").write_text(json.dumps(RESULTS, indent=2, default=str) + "\n")


def rate(fn, n_items: int, repeats: int = 3, sync=None) -> dict:
    """``fn`` warmed once, then timed ``repeats`` times: images per second (median, max)."""
    fn()
    if sync:
        sync()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        rates.append(n_items / (time.perf_counter() - t0))
    rates.sort()
    return {"images_per_s_median": round(rates[len(rates) // 2], 1),
            "images_per_s_max": round(rates[-1], 1)}


def env(args) -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpus": os.cpu_count()}
    try:
        import nvidia.dali as dali

        info["dali"] = dali.__version__
    except Exception as e:  # noqa: BLE001
        info["dali"] = f"missing: {e}"
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["ort_providers"] = ort.get_available_providers()
    except Exception as e:  # noqa: BLE001
        info["onnxruntime"] = f"missing: {e}"
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                          "clocks.max.sm", "--format=csv,noheader"], capture_output=True,
                         text=True)
    info["nvidia_smi"] = smi.stdout.strip()
    return info


def images(args) -> dict:
    from fakescan.bench import make_bench_images

    uniq, tree = args.work / "unique", args.work / "many"
    if tree.is_dir():  # an earlier call on this machine made them
        return {"reused": str(tree), "total": sum(1 for _ in tree.rglob("*.jpg"))}
    t0 = time.perf_counter()
    paths = make_bench_images(uniq, args.unique, workers=os.cpu_count() or 1)
    made = time.perf_counter() - t0
    for k in range(args.total):
        d = tree / f"{k // 1000:04d}"
        if k % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        os.link(paths[k % len(paths)], d / f"img_{k:07d}.jpg")
    sizes = [os.path.getsize(p) for p in paths]
    return {"unique": len(paths), "total": args.total, "render_s": round(made, 1),
            "mean_kb": round(sum(sizes) / len(sizes) / 1024, 1)}


def _resnet(args) -> str:
    if "resnet_dir" not in RESULTS:
        from fakescan.bench import model_or_random

        done = args.work / "models" / "resnet_ft"
        RESULTS["resnet_dir"] = str(done) if done.is_dir() else model_or_random(
            "resnet_ft", args.work / "models")[0]
    return RESULTS["resnet_dir"]


def _paths(args, n: int) -> list[str]:
    from fakescan.scanner.inputs import iter_inputs

    return [p for p, _ in zip(iter_inputs([str(args.work / "many")]), range(n), strict=False)]


def stages(args) -> dict:
    import numpy as np
    import torch

    from fakescan.scanner.core import batched, build_core
    from fakescan.scanner.decoders import probe_file
    from fakescan.scanner.options import ScanOptions
    from fakescan.scanner.output import Output

    res: dict = {}
    ref = _resnet(args)
    bs = args.batch_size
    paths = _paths(args, args.n_bench)
    batches = list(batched(paths, bs))
    core = build_core(ScanOptions(model=ref, device=args.device, batch_size=bs, runtime="torch",
                                  decoder="dali"), args.device)
    dec = core.decoder
    try:
        def probe_pass():
            return sum(len(o) for _, o in dec.outcome_batches(probe_file, iter(batches),
                                                              max(2, dec.workers)))
        res["read_probe_pool"] = rate(probe_pass, len(paths))
        log(f"  read+probe: {res['read_probe_pool']}")
        blobs = [[np.fromfile(p, np.uint8) for p in b] for b in batches]
        for on_device in (True, False):
            dec.on_device = on_device

            def dali_pass():
                for b in blobs:
                    dec._run(b)
            key = "dali_only_" + ("on_gpu" if on_device else "via_host")
            res[key] = rate(dali_pass, len(paths))
            log(f"  {key}: {res[key]}")
        dec.on_device = True
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
        for b in args.model_batches:
            x = torch.randint(0, 256, (b, 3, 224, 224), dtype=torch.uint8, device=args.device)
            xh = x.cpu().numpy()
            reps = max(1, args.model_images // b)
            row = {"runtime_gpu_input": rate(lambda x=x, reps=reps: [core.runtime(x)
                                                                      for _ in range(reps)],
                                             reps * b, sync=sync),
                   "runtime_host_input": rate(lambda xh=xh, reps=reps: [core.runtime(xh)
                                                                         for _ in range(reps)],
                                              reps * b, sync=sync)}
            half = core.runtime.model.half()
            from fakescan.imaging import normalize

            pp = core.sm.card.preprocess

            def run_half(x=x, reps=reps, half=half, pp=pp):
                with torch.inference_mode():
                    for _ in range(reps):
                        xx = normalize(x, pp, torch.float16).contiguous(
                            memory_format=torch.channels_last)
                        torch.softmax(half(xx).float(), 1)
            row["half_model"] = rate(run_half, reps * b, sync=sync)
            try:
                static = normalize(x, pp, torch.float16).contiguous(
                    memory_format=torch.channels_last)
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.inference_mode(), torch.cuda.stream(s):
                    for _ in range(3):
                        half(static)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.inference_mode(), torch.cuda.graph(g):
                    out = torch.softmax(half(static).float(), 1)

                def run_graph(reps=reps, g=g, out=out):
                    for _ in range(reps):
                        g.replay()
                    return out
                row["half_model_cuda_graph"] = rate(run_graph, reps * b, sync=sync)
            except Exception as e:  # noqa: BLE001
                row["half_model_cuda_graph"] = f"failed: {e}"
            core.runtime.model.float()
            res[f"model_bs{b}"] = row
            log(f"  model bs {b}: {row}")
        rows = [r for rs in (core.rows(dec.decode(b)) for b in batches[:4]) for r in rs]

        def write_pass():
            out = Output(str(args.work / "rows.csv"), "csv", core.sm.card.identity, overwrite=True)
            for _ in range(0, len(paths), bs):
                out.write(rows[: min(bs, len(rows))])
            out.close()
        res["rows_csv_write"] = rate(write_pass, len(paths))
        log(f"  rows write: {res['rows_csv_write']}")
    finally:
        dec.close()
    return res


def _bench(args, model, images, runtimes, n, bs, repeats=3, workers=None):
    from fakescan.bench import bench

    return bench(model, images, [args.device], runtimes, "auto", bs, n, repeats, workers,
                 log=log).to_dict()


def _summ(res: dict) -> list[dict]:
    keep = ("model", "runtime", "precision", "decoder", "stage", "images_per_s_median",
            "ratio_vs_naive", "ratio_vs_min_stage", "n_images", "batch_size")
    return [{k: r.get(k) for k in keep if k in r} for r in res["results"]]


def bench_section(args) -> dict:
    from fakescan.scanner.decoders import DaliDecoder

    out: dict = {}
    many = args.work / "many"
    ref = _resnet(args)
    for name, model, rts, imgs in [
        ("resnet_ft_after", ref, ["torch"], many),
        ("resnet_ft_onnx", ref, ["onnx"], many),
        ("default_model", "", ["torch"], many),
        ("resnet_ft_real", ref, ["torch"], args.real),
    ]:
        if imgs is None or (args.only_bench and name not in args.only_bench):
            continue
        n = args.n_bench if imgs == many else 100_000
        try:
            t0 = time.perf_counter()
            res = _bench(args, model, imgs, rts, n, args.batch_size)
            out[name] = {"summary": _summ(res), "seconds": round(time.perf_counter() - t0, 1)}
            (args.out / f"bench_{name}.json").write_text(json.dumps(res, indent=2) + "\n")
        except Exception:  # noqa: BLE001
            out[name] = {"error": traceback.format_exc()[-2000:]}
        log(f"  {name}: {json.dumps(out[name])[:1500]}")
        RESULTS["bench"] = out
        save(args.out)
    if not args.only_bench or "resnet_ft_before" in args.only_bench:
        orig = DaliDecoder.__init__
        DaliDecoder.__init__ = partialmethod(orig, on_device=False)  # the host round trip
        try:
            res = _bench(args, ref, many, ["torch"], args.n_bench, args.batch_size)
            out["resnet_ft_before"] = {"summary": _summ(res)}
            (args.out / "bench_resnet_ft_before.json").write_text(json.dumps(res, indent=2))
        except Exception:  # noqa: BLE001
            out["resnet_ft_before"] = {"error": traceback.format_exc()[-2000:]}
        finally:
            DaliDecoder.__init__ = orig
        log(f"  before: {out['resnet_ft_before']}")
    return out


def scan_section(args) -> dict:
    return {rt: _scan_cli(args, rt) for rt in args.scan_runtimes}


def _scan_cli(args, runtime: str) -> dict:
    import csv

    ref = _resnet(args)
    out_csv = args.work / f"scan_{runtime}.csv"
    cmd = [sys.executable, "-m", "fakescan", "scan", str(args.work / "many"), "--model", ref,
           "--device", args.device, "--runtime", runtime, "--batch-size", str(args.batch_size),
           "--out", str(out_csv), "--overwrite"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [x["path"] for x in rows]
    statuses: dict[str, int] = {}
    for x in rows:
        statuses[x["status"]] = statuses.get(x["status"], 0) + 1
    decoders: dict[str, int] = {}
    for x in rows:
        decoders[x["decoder"]] = decoders.get(x["decoder"], 0) + 1
    return {"cmd": " ".join(cmd[1:]), "rc": r.returncode, "wall_s": round(wall, 1),
            "images_per_s_incl_startup": round(len(rows) / wall, 1), "rows": len(rows),
            "unique_paths": len(set(paths)), "statuses": statuses, "decoders": decoders,
            "stderr_tail": r.stderr[-1500:], "stdout_tail": r.stdout[-1500:]}


SECTIONS = {"env": env, "images": images, "stages": stages, "bench": bench_section,
            "scan": scan_section}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fakescan-gpu"))
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--real", type=Path, default=None, help="a folder of real photos")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--only-bench", default="", help="comma list of bench configurations")
    ap.add_argument("--unique", type=int, default=2048)
    ap.add_argument("--total", type=int, default=20_000)
    ap.add_argument("--n-bench", type=int, default=8192)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--scan-runtimes", default="torch,onnx")
    ap.add_argument("--model-batches", default="64,128,256,512")
    ap.add_argument("--model-images", type=int, default=4096, help="images per model pass")
    args = ap.parse_args()
    args.scan_runtimes = args.scan_runtimes.split(",")
    args.model_batches = [int(x) for x in args.model_batches.split(",")]
    args.only_bench = [x for x in args.only_bench.split(",") if x]
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    prev = args.out / "gpu_session.json"
    if prev.is_file():
        RESULTS.update(json.loads(prev.read_text()))
    for name in args.sections.split(","):
        log(f"== {name}")
        t0 = time.perf_counter()
        try:
            RESULTS[name] = SECTIONS[name](args)
        except Exception:  # noqa: BLE001
            RESULTS[name] = {"error": traceback.format_exc()[-3000:]}
        log(f"   {name}: {time.perf_counter() - t0:.1f} s: "
            f"{json.dumps(RESULTS[name], default=str)[:3000]}")
        save(args.out)


if __name__ == "__main__":
    main()
