"""Scans through real Ray clusters on this machine, joined the way a user joins them.

- a cluster of two nodes (``ray.cluster_utils.Cluster``, Ray's own test utility, in a process
  of its own: ``tests/ray_cluster.py``): the same rows as a local scan; a resume after the
  driver is killed mid-scan loses and doubles no row; a decoder that crashes inside an actor
  costs its file a ``decoder_crashed`` row and nothing else;
- a cluster started the documented way (``ray start --head``) with token authentication:
  joined with the token it uses, and one clear line (exit 2) for a wrong address or a client
  without the token.

Every node binds to 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); the test process
itself never imports Ray (Ray reads its environment once, at import).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakescan.scanner.output import read_rows
from tests.conftest import REPO, run_cli
from tests.corpus import BROKEN_KINDS, valid_bytes

pytest.importorskip("ray.data", reason="Ray Data is the optional extra fakescan[ray]")
pytestmark = pytest.mark.slow

COMMON = ["--runtime", "torch", "--precision", "fp32", "--batch-size", "8", "-q"]


@pytest.fixture(scope="module")
def token_env(tmp_path_factory) -> dict[str, str]:
    """A token of the tests' own (never the user's ~/.ray/auth_token), loopback only."""
    tok = tmp_path_factory.mktemp("raytoken") / "auth_token"
    tok.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_") or k == "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    return {**env, "RAY_AUTH_TOKEN_PATH": str(tok), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep)}


@pytest.fixture(scope="module")
def cluster(token_env):
    """Two nodes of one CPU each: two actors cannot both be on one node."""
    env = {**token_env, "RAY_AUTH_MODE": "token"}
    p = subprocess.Popen([sys.executable, "-m", "tests.ray_cluster", "2", "1"], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("address "), f"the test cluster did not start: {line!r}"
        yield line.split()[1], token_env
    finally:
        p.stdin.close()
        try:
            p.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_start(token_env, tmp_path_factory):
    """``ray start --head`` with token authentication, as its documentation starts one."""
    port = _free_port()
    env = {**token_env, "RAY_AUTH_MODE": "token"}
    ray_bin = Path(sys.executable).with_name("ray")
    p = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--port", str(port), "--num-cpus", "2",
         "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
         "--disable-usage-stats", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert p.poll() is None, "ray start --head exited"
                time.sleep(0.5)
        else:
            pytest.fail("ray start --head did not open its port")
        yield f"127.0.0.1:{port}", token_env
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _same_rows(a_path, b_path, n=None):
    a = {x["path"]: x for x in read_rows(str(a_path))}
    rows = read_rows(str(b_path))
    b = {x["path"]: x for x in rows}
    assert len(rows) == len(b), "a path got two rows"
    assert set(a) == set(b)
    for p, x in a.items():
        y = b[p]
        assert (x["status"], x["error_code"], x["label"]) == (
            y["status"], y["error_code"], y["label"]), p
        if x["status"] == "ok":
            assert abs(float(x["p_fake"]) - float(y["p_fake"])) < 1e-4, p
    return b


def test_a_two_node_scan_gives_the_local_rows(cluster, tiny_model, mixed_folder, tmp_path):
    address, env = cluster
    local, remote = tmp_path / "local.csv", tmp_path / "cluster.csv"
    r = run_cli("scan", mixed_folder, "--model", tiny_model, *COMMON, "--out", local, env=env)
    assert r.returncode == 2, r.stderr  # the broken files are error rows
    r = run_cli("scan", mixed_folder, "--model", tiny_model, *COMMON, "--out", remote,
                "--engine", "ray", "--ray-address", address, "--ray-actors", "2", env=env)
    assert r.returncode == 2, r.stderr
    rows = _same_rows(local, remote)
    assert sum(x["status"] == "error" for x in rows.values()) == len(BROKEN_KINDS) - 2


def test_a_driver_killed_mid_scan_resumes_with_no_row_lost_or_doubled(
        cluster, tiny_model, synth_small, tmp_path):
    address, env = cluster
    src = sorted(synth_small.rglob("*.jpg")) + sorted(synth_small.rglob("*.png"))
    folder = tmp_path / "many"
    for k in range(4):  # 4 links of every image: long enough to be killed in the middle
        d = folder / f"copy{k}"
        d.mkdir(parents=True)
        for i, p in enumerate(src):
            os.link(p, d / f"{i:04d}{p.suffix}")
    total = sum(1 for _ in folder.rglob("*.*"))
    out = tmp_path / "killed.csv"
    args = [sys.executable, "-m", "fakescan", "scan", str(folder), "--model", str(tiny_model),
            *COMMON, "--out", str(out), "--engine", "ray", "--ray-address", address,
            "--ray-actors", "2"]
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and p.poll() is None:
        done = len(read_rows(str(out))) if out.exists() else 0
        if done >= total // 5:
            break
        time.sleep(0.2)
    assert p.poll() is None, f"the scan ended before it could be killed: {p.stderr.read()}"
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = len(read_rows(str(out)))
    assert 0 < before < total
    r = run_cli(*args[3:], "--resume", env=env)
    assert r.returncode in (0, 1), r.stderr
    rows = read_rows(str(out))
    paths = [x["path"] for x in rows]
    assert len(paths) == len(set(paths)) == total
    assert {str(x) for x in folder.rglob("*.*")} == set(paths)
    assert all(x["status"] == "ok" for x in rows)


def test_a_decoder_crash_inside_an_actor_costs_that_file_only(cluster, tiny_model,
                                                              synth_small, tmp_path):
    address, env = cluster
    folder = tmp_path / "crash"
    shutil.copytree(synth_small / "test", folder)
    bad = folder / "zz_segfault.jpg"
    bad.write_bytes(valid_bytes("jpeg", 3)[0] + b"PLANT:segfault")
    local, remote = tmp_path / "local.csv", tmp_path / "cluster.csv"
    r = run_cli("scan", folder, "--model", tiny_model, *COMMON, "--out", local, env=env)
    assert r.returncode in (0, 1), r.stderr  # the probe is not planted here: a valid file
    # the driver: the library's scan over Ray, with the failure planted in every actor
    code = f"""
