"""Reduced precision on a CPU says what fp32 says: the verdict guard, the openvino runtime and
the guarded torch bf16 path (issue 22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakescan.scanner.runtimes import (
    BF16_VERDICT_MARGIN,
    Runtime,
    VerdictGuard,
    make_runtime,
    near_threshold,
    openvino_installed,
)


class _Fixed(Runtime):
    """Probabilities looked up by image index (pixel [0, 0, 0]): an exact runtime, or one
    with every score's log-odds moved by ``shift``."""

    def __init__(self, sm, p_fake: np.ndarray, shift: float = 0.0) -> None:
        self.sm, self.p, self.shift = sm, p_fake, shift
        self.device, self.precision, self.calls = "cpu", "bf16", []

    def __call__(self, images) -> np.ndarray:
        idx = np.asarray(images)[:, 0, 0, 0].astype(int)
        self.calls.append(idx.tolist())
        pf = _shifted(self.p[idx], self.shift)
        return np.stack([1 - pf, pf], 1).astype(np.float32)  # labels (real, fake)


def _shifted(p: np.ndarray, shift: float) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return 1 / (1 + np.exp(-(np.log(q / (1 - q)) + shift)))


def test_guard_rescores_only_near_the_threshold_and_keeps_fp32_verdicts(tiny_model):
    from fakescan.scanner.model import resolve_scan_model

    sm = resolve_scan_model(str(tiny_model))
    assert sm.card.labels == ("real", "fake")
    thr, shift = 0.9, -0.8 * BF16_VERDICT_MARGIN  # a high threshold, like the default's
    p = np.linspace(0.0, 1.0, 101)
    exact = _Fixed(sm, p)
    fast = _Fixed(sm, p, shift=shift)  # a bf16 error below the margin, in the worst direction
    g = VerdictGuard(fast, lambda: exact, thr)
    images = np.zeros((101, 3, 4, 4), np.uint8)
    images[:, 0, 0, 0] = np.arange(101)
    out = g(images)
    pf = out[:, 1]
    assert ((pf >= thr) == (p >= thr)).all()  # every verdict as fp32 gives it
    near = near_threshold(_shifted(p, shift), thr, BF16_VERDICT_MARGIN)
    assert g.rescored == near.sum() and exact.calls == [np.flatnonzero(near).tolist()]
    assert 0 < near.sum() < 30  # the band is narrow in log-odds near 0.9: few re-scored
    assert np.allclose(pf[~near], _shifted(p[~near], shift), atol=1e-6)  # the rest as is
    unguarded = (_shifted(p, shift) >= thr) != (p >= thr)
    assert unguarded.any()  # without the guard this shift flips verdicts: the test can fail


def test_the_guard_band_is_symmetric_in_log_odds():
    p = np.array([0.5, 0.72, 0.74, 0.26, 0.28, 0.95, 0.999])
    near = near_threshold(p, 0.5, 1.0)  # log-odds 1.0 is p 0.731
    assert near.tolist() == [True, True, False, False, True, False, False]
    # at the default's threshold the band is 0.85-0.98, not 0.69-1.0 as a margin of 0.25 in
    # probability would be
    assert near_threshold(np.array([0.94, 0.86, 0.97, 0.84, 0.98]), 0.94, 1.0).tolist() == [
        True, True, True, False, False]


def test_bf16_on_a_cpu_comes_guarded_and_fp32_does_not(tiny_model):
    from fakescan.scanner.model import resolve_scan_model

    sm = resolve_scan_model(str(tiny_model))
    assert isinstance(make_runtime(sm, "torch", "cpu", "bf16"), VerdictGuard)
    assert not isinstance(make_runtime(sm, "torch", "cpu", "fp32"), VerdictGuard)
    assert not isinstance(make_runtime(sm, "onnx", "cpu", "fp32"), VerdictGuard)


@pytest.mark.skipif(not openvino_installed(), reason="openvino is not installed")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_runtime_says_what_onnxruntime_fp32_says(tiny_model, synth_small, precision):
    from fakescan.imaging import load_uint8
    from fakescan.scanner.model import resolve_scan_model

    sm = resolve_scan_model(str(tiny_model))
    paths = sorted(p for p in synth_small.rglob("*.jpg"))[:48] or sorted(
        p for p in synth_small.rglob("*") if p.is_file())[:48]
    x = np.stack([load_uint8(p, sm.card.preprocess).numpy() for p in paths])
    ref = make_runtime(sm, "onnx", "cpu", "fp32")(x)
    rt = make_runtime(sm, "openvino", "cpu", precision)
    assert rt.name == "openvino" and rt.precision == precision
    got = rt(x)
    assert (sm.card.verdict(got) == sm.card.verdict(ref)).all()
    if precision == "fp32":
        assert np.abs(got - ref).max() < 1e-4
    assert rt(x[:0]).shape == (0, 2)


def test_openvino_needs_a_cpu_and_says_how_to_install(tiny_model, monkeypatch):
    import builtins

    from fakescan.errors import UsageError
    from fakescan.scanner.model import resolve_scan_model

    sm = resolve_scan_model(str(tiny_model))
    real_import = builtins.__import__

    def no_openvino(name, *a, **k):
        if name == "openvino":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(UsageError, match=r"fakescan\[openvino\]"):
        make_runtime(sm, "openvino", "cpu", "fp32")
    with pytest.raises(UsageError, match="runs fp32 or bf16"):
        make_runtime(sm, "openvino", "cpu", "int8")


