"""int8 ONNX for CPUs: static quantization, accepted only when it says what fp32 says.

``fakescan export --int8`` (and ``--precision int8`` on first use, into the user cache) turns
a model's fp32 ONNX file into a QDQ int8 one: per-channel int8 weights, uint8 activations
whose ranges are calibrated on the model's own training images (onnxruntime's
``quantize_static``, MinMax). The file counts only if, on **every** labelled source the model
card names (or ``parity_data``), the int8 verdicts agree with fp32 on at least
``MIN_AGREEMENT`` of the images and ROC-AUC moves by at most ``MAX_AUC_DELTA``. Where the
whole network fails that, the first convolutions stay in float (they see raw pixels, where
the traces of generation are, and are the most sensitive to 8-bit activations), a few more at
each step of ``KEEP_FLOAT``; if none passes, nothing is written.

The parity record goes into the file's ``fakescan`` metadata (``int8_parity``); the onnx
runtime refuses an int8 file without a passing record.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.atomic import atomic_path
from fakescan.card import ONNX_META_KEY, ModelCard, onnx_metadata_of
from fakescan.errors import ModelError, UsageError

MIN_AGREEMENT = 0.995  # share of images whose verdict int8 must keep, in every source
MAX_AUC_DELTA = 0.005  # largest |ROC-AUC change| in any source with both classes
CALIBRATION_IMAGES = 256
PARITY_IMAGES_PER_SOURCE = 2000  # every image up to this; an even stride beyond
KEEP_FLOAT = (0, 3, 6, 10)  # leading convolutions left in float, tried in this order
INT8_NAME = "model_int8.onnx"


@dataclass
class SourceParity:
    images: int
    verdict_agreement: float
    roc_auc_fp32: float | None
    roc_auc_int8: float | None

    @property
    def auc_delta(self) -> float:
        if self.roc_auc_fp32 is None or self.roc_auc_int8 is None:
            return 0.0
        return abs(self.roc_auc_int8 - self.roc_auc_fp32)

    @property
    def ok(self) -> bool:
        return self.verdict_agreement >= MIN_AGREEMENT and self.auc_delta <= MAX_AUC_DELTA


@dataclass
class Int8Parity:
    """What the check measured: per source, and the verdict."""

    sources: dict[str, SourceParity] = field(default_factory=dict)
    float_convs: int = 0  # leading convolutions kept in float
    calibration_images: int = 0
    machine: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.sources) and all(s.ok for s in self.sources.values())

    @property
    def min_agreement(self) -> float:
        return min(s.verdict_agreement for s in self.sources.values())

    @property
    def max_auc_delta(self) -> float:
        return max(s.auc_delta for s in self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "min_verdict_agreement": self.min_agreement,
                "max_auc_delta": self.max_auc_delta, "required": {
                    "verdict_agreement": MIN_AGREEMENT, "auc_delta": MAX_AUC_DELTA},
                "float_convs": self.float_convs, "calibration_images": self.calibration_images,
                "machine": self.machine,
                "sources": {k: {**asdict(v), "auc_delta": v.auc_delta}
                            for k, v in self.sources.items()}}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parity_record(meta: dict[str, Any]) -> dict[str, Any] | None:
    return meta.get("int8_parity")


def require_parity(meta: dict[str, Any], path: Path) -> None:
    """Refuse an int8 file whose metadata holds no passing parity record."""
    rec = parity_record(meta)
    if not rec or not rec.get("ok"):
        why = "has no parity record" if not rec else (
            f"failed its parity check (verdict agreement {rec.get('min_verdict_agreement')}, "
            f"ROC-AUC change {rec.get('max_auc_delta')})")
        raise ModelError(f"{path} is an int8 model that {why}: refused; rebuild it with "
                         "fakescan export --int8")


# ---------------------------------------------------------------- data for the two checks
def labelled_sources(card: ModelCard, parity_data: list[Path] | None):
    """``{source: samples}``: every image (up to a cap) of every labelled source."""
    from fakescan.data.layouts import load_sources

    paths = list(parity_data or [])
    if not paths:
        paths = [Path(s["path"]) for s in card.data.get("sources", [])] or (
            [Path(card.data["path"])] if card.data.get("path") else [])
    paths = [p for p in paths if p.exists()]
    if not paths:
        raise UsageError("no labelled data to check int8 parity on (the model card's sources "
                         "are not here): name some with --parity-data DIR")
    kept = tuple(card.labels)
    ds = load_sources(paths, ratios=None, min_classes=1, classes=kept)
    by: dict[str, list] = {}
    for s in ds.samples():
        by.setdefault(s.source, []).append(s)
    out = {}
    for name, smp in by.items():
        smp.sort(key=lambda s: str(s.path))
        step = max(1, -(-len(smp) // PARITY_IMAGES_PER_SOURCE))
        out[name] = smp[::step]
    return out


def _calibration(card: ModelCard, sources: dict[str, list], n: int) -> list:
    """``n`` images spread over sources and classes (round robin, even strides)."""
    groups: dict[tuple[str, str], list] = {}
    for name, smp in sources.items():
        for s in smp:
            groups.setdefault((name, s.label), []).append(s)
    per = max(1, -(-n // max(len(groups), 1)))
    out = []
    for g in groups.values():
        step = max(1, len(g) // per)
        out += g[::step][:per]
    return out[:n]


def decoded_inputs(card: ModelCard, samples: list, workers: int = 2) -> np.ndarray:
    """``samples`` decoded and resized as the model sees them: uint8 N x C x H x W (a quarter
    of the memory of the float input; ``normalized`` makes a batch of it the model's input)."""
    import torch

    from fakescan.train.data import preload

    return torch.stack(preload(samples, card.preprocess, workers)).numpy()


def normalized(card: ModelCard, x: np.ndarray) -> np.ndarray:
    """uint8 images -> the model's float input (``fakescan.imaging.normalize``)."""
    import torch

    from fakescan.imaging import normalize

    return normalize(torch.from_numpy(x), card.preprocess).numpy()


def session_probs(card: ModelCard, session, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Class probabilities of an onnxruntime ``session`` for uint8 images ``x``, normalised
    a batch at a time."""
    return np.concatenate([session.run(["probs"], {"image": normalized(card, x[i: i + batch])})[0]
                           for i in range(0, len(x), batch)])


# ---------------------------------------------------------------- build
def quantize(fp32: Path, out: Path, calib: np.ndarray, float_convs: int) -> None:
    """``fp32`` -> QDQ int8 ``out`` (per-channel weights), the first ``float_convs``
    convolutions left in float."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"image": calib[i: i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory(prefix="fakescan-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8,
                        nodes_to_exclude=convs[:float_convs])


def check_parity(card: ModelCard, fp32: Path | dict[str, np.ndarray], int8: Path,
                 x_by_source: dict[str, np.ndarray],
                 y_by_source: dict[str, np.ndarray]) -> Int8Parity:
    """``int8``'s verdicts and ROC-AUC against ``fp32``'s (the float model's file, or its
    probabilities by source, scored once for every variant tried) on uint8 images."""
    from fakescan.onnxrt import onnx_session
    from fakescan.train.metrics import roc_auc

    ref = fp32 if isinstance(fp32, dict) else fp32_probs(card, fp32, x_by_source)
    b = onnx_session(int8, "cpu")
    res = Int8Parity(machine=_cpu_name())
    for name, x in x_by_source.items():
        pa, pb = ref[name], session_probs(card, b, x)
        y = y_by_source[name]
        both = len(set(y.tolist())) == 2
        res.sources[name] = SourceParity(
            images=len(x), verdict_agreement=float((card.verdict(pa) == card.verdict(pb)).mean()),
            roc_auc_fp32=roc_auc(y, card.p_fake(pa)) if both else None,
            roc_auc_int8=roc_auc(y, card.p_fake(pb)) if both else None)
    return res


def fp32_probs(card: ModelCard, fp32: Path, x_by_source: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    from fakescan.onnxrt import onnx_session

    a = onnx_session(fp32, "cpu")
    return {name: session_probs(card, a, x) for name, x in x_by_source.items()}


def build_int8(model_ref: str | Path | None, out: Path | None = None, *,
               parity_data: list[Path] | None = None,
               log: Callable[[str], None] = lambda s: None) -> tuple[Path, Int8Parity]:
    """Quantize ``model_ref`` (a model folder or name, or the default) to ``out`` [default: the
    folder's ``model_int8.onnx``, or the user cache for a read-only folder]; returns the file
    and its parity. Raises ``ModelError`` when no variant keeps parity (nothing is written)."""

    from fakescan.cache import model_file
    from fakescan.export import export_onnx
    from fakescan.store import resolve_model_dir

    folder = resolve_model_dir(model_ref)
    card = ModelCard.load(folder)
    if out is None:
        out = folder / INT8_NAME if os.access(folder, os.W_OK) else model_file(card, INT8_NAME)
    with tempfile.TemporaryDirectory(prefix="fakescan-int8-") as tmpd:
        fp32 = Path(tmpd) / "model.onnx"
        export_onnx(folder, fp32, parity=False)
        return _build(card, fp32, Path(out), parity_data, log)


def _build(card: ModelCard, fp32: Path, out: Path, parity_data: list[Path] | None,
           log: Callable[[str], None]) -> tuple[Path, Int8Parity]:
    import onnx

    sources = labelled_sources(card, parity_data)
    calib = _calibration(card, sources, CALIBRATION_IMAGES)
    log(f"decoding {sum(map(len, sources.values())):,} images of {len(sources)} sources "
        f"and {len(calib)} calibration images ...")
    xc = normalized(card, decoded_inputs(card, calib))
    xs = {k: decoded_inputs(card, v) for k, v in sources.items()}
    neg = card.negative_label
    ys = {k: np.array([int(s.label != neg) for s in v]) for k, v in sources.items()}
    ref = fp32_probs(card, fp32, xs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tried = []
    for k in KEEP_FLOAT:
        with tempfile.TemporaryDirectory(prefix="fakescan-int8-") as tmpd:
            q = Path(tmpd) / INT8_NAME
            log(f"quantizing (first {k} convolutions in float) and checking parity ...")
            quantize(fp32, q, xc, k)
            par = check_parity(card, ref, q, xs, ys)
            par.float_convs, par.calibration_images = k, len(calib)
            tried.append(par)
            if par.ok:
                m = onnx.load(str(q))
                meta = {**onnx_metadata_of(onnx.load(str(fp32), load_external_data=False), fp32),
                        "precision": "int8", "int8_parity": par.to_dict()}
                del m.metadata_props[:]
                e = m.metadata_props.add()
                e.key, e.value = ONNX_META_KEY, json.dumps(meta)
                m.producer_name = "fakescan"
                with atomic_path(out) as tmp:
                    onnx.save(m, str(tmp))
                return out, par
    worst = ", ".join(f"{p.float_convs} float convs: agreement {p.min_agreement:.4f}, "
                      f"AUC change {p.max_auc_delta:.4f}" for p in tried)
    raise ModelError(f"int8 quantization of {card.name} breaks parity ({worst}; needs "
                     f">= {MIN_AGREEMENT} and <= {MAX_AUC_DELTA}): nothing written")
