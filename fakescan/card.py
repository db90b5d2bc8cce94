"""The model card: what a model is, how it sees an image, and how its output becomes a verdict.

``ModelCard`` is the one typed, frozen description of a model that every reader and writer
uses: training writes it (``config.json`` in the model folder), eval and scan read it, export
writes it into ONNX metadata and an ``.onnx`` file alone is read back into one.

It also owns the one decision rule. ``p_fake`` is the probability that an image is *not* of the
negative class (``real``): for a real/fake model that is ``p(fake)``; with more classes
(real / edited / synthetic) every class but ``real`` counts. ``verdict`` calls an image its most
likely non-real class when ``p_fake >= threshold``, else ``real``. Training calibrates the
threshold on exactly this score, so eval, scan, export's parity check, rows and summaries all
agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.config import Preprocess
from fakescan.errors import ModelError

CARD_FILE = "config.json"
ONNX_META_KEY = "fakescan"
ONNX_FORMAT_VERSION = 1
# keys with a field of their own; anything else in a card is kept, untouched, in ``extra``
_FIELDS = ("name", "architecture", "arch_options", "labels", "positive_label", "preprocess",
           "threshold", "threshold_calibrated_on", "weights_sha256", "recipe", "params", "data",
           "training", "metrics", "versions")


@dataclass(frozen=True)
class DecisionRule:
    """The verdict of a model with these ``labels`` (see the module docstring)."""

    labels: tuple[str, ...]

    @property
    def negative_label(self) -> str:
        """The class that is not fake: ``real`` where present, else the first label."""
        return "real" if "real" in self.labels else self.labels[0]

    @property
    def negative_index(self) -> int:
        return self.labels.index(self.negative_label)

    def p_fake(self, probs: np.ndarray) -> np.ndarray:
        """The score the threshold applies to: 1 - p(real), per row of ``probs`` (N x C)."""
        return 1.0 - np.asarray(probs)[:, self.negative_index]

    def verdict(self, probs: np.ndarray, threshold: float) -> np.ndarray:
        """Class indices: the most likely non-real class where ``p_fake >= threshold``, else
        the real class."""
        probs = np.asarray(probs)
        neg = self.negative_index
        masked = probs.copy()
        masked[:, neg] = -1.0
        return np.where(self.p_fake(probs) >= threshold, masked.argmax(1), neg)

    def is_fake(self, label: str) -> bool:
        """Whether a verdict's label counts as fake (any class but the real one)."""
        return label_is_fake(label, self.negative_label)


def label_is_fake(label: str | None, negative_label: str = "real") -> bool:
    """A verdict's label read back (a scan's rows): fake is any class but the negative one."""
    return bool(label) and label != negative_label


@dataclass(frozen=True)
class TrainingOutcome:
    best_epoch: int
    epochs_completed: int
    best_val_loss: float | None
    valid_accuracy: float | None


