"""``fakescan bench``: throughput per device and runtime/precision, against the naive way.

Stages, each warmed up once and then timed ``repeats`` times (median, min, max reported):

- ``decode``: files -> uint8 model inputs with the scan's decoder (read-ahead pool included);
- ``model``: uint8 batches already in memory -> probabilities with the runtime;
- ``end_to_end``: the scan itself (inputs, decode, inference, rows written to a CSV);
- ``naive``: what the seeds ran - a torch DataLoader over PIL + torchvision
  ``Resize/ToTensor/Normalize`` feeding the fp32 eager model (no fusion, no channels_last,
  no autocast) - measured in the same run so every figure has its ratio beside it.

``--model`` may be an architecture name with no model folder: the bench then builds one with
random weights (throughput does not depend on the weights; the JSON says so).
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

from fakescan.config import DEFAULT_BATCH
from fakescan.errors import ModelError, UsageError


@dataclass(frozen=True)
class Machine:
    hostname: str
    platform: str
    cpu: str
    cores: int | None
    fast_bf16: bool
    torch_threads: int
    gpus: list[str]
    memory_gb: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rate:
    """Images per second over the timed passes (after one warm-up pass)."""

    median: float
    min: float
    max: float
    repeats: int


@dataclass
class BenchRow:
    """One (device, runtime, precision, stage) measurement and its ratios (None: not
    derivable in this run)."""

    model: str
    n_images: int
    random_weights: bool
    batch_size: int
    device: str
    runtime: str
    precision: str
    decoder: str
    stage: str  # decode | model | end_to_end | naive
    rate: Rate
    ratio_vs_naive: float | None = None
    ratio_vs_min_stage: float | None = None
    harmonic_bound: float | None = None
    ratio_vs_harmonic: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "rate"}
        d.update(images_per_s_median=self.rate.median, images_per_s_min=self.rate.min,
                 images_per_s_max=self.rate.max, repeats=self.rate.repeats)
        return {k: v for k, v in d.items() if v is not None or not k.startswith(("ratio",
                                                                                 "harmonic"))}


@dataclass(frozen=True)
class BenchResult:
    machine: Machine
    versions: dict[str, str]
    config: dict[str, Any]  # the run's settings, as given
    results: list[BenchRow] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The model as it was asked for."""
        return self.config["model"]

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine.to_dict(), "versions": self.versions,
                "config": self.config, "results": [r.to_dict() for r in self.results]}


def machine_info() -> Machine:
    import torch

    from fakescan.device import cpu_has_fast_bf16

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory: float | None = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory = None
    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    return Machine(platform.node(), platform.platform(), cpu, os.cpu_count(),
                   cpu_has_fast_bf16(), torch.get_num_threads(), gpus, memory)


def _timed(fn: Callable[[], int], repeats: int) -> Rate:
    fn()  # warm-up (compilation, pools, caches)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return Rate(statistics.median(rates), min(rates), max(rates), repeats)


def _bench_image(out: Path, seed: int, i: int, label: str) -> str:
    import numpy as np

    from fakescan.data.synth import encode, render_face

    rng = np.random.default_rng([seed, i, 7])
    w, h = (int(x) for x in rng.integers(256, 601, 2))
    data = encode(render_face(rng, w, h, label == "fake"), "jpeg", int(rng.integers(70, 96)))
    p = out / f"bench_{i:05d}.jpg"
    p.write_bytes(data)
    return str(p)


def make_bench_images(out: Path, n: int = 256, seed: int = 0, workers: int = 1) -> list[str]:
    """A realistic set: synthetic faces as JPEG (quality 70-95), 256-600 px, half fake; the
    same files whatever ``workers`` (processes that render them)."""
    from fakescan.data.synth import labels_for

    out.mkdir(parents=True, exist_ok=True)
    labels = labels_for(n, seed)
    args = (repeat(out), repeat(seed), range(n), labels)
    if workers <= 1:
        return list(map(_bench_image, *args))
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_bench_image, *args, chunksize=16))


