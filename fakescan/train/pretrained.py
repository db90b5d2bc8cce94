"""ImageNet backbone weights through torchvision's weights API, with an offline-friendly error."""

from __future__ import annotations

from pathlib import Path

from fakescan.errors import ModelError, WeightsUnavailableError


def imagenet_resnet50_state():
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


def load_backbone_file(path: Path):
    """A torchvision-layout ResNet50 state dict from ``.safetensors`` or a weights-only ``.pth``.

    ``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any pickle
    that would construct objects other than tensors and containers.
    """
    import torch

    from fakescan.store import load_tensors

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"--backbone-weights: no such file {path}")
    if path.suffix == ".safetensors":
        return load_tensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"--backbone-weights {path}: refused or unreadable ({e})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"--backbone-weights {path}: not a state dict")
    return state
