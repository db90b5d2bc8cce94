"""Decoders: a batch of paths in, uint8 model inputs (N x 3 x S x S) plus one outcome per path out.

Two implementations behind one interface (``Decoder.map`` over batches of paths, in order,
with a bounded read-ahead so decoding overlaps inference and memory stays flat):

- ``PilDecoder``: the reference path (``fakescan.imaging``) in a pool of worker processes
  (Pillow and numpy only: light to fork, no torch threads inherited).
  JPEG reduce-on-decode (``draft``) keeps at least ``REDUCE_MARGIN`` x the input size before
  the antialiased resize, so verdicts stay those of a full decode (tested).
- ``DaliDecoder``: one DALI pipeline (``mixed`` decode on a GPU, CPU operators otherwise),
  fed file bytes through ``external_source``. Only *plain* files (see ``probe``) go to DALI;
  the rest take the reference path in the same batch. One corrupt file kills a DALI
  pipeline, so a failed batch is rebuilt and bisected: the bad file gets its own row and
  every other file of the batch still gets its verdict.

Normalisation is left to the runtime (on its device): uint8 is 4x less to move than floats.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from fakescan.config import Preprocess
from fakescan.scanner.probe import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ScanError,
    looks_whole,
    probe,
    read_bytes,
)

REDUCE_MARGIN = 2


@dataclass
class Item:
    """The outcome of decoding one path (``error`` is set when it has no image)."""

    path: str
    error: ScanError | None = None
    width: int | None = None
    height: int | None = None
    decoder: str = ""


@dataclass
class Decoded:
    """A decoded batch: ``images[k]`` belongs to ``items[ok[k]]``."""

    items: list[Item]
    images: np.ndarray
    ok: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, items: list[Item], images: list[np.ndarray], ok: list[int],
           size: int) -> Decoded:
        arr = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
        return cls(items, arr, ok)


@dataclass(frozen=True)
class DecodeOptions:
    preprocess: Preprocess
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    reduce: bool = True


def _classify_decode_error(e: Exception, fmt: str, data: bytes) -> ScanError:
    msg = str(e) or type(e).__name__
    if isinstance(e, EOFError) or "truncated" in msg or not looks_whole(fmt, data):
        return ScanError("truncated", f"{fmt} data ends early: {msg}")
    return ScanError("corrupt", f"{fmt} data cannot be decoded: {msg}")


def reference_decode(data: bytes, opts: DecodeOptions, fmt: str, reduce: bool | None = None):
    """Decode bytes with the reference path -> uint8 CHW numpy array."""
    from PIL import Image

    from fakescan.imaging import decode_rgb, resize_array

    reduce = opts.reduce if reduce is None else reduce
    draft = REDUCE_MARGIN * opts.preprocess.input_size if reduce else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = decode_rgb(data, draft=draft)
            im.load()
    except Image.DecompressionBombError as e:
        raise ScanError("too_large", str(e)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        raise _classify_decode_error(e, fmt, data) from None
    return resize_array(im, opts.preprocess)


def pil_decode_paths(paths: list[str], opts: DecodeOptions) -> Decoded:
    """Read, probe and decode ``paths`` with the reference path (runs in a worker process)."""
    items, images, ok = [], [], []
    for p in paths:
        item = Item(p, decoder="pil")
        try:
            data = read_bytes(p, opts.max_bytes)
            pr = probe(data, opts.max_pixels)
            item.width, item.height = pr.width, pr.height
            images.append(reference_decode(data, opts, pr.format))
            ok.append(len(items))
        except ScanError as e:
            item.error = e
        items.append(item)
    return Decoded.of(items, images, ok, opts.preprocess.input_size)


def _die_with_parent() -> None:
    """Linux: a decode worker gets SIGKILL when the scan that forked it dies (even by -9)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Decoder:
    name = "base"

    def decode(self, paths: list[str]) -> Decoded:
        raise NotImplementedError

    def map(self, batches: Iterable[list[str]], depth: int = 2) -> Iterator[Decoded]:
        """Decode batches in order, ``depth`` batches ahead of the consumer (a thread)."""
        q: queue.Queue = queue.Queue(maxsize=depth)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            try:
                for b in batches:
                    if stop.is_set():
                        return
                    q.put(self.decode(b))
                q.put(done)
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                q.put(e)

        t = threading.Thread(target=produce, daemon=True, name=f"{self.name}-decode")
        t.start()
        try:
            while (x := q.get()) is not done:
                if isinstance(x, BaseException):
                    raise x
                yield x
        finally:
            stop.set()
            while t.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    t.join(0.05)

    def close(self) -> None:
        pass


