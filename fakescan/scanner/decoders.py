"""Decoders: a batch of paths in, uint8 model inputs (N x 3 x S x S) plus one outcome per path out.

Two implementations behind one interface (``Decoder.map`` over batches of paths, in order,
with a bounded read-ahead so decoding overlaps inference and memory stays flat):

- ``PilDecoder``: the reference path (``fakescan.imaging``), one file at a time in supervised
  worker processes (``workers.WorkerPool``: a file that crashes, hangs or floods memory gets
  its own error row, and the scan goes on). JPEG reduce-on-decode (``draft``) keeps at least
  ``REDUCE_MARGIN`` x the input size before the antialiased resize, so verdicts stay those of
  a full decode (tested).
- ``DaliDecoder``: one DALI pipeline (``mixed`` decode on a GPU, CPU operators otherwise),
  fed file bytes through ``external_source``. The worker pool reads and probes every file
  first; only *plain* files (see ``probe``) go to DALI, the rest are decoded by the
  reference path in the workers. One corrupt file kills a DALI pipeline, so a failed batch is
  rebuilt and bisected: the bad file gets its own row and every other file of the batch
  still gets its verdict.

``workers=0`` decodes in the scan process itself: the same per-file error boundary, but no
protection against a decoder that crashes or hangs.

Normalisation is left to the runtime (on its device): uint8 is 4x less to move than floats.
On a GPU, DALI's output stays there: the batch reaches the runtime as a CUDA tensor (files the
reference path decoded are copied up to join it), never a host round trip.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from fakescan.config import DECODE_TIMEOUT_S, Preprocess
from fakescan.scanner.guard import classify
from fakescan.scanner.probe import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ScanError,
    probe,
    read_bytes,
)
from fakescan.scanner.workers import Outcome, WorkerPool, run_here

REDUCE_MARGIN = 2
# Decoded by DALI, an image's score can differ from the reference path's: its resize rounds to
# other grey levels (decode is bit for bit the same on the CPU), and a detector of fine detail
# reacts to one grey level. The shipped default on 5,241 real and fake faces of the shared
# folders (DALI's CPU operators against Pillow): log-odds changed by at most 1.19 within 2 of
# the threshold, 1.88 anywhere, and 1.2% of DFDC's verdicts turned. So an image DALI decoded
# whose score lies within this margin of the threshold (log-odds) is decoded again by the
# reference path and scored again (``ScanCore``): verdicts are then ``--decoder pil``'s. 35%
# above the largest change measured, the rule ``runtimes.BF16_VERDICT_MARGIN`` follows.
DALI_VERDICT_MARGIN = 1.6


@dataclass
class Item:
    """The outcome of decoding one path (``error`` is set when it has no image)."""

    path: str
    error: ScanError | None = None
    width: int | None = None
    height: int | None = None
    decoder: str = ""
    warning: str = ""
    faces: int | None = None  # faces found (face models only; 0: none)


@dataclass
class Decoded:
    """A decoded batch: ``images[k]`` belongs to ``items[ok[k]]`` (a face model's item may
    own several, one per face, ``boxes[k]`` being that face's crop box)."""

    items: list[Item]
    images: np.ndarray
    ok: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int] | None] = field(default_factory=list)

    @classmethod
    def of(cls, items: list[Item], images: list, ok: list[int], size: int,
           boxes: list | None = None) -> Decoded:
        """``images``: numpy arrays, or some of them torch tensors on a GPU (DALI ``mixed``
        output): then the batch is stacked on that GPU and never visits the host."""
        if any(not isinstance(x, np.ndarray) for x in images):
            arr = _stack_on_gpu(images)
        else:
            arr = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
        return cls(items, arr, ok, boxes if boxes is not None else [None] * len(ok))


def _stack_on_gpu(images: list):
    """One uint8 batch on the GPU that holds the torch tensors among ``images`` (host arrays,
    from the reference decoder, are copied over)."""
    import torch

    dev = next(x.device for x in images if isinstance(x, torch.Tensor))
    return torch.stack([x if isinstance(x, torch.Tensor) else torch.from_numpy(x).to(dev)
                        for x in images])


