"""The GPU paths, on a machine with an NVIDIA GPU: ``pytest -m gpu`` (deselected by default).

DALI ``mixed`` decode + resize against the Pillow reference on the 550-file corpus (and its
guard: the files scored near the threshold decoded again by Pillow), fp16
autocast against fp32, onnxruntime's CUDA provider (IO binding) against torch, a corrupt
file inside a DALI batch on the GPU pipeline, and ``--device all``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.corpus import corrupt_jpeg, make_corpus

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

DALI_MIXED_VS_PIL_TOL = 1e-2  # nvJPEG's IDCT and the GPU resize differ from libjpeg + Pillow
FP16_VS_FP32_TOL = 0.05
ONNX_CUDA_VS_TORCH_TOL = 1e-3
DALI_BATCH_TOL = 1e-3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    valid, broken = make_corpus(tmp_path_factory.mktemp("gpu_corpus"), 500, 50)
    return valid, broken


def _scan(model, paths, device, **kw):
    from fakescan.scanner.core import build_core, scan_batches
    from fakescan.scanner.options import ScanOptions

    opts = ScanOptions(model=str(model), device=device, batch_size=64, **kw)
    core = build_core(opts, device)
    try:
        return [r for rows in scan_batches(core, paths, opts.batch_size) for r in rows], core
    finally:
        core.decoder.close()


def test_dali_mixed_decode_matches_pil(tiny_model, corpus):
    valid, broken = corpus
    paths = valid + list(broken)
    dali, _ = _scan(tiny_model, paths, "cuda:0", decoder="dali", runtime="torch",
                    precision="fp32", dali_guard=False)  # DALI's own output is compared
    pil, _ = _scan(tiny_model, paths, "cuda:0", decoder="pil", runtime="torch",
                   precision="fp32")
    assert [r.path for r in dali] == paths == [r.path for r in pil]
    assert sum(r.decoder == "dali" for r in dali) > 150  # the plain files took the GPU
    by = {r.path: r for r in pil}
    delta = np.array([abs(r.p_fake - by[r.path].p_fake) for r in dali if r.status == "ok"])
    print(f"DALI mixed vs PIL over {len(delta)} images: max {delta.max():.2e}, "
          f"mean {delta.mean():.2e}")
    assert delta.max() < DALI_MIXED_VS_PIL_TOL
    assert [r.label for r in dali] == [r.label for r in pil]
    assert {p: r.error_code for p, r in by.items() if p in broken} == broken


def test_dali_guard_on_the_gpu_gives_the_reference_rows_near_the_threshold(tiny_model,
                                                                            corpus):
    """The guard with DALI ``mixed`` output: the files scored near the threshold are decoded
    again on the CPU and scored on the GPU, and their rows are the Pillow decoder's."""
    from fakescan.scanner.decoders import DALI_VERDICT_MARGIN
    from fakescan.scanner.runtimes import log_odds, near_threshold

    valid, _ = corpus
    raw, _ = _scan(tiny_model, valid, "cuda:0", decoder="dali", runtime="torch",
                   precision="fp32", dali_guard=False)
    pil, _ = _scan(tiny_model, valid, "cuda:0", decoder="pil", runtime="torch",
                   precision="fp32")
    by_pil = {r.path: r for r in pil}
    gpu = [r for r in raw if r.decoder == "dali"]
    thr = float(1 / (1 + np.exp(-(np.median(log_odds([r.p_fake for r in gpu]))
                                  + DALI_VERDICT_MARGIN))))
    rows, core = _scan(tiny_model, [r.path for r in gpu], "cuda:0", decoder="dali",
                       runtime="torch", precision="fp32", threshold=thr)
    near = near_threshold(np.array([r.p_fake for r in gpu]), thr, DALI_VERDICT_MARGIN)
    assert 0 < near.sum() < len(gpu) and core.redecoded == near.sum()
    for r, before, n in zip(rows, gpu, near, strict=True):
        if n:
            assert r.decoder == "pil"
            assert r.p_fake == pytest.approx(by_pil[r.path].p_fake, abs=1e-5)
        else:
            assert r.decoder == "dali" and r.p_fake == pytest.approx(before.p_fake, abs=1e-5)


