"""The per-batch scan core: decoded batch (or paths, or bytes) in, one ``Row`` per input out.

``ScanCore`` has no I/O policy of its own: the local executor, the per-device workers and Ray
actors all call it. ``build_core`` picks the decoder (registry below) and the runtime for a
device; ``scan_batches`` streams, pulling paths from the input only as the bounded decoder
queue drains, so memory does not grow with the number of inputs.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator

import numpy as np

from fakescan.choices import DecoderName
from fakescan.device import cuda_index, resolve_device
from fakescan.errors import UsageError
from fakescan.scanner.decoders import (
    DALI_VERDICT_MARGIN,
    DaliDecoder,
    Decoded,
    DecodeOptions,
    Decoder,
    PilDecoder,
    dali_available,
)
from fakescan.scanner.model import ScanModel, resolve_scan_model
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.rows import Row
from fakescan.scanner.runtimes import Runtime, make_runtime, near_threshold


def batched(it: Iterable[str], n: int) -> Iterator[list[str]]:
    it = iter(it)
    while batch := list(itertools.islice(it, n)):
        yield batch


class ScanCore:
    """Decoded batch (or paths, or bytes) in, one ``Row`` per input out, in input order."""

    def __init__(self, sm: ScanModel, runtime: Runtime, decoder: Decoder,
                 threshold: float | None = None, per_face: bool = False,
                 dali_guard: bool = True) -> None:
        self.sm = sm
        self.runtime = runtime
        self.decoder = decoder
        self.threshold = sm.card.threshold if threshold is None else float(threshold)
        self.per_face = per_face
        self.dali_guard = dali_guard
        self.redecoded = 0  # images DALI decoded that the reference path decoded again

    def rows(self, dec: Decoded) -> list[Row]:
        """One row per item; a face model's file is judged by its most suspicious face (or,
        with ``per_face``, gets one row per face)."""
        card = self.sm.card
        probs = self.runtime(dec.images) if dec.ok else np.zeros((0, len(card.labels)))
        if self.dali_guard:
            probs = self._as_reference(dec, probs)
        p_fake, verdict = card.p_fake(probs), card.verdict(probs, self.threshold)
        inputs: dict[int, list[int]] = {}
        for k, i in enumerate(dec.ok):
            inputs.setdefault(i, []).append(k)
        out = []
        for i, it in enumerate(dec.items):
            common = {"model": card.identity, "decoder": it.decoder,
                      "width": it.width, "height": it.height, "warning": it.warning}
            if it.error is not None:
                out.append(Row.failed(it.path, it.error.code, str(it.error), **common))
                continue
            ks = inputs.get(i, [])
            if it.faces == 0 or not ks:
                out.append(Row.no_face(it.path, **common))
                continue
            if not (self.per_face and it.faces is not None):  # the most suspicious input
                ks = [max(ks, key=lambda k: p_fake[k])]
            for k in ks:
                box = dec.boxes[k]
                face = {} if it.faces is None else {
                    "faces": it.faces, "face_box": ",".join(map(str, box)) if box else "",
                    "face": ks.index(k) + 1 if self.per_face else None}
                out.append(Row(path=it.path, label=card.labels[verdict[k]],
                               p_fake=float(p_fake[k]), threshold=self.threshold, **common,
                               **face))
        return out

    def _as_reference(self, dec: Decoded, probs: np.ndarray) -> np.ndarray:
        """Images DALI decoded whose score lies within ``DALI_VERDICT_MARGIN`` of the
        threshold, decoded again by the reference path and scored again: their verdicts are
        then the ones ``--decoder pil`` gives (the row says ``pil``). Where the reference path
        fails on a file DALI read, DALI's score stands."""
        near = near_threshold(self.sm.card.p_fake(probs), self.threshold, DALI_VERDICT_MARGIN)
        ks = [int(k) for k in np.flatnonzero(near)
              if dec.items[dec.ok[k]].decoder == DecoderName.dali.value]
        if not ks:
            return probs
        again = self.decoder.reference_inputs([dec.items[dec.ok[k]].path for k in ks])
        redo = [(k, x) for k, x in zip(ks, again, strict=True) if x is not None]
        if redo:
            probs = probs.copy()
            probs[[k for k, _ in redo]] = self.runtime(np.stack([x for _, x in redo]))
            for k, _ in redo:
                dec.items[dec.ok[k]].decoder = DecoderName.pil.value
            self.redecoded += len(redo)
        return probs

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
        raise UsageError("the dali decoder needs nvidia-dali (pip install nvidia-dali-cuda130)")
    return DaliDecoder(dopts, opts.batch_size, cuda_index(device), workers=opts.workers)


# The decoder registry: name -> factory(decode options, scan options, device).
DECODER_FACTORIES = {DecoderName.pil: _pil, DecoderName.dali: _dali}


def make_decoder(name: str, sm: ScanModel, opts: ScanOptions, device: str) -> Decoder:
    """The decoder registered under ``name``; ``auto`` picks DALI on CUDA devices (GPU
    ``mixed`` decode), Pillow in a process pool on CPUs, where it beats DALI's CPU operators
    (benchmarks/README.md)."""
    if name == DecoderName.auto:
        name = (DecoderName.dali if cuda_index(device) is not None and dali_available()
                else DecoderName.pil)
    if name not in DECODER_FACTORIES:
        raise UsageError(f"unknown decoder {name!r}; choose one of "
                         f"{', '.join(DecoderName)}")
    return DECODER_FACTORIES[name](opts.decode_options(sm.card.preprocess), opts, device)


def build_core(opts: ScanOptions, device: str, sm: ScanModel | None = None) -> ScanCore:
    sm = sm or resolve_scan_model(opts.model)
    device = resolve_device(device)
    # The decoder pool forks before the runtime starts its threads.
    decoder = make_decoder(opts.decoder, sm, opts, device)
    try:
        runtime = make_runtime(sm, opts.runtime, device, opts.precision, opts.batch_size,
                               opts.threads, opts.threshold)
    except BaseException:
        decoder.close()
        raise
    return ScanCore(sm, runtime, decoder, opts.threshold, opts.per_face, opts.dali_guard)


def scan_batches(core: ScanCore, paths: Iterable[str], batch_size: int) -> Iterator[list[Row]]:
    """Rows per batch, decode running ahead of inference."""
    for dec in core.decoder.map(batched(paths, batch_size)):
        yield core.rows(dec)
