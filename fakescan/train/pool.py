"""One process pool for the training side's per-image CPU work (decode + resize, face
landmarks): single-threaded torch in each worker, so no OpenMP pool is forked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def _one_thread() -> None:
    torch.set_num_threads(1)


def map_images(fn: Callable[[T], R], items: Sequence[T], workers: int = 2) -> list[R]:
    """``[fn(x) for x in items]``, spread over ``workers`` processes when it pays."""
    if workers > 1 and len(items) > 16:
        with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
            return list(pool.map(fn, items, chunksize=16))
    return [fn(x) for x in items]
