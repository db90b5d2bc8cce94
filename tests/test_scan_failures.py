"""No single file can end a scan: any exception, a dying or hanging decoder, a decompression
bomb of any format, a malformed TIFF, fuzzed files of every kind - each gets its own row, every
other file its verdict, and nothing but the progress bar and the summary reaches the terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import fakescan.scanner.decoders as decoders
from fakescan.scanner.core import build_core, scan_batches
from fakescan.scanner.guard import ScanError
from fakescan.scanner.options import ScanOptions
from fakescan.scanner.probe import probe
from fakescan.scanner.rows import ERROR_CODES
from fakescan.scanner.workers import WorkerPool
from tests.conftest import REPO
from tests.corpus import valid_bytes
from tests.mutate import write_mutants
from tests.plant import PLANTS
from tests.plant import planted_probe as _planted_probe


def _scan(model, paths, **kw):
    opts = ScanOptions(model=str(model), device="cpu", precision="fp32", runtime="torch", **kw)
    core = build_core(opts, "cpu")
    try:
        return [r for rows in scan_batches(core, paths, opts.batch_size) for r in rows], core
    finally:
        core.decoder.close()


@pytest.mark.parametrize("decoder", ["pil", "dali"])
def test_each_failing_file_gets_its_own_row_and_every_other_file_its_verdict(
        tiny_model, tmp_path, monkeypatch, decoder):
    good = []
    for i in range(24):
        data, ext = valid_bytes("jpeg" if i % 2 else "png", i)
        p = tmp_path / f"good_{i:02d}{ext}"
        p.write_bytes(data)
        good.append(str(p))
    clean, _ = _scan(tiny_model, good, decoder=decoder, batch_size=8, workers=2)
    planted = {}
    for k, (marker, code) in enumerate(PLANTS.items()):
        p = tmp_path / f"planted_{k}.jpg"
        p.write_bytes(valid_bytes("jpeg", 100 + k)[0] + marker)
        planted[str(p)] = code
    paths = good[:5] + list(planted)[:3] + good[5:15] + list(planted)[3:] + good[15:]
    monkeypatch.setattr(decoders, "probe", _planted_probe(decoders.probe))
    rows, core = _scan(tiny_model, paths, decoder=decoder, batch_size=8, workers=2, timeout=3)
    assert [r.path for r in rows] == paths  # one row each, in order
    by = {r.path: r for r in rows}
    for p, code in planted.items():
        assert by[p].status == "error" and by[p].error_code == code, (p, by[p])
    assert "TypeError: planted" in by[list(planted)[0]].error
    ok = {r.path: r for r in clean}
    for p in good:
        assert by[p].status == "ok", by[p]
        assert by[p].p_fake == pytest.approx(ok[p].p_fake, abs=1e-6)


def test_worker_pool_counts_crashes_and_timeouts_and_keeps_going(tmp_path):
    from fakescan.config import Preprocess

    opts = decoders.DecodeOptions(Preprocess(32, (0.5,) * 3, (0.5,) * 3), timeout=2)
    paths = []
    for i, tail in enumerate([b"", b"PLANT:segfault", b"", b"PLANT:hang", b""]):
        p = tmp_path / f"f{i}.jpg"
        p.write_bytes(valid_bytes("jpeg", i)[0] + tail)
        paths.append(str(p))
    real = decoders.probe
    decoders.probe = _planted_probe(real)
    try:
        pool = WorkerPool(1, timeout=2)
        t0 = time.monotonic()
        outs = pool.submit(decoders.decode_file, opts, paths).result(timeout=60)
        took = time.monotonic() - t0
        again = pool.submit(decoders.decode_file, opts, paths[:1]).result(timeout=30)
        pool.close()
    finally:
        decoders.probe = real
    assert [o.error.code if o.error else "ok" for o in outs] == [
        "ok", "decoder_crashed", "ok", "timeout", "ok"]
    assert pool.crashes == 2 and pool.timeouts == 1  # the crash was retried once
    assert took < 20  # one timeout of 2 s, not one per file left
    assert again[0].error is None  # the pool still works after both


def test_a_decode_worker_cannot_take_more_memory_than_its_budget():
    pool = WorkerPool(1, memory_budget=256 << 20)
    try:
        outs = pool.submit(_allocate, None, ["2048", "16"]).result(timeout=60)
    finally:
        pool.close()
    assert outs[0].error is not None and outs[0].error.code == "too_large"
    assert outs[1].error is None and outs[1].value == 16  # same worker, still alive


def _allocate(mb: str, _ctx) -> int:
    a = np.ones((int(mb) << 20,), np.uint8)
    return int(a.size >> 20)


def _with_size(fmt: str, w: int, h: int) -> bytes:
    """A small valid file of ``fmt`` whose header declares ``w`` x ``h``."""
    kind = {"jpeg": "jpeg", "png": "png", "gif": "gif", "bmp": "bmp", "tiff": "tiff",
            "webp": "webp"}[fmt]
    b = bytearray(valid_bytes(kind, 5)[0])
    if fmt == "jpeg":
        i = next(k for k in range(len(b)) if b[k] == 0xFF and b[k + 1] == 0xC0)
        b[i + 5: i + 9] = struct.pack(">HH", h, w)
    elif fmt == "png":
        b[16:24] = struct.pack(">II", w, h)
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    elif fmt == "gif":
        b[6:10] = struct.pack("<HH", w, h)
    elif fmt == "bmp":
        b[18:26] = struct.pack("<ii", w, h)
    elif fmt == "tiff":
        ifd = struct.unpack("<I", b[4:8])[0]
        n = struct.unpack("<H", b[ifd: ifd + 2])[0]
        for k in range(n):
            e = ifd + 2 + 12 * k
            tag = struct.unpack("<H", b[e: e + 2])[0]
            if tag in (256, 257):
                b[e + 2: e + 12] = struct.pack("<HII", 4, 1, w if tag == 256 else h)
    elif fmt == "webp":
        i = b.index(b"VP8")
        kind = bytes(b[i: i + 4])
        if kind == b"VP8 ":
            b[i + 14: i + 18] = struct.pack("<HH", w, h)
        elif kind == b"VP8L":
            bits = (w - 1) | ((h - 1) << 14) | (int.from_bytes(b[i + 9: i + 13], "little")
                                               & ~((1 << 28) - 1))
            b[i + 9: i + 13] = bits.to_bytes(4, "little")
        else:
            b[i + 12: i + 18] = (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return bytes(b)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "gif", "bmp", "tiff", "webp"])
def test_bombs_of_every_format_are_refused_from_the_header(fmt):
    small = _with_size(fmt, 300, 200)
    assert probe(small, max_pixels=1_000_000).width == 300  # the patched header is read
    for w, h in ((2000, 1000), (16000, 16000)):  # over our limit; over Pillow's own too
        with pytest.raises(ScanError) as e:
            probe(_with_size(fmt, w, h), max_pixels=1_000_000)
        assert e.value.code == "too_large"
        assert "declared in the header" in str(e.value)  # before any decoder opened it


def _bad_second_page_tiff() -> bytes:
    b = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(b, "TIFF")
    d = bytearray(b.getvalue())
    ifd = struct.unpack("<I", d[4:8])[0]
    n = struct.unpack("<H", d[ifd: ifd + 2])[0]
    page2 = len(d) + len(d) % 2
    d += b"\0" * (page2 - len(d))
    d[ifd + 2 + 12 * n: ifd + 6 + 12 * n] = struct.pack("<I", page2)
    d += struct.pack("<H", 1) + struct.pack("<HHII", 259, 3, 1, 1) + struct.pack("<I", 0)
    return bytes(d)


def test_a_malformed_tiff_whose_frames_cannot_be_counted_gets_a_row(tiny_model, tmp_path):
    from tests.conftest import run_cli

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_broken_pages.tif").write_bytes(_bad_second_page_tiff())
    with pytest.raises(TypeError, match="Missing dimensions"):  # what Pillow does with it
        _ = Image.open(folder / "a_broken_pages.tif").n_frames
    for i in range(6):
        data, ext = valid_bytes("jpeg", i)
        (folder / f"b_{i}{ext}").write_bytes(data)
    for dec in ("pil", "dali"):
        out = tmp_path / f"{dec}.csv"
        r = run_cli("scan", folder, "--model", tiny_model, "--decoder", dec, "--out", out)
        assert r.returncode == 2, r.stderr
        assert r.stderr == ""
        from fakescan.scanner.output import read_rows

        rows = read_rows(str(out))
        assert len(rows) == 7
        bad = [x for x in rows if x["path"].endswith(".tif")][0]
        assert bad["error_code"] == "corrupt" and "Missing dimensions" in bad["error"]
        assert sum(x["status"] == "ok" for x in rows) == 6


@pytest.mark.parametrize("decoder", ["pil", "dali"])
def test_seeded_fuzz_every_mutant_gets_exactly_one_row(tiny_model, tmp_path, decoder):
    paths = write_mutants(tmp_path / "m", 1260, seed=7)  # 60 per kind, 126-315 per format
    rows, _ = _scan(tiny_model, paths, decoder=decoder, batch_size=32, workers=2)
    assert [r.path for r in rows] == paths
    assert {r.error_code for r in rows if r.status == "error"} <= set(ERROR_CODES)
    assert sum(r.status == "ok" for r in rows) > 200  # many mutants still decode
    assert sum(r.status == "error" for r in rows) > 500


def _run_in_terminal(args: list[str], timeout: float = 300) -> str:
    """Run the CLI with a pseudo-terminal on stdin/stdout/stderr; everything it printed."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    p = subprocess.Popen([sys.executable, "-m", "fakescan", *args], stdin=slave, stdout=slave,
                         stderr=slave, env=env, cwd=REPO, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.time() + timeout
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
    finally:
        p.wait(timeout=60)
        os.close(master)
    return out.decode("utf-8", "replace")


