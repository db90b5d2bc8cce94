"""Runtimes: normalised-on-device inference over uint8 batches, returning class probabilities.

``TorchRuntime``: inference_mode, conv+BatchNorm folded into the convolutions, channels_last,
autocast bf16 on AVX512-BF16/AMX CPUs and fp16 on CUDA (``--precision`` overrides).
``OnnxRuntime``: onnxruntime with TensorRT/CUDA execution providers when they actually load,
CPU otherwise; on CUDA the input is bound on the device (IO binding), no host round trip.
``OpenVinoRuntime``: OpenVINO on the CPU (optional extra), bf16 where the CPU has it.
All take a uint8 N x 3 x S x S batch and return float32 probabilities (N x C).

``VerdictGuard``: bf16 on a CPU moves a score's log-odds by up to 0.92 near the threshold
(measured on the default, 7,469 images of the seven shared folders:
``benchmarks/guard_parity.py``), enough to flip the verdicts of images near it (25-34 of
them). The guard scores again in fp32 every image whose bf16 score lies within
``BF16_VERDICT_MARGIN`` of the threshold in log-odds, so a bf16 scan says what an fp32 scan
says.
"""

from __future__ import annotations

import copy

import numpy as np

from fakescan.cache import autotune_key, remember, remembered
from fakescan.choices import RuntimeName, names
from fakescan.config import DEFAULT_BATCH
from fakescan.device import autocast, dtype_name, pick_device, pick_dtype
from fakescan.errors import UsageError
from fakescan.imaging import normalize
from fakescan.onnxrt import onnx_session
from fakescan.scanner.model import ScanModel


