"""Faces inside photos: detection, face crops in every decoder, one row per file (its most
suspicious face) or per face, and a documented status for files without a face."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED, run_cli

FACES = SHARED / "datasets" / "ffhq-vs-stylegan2" / "real"
PLACES = ((60, 90, 250), (520, 330, 190), (930, 70, 230))  # x, y, side of each pasted face


def _group_photo(path: Path, n: int = 3, offset: int = 0) -> list[tuple[int, int, int]]:
    files = sorted(FACES.iterdir())[offset: offset + n]
    bg = Image.new("RGB", (1240, 780), (96, 120, 148))
    rng = np.random.default_rng(0)
    noise = rng.integers(-12, 12, (780, 1240, 3))
    bg = Image.fromarray(np.clip(np.asarray(bg, int) + noise, 0, 255).astype(np.uint8))
    for f, (x, y, s) in zip(files, PLACES, strict=False):
        bg.paste(Image.open(f).convert("RGB").resize((s, s), Image.BILINEAR), (x, y))
    bg.save(path, quality=92)
    return list(PLACES[:n])


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    if not FACES.is_dir():
        pytest.skip(f"face photos not found at {FACES}")
    root = tmp_path_factory.mktemp("faces")
    places = _group_photo(root / "group.jpg")
    Image.fromarray(np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))).convert(
        "RGB").save(root / "no_face.png")
    return root, places


def test_three_pasted_faces_give_three_boxes_where_they_are(group):
    from fakescan.faces import detector

    root, places = group
    faces = detector().detect(Image.open(root / "group.jpg"))
    assert len(faces) == 3
    for x, y, s in places:  # each pasted face: one box, centred on it, face-sized
        near = [f for f in faces
                if abs((f.box[0] + f.box[2]) / 2 - (x + s / 2)) < 0.3 * s
                and abs((f.box[1] + f.box[3]) / 2 - (y + s / 2)) < 0.3 * s]
        assert len(near) == 1, (x, y, s, [f.box for f in faces])
        assert 0.3 * s < near[0].side < 1.1 * s
    assert detector().detect(Image.open(root / "no_face.png")) == []


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    """A simplecnn face model (random weights: verdicts do not matter, rows do)."""
    import dataclasses

    import torch

    from fakescan.card import ModelCard
    from fakescan.nets import create_model, get_arch
    from fakescan.store import WEIGHTS
    from fakescan.weights import save_tensors, sha256_file

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("models") / "face_cnn"
    folder.mkdir()
    save_tensors(create_model("simplecnn").state_dict(), folder / WEIGHTS)
    pp = dataclasses.replace(get_arch("simplecnn").preprocess, crop="face")
    ModelCard(name="face_cnn", architecture="simplecnn", labels=("real", "fake"),
              preprocess=pp, threshold=0.5,
              weights_sha256=sha256_file(folder / WEIGHTS)).save(folder)
    return folder


@pytest.mark.parametrize("decoder", ["pil", "dali"])
def test_face_rows_per_file_and_per_face(group, face_model, tmp_path, decoder):
    root, _ = group
    per_file = tmp_path / "files.jsonl"
    r = run_cli("scan", root, "--model", face_model, "--out", per_file, "--decoder", decoder)
    assert r.returncode in (0, 1), r.stderr
    rows = {Path(x["path"]).name: x for x in map(json.loads, per_file.read_text().splitlines())}
    assert len(rows) == 2
    g, nf = rows["group.jpg"], rows["no_face.png"]
    assert g["status"] == "ok" and g["faces"] == 3 and g["face_box"].count(",") == 3
    assert nf["status"] == "no_face" and nf["error_code"] == "no_face" and nf["faces"] == 0
    assert "no face" in r.stdout

    per_face = tmp_path / "faces.jsonl"
    r = run_cli("scan", root, "--model", face_model, "--out", per_face, "--decoder", decoder,
                "--per-face")
    assert r.returncode in (0, 1), r.stderr
    faces = [x for x in map(json.loads, per_face.read_text().splitlines())
             if x["path"].endswith("group.jpg")]
    assert [x["face"] for x in faces] == [1, 2, 3]
    assert len({x["face_box"] for x in faces}) == 3
    top = max(faces, key=lambda x: x["p_fake"])  # the file's row carries its most suspicious face
    assert g["p_fake"] == pytest.approx(top["p_fake"], abs=1e-6)
    assert g["face_box"] == top["face_box"]

    whole = tmp_path / "whole.jsonl"
    r = run_cli("scan", root / "no_face.png", "--model", face_model, "--out", whole,
                "--decoder", decoder, "--when-no-face", "whole")
    assert r.returncode in (0, 1), r.stderr
    row = json.loads(whole.read_text())
    assert row["status"] == "ok" and row["faces"] == 1 and row["face_box"] == "0,0,400,300"


def test_face_preprocessing_is_recorded_and_exported(face_model, tmp_path):
    from fakescan.card import ModelCard
    from fakescan.scanner.model import resolve_scan_model

    card = ModelCard.load(face_model)
    assert card.preprocess.crop == "face" and card.preprocess.face_margin == 0.3
    r = run_cli("export", face_model, "--out", tmp_path / "f.onnx", "--json")
    assert r.returncode == 0, r.stderr
    sm = resolve_scan_model(tmp_path / "f.onnx")  # an ONNX consumer learns of the crop
    assert sm.card.preprocess.crop == "face" and sm.card.preprocess.face_margin == 0.3


def test_train_and_eval_with_face_crops(tmp_path):
    """``train --crop face`` records the face stage; eval's grid shows the crops."""
    import shutil

    hard = SHARED / "datasets" / "hard-fake-vs-real-faces"
    if not hard.is_dir():
        pytest.skip("hard-fake-vs-real-faces not found")
    data = tmp_path / "small"
    for c in ("real", "fake"):
        (data / c).mkdir(parents=True)
        for p in sorted((hard / c).iterdir())[:40]:
            shutil.copy(p, data / c / p.name)
    out = tmp_path / "m"
    r = run_cli("train", "--model", "simplecnn", "--data", data, "--out", out, "--crop", "face",
                "--epochs", "1", "--batch-size", "16", "--workers", "0")
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "config.json").read_text())
    assert card["preprocess"]["crop"] == "face"
    r = run_cli("eval", out, "--json")  # its own sources by default
    assert r.returncode == 0, r.stderr
    assert (out / "misclassified.png").is_file()
