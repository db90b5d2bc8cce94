"""Is FFHQ's framing what the default detector calls fake? Real faces of other sources, framed
the way FFHQ frames its photos, scored beside the same faces as they are.

    python benchmarks/experiments/ffhq_align.py --work DIR [--n 150] [--model MODEL] \
        [SOURCE_FOLDER ...]

For each real photo (the first ``--n`` of each folder, shuffled with seed 0, where MTCNN finds a
face): the face aligned as FFHQ aligns its photos (the quad built from the eyes and the mouth
by FFHQ's own recipe, Karras et al. 2019, with reflected borders; then the shared FFHQ
folders' central 800/1024 crop, 300 px bicubic, JPEG q90) and, as the control, the whole photo
brought to the same 300 px JPEG q90. Both sets go through the scan (``fakescan.scan``,
onnxruntime fp32, the model's threshold), and the script prints, per folder, the mean fake
score and the share called fake, as they are against aligned. Every StyleGAN2 fake the
detector learned from is FFHQ-framed and most of its real sources are not, so if framing
were a shortcut, aligned reals would score higher.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidates import SHARED  # noqa: E402

FOLDERS = (SHARED / "utkface-real", SHARED / "hard-fake-vs-real-faces" / "real")
SIZE, QUALITY, CENTRAL = 300, 90, 800 / 1024


def ffhq_quad(landmarks) -> np.ndarray:
    """FFHQ's crop quad (``ffhq-dataset/download_ffhq.py``) from MTCNN's five points (eyes,
    nose, mouth corners), shrunk to the shared folders' central 800/1024 crop."""
    el, er, _, ml, mr = np.asarray(landmarks, dtype=float)
    eye_avg, eye_to_eye = (el + er) / 2, er - el
    eye_to_mouth = (ml + mr) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / np.hypot(*x)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    x, y = x * CENTRAL, y * CENTRAL
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def make_pairs(folder: Path, n: int, out: Path) -> int:
    from fakescan.faces import detector

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    random.Random(0).shuffle(files)
    (out / "as_is").mkdir(parents=True, exist_ok=True)
    (out / "aligned").mkdir(parents=True, exist_ok=True)
    det, k = detector(), 0
    for f in files:
        if k >= n:
            break
        im = Image.open(f).convert("RGB")
        faces = det.detect(np.asarray(im))
        if not faces:
            continue
        pad = max(im.size)
        padded = Image.fromarray(np.pad(np.asarray(im), ((pad, pad), (pad, pad), (0, 0)),
                                        mode="reflect"))
        quad = tuple((ffhq_quad(faces[0].landmarks) + pad + 0.5).flatten())
        padded.transform((SIZE, SIZE), Image.QUAD, quad, Image.BICUBIC).save(
            out / "aligned" / f"{k:04d}.jpg", quality=QUALITY)
        im.resize((SIZE, SIZE), Image.BICUBIC).save(out / "as_is" / f"{k:04d}.jpg",
                                                    quality=QUALITY)
        k += 1
    return k


def scored(folder: Path, model: str | None) -> tuple[np.ndarray, float]:
    """The scan's fake scores of ``folder``'s files, in name order, and its threshold."""
    import fakescan

    rows = sorted(fakescan.scan([str(folder)], model, device="cpu", runtime="onnx",
                                precision="fp32"), key=lambda r: Path(r.path).name)
    return np.array([r.p_fake for r in rows]), rows[0].threshold


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="*", default=list(FOLDERS))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--model", help="a model folder (default: the shipped default)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {}
    for folder in args.folders:
        work = args.work / folder.parent.name / folder.name
        n = make_pairs(folder, args.n, work)
        row = {"faces": n}
        for variant in ("as_is", "aligned"):
            p, thr = scored(work / variant, args.model)
            row[variant] = {"mean_p_fake": float(p.mean()), "called_fake": float((p >= thr).mean())}
        res[str(folder.relative_to(SHARED) if folder.is_relative_to(SHARED) else folder)] = row
        print(folder.name, json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
