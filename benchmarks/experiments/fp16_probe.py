"""How far float16 moves a model's scores, measured on a CPU with torch's float16 autocast (a
stand-in for the GPU's ``--precision fp16``, whose kernels differ): 800 images of DFDC and the
dev set (shuffled, seed 0), decoded by the reference path; the largest log-odds change within
2 of the threshold and anywhere, and the verdicts that turn.

    python benchmarks/experiments/fp16_probe.py [MODEL]
"""

from __future__ import annotations

import glob
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fakescan.imaging import resize_array
from fakescan.store import load_model

SHARED = Path(os.environ.get("FAKESCAN_SHARED", Path(__file__).resolve().parents[3] / "shared"))
FOLDERS = ("dfdc-faceswap-224", "ood-ffhq-vs-stylegan2-dev")


def margins(lm, x: np.ndarray, dtype) -> np.ndarray:
    pp = lm.card.preprocess
    mean, std = torch.tensor(pp.mean).view(1, 3, 1, 1), torch.tensor(pp.std).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(x), 32):
        b = (torch.from_numpy(x[i:i + 32]).float() / 255 - mean) / std
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = lm.model(b).float()
        out.append((logits[:, 1] - logits[:, 0]).numpy())
    return np.concatenate(out)


def main() -> int:
    lm = load_model(sys.argv[1] if len(sys.argv) > 1 else "default")
    lm.model.eval()
    files = sorted(f for d in FOLDERS for f in glob.glob(str(SHARED / "datasets" / d / "*/*.jpg")))
    random.Random(0).shuffle(files)
    x = np.stack([resize_array(Image.open(f).convert("RGB"), lm.card.preprocess)
                  for f in files[:800]])
    a, b = margins(lm, x, None), margins(lm, x, torch.float16)
    thr = np.log(lm.card.threshold / (1 - lm.card.threshold))
    d, near = np.abs(a - b), np.abs(a - thr) < 2
    print(f"fp16 against fp32 on {len(a)} images: log-odds change within 2 of the threshold "
          f"{d[near].max():.3f}, anywhere {d.max():.3f}, mean {d.mean():.4f}; verdicts turned "
          f"{int(((a >= thr) != (b >= thr)).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
