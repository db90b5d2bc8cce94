"""ONNX export: a model folder -> one self-describing ``.onnx`` file any ONNX consumer can run.

The graph takes ``image`` (float32, N x 3 x S x S, already normalised) and returns ``probs``
(softmax over ``labels``); the batch axis is dynamic. ``metadata_props["fakescan"]`` holds the
preprocessing and labels as JSON (see README), so the file alone is a usable ``--model``.
A parity check on real decoded images compares onnxruntime with torch before the file counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fakescan.atomic import atomic_path
from fakescan.card import ONNX_META_KEY, onnx_metadata_of
from fakescan.errors import ModelError

OPSET = 18
PARITY_TOLERANCE = 1e-2  # max |delta p_fake| for fp32; fp16 is checked against 5e-2
PARITY_TOLERANCE_FP16 = 5e-2


@dataclass(frozen=True)
class Parity:
    """onnxruntime against torch (fp32) on decoded images."""

    images: int
    max_abs_delta_p_fake: float
    verdict_agreement: float
    tolerance: float
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Exported:
    """What ``export_onnx`` wrote; ``parity`` is None when the check was not asked for."""

    path: str
    opset: int
    precision: str
    bytes: int
    parity: Parity | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.parity is None:
            del d["parity"]
        return d


def _wrapper(model):
    import torch

    class Probs(torch.nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.m = m

        def forward(self, image):
            return torch.softmax(self.m(image).float(), dim=1)

    return Probs(model).eval()


def export_onnx(model_ref: str | Path, out: Path | None = None, *, fp16: bool = False,
                parity: bool = True, parity_images: list | None = None) -> Exported:
    """Export ``model_ref`` to ``out`` (default ``<folder>/model.onnx``); say what was written
    and, with ``parity``, how onnxruntime agrees with torch on it."""
    import onnx
    import torch

    from fakescan.store import load_model

    lm = load_model(model_ref)
    name = "model_fp16.onnx" if fp16 else "model.onnx"
    if out is None:  # beside the weights; a read-only model (the shipped default): here
        out = lm.folder / name if os.access(lm.folder, os.W_OK) else Path(
            f"{lm.card.name}{'_fp16' if fp16 else ''}.onnx")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    s = lm.card.preprocess.input_size
    wrapped = _wrapper(lm.model)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prog = torch.onnx.export(
                wrapped, (torch.randn(2, 3, s, s),), input_names=["image"],
                output_names=["probs"], opset_version=OPSET, dynamo=True,
                dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=65536)}},
                external_data=False, verbose=False,
            )
        except Exception as e:  # noqa: BLE001 - exporter errors come in many types
            raise ModelError(f"ONNX export of {lm.folder} failed: {e}") from None
    m = prog.model_proto
    if fp16:
        m = _to_fp16(m)
    _stamp(m, lm.card, fp16=fp16, opset=OPSET)
    onnx.checker.check_model(m)
    with atomic_path(out) as tmp:
        onnx.save(m, str(tmp))
    return Exported(str(out), OPSET, "fp16" if fp16 else "fp32", out.stat().st_size,
                    parity_check(lm, out, parity_images, fp16) if parity else None)


def _stamp(m, card, *, fp16: bool, opset: int) -> None:
    """Write the card's ``fakescan`` metadata into the ONNX model proto ``m``."""
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = ONNX_META_KEY, json.dumps(card.onnx_metadata(fp16=fp16,
                                                                          opset=opset))
    m.producer_name = "fakescan"


def restamp_onnx(path: Path, card) -> None:
    """Rewrite an exported file's metadata from ``card`` (a new threshold, say), keeping its
    graph, precision and opset; atomically, so a reader never sees half a file."""
    import onnx

    m = onnx.load(str(path))
    old = onnx_metadata_of(m, path)
    _stamp(m, card, fp16=old.get("precision") == "fp16", opset=int(old.get("opset", OPSET)))
    with atomic_path(path) as tmp:
        onnx.save(m, str(tmp))


def _to_fp16(m):
    """Half-precision weights and compute, with float32 input and output kept for consumers."""
    from onnxconverter_common import float16  # type: ignore[import-not-found]

    return float16.convert_float_to_float16(m, keep_io_types=True)


def parity_check(lm, onnx_path: Path, images: list | None, fp16: bool) -> Parity:
    """Compare torch (fp32) and onnxruntime on decoded images: max |delta p_fake|, agreement."""
    import numpy as np
    import torch

    from fakescan.imaging import normalize
    from fakescan.onnxrt import onnx_session

    x = _parity_batch(lm, images)
    xf = normalize(x, lm.card.preprocess)
    with torch.inference_mode():
        pt = torch.softmax(lm.model(xf).float(), 1).numpy()
    sess = onnx_session(onnx_path, "cpu")
    po = sess.run(["probs"], {"image": xf.numpy()})[0]
    card = lm.card
    delta = float(np.abs(card.p_fake(pt) - card.p_fake(po)).max())
    agree = float((card.verdict(pt) == card.verdict(po)).mean())
    tol = PARITY_TOLERANCE_FP16 if fp16 else PARITY_TOLERANCE
    return Parity(int(len(x)), delta, agree, tol, bool(delta <= tol and agree == 1.0))


def _parity_batch(lm, images):
    """Decoded images for the parity check: given ones, else the card's data, else synthetic."""
    import torch

    from fakescan.imaging import load_uint8

    if images is None:
        from fakescan.data.layouts import list_images

        root = lm.card.data.get("path")  # (Path("") would be the current folder)
        images = list_images(Path(root))[:32] if root and Path(root).is_dir() else []
        if not images:
            from fakescan.data.synth import synth_image

            images = [synth_image(0, i, ("real", "fake")[i % 2], (128, 512))[0]
                      for i in range(16)]
    return torch.stack([load_uint8(p, lm.card.preprocess) for p in images])