def fuse_conv_bn(model):
    """A copy of ``model`` (eval) with every Conv2d -> BatchNorm2d pair folded into the conv.

    Handles pairs that follow each other in an ``nn.Sequential``, ResNet's ``convN``/``bnN``
    attribute pairs (including ``downsample``), and the pairs a module names in its
    ``conv_bn_pairs`` (EfficientNet-Lite's ``_expand_conv``/``_bn0`` ...); the BatchNorm
    becomes ``Identity``. Unfolded, a BatchNorm under bf16 autocast runs in fp32 between two
    casts: the largest item of Lite0's time on a CPU (``benchmarks/README.md``, "Torch on a
    CPU").
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(mod, conv_name: str, bn_name: str) -> None:
        conv, bn = getattr(mod, conv_name, None), getattr(mod, bn_name, None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(mod, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(mod, bn_name, nn.Identity())

    model = copy.deepcopy(model).eval()
    for mod in model.modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod._modules.items())
            for (n1, a), (n2, b) in zip(kids, kids[1:], strict=False):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    mod._modules[n1] = fuse_conv_bn_eval(a, b)
                    mod._modules[n2] = nn.Identity()
        for i in range(1, 8):
            fold(mod, f"conv{i}", f"bn{i}")
        for conv_name, bn_name in getattr(mod, "conv_bn_pairs", ()):
            fold(mod, conv_name, bn_name)
    return model


def inference_form(model):
    """``model`` with each module that has a faster equivalent for scoring (its
    ``for_inference()``: EfficientNet-Lite's stride-2 convolutions without their padded copy)
    replaced by it, in place."""
    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if hasattr(child, "for_inference"):
                setattr(mod, name, child.for_inference())
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
            model = inference_form(fuse_conv_bn(model))
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
                 threads: int | None = None, spinning: bool = True) -> None:
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
        self.session = onnx_session(path, self.device, threads, spinning)
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


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(self, sm: ScanModel, device: str = "auto", precision: str = "auto",
                 threads: int | None = None) -> None:
        from fakescan.device import cpu_has_fast_bf16

        if pick_device(device).type != "cpu":
            raise UsageError("the openvino runtime runs on the CPU (on a GPU: torch or onnx)")
        if precision not in ("auto", "fp32", "bf16"):
            raise UsageError("the openvino runtime runs fp32 or bf16")
        try:
            import openvino as ov
        except ImportError:
            raise UsageError("the openvino runtime needs OpenVINO: pip install "
                             "'fakescan[openvino]'") from None
        self.sm = sm
        self.precision = "bf16" if precision == "bf16" or (
            precision == "auto" and cpu_has_fast_bf16()) else "fp32"
        config: dict = {"PERFORMANCE_HINT": "LATENCY",
                        "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.request = ov.Core().compile_model(str(sm.onnx_file("fp32")), "CPU",
                                               config).create_infer_request()

    def __call__(self, images) -> np.ndarray:
        import torch

        if len(images) == 0:
            return np.zeros((0, len(self.sm.card.labels)), np.float32)
        x = normalize(torch.as_tensor(images), self.sm.card.preprocess).contiguous().numpy()
        return np.array(self.request.infer({0: x})[0], np.float32)  # a copy: buffers are reused


# in log-odds: bf16 moves the log-odds of a score within 2 of the threshold's by up to 0.92
# (the default, 7,469 images: benchmarks/guard_parity.py; more only far from any threshold);
# a margin in probability would cover a threshold of 0.94 as wide as one of 0.5 (0.25 of it
# re-scored 30% of the images there; this one re-scores 7%)
BF16_VERDICT_MARGIN = 1.25


def log_odds(p) -> np.ndarray:
    """log(p / (1 - p)), in float64, with p kept 1e-7 away from 0 and 1."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def near_threshold(p_fake: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """Where ``p_fake`` lies within ``margin`` of ``threshold`` in log-odds: the scores whose
    verdict a bf16 rounding could have turned."""
    lt = log_odds(threshold)
    lo, hi = 1 / (1 + np.exp(-(lt - margin))), 1 / (1 + np.exp(-(lt + margin)))
    return (p_fake > lo) & (p_fake < hi)


class VerdictGuard(Runtime):
    """``fast`` (bf16), with the images it scores within ``margin`` of ``threshold`` (in
    log-odds) scored again by ``exact`` (onnxruntime fp32): verdicts as fp32 gives them.
    ``rescored`` counts the images scored twice."""

    def __init__(self, fast: Runtime, exact_factory, threshold: float,
                 margin: float = BF16_VERDICT_MARGIN) -> None:
        self.fast, self._exact_factory, self._exact = fast, exact_factory, None
        self.threshold, self.margin = threshold, margin
        self.name, self.precision, self.device = fast.name, fast.precision, fast.device
        self.sm = fast.sm  # type: ignore[attr-defined]
        self.rescored = 0

    @property
    def exact(self) -> Runtime:
        if self._exact is None:
            self._exact = self._exact_factory()
        return self._exact

    def __call__(self, images) -> np.ndarray:
        probs = self.fast(images)
        near = near_threshold(self.sm.card.p_fake(probs), self.threshold, self.margin)
        if near.any():
            probs = probs.copy()
            probs[near] = self.exact(np.asarray(images)[near])
            self.rescored += int(near.sum())
        return probs


def guard_verdicts(rt: Runtime, threshold: float | None = None) -> Runtime:
    """``rt`` behind a ``VerdictGuard`` where it computes in bf16 on a CPU; else ``rt``."""
    if rt.precision != "bf16" or rt.device != "cpu" or isinstance(rt, VerdictGuard):
        return rt
    sm: ScanModel = rt.sm  # type: ignore[attr-defined]
    thr = sm.card.threshold if threshold is None else float(threshold)
    # the fp32 runtime shares the cores with ``rt``: its threads sleep between runs
    return VerdictGuard(rt, lambda: OnnxRuntime(sm, "cpu", "fp32", spinning=False), thr)


# The runtime registry: name -> class(model, device, precision, threads).
RUNTIME_CLASSES: dict[str, type[Runtime]] = {RuntimeName.torch: TorchRuntime,
                                             RuntimeName.onnx: OnnxRuntime,
                                             RuntimeName.openvino: OpenVinoRuntime}


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def candidates(sm: ScanModel, device: str, precision: str) -> dict[str, tuple[str, str]]:
    """The (runtime, precision) pairs worth timing on ``device``: torch and onnx; on a CPU
    also onnx int8 where a parity-checked int8 file exists already (building one takes
    minutes and labelled data: fakescan export --int8) and openvino where installed."""
    out = {"torch": ("torch", precision), "onnx": ("onnx", precision)}
    if precision == "auto" and device == "cpu" and sm.has_onnx("int8"):
        out["onnx:int8"] = ("onnx", "int8")
    if device == "cpu" and precision in ("auto", "fp32", "bf16") and openvino_installed():
        out["openvino"] = ("openvino", precision)
    return out


def _runtime(name: str, sm: ScanModel, device: str, precision: str, threads: int | None,
             threshold: float | None) -> Runtime:
    """The runtime ``name``, behind a verdict guard where it computes in bf16 on a CPU."""
    return guard_verdicts(RUNTIME_CLASSES[name](sm, device, precision, threads), threshold)


def make_runtime(sm: ScanModel, runtime: str = "auto", device: str = "auto",
                 precision: str = "auto", batch_size: int = DEFAULT_BATCH,
                 threads: int | None = None, threshold: float | None = None) -> Runtime:
    """``auto``: onnx for ``.onnx`` files; for model folders, the fastest of torch, onnx and,
    on a CPU, openvino (where installed) and onnx int8 (where a parity-checked int8 file
    exists) on this machine, measured once per (machine, device, batch size, precision,
    weights, runtime code and library versions) and remembered in the user cache
    (``autotune.json``); torch when precision is
    forced to bf16, onnx for int8. A bf16 runtime on a CPU comes behind a ``VerdictGuard``
    at ``threshold`` (default: the card's)."""
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
            return _fastest(sm, device, precision, batch_size, threads, threshold)
    return _runtime(runtime, sm, device, precision, threads, threshold)


GUARD_SHARE = 0.1  # images a guard scores twice: 7% of the default's, ~12-17% on DFDC, ood-dev


def _seconds_per_batch(rt: Runtime, x: np.ndarray) -> float:
    """Best of 3 after 2 warm-ups. A guarded runtime is charged its fp32 runtime on
    ``GUARD_SHARE`` of the batch: the random pixels timed here land far from any threshold,
    real faces do not."""
    import time

    def best(fn) -> float:
        for _ in range(2):  # warm-up: allocator arenas, oneDNN/MLAS kernel selection
            fn(x)
        t = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            fn(x)
            t = min(t, time.perf_counter() - t0)
        return t

    if isinstance(rt, VerdictGuard):
        return best(rt.fast) + GUARD_SHARE * best(rt.exact)
    return best(rt)


# bumped when a runtime's own code changes what it costs (3: the torch runtime folds
# EfficientNet-Lite's BatchNorms and scores its stride-2 convolutions without a padded copy),
# so that a remembered choice is measured again
RUNTIME_REVISION = 3


def _runtime_versions() -> str:
    """What a remembered timing depends on besides the machine and the model: the runtimes'
    code (``RUNTIME_REVISION``) and the installed libraries that run it."""
    from fakescan.store import package_versions

    found = package_versions(("torch", "onnxruntime-gpu", "onnxruntime", "openvino"))
    return ",".join([f"fakescan-runtimes {RUNTIME_REVISION}",
                     *(f"{pkg} {v}" for pkg, v in found.items())])


def _fastest(sm: ScanModel, device: str, precision: str, batch_size: int,
             threads: int | None = None, threshold: float | None = None) -> Runtime:
    dev = str(pick_device(device))
    options = candidates(sm, dev, precision)
    key = autotune_key(dev, str(batch_size), precision, sm.card.build_key, ",".join(options),
                       f"guard {BF16_VERDICT_MARGIN}/{GUARD_SHARE}",  # a guard's cost changes
                       _runtime_versions())
    choice = (remembered(key) or {}).get("runtime")
    if choice in options:
        name, prec = options[choice]
        return _runtime(name, sm, device, prec, threads, threshold)
    s = sm.card.preprocess.input_size
    x = np.random.default_rng(0).integers(0, 256, (batch_size, 3, s, s), dtype=np.uint8)
    rates, cands = {}, {}
    for label, (name, prec) in options.items():
        try:
            rt = _runtime(name, sm, device, prec, threads, threshold)
        except Exception:  # noqa: BLE001 - a runtime that cannot start here is not a candidate
            continue
        rates[label] = batch_size / _seconds_per_batch(rt, x)
        cands[label] = rt
    if not cands:
        raise UsageError("neither the torch nor the onnx runtime could start")
    best = max(rates, key=rates.__getitem__)
    remember(key, {"runtime": best, "images_per_s": {k: round(v, 1) for k, v in rates.items()}})
    return cands[best]
