"""The user cache: what fakescan builds once per machine and keeps outside model folders.

A scan never writes into a model folder (it may be read-only: the shipped default detector
lives inside the installed package). ONNX files built for the onnx runtime, runtime
autotuning results and TensorRT engines go here instead, keyed by the weights' hash (and
the architecture options, which make another graph of the same weights):
the configured cache (``settings``; the command line takes ``$FAKESCAN_CACHE``), else
``$XDG_CACHE_HOME/fakescan``, else ``~/.cache/fakescan``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    from fakescan.settings import SETTINGS

    if SETTINGS.cache_dir is not None:
        return SETTINGS.cache_dir
    xdg = os.environ.get("XDG_CACHE_HOME")  # the platform's convention, not fakescan's
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fakescan"


def model_file(card, name: str) -> Path:
    """Where a file built from ``card``'s model (an ONNX export, say) lives in the cache:
    keyed by its weights and architecture options (``ModelCard.build_key``)."""
    return cache_dir() / "onnx" / f"{card.name}-{card.build_key}" / name


AUTOTUNE = "autotune.json"  # what was measured fastest on this machine, by what it depends on


def autotune_key(*parts: str) -> str:
    """The key of a measurement in ``autotune.json``: this machine (host, processor, cores,
    torch's threads) and ``parts``, what else the measurement depends on."""
    import platform

    import torch

    return "|".join([platform.node(), platform.processor() or platform.machine(),
                     str(os.cpu_count()), str(torch.get_num_threads()), *parts])


def remembered(key: str) -> dict | None:
    """What ``remember`` stored under ``key`` in the user cache's ``autotune.json``."""
    import json

    try:
        return json.loads((cache_dir() / AUTOTUNE).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def remember(key: str, value: dict) -> None:
    """Store a measurement under ``key`` (nothing, quietly, where the cache is not writable:
    it is measured again next time)."""
    import json

    from fakescan.atomic import write_text

    path = cache_dir() / AUTOTUNE
    try:
        known = json.loads(path.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(known, indent=2) + "\n")
    except OSError:
        pass
