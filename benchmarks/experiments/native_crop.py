"""Experiment (issue 7): simplecnn on random 128 px crops of the 300 px images at native
resolution (no resize, so upsampling traces survive), scored as the mean over a 3x3 grid of
crops; threshold calibrated on the hard set's validation split.

    .venv/bin/python benchmarks/experiments/native_crop.py [none|highpass|highpass_norm]

Not a product path: scan and export resize the whole image. Results: benchmarks/README.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from fakescan.data.layouts import load_dataset
from fakescan.imaging import decode_rgb
from fakescan.nets import create_model
from fakescan.train.metrics import calibrate_threshold, roc_auc

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CROP, SIDE, OFFSETS = 128, 300, (0, 86, 172)


def load(samples):
    x = torch.stack([
        torch.from_numpy(np.asarray(decode_rgb(s.path).resize((SIDE, SIDE)))).permute(2, 0, 1)
        for s in samples])
    return x, torch.tensor([int(s.label == "fake") for s in samples])


def norm(x):
    return ((x.float() / 255 - 0.5) / 0.5).contiguous(memory_format=torch.channels_last)


def score(model, x):
    model.eval()
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, len(x), 32):
            xb = x[i:i + 32]
            ps = [torch.softmax(model(norm(xb[:, :, oy:oy + CROP, ox:ox + CROP])).float(), 1)[:, 1]
                  for oy in OFFSETS for ox in OFFSETS]
            out.append(torch.stack(ps).mean(0))
    return torch.cat(out).numpy()


def main(input_filter: str = "none", epochs: int = 10) -> None:
    torch.manual_seed(0)
    hard = load_dataset(SHARED / "hard-fake-vs-real-faces", ratios=(0.8, 0.1, 0.1), seed=0)
    ood = load_dataset(SHARED / "ood-ffhq-vs-stylegan2-dev", ratios=None)
    xtr, ytr = load(hard.splits["train"])
    model = create_model("simplecnn", num_classes=2, input_filter=input_filter)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    aug = v2.Compose([v2.RandomCrop(CROP), v2.RandomHorizontalFlip()])
    per_epoch = len(xtr) // 32
    step = 0
    for ep in range(epochs):
        model.train()
        perm, t0, total = torch.randperm(len(xtr)), time.time(), 0.0
        for i in range(0, per_epoch * 32, 32):
            idx = perm[i:i + 32]
            x = torch.stack([aug(xtr[j]) for j in idx])
            for g in opt.param_groups:  # one epoch of linear warm-up, as the recipe does
                g["lr"] = 1e-3 * min(1.0, (step + 1) / per_epoch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(norm(x)).float(), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            total += loss.item()
        print(f"epoch {ep + 1} loss {total / per_epoch:.4f} {time.time() - t0:.0f} s", flush=True)
    xva, yva = load(hard.splits["valid"])
    thr = calibrate_threshold(yva.numpy(), score(model, xva))
    for name, samples in (("test", hard.splits["test"]), ("ood", ood.samples())):
        x, y = load(samples)
        s, yy = score(model, x), y.numpy()
        pred = (s >= thr).astype(int)
        rcf = ((pred == 1) & (yy == 0)).sum() / max((yy == 0).sum(), 1)
        print(f"{name}: acc {(pred == yy).mean():.4f} auc {roc_auc(yy, s):.4f} "
              f"real_called_fake {rcf:.2f} (threshold {thr:.3f})")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["none"]))