def model_or_random(ref: str, tmp: Path) -> tuple[str, bool]:
    """``ref`` as a scan model; an architecture name becomes a random-weights model folder."""
    from fakescan.scanner.model import resolve_scan_model

    try:
        resolve_scan_model(ref)
        return ref, False
    except ModelError:
        from fakescan.nets import list_archs

        if ref not in list_archs():
            raise
    import torch

    from fakescan.card import ModelCard
    from fakescan.nets import create_model, get_arch
    from fakescan.store import WEIGHTS
    from fakescan.weights import save_tensors, sha256_file

    torch.manual_seed(0)
    model = create_model(ref, num_classes=2)
    folder = tmp / ref
    folder.mkdir(parents=True)
    save_tensors(model.state_dict(), folder / WEIGHTS)
    ModelCard(name=ref, architecture=ref, labels=("real", "fake"),
              preprocess=get_arch(ref).preprocess, weights_sha256=sha256_file(folder / WEIGHTS),
              extra={"note": "random weights (bench only)"}).save(folder)
    return str(folder), True


def naive_rate(model_ref: str, paths: list[str], batch_size: int, workers: int,
               device: str = "cpu") -> Callable[[], int]:
    """Seed-style inference: DataLoader(PIL + torchvision transforms) -> fp32 eager model on
    ``device`` (the seeds' ``model.to(device)``, batches copied over one by one)."""
    import torch
    from PIL import Image
    from torchvision import transforms

    from fakescan.store import load_model

    lm = load_model(model_ref)
    pp = lm.card.preprocess
    tf = transforms.Compose([
        transforms.Resize((pp.input_size, pp.input_size)), transforms.ToTensor(),
        transforms.Normalize(pp.mean, pp.std)])

    class Files(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i):
            return tf(Image.open(paths[i]).convert("RGB"))

    loader = torch.utils.data.DataLoader(Files(), batch_size=batch_size, num_workers=workers)
    dev = torch.device(device)
    model = lm.model.eval().to(dev)

    def run() -> int:
        n = 0
        with torch.no_grad():
            for x in loader:
                torch.softmax(model(x.to(dev)), 1).cpu()
                n += len(x)
        return n

    return run


def bench(model: str, images: Path | None = None, devices: list[str] | None = None,
          runtimes: list[str] | None = None, precision: str = "auto",
          batch_size: int = DEFAULT_BATCH, n_images: int = 128, repeats: int = 3,
          workers: int | None = None,
          stages: tuple[str, ...] = ("decode", "model", "end_to_end", "naive"),
          log: Callable[[str], None] = lambda s: None) -> BenchResult:
    """Images per second of each stage (decode, model, end to end) per device and runtime,
    beside the naive baseline measured in the same run."""
    from fakescan.device import parse_devices
    from fakescan.scanner.core import build_core
    from fakescan.scanner.options import ScanOptions
    from fakescan.store import versions

    devices = devices or ["cpu", *(d for d in parse_devices("all") if d != "cpu")]
    results: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="fakescan-bench-") as tmpd:
        tmp = Path(tmpd)
        ref, random_weights = model_or_random(model, tmp)
        paths = _bench_paths(images, n_images, tmp, log)
        name = Path(ref).name or "fakescan-default"
        base = {"model": name, "n_images": len(paths),
                "random_weights": random_weights, "batch_size": batch_size}

        def row(device: str, runtime: str, precision: str, decoder: str, stage: str,
                rate: Rate) -> BenchRow:
            results.append(BenchRow(**base, device=device, runtime=runtime, precision=precision,
                                    decoder=decoder, stage=stage, rate=rate))
            return results[-1]

        for device in devices:
            configs = _configs(runtimes, ref, device, precision)
            naive: float | None = None
            if "naive" in stages:
                log(f"{device}: naive baseline ...")
                run = naive_rate(ref, paths, batch_size, workers or os.cpu_count() or 1,
                                 device)
                naive = row(device, "torch", "fp32", "pil+torchvision", "naive",
                            _timed(run, repeats)).rate.median
            for rt, prec in configs:
                opts = ScanOptions(model=ref, runtime=rt, device=device, precision=prec,
                                   batch_size=batch_size, workers=workers)
                core = build_core(opts, device)
                try:
                    for stage in ("decode", "model", "end_to_end"):
                        if stage in stages:
                            log(f"{device} {rt}: {stage.replace('_', ' ')} ...")
                            row(device, rt, core.runtime.precision, core.decoder.name, stage,
                                _timed(_pass(stage, core, paths, batch_size, tmp), repeats))
                finally:
                    core.decoder.close()
            for r in results:
                if r.device == device and naive:
                    r.ratio_vs_naive = r.rate.median / naive
    _derive(results)
    return BenchResult(machine_info(), versions(), {
        "model": model or name, "batch_size": batch_size, "n_images": len(paths),
        "repeats": repeats, "precision": precision,
        "images": str(images) if images else "generated"}, results)


