"""ONNX export (metadata, checker, parity, an outside consumer), bench JSON, and the demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    model = tmp_path_factory.mktemp("exp") / "cnn"
    shutil.copytree(tiny_model, model)
    r = run_cli("export", model, "--onnx", "--json")
    assert r.returncode == 0, r.stderr
    return model, json.loads(r.stdout)


def test_export_is_checker_clean_with_metadata_and_dynamic_batch(exported):
    import onnx

    model, report = exported
    path = Path(report["path"])
    assert path == model / "model.onnx" and report["parity"]["ok"]
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert report["opset"] == 18 and any(o.version == 18 for o in m.opset_import)
    meta = json.loads({p.key: p.value for p in m.metadata_props}["fakescan"])
    for key in ("input_size", "mean", "std", "resize", "labels", "positive_label", "threshold",
                "architecture", "weights_sha256"):
        assert key in meta, key
    card = json.loads((model / "config.json").read_text())
    assert meta["weights_sha256"] == card["weights_sha256"] and meta["labels"] == ["real", "fake"]
    dim0 = m.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value  # symbolic: any batch size


def test_an_outside_onnx_consumer_reproduces_scan(exported, synth_small, tmp_path):
    """Only onnxruntime, Pillow and the file's metadata: no fakescan code on this side."""
    import onnx
    import onnxruntime as ort
    from PIL import Image, ImageOps

    model, report = exported
    files = sorted(str(p) for p in (synth_small / "test").rglob("*.*"))
    out = tmp_path / "scan.csv"
    r = run_cli("scan", *files, "--model", model, "--precision", "fp32", "--out", out)
    assert r.returncode in (0, 1), r.stderr
    from fakescan.scanner.output import read_rows

    rows = {x["path"]: x for x in read_rows(str(out))}

    meta = json.loads({p.key: p.value for p in onnx.load(report["path"]).metadata_props}[
        "fakescan"])
    s = meta["input_size"]
    mean = np.array(meta["mean"], np.float32).reshape(3, 1, 1)
    std = np.array(meta["std"], np.float32).reshape(3, 1, 1)
    sess = ort.InferenceSession(report["path"], providers=["CPUExecutionProvider"])
    batch = []
    for f in files:
        im = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        im = im.resize((s, s), Image.BILINEAR, reducing_gap=None)
        batch.append((np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0 - mean) / std)
    probs = sess.run([meta["output_name"]], {meta["input_name"]: np.stack(batch)})[0]
    pos = meta["labels"].index(meta["positive_label"])
    delta = [abs(float(rows[f]["p_fake"]) - probs[i, pos]) for i, f in enumerate(files)]
    assert max(delta) < 1e-2
    verdicts = ["fake" if probs[i, pos] >= meta["threshold"] else "real" for i in range(len(files))]
    assert verdicts == [rows[f]["label"] for f in files]


def test_fp16_export_passes_its_parity_check(exported, tmp_path):
    model, _ = exported
    r = run_cli("export", model, "--onnx", "--fp16", "--out", tmp_path / "h.onnx", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["precision"] == "fp16" and rep["parity"]["ok"]
    assert (tmp_path / "h.onnx").stat().st_size < (model / "model.onnx").stat().st_size * 0.6


def test_bench_json_has_every_stage_and_ratio(tiny_model, tmp_path):
    out = tmp_path / "b.json"
    r = run_cli("bench", "--model", tiny_model, "--device", "cpu", "--runtime", "torch,onnx",
                "--n-images", "16", "--repeats", "1", "--batch-size", "8", "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert {"machine", "versions", "results"} <= set(res)
    stages = {(x["runtime"], x["stage"]) for x in res["results"]}
    for rt in ("torch", "onnx"):
        assert {(rt, "decode"), (rt, "model"), (rt, "end_to_end")} <= stages
    assert ("torch", "naive") in stages
    for x in res["results"]:
        for key in ("model", "device", "runtime", "precision", "batch_size", "stage",
                    "images_per_s_median"):
            assert key in x, key
        assert x["images_per_s_median"] > 0 and x["ratio_vs_naive"] > 0


def test_bench_accepts_an_architecture_name(tmp_path):
    r = run_cli("bench", "--model", "simplecnn", "--device", "cpu", "--runtime", "torch",
                "--n-images", "8", "--repeats", "1", "--batch-size", "8", "--json",
                tmp_path / "a.json")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a.json").read_text())
    assert all(x["random_weights"] for x in res["results"])


def test_demo_runs_end_to_end_and_says_where_things_landed(tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo", "--out", out, "--n", "160", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "demo.json").read_text())
    where = summary["where"]
    for p in [where["onnx"], where["bench"], *where["verdicts"], *where["eval"],
              *where["curves"]]:
        assert Path(p).is_file(), p
    assert "scan (onnx)" in r.stdout and str(out) in r.stdout