class PilDecoder(Decoder):
    """The reference decoder in ``workers`` processes (0: in this process)."""

    name = "pil"

    def __init__(self, opts: DecodeOptions, workers: int | None = None) -> None:
        self.opts = opts
        self.workers = max(os.cpu_count() or 1, 1) if workers is None else workers
        self._pool = None
        if self.workers > 0:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("fork"), initializer=_die_with_parent
            )  # fork is safe here: workers run Pillow and numpy only, never torch
            # Start every worker now, before the runtime starts its threads (a fork after
            # OpenMP/oneDNN thread pools exist copies them half-alive into the child).
            self._pool.submit(int).result()

    def decode(self, paths: list[str]) -> Decoded:
        return pil_decode_paths(paths, self.opts)

    def map(self, batches: Iterable[list[str]], depth: int | None = None) -> Iterator[Decoded]:
        if self._pool is None:
            yield from (self.decode(b) for b in batches)
            return
        depth = depth or 2 * self.workers
        pending: deque = deque()
        it = iter(batches)
        for b in it:
            pending.append(self._pool.submit(pil_decode_paths, b, self.opts))
            if len(pending) >= depth:
                break
        while pending:
            res = pending.popleft().result()
            for b in it:
                pending.append(self._pool.submit(pil_decode_paths, b, self.opts))
                break
            yield res

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaliDecoder(Decoder):
    """DALI decode + resize (GPU ``mixed`` when ``device_id`` is set, CPU operators otherwise)."""

    name = "dali"

    def __init__(self, opts: DecodeOptions, batch_size: int, device_id: int | None = None,
                 threads: int | None = None) -> None:
        self.opts = opts
        self.batch_size = batch_size
        self.device_id = device_id
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._pipe = None
        self.rebuilds = 0

    def _build(self):
        from nvidia.dali import fn, pipeline_def, types

        s = self.opts.preprocess.input_size
        gpu = self.device_id is not None

        @pipeline_def(batch_size=self.batch_size, num_threads=self.threads,
                      device_id=self.device_id, prefetch_queue_depth=1, exec_dynamic=False)
        def graph():
            raw = fn.external_source(name="raw", dtype=types.UINT8, ndim=1, no_copy=False)
            img = fn.decoders.image(raw, device="mixed" if gpu else "cpu",
                                    output_type=types.RGB)
            img = fn.resize(img, resize_x=s, resize_y=s, antialias=True,
                            interp_type=types.INTERP_LINEAR)
            return fn.transpose(img, perm=[2, 0, 1])

        pipe = graph()
        pipe.build()
        return pipe

    def _run(self, blobs: list[np.ndarray]) -> list[np.ndarray]:
        if self._pipe is None:
            self._pipe = self._build()
        self._pipe.feed_input("raw", blobs)
        (out,) = self._pipe.run()
        if self.device_id is not None:
            out = out.as_cpu()
        return [np.array(out.at(i)) for i in range(len(blobs))]

    def _run_isolating(self, blobs: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """Run DALI on ``blobs``; on failure rebuild the pipeline and bisect to the bad ones."""
        try:
            return self._run(blobs)
        except RuntimeError as e:
            self._pipe = None  # "pipeline object is no longer valid": start a fresh one
            self.rebuilds += 1
            if len(blobs) == 1:
                return [e]
            mid = len(blobs) // 2
            return self._run_isolating(blobs[:mid]) + self._run_isolating(blobs[mid:])

    def decode(self, paths: list[str]) -> Decoded:
        items = [Item(p, decoder="dali") for p in paths]
        out: list[np.ndarray | None] = [None] * len(paths)
        plain: list[tuple[int, bytes, str]] = []  # DALI's share
        exotic: list[tuple[int, bytes, str]] = []  # the reference path's share
        for i, p in enumerate(paths):
            try:
                data = read_bytes(p, self.opts.max_bytes)
                pr = probe(data, self.opts.max_pixels)
            except ScanError as e:
                items[i].error = e
                continue
            items[i].width, items[i].height = pr.width, pr.height
            (plain if pr.plain else exotic).append((i, data, pr.format))
        if plain:
            blobs = [np.frombuffer(data, np.uint8) for _, data, _ in plain]
            for entry, res in zip(plain, self._run_isolating(blobs), strict=True):
                if isinstance(res, np.ndarray):
                    out[entry[0]] = res
                else:  # DALI refused it: the reference decoder names the error (or decodes it)
                    exotic.append(entry)
        for i, data, fmt in exotic:
            items[i].decoder = "pil"
            try:
                out[i] = reference_decode(data, self.opts, fmt, reduce=False)
            except ScanError as e:
                items[i].error = e
        ok = [i for i, x in enumerate(out) if x is not None]
        return Decoded.of(items, [out[i] for i in ok], ok, self.opts.preprocess.input_size)

    def close(self) -> None:
        self._pipe = None


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True
