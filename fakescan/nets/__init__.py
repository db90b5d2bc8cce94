"""Architectures (named ``nets`` so as not to be confused with the ``models/`` store).

Importing this package imports torch and registers every architecture, in the seeds' order.
"""

# isort: off
from fakescan.nets import simplecnn, resnet, salman, efficientnet, tiny  # noqa: F401  (registration order)
# isort: on
from fakescan.nets.registry import ArchSpec, create_model, get_arch, list_archs

__all__ = ["ArchSpec", "create_model", "get_arch", "list_archs", "count_parameters"]


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
