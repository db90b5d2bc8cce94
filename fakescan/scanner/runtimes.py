"""Runtimes: normalised-on-device inference over uint8 batches, returning class probabilities.

``TorchRuntime``: inference_mode, conv+BatchNorm folded into the convolutions, channels_last,
autocast bf16 on AVX512-BF16/AMX CPUs and fp16 on CUDA (``--precision`` overrides).
``OnnxRuntime``: onnxruntime with TensorRT/CUDA execution providers when they actually load,
CPU otherwise; on CUDA the input is bound on the device (IO binding), no host round trip.
Both take a uint8 N x 3 x S x S batch and return float32 probabilities (N x C).
"""

from __future__ import annotations

import copy
import os

import numpy as np

from fakescan.cache import cache_dir
from fakescan.choices import RuntimeName, names
from fakescan.config import DEFAULT_BATCH
from fakescan.device import autocast, dtype_name, pick_device, pick_dtype
from fakescan.errors import UsageError
from fakescan.imaging import normalize
from fakescan.onnxrt import onnx_session
from fakescan.scanner.model import ScanModel


def fuse_conv_bn(model):
    """A copy of ``model`` (eval) with every Conv2d -> BatchNorm2d pair folded into the conv.

    Handles pairs that follow each other in an ``nn.Sequential`` and ResNet's ``convN``/``bnN``
    attribute pairs (including ``downsample``); the BatchNorm becomes ``Identity``.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for mod in model.modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod._modules.items())
            for (n1, a), (n2, b) in zip(kids, kids[1:], strict=False):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    mod._modules[n1] = fuse_conv_bn_eval(a, b)
                    mod._modules[n2] = nn.Identity()
        for i in range(1, 8):
            conv, bn = getattr(mod, f"conv{i}", None), getattr(mod, f"bn{i}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(mod, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(mod, f"bn{i}", nn.Identity())
    return model


class Runtime:
    name = "base"
    precision = "fp32"
    device = "cpu"

    def __call__(self, images) -> np.ndarray:
        raise NotImplementedError


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, sm: ScanModel, device: str = "auto", precision: str = "auto",
                 threads: int | None = None, fuse: bool = True) -> None:
        import torch

        self.sm = sm
        self.dev = pick_device(device)
        self.device = str(self.dev)
        self.dtype = pick_dtype(self.dev, precision)
        self.precision = dtype_name(self.dtype)
        if self.dev.type == "cuda":
            # a scan feeds fixed batch shapes: let cuDNN time its kernels once per shape
            torch.backends.cudnn.benchmark = True
        model = sm.load_torch().eval()
        if fuse:
            model = fuse_conv_bn(model)
        self.model = model.to(self.dev, memory_format=torch.channels_last)
        self._largest = 0  # CUDA: smaller batches are padded to the largest seen (see below)

    def __call__(self, images) -> np.ndarray:
        import torch

        x = torch.as_tensor(images)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, len(self.sm.card.labels)), np.float32)
        x = x.to(self.dev, non_blocking=True)
        if self.dev.type == "cuda":
            # a new batch shape makes cuDNN time its kernels again (about 1.5 s for ResNet50
            # on an H100: a scan's last, partial batch paid it); zero rows cost less
            self._largest = max(self._largest, n)
            if n < self._largest:
                x = torch.cat([x, x.new_zeros((self._largest - n, *x.shape[1:]))])
        with torch.inference_mode():
            x = normalize(x, self.sm.card.preprocess).contiguous(memory_format=torch.channels_last)
            with autocast(self.dev, self.dtype):
                logits = self.model(x)
            return torch.softmax(logits[:n].float(), 1).cpu().numpy()


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, sm: ScanModel, device: str = "auto", precision: str = "auto",
                 threads: int | None = None) -> None:
        if precision not in ("auto", "fp32", "fp16", "int8"):
            raise UsageError("the onnx runtime runs fp32, fp16 or (on a CPU) int8")
        dev = pick_device(device)
        if precision == "int8" and dev.type != "cpu":
            raise UsageError("int8 runs on the CPU (onnxruntime); on a GPU use fp16")
        self.device = str(dev)
        self.sm = sm
        # half precision where asked, and by default on CUDA; a file's own precision else
        want = precision if precision in ("fp16", "int8") else (
            "fp16" if precision == "auto" and dev.type == "cuda" else "fp32")
        path = sm.onnx_file(want)
        self.path = path
        self.session = onnx_session(path, self.device, threads)
        self.precision = want if sm.folder is not None else sm.precision_of_file()
        self.providers = self.session.get_providers()
        self.dev = dev
        self._cuda = dev.type == "cuda" and "CUDAExecutionProvider" in self.providers

    def __call__(self, images) -> np.ndarray:
        import torch

        if len(images) == 0:
            return np.zeros((0, len(self.sm.card.labels)), np.float32)
        # Normalised where the model runs: on the GPU for CUDA (then bound, no host copy).
        x = torch.as_tensor(images).to(self.dev if self._cuda else "cpu", non_blocking=True)
        x = normalize(x, self.sm.card.preprocess).contiguous()
        if self._cuda:
            return self._run_bound(x)
        return self.session.run(["probs"], {"image": x.numpy()})[0]

    def _run_bound(self, x) -> np.ndarray:
        """CUDA: bind the normalised GPU tensor as the input."""
        dev = self.dev
        b = self.session.io_binding()
        b.bind_input("image", "cuda", dev.index or 0, np.float32, tuple(x.shape), x.data_ptr())
        b.bind_output("probs", "cpu")
        self.session.run_with_iobinding(b)
        return b.copy_outputs_to_cpu()[0]


# The runtime registry: name -> class(model, device, precision, threads).
RUNTIME_CLASSES: dict[str, type[Runtime]] = {RuntimeName.torch: TorchRuntime,
                                             RuntimeName.onnx: OnnxRuntime}


def make_runtime(sm: ScanModel, runtime: str = "auto", device: str = "auto",
                 precision: str = "auto", batch_size: int = DEFAULT_BATCH,
                 threads: int | None = None) -> Runtime:
    """``auto``: onnx for ``.onnx`` files; for model folders, the fastest of torch, onnx and
    (on a CPU, where a parity-checked int8 file exists) onnx int8 on this machine, measured
    once per (machine, device, batch size, precision, weights) and remembered in the user
    cache (``autotune.json``); torch when precision is forced to bf16, onnx for int8."""
    if runtime not in names(RuntimeName):
        raise UsageError(f"runtime must be one of {', '.join(RuntimeName)}")
    if runtime == "auto":
        if sm.folder is None:
            runtime = "onnx"
        elif precision == "bf16":
            runtime = "torch"
        elif precision == "int8":
            runtime = "onnx"
        else:
            return _fastest(sm, device, precision, batch_size, threads)
    return RUNTIME_CLASSES[runtime](sm, device, precision, threads)


def _fastest(sm: ScanModel, device: str, precision: str, batch_size: int,
             threads: int | None = None) -> Runtime:
    import json
    import platform
    import time

    import torch

    from fakescan.atomic import write_text

    dev = str(pick_device(device))
    # candidates: torch, onnx, and onnx int8 where a parity-checked int8 file exists already
    # (building one takes minutes and labelled data: fakescan export --int8)
    options = {"torch": ("torch", precision), "onnx": ("onnx", precision)}
    if precision == "auto" and dev == "cpu" and sm.has_onnx("int8"):
        options["onnx:int8"] = ("onnx", "int8")
    key = "|".join([platform.node(), platform.processor() or platform.machine(),
                    str(os.cpu_count()), str(torch.get_num_threads()), dev, str(batch_size),
                    precision, sm.card.weights_sha256[:12], ",".join(options)])
    cache = cache_dir() / "autotune.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    choice = known.get(key, {}).get("runtime")
    if choice in options:
        name, prec = options[choice]
        return RUNTIME_CLASSES[name](sm, device, prec, threads)
    s = sm.card.preprocess.input_size
    x = np.random.default_rng(0).integers(0, 256, (batch_size, 3, s, s), dtype=np.uint8)
    rates, cands = {}, {}
    for label, (name, prec) in options.items():
        try:
            rt = RUNTIME_CLASSES[name](sm, device, prec, threads)
        except Exception:  # noqa: BLE001 - a runtime that cannot start here is not a candidate
            continue
        for _ in range(2):  # warm-up: allocator arenas, oneDNN/MLAS kernel selection
            rt(x)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            rt(x)
            best = min(best, time.perf_counter() - t0)
        rates[label] = batch_size / best
        cands[label] = rt
    if not cands:
        raise UsageError("neither the torch nor the onnx runtime could start")
    best = max(rates, key=rates.__getitem__)
    known[key] = {"runtime": best, "images_per_s": {k: round(v, 1) for k, v in rates.items()}}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text(cache, json.dumps(known, indent=2) + "\n")
    except OSError:
        pass  # no writable cache: measure again next time
    return cands[best]
