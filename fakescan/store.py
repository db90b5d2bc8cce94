"""The model store: model folders with safetensors weights and a JSON card; name resolution.

Nothing here unpickles: weights are read with safetensors, metadata with json. A folder that
holds only a pickled checkpoint (``.pt``/``.pth``/``.bin``/``.ckpt``) is refused.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescan.card import CARD_FILE, ModelCard
from fakescan.errors import ModelError
from fakescan.weights import load_tensors

__all__ = ["WEIGHTS", "LoadedModel", "load_model", "models_dir", "resolve_model_dir",
           "versions"]

WEIGHTS = "weights.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


# The small default detector that ships inside the package (package data): found after an
# editable install and from a wheel alike, used whenever no model is named.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
DEFAULT_NAME = "default"


def models_dir() -> Path:
    """The store: ``./models`` unless configured (the command line takes
    ``$FAKESCAN_MODELS``)."""
    from fakescan.settings import SETTINGS

    return SETTINGS.models_dir


def default_model_dir() -> Path:
    if not (DEFAULT_MODEL_DIR / CARD_FILE).is_file():
        raise ModelError(f"the default detector is missing from this installation "
                         f"({DEFAULT_MODEL_DIR}); reinstall fakescan, or name a model")
    return DEFAULT_MODEL_DIR


def resolve_model_dir(ref: str | Path | None) -> Path:
    """A model folder for ``ref``: a folder path, a name inside the store, or - for ``None``,
    ``""`` or ``"default"`` (unless the store has a model of that name) - the shipped default
    detector."""
    if ref is None or str(ref) == "":
        return default_model_dir()
    p = Path(ref)
    for cand in (p, models_dir() / str(ref)):
        if cand.is_dir() and (cand / CARD_FILE).is_file():
            return cand
        if cand.is_dir():
            pickles = [f.name for f in cand.iterdir() if f.suffix in PICKLE_SUFFIXES]
            if pickles:
                raise ModelError(
                    f"{cand} holds a pickled checkpoint ({pickles[0]}) and no {CARD_FILE}; "
                    "fakescan only loads safetensors model folders (pickles can run code on load)"
                )
    if str(ref) == DEFAULT_NAME:
        return default_model_dir()
    from fakescan.nets import list_archs  # (imports torch: on this error path only)

    if str(ref) in list_archs():
        raise ModelError(
            f"no trained model '{ref}' yet: train one with `fakescan train --model {ref} "
            f"--data DATA --out {models_dir() / str(ref)}`, or leave out --model to use the "
            "shipped default detector")
    known = sorted(d.name for d in models_dir().glob("*/") if (d / CARD_FILE).is_file())
    hint = f"; models in {models_dir()}: {', '.join(known)}" if known else ""
    raise ModelError(f"no model folder '{ref}' (expected a folder with {CARD_FILE}){hint}")


def package_versions(packages) -> dict[str, str]:
    """The installed version of each of ``packages`` (distribution names); absent ones left
    out."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def versions() -> dict[str, str]:
    """Versions of the packages that decide what a model computes."""
    return {"python": platform.python_version(),
            **package_versions(("fakescan", "torch", "torchvision", "numpy", "pillow",
                                "safetensors", "onnx", "onnxruntime-gpu",
                                "nvidia-dali-cuda130"))}


@dataclass(frozen=True)
class LoadedModel:
    """A model folder loaded for inference: the module and its card."""

    folder: Path
    model: Any
    card: ModelCard



def load_model(ref: str | Path | None) -> LoadedModel:
    """Build the card's architecture and load its safetensors weights (eval mode, CPU)."""
    from fakescan.nets import create_model

    folder = resolve_model_dir(ref)
    card = ModelCard.load(folder)
    model = create_model(card.architecture, num_classes=len(card.labels), **card.arch_options)
    state = load_tensors(folder / WEIGHTS)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelError(f"{folder / WEIGHTS} does not fit {card.architecture}: {first}") from None
    return LoadedModel(folder, model.eval(), card)