def test_the_same_weights_scoring_two_views_never_run_a_one_view_onnx_file(tiny_model, tmp_path):
    """``views: flip`` on the same weights is another graph: the onnx runtime builds its own
    file (the user cache is keyed by the architecture options too, and a folder's own export
    of the one-view network is passed over), so every runtime scores what torch scores."""
    import shutil

    from fakescan.card import ModelCard
    from fakescan.export import export_onnx
    from fakescan.scanner.model import resolve_scan_model

    plain, flip = tmp_path / "plain", tmp_path / "flip"
    shutil.copytree(tiny_model, plain, ignore=shutil.ignore_patterns("*.onnx"))
    shutil.copytree(plain, flip)
    export_onnx(flip, flip / "model.onnx", parity=False)  # the one-view network's own file
    card = ModelCard.load(flip)
    card.replace(arch_options={**card.arch_options, "views": "flip"}).save(flip)
    sp, sf = resolve_scan_model(str(plain)), resolve_scan_model(str(flip))
    built = sp.onnx_file()  # into the user cache (the folder has no export)
    assert built.is_file() and not built.is_relative_to(plain)
    assert sf.onnx_file() not in (built, flip / "model.onnx")
    s = sf.card.preprocess.input_size
    x = np.random.default_rng(0).integers(0, 256, (6, 3, s, s), dtype=np.uint8)
    torch_flip = make_runtime(sf, "torch", "cpu", "fp32")(x)
    assert np.abs(make_runtime(sf, "onnx", "cpu", "fp32")(x) - torch_flip).max() < 1e-4
    assert np.abs(make_runtime(sp, "onnx", "cpu", "fp32")(x) - torch_flip).max() > 1e-3


def test_a_card_scoring_another_input_size_never_runs_a_file_exported_at_the_old_one(
        tmp_path):
    """An exported graph's image shape is fixed: the same weights with a larger
    ``input_size`` in their card (a network that pools globally, scored at more pixels than
    it trained on) build their own file instead of feeding the old one, and score what torch
    scores."""
    from fakescan.bench import model_or_random
    from fakescan.card import ModelCard
    from fakescan.export import export_onnx
    from fakescan.scanner.model import read_onnx_metadata, resolve_scan_model

    folder = Path(model_or_random("tinycnn", tmp_path)[0])
    export_onnx(folder, folder / "model.onnx", parity=False)  # at the old size
    card = ModelCard.load(folder)
    size = card.preprocess.input_size + 16
    bigger = card.scoring_at(size)
    assert bigger.training["input_size"] == card.preprocess.input_size
    assert bigger.scoring_at(card.preprocess.input_size).identity == card.identity
    assert bigger.build_key != card.build_key
    assert bigger.identity == f"{card.identity}+{size}px"
    bigger.save(folder)
    sm = resolve_scan_model(str(folder))
    built = sm.onnx_file()
    assert built != folder / "model.onnx"
    # the file's own card says the same: an ONNX consumer's rows carry the same identity
    assert ModelCard.from_onnx_metadata(read_onnx_metadata(built), str(built)).identity == \
        bigger.identity
    x = np.random.default_rng(0).integers(0, 256, (4, 3, size, size), dtype=np.uint8)
    want = make_runtime(sm, "torch", "cpu", "fp32")(x)
    assert np.abs(make_runtime(sm, "onnx", "cpu", "fp32")(x) - want).max() < 1e-4


def test_the_fastest_runtime_is_remembered_and_measured_again_when_the_runtimes_change(
        tiny_model, tmp_path, monkeypatch):
    # --runtime auto times each candidate once per machine and model, and keeps the choice;
    # new runtime code (RUNTIME_REVISION) or another library version times them again
    import fakescan.cache
    import fakescan.scanner.runtimes as runtimes
    from fakescan.scanner.model import resolve_scan_model

    monkeypatch.setattr(fakescan.cache, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(runtimes, "openvino_installed", lambda: False)
    timed = []

    def seconds(rt, x):
        timed.append(rt.name)
        return {"torch": 2.0, "onnx": 1.0}[getattr(rt, "fast", rt).name]

    monkeypatch.setattr(runtimes, "_seconds_per_batch", seconds)
    sm = resolve_scan_model(tiny_model)
    assert make_runtime(sm, "auto", "cpu", "fp32").name == "onnx" and len(timed) == 2
    assert make_runtime(sm, "auto", "cpu", "fp32").name == "onnx" and len(timed) == 2
    monkeypatch.setattr(runtimes, "RUNTIME_REVISION", runtimes.RUNTIME_REVISION + 1)
    make_runtime(sm, "auto", "cpu", "fp32")
    assert len(timed) == 4
    monkeypatch.setattr(runtimes, "_runtime_versions", lambda: "torch 99.0")
    make_runtime(sm, "auto", "cpu", "fp32")
    assert len(timed) == 6
