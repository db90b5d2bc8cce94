"""The precision a training run computes in on a CPU: measured on this machine, not assumed.

bf16 autocast is the faster choice for *inference* on CPUs with AVX512-BF16 or AMX, but not
always for training: on a 2-core Intel Xeon with AMX, EfficientNet-Lite0's whole training
epochs ran 1.3-1.5x faster in fp32 (``benchmarks/README.md``, "Training precision on a
CPU"). So ``--precision auto`` on such a CPU times a few training steps of the run's own
network in each precision (on a copy, at the run's batch and input size, the random streams
left as they were, so the run itself is the same either way) and trains in the faster one,
remembered in the user cache per machine, network, input size and batch size. Elsewhere
``auto`` is ``fakescan.device.pick_dtype``'s choice, as for every other command.
"""

from __future__ import annotations

import copy
import time

import torch
from rich.console import Console

from fakescan.cache import autotune_key, remember, remembered
from fakescan.device import cpu_has_fast_bf16, pick_dtype

CHOICES = {"fp32": None, "bf16": torch.bfloat16}


def training_dtype(model: torch.nn.Module, device: torch.device, precision: str, *,
                   arch: str, batch_size: int, input_size: int, console: Console):
    """The autocast dtype to train ``model`` in (``None``: fp32)."""
    if precision != "auto" or device.type != "cpu" or not cpu_has_fast_bf16():
        return pick_dtype(device, precision, training=True)
    key = "train|" + autotune_key(torch.__version__, arch, f"{input_size}px",
                                  f"batch {batch_size}")
    choice = (remembered(key) or {}).get("precision")
    if choice not in CHOICES:
        rates = images_per_s(model, batch_size, input_size)
        choice = max(rates, key=rates.__getitem__)
        remember(key, {"precision": choice, "images_per_s": {k: round(v, 2)
                                                             for k, v in rates.items()}})
        console.print(f"training precision: {choice}, the faster here (a training step of "
                      f"this network: {', '.join(f'{k} {v:.1f} img/s' for k, v in rates.items())}"
                      "; remembered in the user cache)", highlight=False)
    return CHOICES[choice]


def images_per_s(model: torch.nn.Module, batch_size: int, input_size: int,
                 steps: int = 2) -> dict[str, float]:
    """Training images per second of ``model`` in each of ``CHOICES``: forward, backward and
    an Adam step on a copy, on a random batch; one warm-up step each, then the best of
    ``steps`` taken in turn (so a slower moment of the machine hits both). Neither ``model``
    nor torch's random state is changed."""
    with torch.random.fork_rng(devices=[]):
        m = copy.deepcopy(model).train()
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=0.0)
        x = torch.randn(batch_size, 3, input_size, input_size).contiguous(
            memory_format=torch.channels_last)
        with torch.no_grad():
            n_classes = m(x[:2]).shape[1]
        y = torch.randint(0, n_classes, (batch_size,))

        def step(dtype) -> float:
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(m(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return time.perf_counter() - t0

        for dtype in CHOICES.values():  # warm-up: oneDNN picks and caches its kernels
            step(dtype)
        best = dict.fromkeys(CHOICES, float("inf"))
        for _ in range(steps):
            for name, dtype in CHOICES.items():
                best[name] = min(best[name], step(dtype))
    return {name: batch_size / t for name, t in best.items()}
