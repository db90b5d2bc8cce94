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