def test_fp16_autocast_against_fp32(tiny_model, corpus):
    paths = corpus[0][:200]
    a, _ = _scan(tiny_model, paths, "cuda:0", decoder="pil", runtime="torch", precision="fp32")
    b, core = _scan(tiny_model, paths, "cuda:0", decoder="pil", runtime="torch",
                    precision="fp16")
    assert core.runtime.precision == "fp16"
    d = np.array([abs(x.p_fake - y.p_fake) for x, y in zip(a, b, strict=True)])
    print(f"fp16 vs fp32: max {d.max():.2e}")
    assert d.max() < FP16_VS_FP32_TOL
    far = [i for i, x in enumerate(a) if abs(x.p_fake - x.threshold) > FP16_VS_FP32_TOL]
    assert all(a[i].label == b[i].label for i in far)


def test_onnxruntime_cuda_provider_against_torch(tiny_model, corpus):
    paths = corpus[0][:200]
    t, _ = _scan(tiny_model, paths, "cuda:0", decoder="pil", runtime="torch", precision="fp32")
    o, core = _scan(tiny_model, paths, "cuda:0", decoder="pil", runtime="onnx",
                    precision="fp32")
    assert "CUDAExecutionProvider" in core.runtime.providers and core.runtime._cuda
    d = max(abs(x.p_fake - y.p_fake) for x, y in zip(t, o, strict=True))
    assert d < ONNX_CUDA_VS_TORCH_TOL and [x.label for x in t] == [y.label for y in o]


def test_a_corrupt_file_in_a_gpu_dali_batch_is_isolated(tiny_model, corpus, tmp_path):
    from fakescan.scanner.core import build_core
    from fakescan.scanner.options import ScanOptions

    plain = ("_jpeg.jpg", "_jpeg_progressive.jpg", "_jpeg_gray.jpg", "_png.png", "_webp.webp")
    jpegs = [p for p in corpus[0] if p.endswith(plain)][:63]
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(corrupt_jpeg())
    batch = jpegs[:31] + [str(bad)] + jpegs[31:]
    core = build_core(ScanOptions(model=str(tiny_model), decoder="dali", precision="fp32",
                                  batch_size=64, runtime="torch"), "cuda:0")
    try:
        rows = core(batch)
        assert core.decoder.rebuilds > 0 and [r.path for r in rows] == batch
        assert rows[31].status == "error" and [r.status for r in rows].count("ok") == 63
        clean = core(jpegs)
        # the same verdicts, to nvJPEG's precision: which of its decoders (the hardware one or
        # the CUDA one) takes a file depends on the batch it is in, and bisection changes that
        # (measured on an H100: up to 2.7e-5 apart)
        assert [r.p_fake for r in rows[:31] + rows[32:]] == pytest.approx(
            [r.p_fake for r in clean], abs=DALI_BATCH_TOL)
        assert [r.label for r in rows[:31] + rows[32:]] == [r.label for r in clean]
    finally:
        core.decoder.close()


def test_device_all_with_the_gpus_there_is(tiny_model, synth_small, tmp_path):
    from fakescan.scanner.output import read_rows

    out_all, out_one = tmp_path / "all.csv", tmp_path / "one.csv"
    r = run_cli("scan", synth_small, "--model", tiny_model, "--device", "all", "--out",
                out_all, "--precision", "fp32", "--runtime", "torch")
    assert r.returncode in (0, 1), r.stderr
    r = run_cli("scan", synth_small, "--model", tiny_model, "--device", "cuda:0", "--out",
                out_one, "--precision", "fp32", "--runtime", "torch")
    assert r.returncode in (0, 1), r.stderr
    a = {x["path"]: x for x in read_rows(str(out_all))}
    b = {x["path"]: x for x in read_rows(str(out_one))}
    assert set(a) == set(b) and len(a) == 120
    for p in a:
        assert float(a[p]["p_fake"]) == pytest.approx(float(b[p]["p_fake"]), abs=1e-4)
