"""Named training recipes (``fakescan train --recipe NAME``), on top of each architecture's
seed recipe (``ArchSpec.recipe``).

``seed`` is the research reports' recipe as-is. ``robust`` is issue 7's recipe for detection
that has to hold on photos from other sources: it takes away the cues the hard set offers that
do not generalise (how sharp an image is, its colour and brightness: the model sees a per-image
normalised high-pass residual) and calibrates the threshold to bound false alarms on real
photos. Random resized crops (``--scale-jitter``), meant to take framing away, were measured
and left out: they cost in-distribution accuracy and did not help out of distribution. What
each ingredient did is measured in ``benchmarks/README.md`` ("Generalisation to other
sources").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fakescan.config import Recipe


@dataclass(frozen=True)
class RecipePreset:
    recipe: dict[str, Any] = field(default_factory=dict)  # Recipe fields to change
    arch_options: dict[str, Any] = field(default_factory=dict)  # e.g. the input filter
    summary: str = ""


PRESETS: dict[str, RecipePreset] = {
    "seed": RecipePreset(summary="the seed report's recipe for the architecture"),
    "robust": RecipePreset(
        recipe={"sharpness_match": True, "max_fpr": 0.05},
        arch_options={"input_filter": "highpass_norm"},
        summary="per-image normalised high-pass input, class-conditional sharpness matching, "
        "threshold at <= 5% false alarms on validation",
    ),
    "cross_source": RecipePreset(
        recipe={"zoom": (0.55, 1.25), "reencode": True, "max_fpr": 0.05},
        summary="for several --data sources: framing, resolution and encoding made "
        "source-neutral (random zoom 0.55-1.25, random re-encoding), classes and sources "
        "sampled equally, threshold at <= 5% false alarms on each source's validation reals",
    ),
}


def get_preset(name: str) -> RecipePreset:
    from fakescan.errors import UsageError

    if name not in PRESETS:
        raise UsageError(f"unknown recipe {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve_recipe(arch: str, preset_name: str = "seed", *,
                   arch_options: dict[str, Any] | None = None,
                   **changes: Any) -> tuple[Recipe, dict[str, Any]]:
    """The recipe and architecture options a run uses: the architecture's seed recipe, then
    the preset's fields and options, then ``changes`` (``None`` leaves a field as it is) and
    ``arch_options`` (an ``input_filter`` of ``"none"`` removes the preset's)."""
    from fakescan.nets import get_arch  # (registers every architecture)

    preset = get_preset(preset_name)
    options = {**preset.arch_options, **(arch_options or {})}
    if options.get("input_filter") == "none":
        del options["input_filter"]
    recipe = get_arch(arch).recipe.replace(name=preset_name, **preset.recipe).replace(**changes)
    return recipe, options
