"""Why end-to-end falls short of min(decode, model) on a GPU: each suspect removed in turn.

    python benchmarks/gpu_overlap.py --out DIR   (after gpu_session.py's images section)

For ResNet50 (random weights, batch 256) over the same files, end to end (the scan loop,
rows written) with: the product as it is; the model replaced by a stub that never touches
the GPU (is the pipeline itself fast enough?); nvJPEG's hardware-decoder share at 0 / 0.9 /
1 (do DALI's CUDA kernels compete with the model for the GPU?); and DALI alone running in a
thread beside the model alone (the GPU shared, no Python pipeline).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gpu_session as gs  # noqa: E402


def main() -> None:
    import numpy as np
    import torch

    from fakescan.bench import _decode_pass, _e2e_pass
    from fakescan.scanner.core import batched, build_core
    from fakescan.scanner.options import ScanOptions

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fakescan-gpu"))
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--unique", type=int, default=2048)
    ap.add_argument("--total", type=int, default=20_000)
    ap.add_argument("--other-batches", default="", help="comma list: end to end at these")
    ap.add_argument("--only-batches", action="store_true")
    args = ap.parse_args()
    args.other_batches = [int(x) for x in args.other_batches.split(",") if x]
    args.out.mkdir(parents=True, exist_ok=True)
    gs.images(args)
    ref = gs._resnet(args)
    paths = gs._paths(args, args.n)
    bs = args.batch_size
    res: dict = {}

    def save():
        (args.out / "gpu_overlap.json").write_text(json.dumps(res, indent=2) + "\n")

    csv = args.work / "overlap.csv"
    for b in args.other_batches:  # smaller model kernels leave DALI's kernels gaps to run in?
        for rt in ("torch", "onnx"):
            c = build_core(ScanOptions(model=ref, device=args.device, batch_size=b,
                                       runtime=rt, decoder="dali"), args.device)
            try:
                res[f"e2e_{rt}_bs{b}"] = gs.rate(lambda c=c, b=b: _e2e_pass(c, paths, b, csv),
                                                 len(paths))
            finally:
                c.decoder.close()
            gs.log(f"e2e {rt} bs {b}: {res[f'e2e_{rt}_bs{b}']}")
            save()
    if args.only_batches:
        return
    core = build_core(ScanOptions(model=ref, device=args.device, batch_size=bs,
                                  runtime="torch", decoder="dali"), args.device)
    try:
        for load in (None, 1.0, 0.0):
            core.decoder.hw_decoder_load = load
            core.decoder._pipe = None
            key = f"hw_load_{'default' if load is None else load}"
            res[key] = {
                "decode": gs.rate(lambda: _decode_pass(core, list(batched(paths, bs))),
                                  len(paths)),
                "end_to_end": gs.rate(lambda: _e2e_pass(core, paths, bs, csv), len(paths))}
            gs.log(f"{key}: {res[key]}")
            save()
        core.decoder.hw_decoder_load = None
        core.decoder._pipe = None
        real = core.runtime

        class Stub:
            precision, name, device = real.precision, "stub", real.device

            def __call__(self, images):
                return np.full((len(images), 2), 0.5, np.float32)
        core.runtime = Stub()
        res["e2e_model_stub"] = gs.rate(lambda: _e2e_pass(core, paths, bs, csv), len(paths))
        gs.log(f"model stub: {res['e2e_model_stub']}")
        core.runtime = real
        save()
        # DALI alone in a thread beside the model alone: the GPU shared, no Python pipeline
        blobs = [[np.fromfile(p, np.uint8) for p in b] for b in batched(paths, bs)]
        x = torch.randint(0, 256, (bs, 3, 224, 224), dtype=torch.uint8, device=args.device)
        for load in (None, 1.0):
            core.decoder.hw_decoder_load = load
            core.decoder._pipe = None
            core.decoder._run(blobs[0])
            stop = threading.Event()
            count = [0]

            def decode_loop(load=load, stop=stop, count=count):
                while not stop.is_set():
                    for b in blobs:
                        core.decoder._run(b)
                        count[0] += len(b)
                        if stop.is_set():
                            break
            t = threading.Thread(target=decode_loop)
            t0 = time.perf_counter()
            t.start()
            m = 0
            while time.perf_counter() - t0 < 5:
                real(x)
                m += bs
            stop.set()
            t.join()
            dt = time.perf_counter() - t0
            key = f"concurrent_hw_{'default' if load is None else load}"
            res[key] = {"dali_images_per_s": round(count[0] / dt, 1),
                        "model_images_per_s": round(m / dt, 1)}
            gs.log(f"{key}: {res[key]}")
            save()
    finally:
        core.decoder.close()


if __name__ == "__main__":
    main()