def _tiff_with_tag(tag: int, value: int) -> bytes:
    d = bytearray(valid_bytes("tiff", 3)[0])
    ifd = struct.unpack("<I", d[4:8])[0]
    for k in range(struct.unpack("<H", d[ifd: ifd + 2])[0]):
        e = ifd + 2 + 12 * k
        if struct.unpack("<H", d[e: e + 2])[0] == tag:
            d[e + 2: e + 12] = struct.pack("<HII", 3, 1, value)
    return bytes(d)


def test_terminal_shows_only_progress_and_summary_while_files_misbehave(tiny_model, tmp_path):
    paths = write_mutants(tmp_path / "m", 420, seed=11)
    (tmp_path / "m" / "zz_broken_pages.tif").write_bytes(_bad_second_page_tiff())
    # Pillow *logs* this one (logging.error) rather than warning about it
    (tmp_path / "m" / "zz_samples.tif").write_bytes(_tiff_with_tag(277, 65535))
    out = tmp_path / "rows.csv"
    text = _run_in_terminal(["scan", str(tmp_path / "m"), "--model", str(tiny_model),
                             "--out", str(out)])
    from fakescan.scanner.output import read_rows

    rows = read_rows(str(out))
    assert len(rows) == len(paths) + 2
    assert "More samples per pixel" in [r for r in rows if "zz_samples" in r["path"]][0][
        "warning"]
    assert sum(1 for r in rows if r["warning"]) > 0  # libraries did complain, into the rows
    assert "scan summary" in text and "scanning" in text  # the progress bar was shown
    for noise in ("Warning", "warn(", "Traceback", "libtiff", "TIFF", "Error", "error:",
                  "samples"):
        assert noise not in text, (noise, text[-2000:])
