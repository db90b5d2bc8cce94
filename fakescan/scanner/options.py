"""What a scan is asked to do: ``ScanOptions``, grouped by the stage each field steers.

Library code takes these already validated; the command line maps its flags onto them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fakescan.choices import DecoderName, Engine, Precision, RuntimeName
from fakescan.config import DECODE_TIMEOUT_S, DEFAULT_BATCH, Preprocess
from fakescan.scanner.decoders import DecodeOptions


@dataclass(frozen=True)
class ScanOptions:
    model: str | None = None  # a name, folder or .onnx; None: the shipped default detector
    threshold: float | None = None  # None: the model's calibrated one
    device: str = "auto"  # auto | cpu | cuda:N | all | a comma list
    batch_size: int = DEFAULT_BATCH
    # decode: which decoder, its worker processes and what they refuse
    decoder: DecoderName = DecoderName.auto
    workers: int | None = None  # decode processes (default: one per core)
    reduce: bool = True  # JPEG reduce-on-decode (PIL decoder)
    # DALI: images scored near the threshold decoded again by the reference path, so that
    # verdicts are the Pillow decoder's (``decoders.DALI_VERDICT_MARGIN``)
    dali_guard: bool = True
    max_pixels: int | None = None
    max_bytes: int | None = None
    timeout: float | None = DECODE_TIMEOUT_S  # seconds one file may take (decode workers)
    # face models: judge the whole image where no face is found (else a no_face row), and
    # write a row per face instead of per file
    face_fallback: bool = False
    per_face: bool = False
    # inference: which runtime, at which precision, on how many threads
    runtime: RuntimeName = RuntimeName.auto
    precision: Precision = Precision.auto
    threads: int | None = None  # inference threads, set by the entry point
    # where the scan runs: this process (and one per device), or inside Ray Data
    engine: Engine = Engine.local
    ray_address: str | None = None
    ray_actors: int | None = None
    gpus_per_actor: float = 0.0

    def __post_init__(self) -> None:
        """Plain strings (the Python API's ``decoder="pil"``) become the choices' enums,
        checked once here: a wrong value is one clear error naming the valid ones."""
        from fakescan.errors import UsageError

        for name, enum in (("decoder", DecoderName), ("runtime", RuntimeName),
                           ("precision", Precision), ("engine", Engine)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                raise UsageError(f"{name} must be one of {', '.join(enum)}, got "
                                 f"{value!r}") from None

    def decode_options(self, preprocess: Preprocess) -> DecodeOptions:
        d = DecodeOptions(preprocess, reduce=self.reduce, timeout=self.timeout,
                          face_fallback=self.face_fallback)
        if self.max_pixels:
            d = replace(d, max_pixels=self.max_pixels)
        if self.max_bytes:
            d = replace(d, max_bytes=self.max_bytes)
        return d
