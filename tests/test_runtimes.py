"""Reduced precision on a CPU says what fp32 says: the verdict guard, the openvino runtime and
the guarded torch bf16 path (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from fakescan.scanner.runtimes import (
    BF16_VERDICT_MARGIN,
    Runtime,
    VerdictGuard,
    make_runtime,
    openvino_installed,
)


class _Fixed(Runtime):
    """Probabilities looked up by image index (pixel [0, 0, 0]): an exact runtime, or one
    with every score moved by ``shift``."""

    def __init__(self, sm, p_fake: np.ndarray, shift: float = 0.0) -> None:
        self.sm, self.p, self.shift = sm, p_fake, shift
        self.device, self.precision, self.calls = "cpu", "bf16", []

    def __call__(self, images) -> np.ndarray:
        idx = np.asarray(images)[:, 0, 0, 0].astype(int)
        self.calls.append(idx.tolist())
        pf = np.clip(self.p[idx] + self.shift, 0, 1)
        return np.stack([1 - pf, pf], 1).astype(np.float32)  # labels (real, fake)


def test_guard_rescores_only_near_the_threshold_and_keeps_fp32_verdicts(tiny_model):
    from fakescan.scanner.model import resolve_scan_model

    sm = resolve_scan_model(str(tiny_model))
    assert sm.card.labels == ("real", "fake")
    thr = 0.6
    p = np.linspace(0.0, 1.0, 101)
    exact = _Fixed(sm, p)
    fast = _Fixed(sm, p, shift=-0.12)  # a bf16 error below the margin, in the worst direction
    g = VerdictGuard(fast, lambda: exact, thr)
    images = np.zeros((101, 3, 4, 4), np.uint8)
    images[:, 0, 0, 0] = np.arange(101)
    out = g(images)
    pf = out[:, 1]
    assert ((pf >= thr) == (p >= thr)).all()  # every verdict as fp32 gives it
    near = np.abs(sm.card.p_fake(_Fixed(sm, p, shift=-0.12)(images)) - thr) < BF16_VERDICT_MARGIN
    assert g.rescored == near.sum() and exact.calls == [np.flatnonzero(near).tolist()]
    assert np.allclose(pf[~near], np.clip(p[~near] - 0.12, 0, 1), atol=1e-6)  # the rest as is
    unguarded = (np.clip(p - 0.12, 0, 1) >= thr) != (p >= thr)
    assert unguarded.any()  # without the guard this shift flips verdicts: the test can fail


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
