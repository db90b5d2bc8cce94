"""Device and precision choice, made once by a driver and passed down (nanoGPT style).

The one place a device string (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``all``, a comma list)
is parsed.
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

from fakescan.choices import Precision, names
from fakescan.errors import UsageError

PRECISIONS = names(Precision)


@cache
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX (bf16 autocast pays off there)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_devices(spec: str) -> list[str]:
    """``auto`` | ``cpu`` | ``cuda:N`` | ``all`` | a comma list -> device strings."""
    if spec == "all":
        import torch

        n = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]
    devs = [d.strip() for d in spec.split(",") if d.strip()]
    if not devs:
        raise UsageError("no device given")
    return devs


def resolve_device(spec: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is there, else ``cpu``; anything else as given."""
    if spec != "auto":
        return spec
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def cuda_index(device: str) -> int | None:
    """The CUDA ordinal of ``cuda`` / ``cuda:N``; ``None`` for anything that is not a GPU."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:"):
        try:
            return int(device.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"device {device!r}: expected cuda:N") from None
    return None


def set_threads(n: int | None) -> None:
    """torch's intra-op thread count (process-wide): for entry points only."""
    if n:
        import torch

        torch.set_num_threads(n)


def pick_device(spec: str = "auto"):
    """``auto`` -> ``cuda:0`` when available else ``cpu``; ``cpu``; ``cuda``/``cuda:N``."""
    import torch

    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {spec}: no CUDA device is available on this machine")
        dev = torch.device(spec if ":" in spec else "cuda:0")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise UsageError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def pick_dtype(device, precision: str = "auto", *, training: bool = False):
    """The autocast dtype for ``precision`` on ``device`` (``None`` means fp32, no autocast).

    ``auto``: fp16 on CUDA (bf16 where the GPU supports it and we are training, which needs no
    gradient scaler), bf16 on CPUs with AVX512-BF16/AMX, fp32 elsewhere.
    """
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "int8":
        raise UsageError("int8 runs on the onnx runtime (--runtime onnx or auto), on a CPU")
    if precision == "fp16":
        if device.type != "cuda":
            raise UsageError("fp16 precision needs a CUDA device (bf16 runs on CPUs)")
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        if training and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def autocast(device, dtype):
    """An autocast context for ``dtype``, or a no-op for fp32."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def dtype_name(dtype) -> str:
    import torch

    return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
