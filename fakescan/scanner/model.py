"""What a scan needs to know about a model, from a model folder or from an ``.onnx`` file alone.

``ScanModel`` is the model's ``ModelCard`` (preprocessing, labels, threshold, the decision rule
and the identity ``name@sha256[:12]``, the same for a folder and for the ONNX file exported
from it) plus where its weights are, and knows how to give each runtime what it runs: the
torch module (folders only) or an ONNX file. A scan only reads its model: an ONNX file a
folder lacks is built once into the user cache, never into the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescan.card import ONNX_META_KEY, ModelCard, onnx_metadata_of
from fakescan.errors import ModelError

ONNX_NAME = "model.onnx"
ONNX_NAMES = {"fp32": ONNX_NAME, "fp16": "model_fp16.onnx", "int8": "model_int8.onnx"}


@dataclass(frozen=True)
class ScanModel:
    card: ModelCard
    folder: Path | None = None  # a model folder (torch runtime available)
    onnx_path: Path | None = None  # an ``.onnx`` model file

    def load_torch(self):
        from fakescan.store import load_model

        if self.folder is None:
            raise ModelError(f"{self.onnx_path} is an ONNX file: it runs on the onnx runtime only")
        return load_model(self.folder).model

    def onnx_file(self, precision: str = "fp32") -> Path:
        """The ONNX file to run at ``precision`` (fp32, fp16 or int8). An ``.onnx`` model is
        itself; a model folder's own file (``fakescan export [--fp16|--int8]``) is used when
        it has one; otherwise it is built once into the user cache, keyed by the weights -
        never into the model folder. An int8 file must carry a passing parity record
        (``fakescan.quantize``); building one needs the model's labelled data."""
        if self.folder is None:
            assert self.onnx_path is not None
            if self.precision_of_file() == "int8":
                from fakescan.quantize import require_parity

                require_parity(read_onnx_metadata(self.onnx_path), self.onnx_path)
            return self.onnx_path
        name = ONNX_NAMES[precision]
        own = self.folder / name
        path = own if self._own_file_matches(own) else self.cached(name)
        if not path.is_file():
            if precision == "int8":
                from fakescan.quantize import build_int8

                build_int8(self.folder, path)
            else:
                from fakescan.export import export_onnx

                export_onnx(self.folder, path, fp16=precision == "fp16", parity=False)
        if precision == "int8":
            from fakescan.quantize import require_parity

            require_parity(read_onnx_metadata(path), path)
        return path

    def has_onnx(self, precision: str) -> bool:
        """Whether the file for ``precision`` exists already (nothing is built)."""
        if self.folder is None:
            return self.precision_of_file() == precision
        name = ONNX_NAMES[precision]
        return self._own_file_matches(self.folder / name) or self.cached(name).is_file()

    def _own_file_matches(self, path: Path) -> bool:
        """Whether the folder's own exported file was built from this card's network (the
        same ``build_key``: weights and architecture options); a file exported before the
        weights were trained again, or before ``views`` changed, is passed over, and one is
        built into the cache."""
        if not path.is_file():
            return False
        try:
            built = ModelCard.from_onnx_metadata(read_onnx_metadata(path), str(path))
        except ModelError:
            return False
        return built.build_key == self.card.build_key

    def precision_of_file(self) -> str:
        """An ``.onnx`` model's own precision (from its metadata)."""
        assert self.onnx_path is not None
        return str(read_onnx_metadata(self.onnx_path).get("precision", "fp32"))

    def cached(self, name: str) -> Path:
        """Where a file built from this model's weights lives in the user cache."""
        from fakescan.cache import model_file

        return model_file(self.card, name)


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """The ``fakescan`` metadata JSON of an exported model (no weights are read)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises several unrelated types
        raise ModelError(f"{path} is not a readable ONNX file: {e}") from None
    check_external_data(m, path)
    return onnx_metadata_of(m, path)


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
    from fakescan.store import resolve_model_dir

    p = Path(ref or ".")
    if ref and p.suffix == ".onnx":
        if not p.is_file():
            raise ModelError(f"no ONNX file {p}")
        card = ModelCard.from_onnx_metadata(read_onnx_metadata(p), f"{p} ({ONNX_META_KEY} "
                                            "metadata)")
        return ScanModel(card, onnx_path=p)
    folder = resolve_model_dir(ref)
    return ScanModel(ModelCard.load(folder), folder=folder)
