"""The library metrics (scikit-learn, imagehash) against the hand-written ones they replaced:
same figures on random scores with ties, and pHashes within two bits."""

from __future__ import annotations

import numpy as np
import pytest

from fakescan.train.metrics import average_precision, calibrate_threshold, roc_auc, roc_curve


# ---------------------------------------------------------------- the previous implementations
def old_roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for predicting positive when ``score >= threshold``."""
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order].astype(np.int64)
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(yy)[distinct]
    fps = (distinct + 1) - tps
    p, n = max(int(yy.sum()), 1), max(int(len(yy) - yy.sum()), 1)
    tpr = np.r_[0.0, tps / p]
    fpr = np.r_[0.0, fps / n]
    return fpr, tpr, np.r_[np.inf, s[distinct]]


def old_roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    if y.min() == y.max():
        return float("nan")
    fpr, tpr, _ = old_roc_curve(y, score)
    return float(np.trapezoid(tpr, fpr))


def old_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Step-wise AP (as scikit-learn): sum over thresholds of precision x recall increase."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(yy)[distinct]
    precision = tps / (distinct + 1)
    recall = tps / yy.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))




def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def old_phash(path) -> int:
    from PIL import Image

    d = _dct_matrix(32)
    with Image.open(path) as im:
        im.draft("L", (64, 64))
        g = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
    low = (d @ g @ d.T)[:8, :8]
    return int(np.packbits((low > np.median(low)).ravel()).view(">u8")[0])


# ---------------------------------------------------------------- the comparisons
@pytest.mark.parametrize("seed", range(5))
def test_sklearn_metrics_match_the_previous_values(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n) * 0.7 + 0.3 * y, int(rng.integers(1, 4)))  # rounding: ties
    f1, t1, h1 = roc_curve(y, s)
    f0, t0, h0 = old_roc_curve(y, s)
    np.testing.assert_allclose(f1, f0)
    np.testing.assert_allclose(t1, t0)
    np.testing.assert_allclose(h1[1:], h0[1:])
    assert roc_auc(y, s) == pytest.approx(old_roc_auc(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(old_average_precision(y, s), abs=1e-12)
    assert 0.0 <= calibrate_threshold(y, s, 0.05) <= 1.0


def test_imagehash_phash_matches_the_previous_one(tmp_path):
    from fakescan.data.dedup import phash
    from fakescan.data.synth import make_synth

    make_synth(tmp_path, n=60, seed=5, size_range=(64, 400))
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    dist = [(phash(p) ^ old_phash(p)).bit_count() for p in files]
    assert max(dist) <= 2 and sum(d == 0 for d in dist) >= 0.9 * len(dist)