def _dali_gpu_to_torch(out, device_id: int):
    """A DALI GPU batch (N x 3 x S x S uint8, dense) copied into a torch tensor on the same
    GPU, on the default stream the runtime uses (so the copy is ordered with inference), and
    waited for: DALI reuses its output buffers at the next run."""
    import torch
    from nvidia.dali.plugin.pytorch import feed_ndarray

    t = out.as_tensor()
    x = torch.empty(tuple(t.shape()), dtype=torch.uint8, device=torch.device("cuda", device_id))
    stream = torch.cuda.current_stream(x.device)
    feed_ndarray(t, x, cuda_stream=stream)
    stream.synchronize()
    return x


@dataclass(frozen=True)
class DecodeOptions:
    preprocess: Preprocess
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    reduce: bool = True
    timeout: float | None = DECODE_TIMEOUT_S  # seconds per file (worker processes only)
    face_fallback: bool = False  # face models: the whole image where no face is found

    @property
    def memory_budget(self) -> int:
        """Address space a decode worker may add: room for the largest allowed image
        decoded, converted and resized, with headroom."""
        return 16 * self.max_pixels + (1 << 30)


@dataclass
class FileImage:
    """What a worker sends back for one file: its size, and the model input unless the file
    is left to DALI (``image`` is ``None``; ``data`` then holds the bytes it read, so the file
    is read once); for a face model, each face's box and input (``faces``; empty when the
    detector found none)."""

    width: int
    height: int
    image: np.ndarray | None = None
    faces: list[tuple[tuple[int, int, int, int], np.ndarray]] | None = None
    data: bytes | None = None


def _decoded(data: bytes, opts: DecodeOptions, fmt: str, reduce: bool):
    from fakescan.imaging import decode_rgb

    # a face crop needs the detail a whole-image reduction would drop: full decode then
    draft = REDUCE_MARGIN * opts.preprocess.input_size if (
        reduce and opts.preprocess.crop == "none") else None
    try:
        im = decode_rgb(data, draft=draft)
        im.load()
        return im
    except Exception as e:  # noqa: BLE001 - whatever the decoder raises is this file's row
        raise classify(e, fmt, data) from None


def reference_decode(data: bytes, opts: DecodeOptions, fmt: str, reduce: bool | None = None):
    """Decode bytes with the reference path -> the whole image as a uint8 CHW numpy array."""
    from fakescan.imaging import resize_array

    im = _decoded(data, opts, fmt, opts.reduce if reduce is None else reduce)
    try:
        return resize_array(im, opts.preprocess)
    except Exception as e:  # noqa: BLE001
        raise classify(e, fmt, data) from None


def _reference_file(data: bytes, pr, opts: DecodeOptions, reduce: bool) -> FileImage:
    """The reference path's outcome for a probed file: the whole image, or its faces."""
    if opts.preprocess.crop == "face":
        from fakescan.imaging import face_inputs, resize_array

        im = _decoded(data, opts, pr.format, reduce)
        try:
            faces = face_inputs(im, opts.preprocess)
            if not faces and opts.face_fallback:
                faces = [((0, 0, im.width, im.height), resize_array(im, opts.preprocess))]
            return FileImage(pr.width, pr.height, faces=faces)
        except Exception as e:  # noqa: BLE001
            raise classify(e, pr.format, data) from None
    return FileImage(pr.width, pr.height, reference_decode(data, opts, pr.format, reduce))


def decode_file(path: str, opts: DecodeOptions) -> FileImage:
    """Read, probe and decode one file with the reference path (a per-file function)."""
    data = read_bytes(path, opts.max_bytes)
    return _reference_file(data, probe(data, opts.max_pixels), opts, opts.reduce)


def probe_file(path: str, opts: DecodeOptions) -> FileImage:
    """Read and probe one file; decode it with the reference path unless DALI takes it (a
    face model's files all take the reference path: the crop happens there)."""
    data = read_bytes(path, opts.max_bytes)
    pr = probe(data, opts.max_pixels)
    if pr.plain and opts.preprocess.crop == "none":
        return FileImage(pr.width, pr.height, data=data)
    return _reference_file(data, pr, opts, reduce=False)


