"""The architecture registry: one name-keyed table, filled by a decorator on typed builders.

Pattern from timm's ``_registry.py`` and torchvision's ``_api.py``: a builder is a small
keyword-only function returning an ``nn.Module``; its ``ArchSpec`` carries the preprocessing
and the seed recipe that every driver (train, scan, export, bench) reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakescan.config import Preprocess, Recipe
from fakescan.errors import ArchitectureError


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture.

    Attributes:
        name: registry key, used by ``--model``/``--arch``.
        builder: keyword-only function ``(num_classes=..., **options) -> nn.Module``.
        preprocess: input size and normalisation for this architecture.
        recipe: the seed's default training recipe.
        source: where the architecture comes from (seed report and section).
        variants: named option sets worth listing in ``fakescan models``.
        pretrained: the key of its pretrained backbone weights in
            ``fakescan.train.pretrained.PRETRAINED``, or ``None``.
    """

    name: str
    builder: Callable[..., Any]
    preprocess: Preprocess
    recipe: Recipe
    source: str
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    pretrained: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        """Builder options other than ``num_classes``, with their defaults; every
        architecture also takes ``input_filter`` (see ``fakescan.nets.filters``) and
        ``views`` (``fakescan.nets.views``)."""
        sig = inspect.signature(self.builder)
        opts = {n: p.default for n, p in sig.parameters.items() if n != "num_classes"}
        return {**opts, "input_filter": "none", "views": "one"}

    def build(self, *, num_classes: int = 2, **options: Any) -> Any:
        from fakescan.nets.filters import INPUT_FILTERS, HighPassInput
        from fakescan.nets.views import VIEWS, FlipAverage

        input_filter = options.pop("input_filter", "none")
        if input_filter not in INPUT_FILTERS:
            raise ArchitectureError(
                f"input_filter must be one of {', '.join(INPUT_FILTERS)}, got {input_filter!r}")
        views = options.pop("views", "one")
        if views not in VIEWS:
            raise ArchitectureError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")
        net = self._build(num_classes=num_classes, **options)
        if input_filter != "none":
            net = HighPassInput(net, normalize=input_filter == "highpass_norm")
        return FlipAverage(net) if views == "flip" else net

    def _build(self, *, num_classes: int = 2, **options: Any) -> Any:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ArchitectureError(
                f"architecture '{self.name}' has no option {', '.join(unknown)} "
                f"(its options: {allowed})"
            )
        if num_classes < 2:
            raise ArchitectureError(f"need at least 2 classes, got {num_classes}")
        return self.builder(num_classes=num_classes, **options)


_REGISTRY: dict[str, ArchSpec] = {}


def register(
    name: str,
    *,
    preprocess: Preprocess,
    recipe: Recipe,
    source: str,
    variants: dict[str, dict[str, Any]] | None = None,
    pretrained: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder under ``name``. A second registration raises."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ArchitectureError(f"architecture '{name}' is registered twice")
        _REGISTRY[name] = ArchSpec(name, fn, preprocess, recipe, source, dict(variants or {}),
                                   pretrained)
        return fn

    return deco


def get_arch(name: str) -> ArchSpec:
    """The spec registered under ``name``; unknown names raise with the list of choices."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ArchitectureError(
            f"unknown architecture '{name}'; choose one of: {', '.join(list_archs())}"
        ) from None


def list_archs() -> list[str]:
    return list(_REGISTRY)


def create_model(name: str, *, num_classes: int = 2, **options: Any) -> Any:
    """Build architecture ``name`` (randomly initialised; drivers load weights)."""
    return get_arch(name).build(num_classes=num_classes, **options)
