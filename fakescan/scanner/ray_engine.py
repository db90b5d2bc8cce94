"""The scan inside Ray Data: beyond one node, an existing distributed engine runs the core.

Paths (as bytes, so names that are not UTF-8 survive Arrow) flow through ``map_batches`` into
``ScanActor``, a stateful class that loads the model once per actor and calls the same
``ScanCore`` as a local scan; rows come back as JSON strings and are written by the driver
with the usual output (resume, lock, fsync). Inputs are fed in chunks so a list of tens of
millions of paths never sits in the driver's memory. ``ray`` is optional: ``pip install
'fakescan[ray]'``; every node needs fakescan installed and read access to the paths.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from fakescan.device import set_threads
from fakescan.errors import UsageError
from fakescan.scanner.core import build_core
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.rows import Row

CHUNK = 100_000  # paths per Ray dataset: bounds driver memory for endless input streams


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray Data: pip install 'fakescan[ray]' (or pip install "
            "'ray[data]')"
        ) from None
    return ray


class ScanActor:
    """One per actor slot: the model is loaded once, then each batch of paths -> rows."""

    def __init__(self, options: dict[str, Any], device: str) -> None:
        opts = ScanOptions(**options)
        set_threads(opts.threads)  # an entry point: the actor's process is its own
        self.core = build_core(opts, device)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        paths = [os.fsdecode(bytes(p)) for p in batch["path"]]
        rows = self.core(paths)
        return {"row": np.array([json.dumps(r.to_dict(), ensure_ascii=True) for r in rows],
                                dtype=object)}


def scan_ray(opts: ScanOptions, paths: Iterable[str], *, address: str | None = None,
             actors: int | None = None, gpus_per_actor: float = 0.0,
             cpus_per_actor: float = 1.0) -> Iterator[list[Row]]:
    """Rows per Ray batch, one per path."""
    ray = import_ray()
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": "ERROR"}
        if address:
            kw["address"] = address
        ray.init(**kw)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if actors is None:
        res = ray.cluster_resources()
        if gpus_per_actor > 0:
            actors = max(1, int(res.get("GPU", 0) // gpus_per_actor))
        else:
            actors = max(1, int(res.get("CPU", 1) // max(cpus_per_actor, 1)))
    device = "cuda:0" if gpus_per_actor > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES
    # Inside an actor: one supervised decode process (Ray provides the parallelism; the
    # process keeps a file that crashes or hangs a decoder from taking the actor down).
    options = dataclasses.asdict(dataclasses.replace(
        opts, device=device, workers=1, threads=max(1, int(cpus_per_actor)), engine="local"))
    todo = iter(paths)
    while chunk := list(itertools.islice(todo, CHUNK)):
        ds = ray.data.from_items([{"path": os.fsencode(p)} for p in chunk])
        ds = ds.map_batches(
            ScanActor, fn_constructor_kwargs={"options": options, "device": device},
            batch_size=opts.batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor or None,
            num_cpus=cpus_per_actor, batch_format="numpy",
        )
        for batch in ds.iter_batches(batch_size=opts.batch_size, batch_format="numpy"):
            yield [Row(**json.loads(s)) for s in batch["row"]]
