"""Process-wide settings the entry points set: where the model store and the cache are.

Library code reads ``SETTINGS``; only entry points (the command line's ``main``) look at
environment variables (``FAKESCAN_MODELS``, ``FAKESCAN_CACHE``) and call ``configure``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    models_dir: Path = Path("models")  # the store `--model NAME` resolves in
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/fakescan or ~/.cache/fakescan


SETTINGS = Settings()


def configure(*, models_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> None:
    if models_dir:
        SETTINGS.models_dir = Path(models_dir)
    if cache_dir:
        SETTINGS.cache_dir = Path(cache_dir)


def configure_from(env: Mapping[str, str]) -> None:
    """Apply ``FAKESCAN_MODELS`` and ``FAKESCAN_CACHE`` from ``env`` (an entry point's)."""
    configure(models_dir=env.get("FAKESCAN_MODELS"), cache_dir=env.get("FAKESCAN_CACHE"))


def snapshot() -> Settings:
    """A copy, for a worker process to ``restore``."""
    return dataclasses.replace(SETTINGS)


def restore(s: Settings) -> None:
    SETTINGS.models_dir, SETTINGS.cache_dir = s.models_dir, s.cache_dir
