"""What a scan needs to know about a model, from a model folder or from an ``.onnx`` file alone.

``ScanModel`` carries the preprocessing, labels, threshold and identity (``name@sha256[:12]``
of the weights, the same for a folder and for the ONNX file exported from it), and knows how
to give each runtime what it runs: the torch module (folders only) or an ONNX file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescan.config import Preprocess
from fakescan.errors import ModelError

ONNX_NAME = "model.onnx"
META_KEY = "fakescan"


@dataclass
class ScanModel:
    name: str
    preprocess: Preprocess
    labels: list[str]
    positive_label: str
    threshold: float
    weights_sha256: str
    folder: Path | None = None  # a model folder (torch runtime available)
    onnx_path: Path | None = None  # an ONNX file, when one exists

    @property
    def identity(self) -> str:
        return f"{self.name}@{(self.weights_sha256 or 'unknown')[:12]}"

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label)

    def load_torch(self):
        from fakescan.store import load_model

        if self.folder is None:
            raise ModelError(f"{self.onnx_path} is an ONNX file: use --runtime onnx")
        return load_model(self.folder).model

    def onnx_file(self, fp16: bool = False) -> Path:
        """The ONNX file to run. An ``.onnx`` model is itself; a model folder's own export
        (``fakescan export``) is used when it has one; otherwise the model is exported once
        into the user cache, keyed by its weights - never into the model folder."""
        name = "model_fp16.onnx" if fp16 else ONNX_NAME
        if self.folder is None:
            assert self.onnx_path is not None
            return self.onnx_path
        own = self.folder / name
        if own.is_file():
            return own
        from fakescan.cache import cache_dir

        cached = cache_dir() / "onnx" / f"{self.name}-{(self.weights_sha256 or 'x')[:16]}" / name
        if not cached.is_file():
            from fakescan.export import export_onnx

            export_onnx(self.folder, cached, fp16=fp16, parity=False)
        return cached


def _from_card(folder: Path, card: dict[str, Any]) -> ScanModel:
    labels = list(card["labels"])
    pos = card.get("positive_label", "fake")
    if pos not in labels:
        raise ModelError(f"{folder}: positive label {pos!r} is not one of {labels}")
    onnx = folder / ONNX_NAME
    return ScanModel(
        name=card.get("name", folder.name), preprocess=Preprocess.from_dict(card["preprocess"]),
        labels=labels, positive_label=pos, threshold=float(card.get("threshold", 0.5)),
        weights_sha256=card.get("weights_sha256") or "", folder=folder,
        onnx_path=onnx if onnx.is_file() else None,
    )


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """The ``fakescan`` metadata JSON of an exported model (no weights are read)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises several unrelated types
        raise ModelError(f"{path} is not a readable ONNX file: {e}") from None
    check_external_data(m, path)
    props = {p.key: p.value for p in m.metadata_props}
    if META_KEY not in props:
        raise ModelError(f"{path} has no '{META_KEY}' metadata; export it with fakescan export")
    try:
        return json.loads(props[META_KEY])
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: '{META_KEY}' metadata is not JSON: {e}") from None


def check_external_data(m, path: Path) -> None:
    """Refuse ONNX external-data references that point outside the model's folder."""
    base = Path(path).resolve().parent
    for t in m.graph.initializer:
        if t.data_location != 1:  # onnx.TensorProto.EXTERNAL
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (base / loc).resolve()
        if not target.is_relative_to(base):
            raise ModelError(f"{path}: external data '{loc}' points outside {base}; refused")


def resolve_scan_model(ref: str | Path | None) -> ScanModel:
    """A model name in the store, a model folder, an exported ``.onnx`` file, or (``None``)
    the shipped default detector."""
    from fakescan.store import read_card, resolve_model_dir

    p = Path(ref or ".")
    if ref and p.suffix == ".onnx":
        if not p.is_file():
            raise ModelError(f"no ONNX file {p}")
        meta = read_onnx_metadata(p)
        try:
            return ScanModel(
                name=meta.get("name", p.stem), preprocess=Preprocess.from_dict(meta),
                labels=list(meta["labels"]), positive_label=meta["positive_label"],
                threshold=float(meta["threshold"]), weights_sha256=meta["weights_sha256"],
                onnx_path=p,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{p}: '{META_KEY}' metadata lacks or mangles {e}") from None
    folder = resolve_model_dir(ref)
    try:
        return _from_card(folder, read_card(folder))
    except KeyError as e:
        raise ModelError(f"{folder}/config.json lacks the key {e}") from None
