"""The scan inside Ray Data (a local Ray on this machine, CPU only) against a local scan."""

from __future__ import annotations

import pytest

from fakescan.scanner.output import read_rows
from tests.conftest import run_cli
from tests.corpus import BROKEN_KINDS

pytest.importorskip("ray.data", reason="Ray Data is the optional extra fakescan[ray]")


def test_ray_scan_equals_local_scan(tiny_model, mixed_folder, tmp_path):
    common = ["--model", tiny_model, "--runtime", "torch", "--precision", "fp32",
              "--batch-size", "8"]
    local, ray_out = tmp_path / "local.csv", tmp_path / "ray.csv"
    r = run_cli("scan", mixed_folder, *common, "--out", local)
    assert r.returncode == 2, r.stderr  # the broken files are error rows
    r = run_cli("scan", mixed_folder, *common, "--out", ray_out, "--engine", "ray",
                "--ray-actors", "2")
    assert r.returncode == 2, r.stderr
    a = {x["path"]: x for x in read_rows(str(local))}
    rows = read_rows(str(ray_out))
    b = {x["path"]: x for x in rows}
    assert len(rows) == len(b) == len(a)  # no duplicate rows
    assert set(a) == set(b)
    n_err = 0
    for p, x in a.items():
        y = b[p]
        assert (x["status"], x["error_code"], x["label"]) == (y["status"], y["error_code"],
                                                               y["label"]), p
        if x["status"] == "ok":
            assert abs(float(x["p_fake"]) - float(y["p_fake"])) < 1e-4, p
        else:
            n_err += 1
    assert n_err == len(BROKEN_KINDS) - 2

    # --resume with the ray engine skips every path already present.
    r = run_cli("scan", mixed_folder, *common, "--out", ray_out, "--engine", "ray", "--resume")
    assert r.returncode == 2, r.stderr
    assert len(read_rows(str(ray_out))) == len(a)


def test_missing_ray_gives_an_install_hint(tiny_model, synth_small, tmp_path):
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name == 'ray' or name.startswith('ray.'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "from fakescan.scanner.ray_engine import import_ray\n"
            "try:\n    import_ray()\nexcept Exception as e:\n    print(e)\n")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'fakescan[ray]'" in r.stdout, r.stdout + r.stderr
