"""Weights on disk, never pickled code: safetensors files, and (for pretrained backbones that
ship as ``.pth``) state dicts read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fakescan.errors import ModelError


def save_tensors(tensors: dict[str, Any], path: Path, metadata: dict[str, str] | None = None):
    """Save a flat dict of tensors as safetensors, atomically."""
    from safetensors.torch import save_file

    from fakescan.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata)


def load_tensors(path: Path) -> dict[str, Any]:
    """Load a safetensors file; anything else (a pickle in disguise) is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(
            f"{path} is not a valid safetensors file ({e}); fakescan never loads pickled "
            "checkpoints"
        ) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_state_file(path: str | Path, what: str = "backbone weights") -> dict[str, Any]:
    """A state dict from ``.safetensors`` or a weights-only ``.pth``.

    ``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any pickle
    that would construct objects other than tensors and containers.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what}: no such file {path}")
    if path.suffix == ".safetensors":
        return load_tensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for refused pickles
        raise ModelError(f"{what} {path}: refused or unreadable ({e})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{what} {path}: not a state dict")
    return state
