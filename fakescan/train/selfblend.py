"""Self-blended pseudo-fakes (Shiohara & Yamasaki, CVPR 2022): face swaps without a swapper.

A face swap pastes one face's inner region onto another frame and blends the seam. A real
face blended back onto *itself* after a small change of colour, sharpness, scale or position
leaves the same traces (a blending boundary, a colour and frequency mismatch inside it) and
nothing else, so a detector trained on such images learns the traces every swapper leaves
instead of one swapper's look. ``--self-blend`` adds one pseudo-fake per training real whose
face the detector finds, as a source of fakes of its own (``self-blended``), sampled like any
other source; validation and test never hold one.

The mask is an ellipse fitted to MTCNN's five points (eyes, nose, mouth corners), its size
and shape jittered, softened with a Gaussian blur and scaled by a random blend ratio. Outside
the mask the image is unchanged, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torchvision.transforms import v2

from fakescan.train.pool import map_images

SELF_BLENDED = "self-blended"
Landmarks = tuple[tuple[float, float], ...]


def face_mask(h: int, w: int, landmarks: Landmarks, rng: np.random.Generator) -> np.ndarray:
    """An H x W float32 mask in [0, 1]: a soft ellipse over the face the five points span."""
    p = np.asarray(landmarks, dtype=np.float64)
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    iod = max(np.linalg.norm(p[1] - p[0]), 2.0)
    em = max(np.linalg.norm(mouth - eyes), 2.0)
    centre = eyes + (mouth - eyes) * rng.uniform(0.35, 0.6)
    ax = iod * rng.uniform(0.75, 1.1)  # half-width: from the inner face to the cheeks
    ay = em * rng.uniform(1.0, 1.45)  # half-height: brows to chin
    angle = math.atan2(p[1][1] - p[0][1], p[1][0] - p[0][0])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = math.cos(angle), math.sin(angle)
    u, v = (c * dx + s * dy) / ax, (-s * dx + c * dy) / ay
    hard = (u * u + v * v <= 1.0).astype(np.float32)
    sigma = float(max(1.0, rng.uniform(0.05, 0.2) * min(ax, ay)))
    k = 2 * math.ceil(2.5 * sigma) + 1  # the blur reaches 2.5 sigma: beyond it, exactly 0
    soft = v2.functional.gaussian_blur(torch.from_numpy(hard)[None], [k, k], [sigma, sigma])[0]
    soft = soft.numpy() * hard.max()
    soft[soft < 1e-3] = 0.0
    ratio = float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0]))
    return (soft / max(float(soft.max()), 1e-6) * ratio).astype(np.float32)


def _source(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The face to paste: ``x`` with its colour, sharpness, scale and position changed a
    little (uint8 C x H x W, same size)."""
    h, w = x.shape[-2:]
    y = x.float()
    y = y + torch.tensor(rng.uniform(-20, 20, 3), dtype=torch.float32)[:, None, None]
    y = (y - y.mean()) * rng.uniform(0.85, 1.15) + y.mean() + rng.uniform(-15, 15)
    y = y.clamp(0, 255).round().to(torch.uint8)
    if rng.random() < 0.5:
        y = v2.functional.adjust_hue(y, float(rng.uniform(-0.05, 0.05)))
    r = rng.random()
    if r < 0.35:
        y = v2.functional.gaussian_blur(y, [5, 5], [float(rng.uniform(0.5, 1.5))] * 2)
    elif r < 0.7:
        y = v2.functional.adjust_sharpness(y, float(rng.uniform(1.5, 4.0)))
    # a little larger (up to 8% per axis, independently) and shifted: the pasted face no
    # longer lines up with the frame (no padding: the window stays inside the enlarged image)
    sx, sy = rng.uniform(1.0, 1.08, 2)
    nh, nw = max(h, round(h * sy)), max(w, round(w * sx))
    y = v2.functional.resize(y, [nh, nw], antialias=True)
    top, left = int(rng.integers(0, nh - h + 1)), int(rng.integers(0, nw - w + 1))
    return y[..., top: top + h, left: left + w]


def self_blend(x: torch.Tensor, landmarks: Landmarks,
               rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """A pseudo-fake of the real face ``x`` (uint8 C x H x W) and the mask it was blended in."""
    h, w = x.shape[-2:]
    mask = face_mask(h, w, landmarks, rng)
    m = torch.from_numpy(mask)[None]
    out = _source(x, rng).float() * m + x.float() * (1 - m)
    out = out.round().to(torch.uint8)
    return torch.where(m > 0, out, x), mask


def _landmarks_of(a: np.ndarray) -> Landmarks | None:
    from fakescan.faces import detector

    faces = detector().detect(np.ascontiguousarray(a.transpose(1, 2, 0)))
    return faces[0].landmarks if faces else None


def find_landmarks(images: Sequence[torch.Tensor], workers: int = 2) -> list[Landmarks | None]:
    """MTCNN's five points of the largest-scoring face of each uint8 C x H x W image (None
    where no face is found), in a process pool."""
    return map_images(_landmarks_of, [t.numpy() for t in images], workers)
