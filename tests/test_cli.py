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


def test_closed_choices_fail_at_parse_time_and_help_renders_as_written():
    r = run_cli("scan", "x.jpg", "--decoder", "foo")
    assert r.returncode == 2 and "'foo' is not one of 'auto', 'dali', 'pil'" in r.stderr
    r = run_cli("scan", "--help", env={"COLUMNS": "200"})
    assert "--decoder [auto|dali|pil]" in r.stdout and "'fakescan[ray]'" in r.stdout
    assert "<str>" not in r.stdout and "<bool>" not in r.stdout and "<list" not in r.stdout
    r = run_cli("train", "--model", "simplecnn", "--data", ".", "--recipe", "sturdy")
    assert r.returncode == 2 and "cross_source" in r.stderr


def test_bench_table_fits_80_columns():
    from rich.console import Console

    from fakescan.bench import BenchResult, BenchRow, Machine, Rate
    from fakescan.cli.render import bench

    machine = Machine("node", "Linux", "AMD EPYC 9R14 96-Core Processor", 16, True, 16,
                      ["NVIDIA H100 80GB HBM3"], 128.0)
    res = BenchResult(machine, {}, {"model": "resnet_ft"}, [
        BenchRow("resnet_ft", 128, False, 256, "cuda:0", "onnx", "fp16", "pil+torchvision",
                 stage, Rate(12345.6, 12000.0, 12500.0, 3), ratio_vs_naive=12.3,
                 ratio_vs_min_stage=0.91, harmonic_bound=15000.0, ratio_vs_harmonic=0.82)
        for stage in ("naive", "decode", "model", "end_to_end")])
    c = Console(width=80, record=True)
    c.print(bench(res))
    text = c.export_text()
    header = next(line for line in text.splitlines() if "device" in line)
    for col in ("device", "runtime", "prec", "decoder", "stage", "img/s", "spread", "×naive",
                "×min"):
        assert col in header, (col, header)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