@dataclass(frozen=True)
class ModelCard:
    name: str
    architecture: str
    labels: tuple[str, ...]
    preprocess: Preprocess
    threshold: float = 0.5
    threshold_calibrated_on: str = "not calibrated"
    positive_label: str = "fake"  # what a binary report calls the positive class
    arch_options: Mapping[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    recipe: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) < 2:
            raise ModelError(f"model {self.name!r}: needs at least two labels, has "
                             f"{list(self.labels)}")

    # ------------------------------------------------------------------ the decision rule
    @property
    def rule(self) -> DecisionRule:
        return DecisionRule(self.labels)

    @property
    def negative_label(self) -> str:
        return self.rule.negative_label

    @property
    def negative_index(self) -> int:
        return self.rule.negative_index

    def p_fake(self, probs: np.ndarray) -> np.ndarray:
        """1 - p(real) per row of ``probs``: the score the threshold applies to."""
        return self.rule.p_fake(probs)

    def verdict(self, probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Class indices at ``threshold`` (the card's own by default)."""
        return self.rule.verdict(probs, self.threshold if threshold is None else threshold)

    def is_fake(self, label: str) -> bool:
        return self.rule.is_fake(label)

    # ------------------------------------------------------------------ the training record
    @property
    def outcome(self) -> TrainingOutcome:
        """How the training run that made this model ended (what ``fakescan train`` prints)."""
        t, valid = self.training, self.metrics.get("valid") or {}
        return TrainingOutcome(int(t.get("best_epoch", 0)), int(t.get("epochs_completed", 0)),
                               t.get("best_val_loss"), valid.get("accuracy"))

    # ------------------------------------------------------------------ identity
    @property
    def identity(self) -> str:
        """``name@`` + 12 hex digits of the weights' SHA-256, ``+flip`` where the model scores
        two views of each image and ``+240px`` where it scores another input size than its
        weights were trained at (the card's ``training.input_size``; the same weights score
        differently then): the same for a model folder and the ONNX file exported from it."""
        views = self.arch_options.get("views", "one")
        suffix = "" if views == "one" else f"+{views}"
        if self.trained_input_size != self.preprocess.input_size:
            suffix += f"+{self.preprocess.input_size}px"
        return f"{self.name}@{(self.weights_sha256 or 'unknown')[:12]}{suffix}"

    @property
    def trained_input_size(self) -> int:
        """The input size the weights learned at (``training.input_size``; a card without
        that record scores the size it learned at)."""
        return int(self.training.get("input_size") or self.preprocess.input_size)

    @property
    def build_key(self) -> str:
        """What a file built from this model (its ONNX export, a runtime's measured speed)
        depends on: the weights' hash, the architecture options (the same weights make another
        graph with ``views: flip`` or an input filter) and the input size (an exported graph's
        image shape is fixed; the same weights score 256 px as well as 224)."""
        sha = (self.weights_sha256 or "x")[:16]
        graph = json.dumps({**self.arch_options, "input_size": self.preprocess.input_size},
                           sort_keys=True)
        return f"{sha}-{hashlib.sha256(graph.encode()).hexdigest()[:8]}"

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    def scoring_at(self, size: int) -> ModelCard:
        """This card scoring ``size`` px (a network that pools globally scores any size), the
        size its weights learned at kept in ``training.input_size`` (what ``train --init``
        checks and the identity's ``+240px`` compares against)."""
        return self.replace(preprocess=dataclasses.replace(self.preprocess, input_size=size),
                            training={**self.training, "input_size": self.trained_input_size})

    # ------------------------------------------------------------------ JSON (config.json)
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "architecture": self.architecture,
            "arch_options": dict(self.arch_options), "labels": list(self.labels),
            "positive_label": self.positive_label, "preprocess": self.preprocess.to_dict(),
            "threshold": self.threshold, "threshold_calibrated_on": self.threshold_calibrated_on,
            "recipe": dict(self.recipe), "params": dict(self.params), "data": dict(self.data),
            "training": dict(self.training), "metrics": dict(self.metrics),
            "weights_sha256": self.weights_sha256 or None, "versions": dict(self.versions),
        }
        return {**d, **dict(self.extra)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "card",
                  default_name: str = "model") -> ModelCard:
        try:
            return cls(
                name=str(d.get("name") or default_name),
                architecture=str(d["architecture"]),
                labels=tuple(str(x) for x in d["labels"]),
                preprocess=Preprocess.from_dict(d["preprocess"]),
                threshold=float(d.get("threshold", 0.5)),
                threshold_calibrated_on=str(d.get("threshold_calibrated_on", "not calibrated")),
                positive_label=str(d.get("positive_label", "fake")),
                arch_options=dict(d.get("arch_options") or {}),
                weights_sha256=str(d.get("weights_sha256") or ""),
                recipe=dict(d.get("recipe") or {}), params=dict(d.get("params") or {}),
                data=dict(d.get("data") or {}), training=dict(d.get("training") or {}),
                metrics=dict(d.get("metrics") or {}), versions=dict(d.get("versions") or {}),
                extra={k: v for k, v in d.items() if k not in _FIELDS},
            )
        except KeyError as e:
            raise ModelError(f"{source} lacks the key {e}") from None
        except (TypeError, ValueError) as e:
            raise ModelError(f"{source} is malformed: {e}") from None

    @classmethod
    def load(cls, folder: str | Path) -> ModelCard:
        path = Path(folder) / CARD_FILE
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read {path}: {e}") from None
        return cls.from_dict(d, str(path), default_name=Path(folder).name)

    def save(self, folder: str | Path) -> None:
        """Write ``config.json`` atomically (a crash never leaves half a JSON file)."""
        from fakescan.atomic import write_text

        write_text(Path(folder) / CARD_FILE, json.dumps(json_safe(self.to_dict()), indent=2)
                   + "\n")

    # ------------------------------------------------------------------ ONNX metadata
    def onnx_metadata(self, *, fp16: bool, opset: int) -> dict[str, Any]:
        """The ``fakescan`` metadata JSON of an exported model (documented in the README)."""
        pp = self.preprocess
        return {
            "format_version": ONNX_FORMAT_VERSION, "name": self.name,
            "architecture": self.architecture, "arch_options": dict(self.arch_options),
            "input_size": pp.input_size, "mean": list(pp.mean), "std": list(pp.std),
            "resize": pp.resize, "crop": pp.crop, "face_margin": pp.face_margin,
            "color": "RGB", "layout": "NCHW",
            "input_name": "image", "output_name": "probs", "labels": list(self.labels),
            "positive_label": self.positive_label, "negative_label": self.negative_label,
            "threshold": self.threshold, "threshold_calibrated_on": self.threshold_calibrated_on,
            "weights_sha256": self.weights_sha256 or None,
            "precision": "fp16" if fp16 else "fp32", "opset": opset,
            "trained_input_size": self.trained_input_size,
        }

    @classmethod
    def from_onnx_metadata(cls, meta: Mapping[str, Any], source: str) -> ModelCard:
        d = dict(meta)
        d["preprocess"] = {k: meta[k] for k in ("input_size", "mean", "std", "resize", "crop",
                                                "face_margin") if k in meta}
        if meta.get("trained_input_size"):  # the identity's "+240px"
            d["training"] = {"input_size": meta["trained_input_size"]}
        return cls.from_dict({k: v for k, v in d.items() if k in _FIELDS}, source,
                             default_name=Path(source).stem)


def onnx_metadata_of(proto: Any, source: str | Path) -> dict[str, Any]:
    """The ``fakescan`` metadata JSON stored in a loaded ONNX model proto."""
    props = {p.key: p.value for p in proto.metadata_props}
    if ONNX_META_KEY not in props:
        raise ModelError(f"{source} has no '{ONNX_META_KEY}' metadata; export it with fakescan "
                         "export")
    try:
        return json.loads(props[ONNX_META_KEY])
    except json.JSONDecodeError as e:
        raise ModelError(f"{source}: '{ONNX_META_KEY}' metadata is not JSON: {e}") from None


def json_safe(obj: Any) -> Any:
    """NaN -> None, numpy scalars -> Python, tuples -> lists."""
    import math

    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
