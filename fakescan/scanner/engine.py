"""The scan driver: inputs -> batches -> decoder (read-ahead) -> runtime -> rows -> output.

``ScanCore`` is the per-batch core (paths or file bytes in, rows out) with no I/O policy of
its own: the local driver below, the multi-device workers and a distributed engine all call
it. ``scan_batches`` streams: paths are pulled from the input iterator only as the bounded
decoder queue drains, so memory does not grow with the number of inputs.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fakescan.errors import UsageError
from fakescan.scanner.decoders import (
    DaliDecoder,
    Decoded,
    DecodeOptions,
    Decoder,
    PilDecoder,
    dali_available,
)
from fakescan.scanner.model import ScanModel, resolve_scan_model
from fakescan.scanner.rows import Row
from fakescan.scanner.runtimes import Runtime, make_runtime
from fakescan.scanner.workers import DEFAULT_TIMEOUT, die_with_parent

DECODERS = ("auto", "dali", "pil")


@dataclass
class ScanOptions:
    model: str
    decoder: str = "auto"
    runtime: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 32
    threshold: float | None = None
    workers: int | None = None  # PIL decode processes (default: one per core)
    reduce: bool = True  # JPEG reduce-on-decode (PIL decoder)
    max_pixels: int | None = None
    max_bytes: int | None = None
    timeout: float | None = DEFAULT_TIMEOUT  # seconds one file may take (decode workers)
    threads: int | None = None  # inference threads (default: the runtime's own choice)
    engine: str = "local"  # local | ray
    ray_address: str | None = None
    ray_actors: int | None = None
    gpus_per_actor: float = 0.0


def batched(it: Iterable[str], n: int) -> Iterator[list[str]]:
    it = iter(it)
    while batch := list(itertools.islice(it, n)):
        yield batch


def parse_devices(spec: str) -> list[str]:
    """``auto`` | ``cpu`` | ``cuda:N`` | ``all`` | a comma list -> device strings."""
    if spec == "all":
        import torch

        n = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]
    devs = [d.strip() for d in spec.split(",") if d.strip()]
    if not devs:
        raise UsageError("--device is empty")
    return devs


class ScanCore:
    """Decoded batch (or paths, or bytes) in, one ``Row`` per input out, in input order."""

    def __init__(self, sm: ScanModel, runtime: Runtime, decoder: Decoder,
                 threshold: float | None = None) -> None:
        self.sm = sm
        self.runtime = runtime
        self.decoder = decoder
        self.threshold = sm.threshold if threshold is None else float(threshold)

    def rows(self, dec: Decoded) -> list[Row]:
        card = self.sm.card
        probs = self.runtime(dec.images) if dec.ok else np.zeros((0, len(card.labels)))
        p_fake, verdict = card.p_fake(probs), card.verdict(probs, self.threshold)
        out = []
        by_item = dict(zip(dec.ok, range(len(dec.ok)), strict=True))
        for i, it in enumerate(dec.items):
            common = {"model": card.identity, "decoder": it.decoder,
                      "width": it.width, "height": it.height, "warning": it.warning}
            if it.error is not None:
                out.append(Row.failed(it.path, it.error.code, str(it.error), **common))
                continue
            k = by_item[i]
            out.append(Row(path=it.path, label=card.labels[verdict[k]], p_fake=float(p_fake[k]),
                           threshold=self.threshold, **common))
        return out

    def __call__(self, paths: list[str]) -> list[Row]:
        return self.rows(self.decoder.decode(paths))

    def scan_bytes(self, items: list[tuple[str, bytes]]) -> list[Row]:
        """Bytes in (a distributed engine read them), rows out: staged through a temp folder."""
        with tempfile.TemporaryDirectory(prefix="fakescan-") as d:
            paths = []
            for k, (_, data) in enumerate(items):
                p = os.path.join(d, f"{k:06d}")
                with open(p, "wb") as f:
                    f.write(data)
                paths.append(p)
            rows = self(paths)
        for r, (orig, _) in zip(rows, items, strict=True):
            r.path = orig
        return rows


def _pil(dopts: DecodeOptions, opts: ScanOptions, device: str) -> Decoder:
    return PilDecoder(dopts, workers=opts.workers)


def _dali(dopts: DecodeOptions, opts: ScanOptions, device: str) -> Decoder:
    if not dali_available():
        raise UsageError("--decoder dali: nvidia-dali is not installed (pip install "
                         "nvidia-dali-cuda130)")
    dev_id = int(device.split(":")[1]) if device.startswith("cuda:") else (
        0 if device == "cuda" else None)
    return DaliDecoder(dopts, opts.batch_size, dev_id, workers=opts.workers)


# The decoder registry: name -> factory(decode options, scan options, device).
DECODER_FACTORIES = {"pil": _pil, "dali": _dali}


def make_decoder(name: str, sm: ScanModel, opts: ScanOptions, device: str) -> Decoder:
    """The decoder registered under ``name``; ``auto`` picks DALI on CUDA devices (GPU
    ``mixed`` decode), Pillow in a process pool on CPUs, where it beats DALI's CPU operators
    (benchmarks/README.md)."""
    dopts = DecodeOptions(sm.preprocess, reduce=opts.reduce, timeout=opts.timeout)
    if opts.max_pixels:
        dopts = replace(dopts, max_pixels=opts.max_pixels)
    if opts.max_bytes:
        dopts = replace(dopts, max_bytes=opts.max_bytes)
    if name == "auto":
        name = "dali" if device.startswith("cuda") and dali_available() else "pil"
    if name not in DECODER_FACTORIES:
        raise UsageError(f"--decoder must be one of {', '.join(DECODERS)}")
    return DECODER_FACTORIES[name](dopts, opts, device)


def build_core(opts: ScanOptions, device: str, sm: ScanModel | None = None) -> ScanCore:
    sm = sm or resolve_scan_model(opts.model)
    if device == "auto":
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    # The decoder pool forks before the runtime starts its threads.
    decoder = make_decoder(opts.decoder, sm, opts, device)
    try:
        if opts.threads:
            import torch

            torch.set_num_threads(opts.threads)
        runtime = make_runtime(sm, opts.runtime, device, opts.precision, opts.batch_size,
                               opts.threads)
    except BaseException:
        decoder.close()
        raise
    return ScanCore(sm, runtime, decoder, opts.threshold)


def scan_batches(core: ScanCore, paths: Iterable[str], batch_size: int) -> Iterator[list[Row]]:
    """Rows per batch, decode running ahead of inference."""
    for dec in core.decoder.map(batched(paths, batch_size)):
        yield core.rows(dec)


# ---------------------------------------------------------------------------- multi-device
def _worker(opts: ScanOptions, device: str, in_q, out_q) -> None:
    die_with_parent()
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
    procs = [ctx.Process(target=_worker, args=(opts, d, in_q, out_q)) for d in devices]
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


# ---------------------------------------------------------------------------- Python API
def scan(paths: Iterable[str] | str, model: str, **options: Any) -> Iterator[Row]:
    """Yield one ``Row`` per input path (files or folders), e.g.::

        for row in fakescan.scan(["photos/"], model="resnet_ft"):
            print(row.path, row.label, row.p_fake)
    """
    from fakescan.scanner.inputs import iter_inputs

    if isinstance(paths, (str, os.PathLike)):
        paths = [str(paths)]
    opts = ScanOptions(model=model, **options)
    core = build_core(opts, opts.device)
    try:
        for rows in scan_batches(core, iter_inputs(paths), opts.batch_size):
            yield from rows
    finally:
        core.decoder.close()
