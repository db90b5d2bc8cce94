"""Decoding an image file into the model's input: the reference path every decoder must match.

``decode_rgb`` opens a file (or bytes) with Pillow, applies EXIF orientation, takes the first
frame of animations, maps 16-bit and palette/alpha/CMYK/grey images to 8-bit RGB.
``resize_array`` resizes to the square input (bilinear, antialiased, no crop) and
``normalize`` maps uint8 to the float input with the model's mean/std. Training, the PIL scan
decoder and the export parity check all call these.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fakescan.config import Preprocess


def decode_rgb(src: str | Path | bytes, draft: int | None = None) -> Image.Image:
    """Open ``src`` and return an 8-bit RGB image (EXIF-rotated, first frame).

    ``draft``: for JPEG, let libjpeg decode at a reduced scale (1/2, 1/4, 1/8) that keeps both
    sides at least ``draft`` pixels - the scan's reduce-on-decode (a pre-filter before the
    antialiased resize, several times faster on large photos).
    """
    im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    if draft and im.format == "JPEG" and im.mode in ("RGB", "L"):
        im.draft(im.mode, (draft, draft))
    im.seek(0)
    im.load()  # pixel errors surface here, not inside the EXIF step below
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as e:  # noqa: BLE001 - a broken EXIF block is not a broken image
        warnings.warn(f"EXIF orientation unreadable ({type(e).__name__}: {e}); image used as "
                      "stored", stacklevel=2)
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


def resize_array(im: Image.Image, pp: Preprocess) -> np.ndarray:
    """An RGB PIL image -> uint8 CHW numpy array of ``pp.input_size`` squared.

    Pillow's bilinear filter widens with the scale factor (antialiased), as torchvision's
    ``antialias=True`` does (they agree within one grey level); Pillow's is ~30x faster per
    image and needs no torch, so decode worker processes stay light and fork-safe.
    """
    s = pp.input_size
    if im.size != (s, s):
        im = im.resize((s, s), Image.BILINEAR, reducing_gap=None)
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))


def resize_uint8(im: Image.Image, pp: Preprocess):
    """``resize_array`` as a torch tensor."""
    import torch

    return torch.from_numpy(resize_array(im, pp))


def face_inputs(im: Image.Image, pp: Preprocess) -> list[tuple[tuple[int, int, int, int],
                                                              np.ndarray]]:
    """Every face in ``im`` (most confident first) as ``(box, model input)``: the square crop
    ``pp`` asks for, resized. The box is the crop's, in ``im``'s pixels."""
    from fakescan.faces import crop_square, detector, face_box

    out = []
    for face in detector().detect(im):
        box = face_box(face, pp.face_margin, *im.size)
        out.append((box, resize_array(crop_square(im, box), pp)))
    return out


def model_input(im: Image.Image, pp: Preprocess) -> np.ndarray:
    """The one input training and eval see for an image: the whole image, or with
    ``crop="face"`` its largest face (the whole image when no face is found: training sets
    are face crops already, some too tight for the detector)."""
    if pp.crop == "face":
        faces = face_inputs(im, pp)
        if faces:
            box, x = max(faces, key=lambda f: f[0][2] - f[0][0])
            return x
    return resize_array(im, pp)


def load_uint8(src: str | Path | bytes, pp: Preprocess):
    """Decode and resize (and crop the face): the uint8 CHW tensor a model's normalisation is
    applied to, for training and eval."""
    import torch

    return torch.from_numpy(model_input(decode_rgb(src), pp))


def normalize(x, pp: Preprocess, dtype=None):
    """uint8 NCHW (any device) -> float NCHW: ``(x / 255 - mean) / std``."""
    import torch

    dtype = dtype or torch.float32
    mean = torch.tensor(pp.mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pp.std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x.float() / 255.0 - mean) / std).to(dtype)