import ray
ray.init(address={address!r}, runtime_env={{"worker_process_setup_hook": "tests.plant.install"}},
         include_dashboard=False, log_to_driver=False, logging_level="ERROR")
from fakescan.scanner.driver import run_scan
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.inputs import iter_inputs
opts = ScanOptions(model={str(tiny_model)!r}, runtime="torch", precision="fp32", batch_size=8,
                   engine="ray", ray_actors=2)
s = run_scan(iter_inputs([{str(folder)!r}]), opts, out={str(remote)!r}, fmt="csv")
print("rows", s.scanned)
"""
    r = subprocess.run([sys.executable, "-c", code], env={**env, "RAY_AUTH_MODE": "token"},
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {x["path"]: x for x in read_rows(str(remote))}
    assert rows[str(bad)]["error_code"] == "decoder_crashed", rows[str(bad)]
    others = {p: x for p, x in rows.items() if p != str(bad)}
    assert others and all(x["status"] == "ok" for x in others.values())
    ref = {x["path"]: x for x in read_rows(str(local))}
    for p, x in others.items():
        assert x["label"] == ref[p]["label"]
        assert abs(float(x["p_fake"]) - float(ref[p]["p_fake"])) < 1e-4


def test_a_ray_start_cluster_is_joined_with_its_token(ray_start, tiny_model, synth_small,
                                                      tmp_path):
    address, env = ray_start
    assert "RAY_AUTH_MODE" not in env  # the product picks token mode: a token is at hand
    local, remote = tmp_path / "local.csv", tmp_path / "ray_start.csv"
    r = run_cli("scan", synth_small / "test", "--model", tiny_model, *COMMON, "--out", local,
                env=env)
    assert r.returncode in (0, 1), r.stderr
    r = run_cli("scan", synth_small / "test", "--model", tiny_model, *COMMON, "--out", remote,
                "--engine", "ray", "--ray-address", address, env=env)
    assert r.returncode in (0, 1), r.stderr
    _same_rows(local, remote)
    # RAY_ADDRESS is the default address, as in Ray
    r = run_cli("scan", synth_small / "test", "--model", tiny_model, *COMMON, "--out",
                tmp_path / "env.csv", "--engine", "ray", env={**env, "RAY_ADDRESS": address})
    assert r.returncode in (0, 1), r.stderr
    _same_rows(local, tmp_path / "env.csv")


def _one_line_error(r) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fakescan: error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


def test_a_wrong_address_or_a_missing_token_is_one_line(ray_start, tiny_model, synth_small,
                                                         tmp_path):
    address, env = ray_start
    common = ["scan", synth_small / "test", "--model", tiny_model, *COMMON, "--engine", "ray"]
    t0 = time.monotonic()
    line = _one_line_error(run_cli(*common, "--out", tmp_path / "a.csv", "--ray-address",
                                   f"127.0.0.1:{_free_port()}", env=env))
    assert "cannot reach a Ray cluster" in line and time.monotonic() - t0 < 60
    line = _one_line_error(run_cli(*common, "--out", tmp_path / "b.csv", "--ray-address",
                                   "no-port-here", env=env))
    assert "expected HOST:PORT" in line
    line = _one_line_error(run_cli(*common, "--out", tmp_path / "c.csv", "--ray-address",
                                   address, env={**env, "RAY_AUTH_MODE": "disabled"}))
    assert "requires token authentication" in line and "RAY_AUTH_MODE=token" in line
