"""Issue 22: int8 ONNX for CPUs, accepted only with parity, refused without it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fakescan.errors import ModelError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def int8_model(tiny_model, synth_small, tmp_path_factory):
    """A copy of the tiny model with its int8 file built by the CLI. The tiny model's scores
    crowd its threshold (two epochs on 96 images), so the copy's threshold is moved into the
    widest gap between its scores: a verdict there survives 8-bit rounding, as it must for a
    real model (for the tiny one as it is, the build refuses: see the last test)."""
    import torch

    from fakescan.card import ModelCard
    from fakescan.data.layouts import load_dataset
    from fakescan.imaging import load_uint8, normalize
    from fakescan.store import load_model

    folder = tmp_path_factory.mktemp("q") / "cnn"
    shutil.copytree(tiny_model, folder)
    lm = load_model(folder)
    pp = lm.card.preprocess
    x = torch.stack([load_uint8(s.path, pp) for s in load_dataset(synth_small).samples()])
    with torch.inference_mode():
        pf = np.sort(lm.card.p_fake(torch.softmax(lm.model(normalize(x, pp)), 1).numpy()))
    mid = pf[len(pf) // 4: 3 * len(pf) // 4]
    k = int(np.argmax(np.diff(mid)))
    card = ModelCard.load(folder)
    card.replace(threshold=float((mid[k] + mid[k + 1]) / 2)).save(folder)
    r = run_cli("export", folder, "--int8", "--parity-data", synth_small, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["parity"]["ok"] and rep["precision"] == "int8"
    return folder


def test_int8_file_carries_its_parity_record(int8_model):
    from fakescan.scanner.model import read_onnx_metadata

    meta = read_onnx_metadata(int8_model / "model_int8.onnx")
    rec = meta["int8_parity"]
    assert meta["precision"] == "int8" and rec["ok"]
    assert rec["min_verdict_agreement"] >= 0.995 and rec["max_auc_delta"] <= 0.005
    assert set(rec["sources"]) and all(s["images"] > 0 for s in rec["sources"].values())


def test_int8_scan_agrees_with_fp32_and_auto_may_pick_it(int8_model, synth_small, tmp_path):
    rows = {}
    for prec in ("fp32", "int8"):
        out = tmp_path / f"{prec}.csv"
        r = run_cli("scan", synth_small / "test", "--model", int8_model, "--runtime", "onnx",
                    "--precision", prec, "--out", out, "--decoder", "pil")
        assert r.returncode in (0, 1), r.stderr  # 1: fakes found
        import csv

        with out.open() as f:
            rows[prec] = {d["path"]: d for d in csv.DictReader(f)}
    same = [rows["fp32"][p]["label"] == rows["int8"][p]["label"] for p in rows["fp32"]]
    assert len(same) == len(rows["int8"]) and np.mean(same) >= 0.95
    from fakescan.scanner.model import resolve_scan_model

    assert resolve_scan_model(int8_model).has_onnx("int8")


def _tamper(src, dst, change):
    import onnx

    from fakescan.card import ONNX_META_KEY

    m = onnx.load(str(src))
    for p in m.metadata_props:
        if p.key == ONNX_META_KEY:
            meta = json.loads(p.value)
            change(meta)
            p.value = json.dumps(meta)
    onnx.save(m, str(dst))


def test_an_int8_file_that_breaks_parity_is_refused(int8_model, synth_small, tmp_path):
    bad = tmp_path / "bad_int8.onnx"
    _tamper(int8_model / "model_int8.onnx", bad,
            lambda m: m["int8_parity"].update(ok=False, min_verdict_agreement=0.97))
    none = tmp_path / "none_int8.onnx"
    _tamper(int8_model / "model_int8.onnx", none, lambda m: m.pop("int8_parity"))
    for f, why in ((bad, "failed its parity check"), (none, "has no parity record")):
        r = run_cli("scan", synth_small / "test", "--model", f, "--out", tmp_path / "o.csv",
                    "--overwrite")
        assert r.returncode == 2
        assert why in r.stderr and "Traceback" not in r.stderr
    # a folder's own int8 file is checked the same way before a scan uses it
    folder = tmp_path / "m"
    shutil.copytree(int8_model, folder)
    shutil.copy(bad, folder / "model_int8.onnx")
    r = run_cli("scan", synth_small / "test", "--model", folder, "--precision", "int8",
                "--out", tmp_path / "o2.csv")
    assert r.returncode == 2 and "failed its parity check" in r.stderr


def test_a_quantization_that_breaks_parity_writes_nothing(tiny_model, synth_small, tmp_path,
                                                         monkeypatch):
    import fakescan.quantize as q

    folder = tmp_path / "cnn"
    shutil.copytree(tiny_model, folder)
    (folder / "model_int8.onnx").unlink(missing_ok=True)
    monkeypatch.setattr(q, "MIN_AGREEMENT", 1.01)  # no quantized model can agree this well
    monkeypatch.setattr(q, "KEEP_FLOAT", (0, 1))
    with pytest.raises(ModelError, match="breaks parity"):
        q.build_int8(folder, parity_data=[synth_small])
    assert not (folder / "model_int8.onnx").exists()
    assert not list(folder.glob("*.tmp*"))


def test_bench_times_int8_beside_fp32_with_the_harmonic_bound(int8_model):
    from fakescan.bench import bench

    res = bench(str(int8_model), devices=["cpu"], n_images=16, repeats=1,
                stages=("decode", "model", "end_to_end")).to_dict()
    e2e = {(r["runtime"], r["precision"]): r for r in res["results"]
           if r["stage"] == "end_to_end"}
    assert ("onnx", "int8") in e2e and ("onnx", "fp32") in e2e
    r = e2e[("onnx", "int8")]
    assert r["ratio_vs_harmonic"] == pytest.approx(
        r["images_per_s_median"] / r["harmonic_bound"])
    # the harmonic bound of a configuration is computed from its own stages, not another's
    same = [x["images_per_s_median"] for x in res["results"] if x["runtime"] == "onnx"
            and x["precision"] == "int8" and x["stage"] in ("decode", "model")]
    assert r["harmonic_bound"] == pytest.approx(1 / sum(1 / v for v in same))
