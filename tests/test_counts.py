"""One count of verdict rows (issue 23): a scan, the same scan killed and resumed, and the
report of either file say the same numbers, no_face rows and warnings included, for a model
whose first label is not ``real``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.corpus import broken_bytes
from tests.test_scan_failures import _bad_second_page_tiff, _tiff_with_tag

KEYS = ("fake", "real", "errors", "no_face", "warnings", "error_codes")


@pytest.fixture(scope="module")
def face_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model as a face model whose classes are ``authentic`` (negative, first) and
    ``synthetic``: no ``real`` anywhere."""
    import dataclasses

    from fakescan.card import ModelCard

    folder = tmp_path_factory.mktemp("labels") / "auth"
    shutil.copytree(tiny_model, folder)
    card = ModelCard.load(folder)
    card.replace(name="auth", labels=("authentic", "synthetic"),
                 preprocess=dataclasses.replace(card.preprocess, crop="face")).save(folder)
    return folder


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Synthetic faces (MTCNN finds some, not all: ok and no_face rows), two TIFFs that make
    the decoder complain (warnings) and two broken files (errors)."""
    from fakescan.data.synth import make_synth

    root = tmp_path_factory.mktemp("mixed_counts")
    make_synth(root / "s", n=400, seed=5, size_range=(96, 160))
    (root / "zz_pages.tif").write_bytes(_bad_second_page_tiff())
    (root / "zz_samples.tif").write_bytes(_tiff_with_tag(277, 65535))
    (root / "zz_empty.jpg").write_bytes(broken_bytes("empty", 0) or b"")
    (root / "zz_garbage.jpg").write_bytes(broken_bytes("garbage", 1) or b"x" * 100)
    return root


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())["summary"]


def test_resumed_scan_and_report_count_like_an_uninterrupted_scan(face_model, mixed, tmp_path):
    args = [sys.executable, "-m", "fakescan", "scan", str(mixed), "--model", str(face_model),
            "--decoder", "pil", "--batch-size", "16", "-q", "--format", "json"]
    ref = tmp_path / "ref.json"
    r = subprocess.run(args + ["--out", str(ref)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2, r.stderr  # broken files: errors
    want = _summary(ref)
    assert want["no_face"] > 0 and want["warnings"] > 0 and want["errors"] >= 2
    assert want["fake"] + want["real"] > 0

    out = tmp_path / "killed.json"
    partial = Path(str(out) + ".partial.jsonl")
    p = subprocess.Popen(args + ["--out", str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 150:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the scan ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    r = subprocess.run(args + ["--out", str(out), "--resume"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2, r.stderr
    got = _summary(out)
    assert got["resumed"] >= 150 and got["resumed"] + got["scanned"] == want["scanned"]
    assert {k: got[k] for k in KEYS} == {k: want[k] for k in KEYS}
    for f in (ref, out):  # the report counts the same rows the same way
        r = run_cli("report", f, "--json", "--top", "0")
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert {k: rep[k] for k in KEYS} == {k: want[k] for k in KEYS}
        assert rep["scanned"] == want["scanned"]
