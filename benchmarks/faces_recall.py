"""Face detector recall and speed: the share of images with a face found, per folder of
``../shared/datasets/``, and on group photos made here (3 faces pasted into a larger
background at different scales), with milliseconds per image.

    python benchmarks/faces_recall.py [--per-folder N] [--json benchmarks/faces_recall.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared")) / "datasets"


def group_photos(n: int, seed: int = 0):
    """``n`` backgrounds (1000-1600 px) each holding 3 FFHQ faces of 60-320 px; with the
    true face squares."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    faces = sorted((SHARED / "ffhq-vs-stylegan2" / "real").iterdir())
    for i in range(n):
        w, h = int(rng.integers(1000, 1601)), int(rng.integers(700, 1101))
        bg = rng.integers(40, 200, 3)
        arr = np.clip(bg + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr)
        boxes = []
        for k in range(3):  # one face per third of the width, so they never overlap
            s = int(rng.integers(60, min(321, w // 3 - 10)))
            x = int(rng.integers(k * w // 3, (k + 1) * w // 3 - s))
            y = int(rng.integers(0, h - s))
            f = Image.open(faces[(3 * i + k) % len(faces)]).convert("RGB").resize((s, s))
            im.paste(f, (x, y))
            boxes.append((x, y, s))
        yield im, boxes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-folder", type=int, default=0, help="images per folder (0: all)")
    ap.add_argument("--groups", type=int, default=40)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "faces_recall.json")
    args = ap.parse_args()
    import torch
    from PIL import Image

    from fakescan.faces import DETECT_SIDE, MIN_FACE, detector

    torch.set_num_threads(1)  # as in a decode worker
    det = detector()
    det.detect(Image.new("RGB", (64, 64)))  # load and warm up
    results = []
    for folder in sorted(p for p in SHARED.glob("*/*") if p.is_dir()):
        files = sorted(folder.iterdir())
        if args.per_folder:
            files = files[:: max(1, len(files) // args.per_folder)][: args.per_folder]
        found, ms = 0, []
        for f in files:
            im = Image.open(f).convert("RGB")
            t0 = time.perf_counter()
            faces = det.detect(im)
            ms.append(1000 * (time.perf_counter() - t0))
            found += bool(faces)
        r = {"folder": f"{folder.parent.name}/{folder.name}", "images": len(files),
             "with_face": found, "recall": found / len(files),
             "ms_per_image_median": statistics.median(ms)}
        results.append(r)
        print(json.dumps(r), flush=True)
    hit, total, ms = 0, 0, []
    for im, boxes in group_photos(args.groups):
        t0 = time.perf_counter()
        faces = det.detect(im)
        ms.append(1000 * (time.perf_counter() - t0))
        for x, y, s in boxes:
            total += 1
            hit += any(abs((f.box[0] + f.box[2]) / 2 - (x + s / 2)) < 0.3 * s
                       and abs((f.box[1] + f.box[3]) / 2 - (y + s / 2)) < 0.3 * s
                       for f in faces)
    g = {"folder": "group photos (3 faces of 60-320 px in 1000-1600 px frames)",
         "images": args.groups, "faces": total, "faces_found": hit, "recall": hit / total,
         "ms_per_image_median": statistics.median(ms)}
    results.append(g)
    print(json.dumps(g), flush=True)
    from fakescan.bench import machine_info

    args.json.write_text(json.dumps({
        "command": "python benchmarks/faces_recall.py " + " ".join(sys.argv[1:]),
        "detector": {"name": "MTCNN (facenet-pytorch weights)", "detect_side": DETECT_SIDE,
                     "min_face": MIN_FACE, "threads": 1},
        "machine": machine_info().to_dict(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
