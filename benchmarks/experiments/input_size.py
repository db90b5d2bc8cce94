"""The same weights scored at more pixels: a model folder carded at other input sizes and
views, each compared as a candidate default.

    python benchmarks/experiments/input_size.py [MODEL_FOLDER] --sizes 224,240,256,272 \
        --views one,flip --work DIR [--json OUT] [--bench OUT]

``MODEL_FOLDER`` (default: the shipped default) is copied into ``DIR/<size>_<views>`` with its
card's ``preprocess.input_size`` and ``arch_options.views`` changed, nothing else: the
network pools globally, so the same weights score any size. Each copy is then scored and
thresholded exactly as ``candidates.py`` scores a candidate (fp32; validation and test splits
as trained and ``ood-ffhq-vs-stylegan2-dev``; the threshold set on validation by the product's
rule), and ``paired_auc.py A=DIR/224_flip B=DIR/240_flip`` bootstraps any two of them.
``--bench OUT``: every copy's model stage and end-to-end speed (onnxruntime fp32 and OpenVINO
bf16 behind the verdict guard, ``fakescan.bench``) on the same 128 generated faces, one run.

Why it can pay: the ``cross_source`` recipe zooms in on every training image at random (a
window 0.55-1.25 of the frame, log-uniform: the middle of that range shows a face 1.2x larger
than the whole frame at the same input size does), so at 224 px a scan shows faces smaller
than training mostly did; a larger input brings them back to the size the network learned
(the train/test resolution discrepancy of Touvron et al., NeurIPS 2019, "FixRes").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidates import line, row, scores  # noqa: E402

from fakescan.card import ModelCard  # noqa: E402
from fakescan.store import DEFAULT_MODEL_DIR, WEIGHTS  # noqa: E402


def carded(src: Path, dest: Path, size: int, views: str) -> Path:
    """``src``'s weights under a card that scores ``size`` px with ``views``."""
    if not (dest / WEIGHTS).is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / WEIGHTS, dest / WEIGHTS)
    card = ModelCard.load(src)
    card.scoring_at(size).replace(arch_options={**card.arch_options, "views": views}).save(dest)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL_DIR)
    ap.add_argument("--sizes", default="224,240,256,272")
    ap.add_argument("--views", default="one,flip")
    ap.add_argument("--work", type=Path, required=True, help="where the carded copies go")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--bench", type=Path, help="also time every copy, one run; JSON here")
    args = ap.parse_args()
    rows, folders = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        for views in args.views.split(","):
            folder = carded(args.model, args.work / f"{size}_{views}", size, views)
            folders.append(folder)
            rows.append(row(f"{size} px, {views}", scores(folder), "mean", folder))
            print(line(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.bench:
        bench_all(folders, args.bench)
    return 0


def bench_all(folders: list[Path], out: Path) -> None:
    import tempfile

    from fakescan.bench import bench, make_bench_images

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        make_bench_images(images, 128, workers=2)
        for folder in folders:
            r = bench(str(folder), images, ["cpu"], ["onnx:fp32", "openvino:bf16"], n_images=128,
                      repeats=3, stages=("model", "end_to_end")).to_dict()
            res[folder.name] = r
            for x in r["results"]:
                print(f"{folder.name} {x['runtime']} {x['precision']} {x['stage']} "
                      f"{x['images_per_s_median']:.1f} img/s", flush=True)
    out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