def full_decode_file(path: str, opts: DecodeOptions) -> FileImage:
    """``decode_file`` at full resolution (DALI's fallback: DALI never reduces on decode)."""
    data = read_bytes(path, opts.max_bytes)
    return _reference_file(data, probe(data, opts.max_pixels), opts, reduce=False)


def pil_decode_paths(paths: list[str], opts: DecodeOptions) -> Decoded:
    """Decode ``paths`` with the reference path in this process (no worker)."""
    return _assemble(paths, run_here(decode_file, opts, paths), "pil",
                     opts.preprocess.input_size)


def _assemble(paths: list[str], outcomes: list[Outcome], decoder: str, size: int) -> Decoded:
    items, images, ok, boxes = [], [], [], []
    for p, o in zip(paths, outcomes, strict=True):
        item = Item(p, error=o.error, decoder=decoder, warning=o.warning)
        v = o.value
        if v is not None:
            item.width, item.height = v.width, v.height
            if item.error is None and v.faces is not None:
                item.faces = len(v.faces)
                for box, x in v.faces:
                    images.append(x)
                    ok.append(len(items))
                    boxes.append(box)
            elif item.error is None and v.image is not None:
                images.append(v.image)
                ok.append(len(items))
                boxes.append(None)
        items.append(item)
    return Decoded.of(items, images, ok, size, boxes)


def threaded(it: Iterable, depth: int, name: str) -> Iterator:
    """``it``'s values, computed up to ``depth`` ahead in a thread (exceptions re-raised)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for x in it:
                if stop.is_set():
                    return
                q.put(x)
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(e)

    t = threading.Thread(target=produce, daemon=True, name=name)
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


class Decoder:
    name = "base"

    def __init__(self, opts: DecodeOptions, workers: int | None = None) -> None:
        self.opts = opts
        self.workers = max(os.cpu_count() or 1, 1) if workers is None else workers
        self.pool = WorkerPool(self.workers, timeout=opts.timeout,
                               memory_budget=opts.memory_budget) if self.workers > 0 else None

    def outcomes(self, fn, paths: list[str]) -> list[Outcome]:
        """``fn`` over ``paths``: in the worker pool, or here without one."""
        if self.pool is None:
            return run_here(fn, self.opts, paths)
        return self.pool.submit(fn, self.opts, paths).result()

    def outcome_batches(self, fn, batches: Iterable[list[str]],
                        depth: int) -> Iterator[tuple[list[str], list[Outcome]]]:
        if self.pool is None:
            return ((b, run_here(fn, self.opts, b)) for b in batches)
        return self.pool.map(fn, self.opts, batches, depth)

    def reference_inputs(self, paths: list[str]) -> list[np.ndarray | None]:
        """The reference path's model inputs for ``paths`` (what ``--decoder pil`` scores),
        in this decoder's workers; ``None`` where it fails."""
        return [o.value.image if o.error is None and o.value is not None else None
                for o in self.outcomes(decode_file, paths)]

    def decode(self, paths: list[str]) -> Decoded:
        raise NotImplementedError

    def map(self, batches: Iterable[list[str]], depth: int | None = None) -> Iterator[Decoded]:
        raise NotImplementedError

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class PilDecoder(Decoder):
    """The reference decoder in ``workers`` supervised processes (0: in this process)."""

    name = "pil"

    def decode(self, paths: list[str]) -> Decoded:
        return _assemble(paths, self.outcomes(decode_file, paths), self.name,
                         self.opts.preprocess.input_size)

    def map(self, batches: Iterable[list[str]], depth: int | None = None) -> Iterator[Decoded]:
        size = self.opts.preprocess.input_size
        for b, outs in self.outcome_batches(decode_file, batches, depth or 2 * self.workers):
            yield _assemble(b, outs, self.name, size)


