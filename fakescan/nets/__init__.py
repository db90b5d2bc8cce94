"""Architectures (named ``nets`` so as not to be confused with the ``models/`` store).

Importing this package imports torch and registers every architecture, in the seeds' order.
"""

from dataclasses import asdict, dataclass
from typing import Any

# isort: off
from fakescan.nets import simplecnn, resnet, salman, efficientnet, tiny  # noqa: F401  (registration order)
# isort: on
from fakescan.nets.registry import ArchSpec, create_model, get_arch, list_archs

__all__ = ["ArchInfo", "ArchSpec", "create_model", "describe_archs", "get_arch", "list_archs",
           "count_parameters"]


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


@dataclass(frozen=True)
class ArchInfo:
    """One registered architecture (or variant) as ``fakescan models`` lists it."""

    name: str
    variant: str | None
    options: dict[str, Any]
    input_size: int
    params: int
    trainable_params: int
    source: str
    preprocess: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_archs() -> list[ArchInfo]:
    """Every registered architecture and variant, built once (2 classes) to count weights."""
    rows = []
    for name in list_archs():
        spec = get_arch(name)
        for variant, options in (spec.variants or {"": {}}).items():
            total, trainable = count_parameters(spec.build(num_classes=2, **options))
            rows.append(ArchInfo(name, variant or None, dict(options),
                                 spec.preprocess.input_size, total, trainable, spec.source,
                                 spec.preprocess.to_dict()))
    return rows