def _bench_paths(images: Path | None, n: int, tmp: Path,
                 log: Callable[[str], None]) -> list[str]:
    """The first ``n`` images of ``images``, else ``n`` generated JPEG faces."""
    if images is None:
        log(f"generating {n} JPEG faces (256-600 px) ...")
        return make_bench_images(tmp / "images", n, workers=os.cpu_count() or 1)
    from fakescan.scanner.inputs import iter_inputs

    paths = [p for p, _ in zip(iter_inputs([str(images)]), range(n), strict=False)]
    if not paths:
        raise UsageError(f"{images}: no image files")
    return paths


def _pass(stage: str, core, paths: list[str], batch_size: int,
          tmp: Path) -> Callable[[], int]:
    """One timed pass of ``stage``: decode every image, run the model on one decoded batch as
    many times as there are batches, or scan end to end; each returns the images done."""
    from fakescan.scanner.core import batched

    if stage == "decode":
        return partial(_decode_pass, core, list(batched(paths, batch_size)))
    if stage == "model":
        x = core.decoder.decode(paths[:batch_size]).images
        return partial(_model_pass, core, x, max(1, len(paths) // max(len(x), 1)))
    return partial(_e2e_pass, core, paths, batch_size, tmp / "e2e.csv")


def _configs(runtimes: list[str] | None, ref: str, device: str,
             precision: str) -> list[tuple[str, str]]:
    """(runtime, precision) pairs: ``RUNTIME`` or ``RUNTIME:PRECISION`` entries; by default
    the candidates ``--runtime auto`` times on ``device`` (``scanner.runtimes.candidates``)."""
    if runtimes:
        return [(r.split(":", 1)[0], r.split(":", 1)[1] if ":" in r else precision)
                for r in runtimes]
    from fakescan.scanner.model import resolve_scan_model
    from fakescan.scanner.runtimes import candidates

    return list(candidates(resolve_scan_model(ref), device, precision).values())


def _decode_pass(core, batches: list[list[str]]) -> int:
    return sum(len(d.items) for d in core.decoder.map(iter(batches)))  # images, not faces


def _model_pass(core, x, reps: int) -> int:
    for _ in range(reps):
        core.runtime(x)
    return reps * len(x)


def _e2e_pass(core, paths: list[str], batch_size: int, out_path: Path) -> int:
    """The scan as ``fakescan scan`` runs it, rows written and fsynced per batch."""
    from fakescan.scanner.core import scan_batches
    from fakescan.scanner.output import Output

    out = Output(str(out_path), "csv", core.sm.card.identity, overwrite=True)
    n = 0
    for rows in scan_batches(core, iter(paths), batch_size):
        out.write(rows)
        n += len(rows)
    out.close()
    return n


def _derive(results: list[BenchRow]) -> None:
    """End to end against two bounds, for each configuration: min(decode, model) (stages that
    run side by side on their own hardware, a GPU's) and the harmonic 1 / (1/decode +
    1/model) (stages that share the same cores, a CPU's)."""
    for r in results:
        if r.stage != "end_to_end":
            continue
        same = [x.rate.median for x in results
                if (x.device, x.runtime, x.precision) == (r.device, r.runtime, r.precision)
                and x.stage in ("decode", "model")]
        if len(same) == 2:
            r.ratio_vs_min_stage = r.rate.median / min(same)
            r.harmonic_bound = 1 / sum(1 / v for v in same)
            r.ratio_vs_harmonic = r.rate.median / r.harmonic_bound
