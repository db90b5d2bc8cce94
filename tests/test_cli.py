"""CLI contract: fast help, one clear error line and exit status 2 on bad data."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import run_cli


def test_cli_import_does_not_load_heavy_libraries():
    code = (
        "import sys, fakescan.cli; "
        "heavy = [m for m in ('torch', 'nvidia.dali', 'onnxruntime', 'torchvision') "
        "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["data", "--help"], ["models", "--help"], ["data", "synth", "--help"],
             ["data", "stats", "--help"], ["data", "dedup", "--help"], ["data", "split", "--help"]]
)
def test_help_answers(args):
    r = run_cli(*args)
    assert r.returncode == 0 and "Usage" in r.stdout


def _assert_one_error_line(r, needle: str):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("fakescan: error:") and needle in lines[0], lines[0]


def test_missing_folder(tmp_path):
    _assert_one_error_line(run_cli("data", "stats", tmp_path / "nope"), "not found")


def test_empty_class_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    _assert_one_error_line(run_cli("data", "stats", tmp_path), "contains no images")


def test_unrecognised_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _assert_one_error_line(run_cli("data", "stats", tmp_path), "cannot recognise")


@pytest.mark.parametrize(
    "content,needle",
    [("file,klass\na.png,real\n", "header must name"),
     ("path,label\n", "no rows"),
     ("path,label\nmissing.png,real\n", "line 2: no such file"),
     ("path,label\n,real\n", "line 2: empty path or label")],
)
def test_malformed_manifest(tmp_path, content, needle):
    m = tmp_path / "m.csv"
    m.write_text(content)
    _assert_one_error_line(run_cli("data", "stats", m), needle)


def test_bad_ratios(tmp_path):
    _assert_one_error_line(
        run_cli("data", "split", tmp_path, tmp_path / "o", "--ratios", "0.5", "0.5", "0.5"),
        "sum to 1",
    )
