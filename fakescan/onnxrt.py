"""onnxruntime sessions: the execution providers that really load here, best first.

Below both ``export`` (the parity check) and ``scanner`` (the onnx runtime), so neither
imports the other for it.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

from fakescan.cache import cache_dir
from fakescan.device import cuda_index


@cache
def _loadable(lib: str) -> bool:
    try:
        ctypes.CDLL(lib)
    except OSError:
        return False
    return True


def onnx_providers(device: str) -> list:
    """Execution providers for ``device`` (``cpu``, ``cuda``, ``cuda:N``) that will load."""
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    idx = cuda_index(device) or 0
    out: list = []
    if "TensorrtExecutionProvider" in avail and _loadable("libnvinfer.so.10"):
        out.append(("TensorrtExecutionProvider", {
            "device_id": idx, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir() / "trt")}))
    if "CUDAExecutionProvider" in avail:
        out.append(("CUDAExecutionProvider", {"device_id": idx}))
    return out + ["CPUExecutionProvider"]


def onnx_session(path: Path, device: str = "cpu", threads: int | None = None,
                 spinning: bool = True):
    """``spinning=False``: the CPU threads sleep between runs instead of spinning, for a
    session that shares the cores with another runtime (the verdict guard's fp32 one)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=onnx_providers(device))
