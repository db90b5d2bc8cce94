"""Decoding an image file into the model's input: the reference path every decoder must match.

``decode_rgb`` opens a file (or bytes) with Pillow, applies EXIF orientation, takes the first
frame of animations, maps 16-bit and palette/alpha/CMYK/grey images to 8-bit RGB.
``resize_uint8`` resizes to the square input (bilinear, antialiased, no crop) and
``normalize`` maps uint8 to the float input with the model's mean/std. Training, the PIL scan
decoder and the export parity check all call these.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fakescan.config import Preprocess


def decode_rgb(src: str | Path | bytes) -> Image.Image:
    """Open ``src`` and return an 8-bit RGB image (EXIF-rotated, first frame)."""
    im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    im.seek(0)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16)
        if im.mode == "I":  # 32-bit ints: scale by the observed range's upper bound
            a = a >> max(0, int(a.max()).bit_length() - 8)
        else:
            a = a >> 8
        im = Image.fromarray(a.astype(np.uint8), "L")
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float32)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGB")


def resize_uint8(im: Image.Image, pp: Preprocess):
    """An RGB PIL image -> uint8 CHW tensor of ``pp.input_size`` squared."""
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    t = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)
    s = pp.input_size
    return F.resize(t, [s, s], interpolation=InterpolationMode.BILINEAR, antialias=True)


def load_uint8(src: str | Path | bytes, pp: Preprocess):
    """Decode and resize: the uint8 CHW tensor a model's normalisation is applied to."""
    return resize_uint8(decode_rgb(src), pp)


def normalize(x, pp: Preprocess, dtype=None):
    """uint8 NCHW (any device) -> float NCHW: ``(x / 255 - mean) / std``."""
    import torch

    dtype = dtype or torch.float32
    mean = torch.tensor(pp.mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pp.std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x.float() / 255.0 - mean) / std).to(dtype)