class DaliDecoder(Decoder):
    """DALI decode + resize (GPU ``mixed`` when ``device_id`` is set, CPU operators otherwise);
    reading, probing and the reference path's share in the worker pool."""

    name = "dali"

    def __init__(self, opts: DecodeOptions, batch_size: int, device_id: int | None = None,
                 threads: int | None = None, workers: int | None = None,
                 on_device: bool = True) -> None:
        super().__init__(opts, workers)
        self.batch_size = batch_size
        self.device_id = device_id
        self.on_device = on_device  # GPU: hand the runtime a GPU batch (no host round trip)
        self.hw_decoder_load: float | None = None  # share for nvJPEG's hardware decoder
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
            hw = {} if self.hw_decoder_load is None or not gpu else {
                "hw_decoder_load": self.hw_decoder_load}
            img = fn.decoders.image(raw, device="mixed" if gpu else "cpu",
                                    output_type=types.RGB, **hw)
            img = fn.resize(img, resize_x=s, resize_y=s, antialias=True,
                            interp_type=types.INTERP_LINEAR)
            return fn.transpose(img, perm=[2, 0, 1])

        pipe = graph()
        pipe.build()
        return pipe

    def _run(self, blobs: list[np.ndarray]) -> list:
        """Decoded inputs for ``blobs``: numpy arrays on the CPU pipeline; on a GPU, views of
        one torch batch that stays on the device (``on_device``) or host copies."""
        if self._pipe is None:
            self._pipe = self._build()
        self._pipe.feed_input("raw", blobs)
        (out,) = self._pipe.run()
        if self.device_id is not None:
            if self.on_device:
                return list(_dali_gpu_to_torch(out, self.device_id))
            out = out.as_cpu()
        return [np.array(out.at(i)) for i in range(len(blobs))]

    def _run_isolating(self, blobs: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """Run DALI on ``blobs``; on failure rebuild the pipeline and bisect to the bad ones."""
        try:
            return self._run(blobs)
        except Exception as e:  # noqa: BLE001 - DALI reports a bad file by failing the batch
            self._pipe = None  # "pipeline object is no longer valid": start a fresh one
            self.rebuilds += 1
            if len(blobs) == 1:
                return [e]
            mid = len(blobs) // 2
            return self._run_isolating(blobs[:mid]) + self._run_isolating(blobs[mid:])

    def _finish(self, paths: list[str], outs: list[Outcome]) -> Decoded:
        """Probed files -> decoded batch: DALI for the plain ones, the rest already decoded."""
        size = self.opts.preprocess.input_size
        dec = _assemble(paths, outs, "pil", size)
        if self.opts.preprocess.crop != "none":  # faces are cut by the reference path
            return dec
        images = dict(zip(dec.ok, dec.images, strict=True))
        plain: list[tuple[int, np.ndarray]] = []  # DALI's share
        for i, (item, o) in enumerate(zip(dec.items, outs, strict=True)):
            if item.error is None and o.value is not None and o.value.image is None:
                try:
                    data = o.value.data or read_bytes(item.path, self.opts.max_bytes)
                    plain.append((i, np.frombuffer(data, np.uint8)))
                except ScanError as e:
                    item.error = e
        refused: list[int] = []
        if plain:
            results = self._run_isolating([blob for _, blob in plain])
            for (i, _), res in zip(plain, results, strict=True):
                if not isinstance(res, Exception):
                    images[i] = res
                    dec.items[i].decoder = "dali"
                else:  # DALI refused it: the reference decoder names the error (or decodes it)
                    refused.append(i)
        if refused:
            again = self.outcomes(full_decode_file, [paths[i] for i in refused])
            for i, o in zip(refused, again, strict=True):
                item = dec.items[i]
                item.error, item.warning = o.error, "; ".join(
                    x for x in (item.warning, o.warning) if x)
                if o.error is None and o.value is not None:
                    images[i] = o.value.image
        ok = sorted(images)
        return Decoded.of(dec.items, [images[i] for i in ok], ok, size)

    def decode(self, paths: list[str]) -> Decoded:
        return self._finish(paths, self.outcomes(probe_file, paths))

    def map(self, batches: Iterable[list[str]], depth: int | None = None) -> Iterator[Decoded]:
        probed = self.outcome_batches(probe_file, batches, depth or max(2, self.workers))
        return threaded((self._finish(b, o) for b, o in probed), 2, "dali-decode")

    def close(self) -> None:
        self._pipe = None
        super().close()


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True
