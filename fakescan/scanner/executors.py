"""Executors: where the scan core runs. Each turns (options, model, paths) into a ``Stream``
of row batches, one row per path in input order, behind one signature:

- ``local``: this process (decode workers + one runtime);
- ``devices``: one worker process per device (``--device cuda:0,cuda:1`` or ``all``) over
  shards of the input, rows collected here;
- ``ray``: the core inside Ray Data actors (``--engine ray``; ``ray_engine.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fakescan.device import parse_devices, set_threads
from fakescan.errors import UsageError
from fakescan.scanner.core import batched, build_core, scan_batches
from fakescan.scanner.model import ScanModel
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.rows import Row
from fakescan.scanner.workers import die_with_parent


@dataclass
class Stream:
    """Row batches, what produced them (for the summary), and what to release at the end."""

    batches: Iterator[list[Row]]
    config: dict[str, Any] = field(default_factory=dict)
    close: Any = lambda: None  # noqa: E731


def local(opts: ScanOptions, sm: ScanModel, paths: Iterable[str]) -> Stream:
    core = build_core(opts, parse_devices(opts.device)[0], sm)
    config = {"device": core.runtime.device, "decoder": core.decoder.name,
              "runtime": core.runtime.name, "precision": core.runtime.precision,
              "batch_size": opts.batch_size, "threshold": core.threshold}
    return Stream(scan_batches(core, paths, opts.batch_size), config, core.decoder.close)


def devices(opts: ScanOptions, sm: ScanModel, paths: Iterable[str]) -> Stream:
    devs = parse_devices(opts.device)
    return Stream(scan_multi(opts, devs, paths),
                  {"devices": devs, "decoder": opts.decoder, "runtime": opts.runtime})


def ray(opts: ScanOptions, sm: ScanModel, paths: Iterable[str]) -> Stream:
    from fakescan.scanner.ray_engine import scan_ray

    config = {"engine": "ray", "actors": opts.ray_actors or "auto",
              "gpus_per_actor": opts.gpus_per_actor, "decoder": opts.decoder,
              "runtime": opts.runtime}
    return Stream(scan_ray(opts, paths, address=opts.ray_address, actors=opts.ray_actors,
                           gpus_per_actor=opts.gpus_per_actor), config)


# The executor registry: name -> executor(options, model, paths) -> Stream.
EXECUTORS = {"local": local, "devices": devices, "ray": ray}


def executor_for(opts: ScanOptions) -> str:
    if opts.engine == "ray":
        return "ray"
    return "devices" if len(parse_devices(opts.device)) > 1 else "local"


def stream(opts: ScanOptions, sm: ScanModel, paths: Iterable[str]) -> Stream:
    """The rows of ``paths`` with the executor ``opts`` call for."""
    return EXECUTORS[executor_for(opts)](opts, sm, paths)


def _worker(opts: ScanOptions, device: str, in_q, out_q, settings) -> None:
    from fakescan.settings import restore

    die_with_parent()
    restore(settings)  # a spawned process: the parent's store and cache
    set_threads(opts.threads)  # an entry point: this process is the device's own
    try:
        core = build_core(opts, device)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out_q.put(("fatal", f"{device}: {e}"))
        return
    try:
        while (batch := in_q.get()) is not None:
            out_q.put(("rows", [r.to_dict() for r in core(batch)]))
    finally:
        core.decoder.close()


def scan_multi(opts: ScanOptions, devices: list[str],
               paths: Iterable[str]) -> Iterator[list[Row]]:
    """One worker process per device over shards of the stream; rows come back here."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("spawn")
    in_q, out_q = ctx.Queue(maxsize=2 * len(devices)), ctx.Queue()
    # Each device worker has its own supervised decode pool (a share of the cores), so it
    # may not be daemonic; it dies with this process all the same (PDEATHSIG, finally below).
    if opts.workers is None:
        opts = replace(opts, workers=max(1, (os.cpu_count() or 1) // len(devices)))
    from fakescan.settings import snapshot

    procs = [ctx.Process(target=_worker, args=(opts, d, in_q, out_q, snapshot()))
             for d in devices]
    for p in procs:
        p.start()
    outstanding = 0  # batches handed out whose rows have not come back

    def receive(block: bool) -> Iterator[list[Row]]:
        """Rows that have come back: all that are ready, or (``block``) at least one batch."""
        nonlocal outstanding
        while outstanding:
            try:
                kind, body = out_q.get(timeout=600) if block else out_q.get_nowait()
            except queue.Empty:
                return
            if kind == "fatal":
                raise UsageError(f"scan worker failed: {body}")
            if kind == "rows":
                outstanding -= 1
                yield [Row(**r) for r in body]
                if block:
                    return

    try:
        for batch in batched(paths, opts.batch_size):
            while True:  # hand the batch out; while the queue is full, collect rows
                try:
                    in_q.put(batch, timeout=0.05)
                    break
                except queue.Full:
                    yield from receive(block=False)
            outstanding += 1
        for _ in procs:
            in_q.put(None)
        while outstanding:
            yield from receive(block=True)
        for p in procs:  # every row is back: let the workers finish and close their decoders
            p.join(30)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(5)
