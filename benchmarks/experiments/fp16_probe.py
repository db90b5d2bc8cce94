"""How far float16 moves a model's scores, measured on a CPU with torch's float16 autocast (a
stand-in for the GPU's ``--precision fp16``, whose kernels differ): 800 images of DFDC and the
dev set (shuffled, seed 0), scored as ``eval`` scores them (``score_samples``) in float32 and
in float16; the largest log-odds change within 2 of the threshold and anywhere, and the
verdicts that turn.

    python benchmarks/experiments/fp16_probe.py [MODEL]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidates import SHARED  # noqa: E402

from fakescan.data.layouts import load_sources  # noqa: E402
from fakescan.device import pick_device  # noqa: E402
from fakescan.scanner.runtimes import log_odds  # noqa: E402
from fakescan.store import load_model  # noqa: E402
from fakescan.train.evaluate import known_samples, score_samples  # noqa: E402

FOLDERS = ("dfdc-faceswap-224", "ood-ffhq-vs-stylegan2-dev")


def main() -> int:
    lm = load_model(sys.argv[1] if len(sys.argv) > 1 else "default")
    dev = pick_device("cpu")
    lm.model.to(dev)
    smp = known_samples(load_sources([SHARED / f for f in FOLDERS], ratios=None,
                                     min_classes=1).samples(), lm.card.labels, strict=False)
    smp = sorted(smp, key=lambda s: str(s.path))
    random.Random(0).shuffle(smp)
    smp = smp[:800]

    fake, real = lm.card.labels.index("fake"), lm.card.negative_index

    def margins(dtype) -> np.ndarray:  # log(p(fake) / p(real)), each column as it came
        p = score_samples(lm, smp, dev, dtype, 32, 2)[0].astype(np.float64)
        return np.log(p[:, fake]) - np.log(p[:, real])

    a, b = margins(None), margins(torch.float16)
    thr = log_odds(lm.card.threshold)
    d, near = np.abs(a - b), np.abs(a - thr) < 2
    print(f"fp16 against fp32 on {len(a)} images: log-odds change within 2 of the threshold "
          f"{d[near].max():.3f}, anywhere {d.max():.3f}, mean {d.mean():.4f}; verdicts turned "
          f"{int(((a >= thr) != (b >= thr)).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
