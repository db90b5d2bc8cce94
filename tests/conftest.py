"""Shared fixtures: generated data (no network) and the real datasets in ../shared/datasets."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fakescan.settings import configure_from

REPO = Path(__file__).resolve().parents[1]
# What scans build once (ONNX files, runtime choices) goes to a cache of the test run's own,
# not the user's; subprocesses (run_cli) inherit it.
os.environ.setdefault("FAKESCAN_CACHE", tempfile.mkdtemp(prefix="fakescan-test-cache-"))
configure_from(os.environ)  # what the command line's entry point does
SHARED = Path(os.environ.get("FAKESCAN_SHARED", REPO.parent / "shared"))
HARD = SHARED / "datasets" / "hard-fake-vs-real-faces"
OOD = SHARED / "datasets" / "ood-ffhq-vs-stylegan2-dev"


def run_cli(*args, input: str | None = None, cwd: Path | None = None, env: dict | None = None):
    """Run ``python -m fakescan ARGS`` in a subprocess, as a user would."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fakescan", *map(str, args)],
        capture_output=True, text=True, input=input, cwd=cwd, timeout=600, env=env,
    )


@pytest.fixture(scope="session")
def hard_dataset() -> Path:
    if not HARD.is_dir():
        pytest.skip(f"real dataset not found at {HARD} (set FAKESCAN_SHARED)")
    return HARD


@pytest.fixture(scope="session")
def ood_dataset() -> Path:
    if not OOD.is_dir():
        pytest.skip(f"OOD dataset not found at {OOD} (set FAKESCAN_SHARED)")
    return OOD


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """120 small synthetic images in the split layout (fast to make and to train on)."""
    from fakescan.data.synth import make_synth

    out = tmp_path_factory.mktemp("synth_small")
    make_synth(out, n=120, seed=1, size_range=(64, 192))
    return out


@pytest.fixture(scope="session")
def tiny_model(synth_small, tmp_path_factory) -> Path:
    """A simplecnn model folder trained for 2 epochs on ``synth_small`` (verdicts spread out)."""
    from fakescan.nets import get_arch
    from fakescan.train.fit import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "cnn"
    recipe = get_arch("simplecnn").recipe.replace(epochs=2, batch_size=16)
    train(TrainConfig("simplecnn", synth_small, out, recipe, workers=0))
    return out


@pytest.fixture(scope="session")
def mixed_folder(synth_small, tmp_path_factory) -> Path:
    """``synth_small``'s test and valid images in two folders, plus one broken file of each
    kind but a directory and a bomb (the scan engines must agree on these rows)."""
    import shutil

    from tests.corpus import BROKEN_KINDS, broken_bytes

    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(synth_small / "test", root / "imgs")
    shutil.copytree(synth_small / "valid", root / "imgs2")
    for i, (kind, _) in enumerate(BROKEN_KINDS):
        if kind not in ("directory", "bomb"):
            (root / "imgs" / f"broken_{i}_{kind}.jpg").write_bytes(broken_bytes(kind, i))
    return root
