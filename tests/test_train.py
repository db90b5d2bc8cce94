"""Training: model folder contents, resume, parameter groups, frozen BN, safe loading, offline."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from fakescan.errors import ModelError
from fakescan.nets import create_model, get_arch
from fakescan.store import load_model
from fakescan.train.fit import TrainConfig, train
from fakescan.weights import load_tensors, save_tensors
from tests.conftest import run_cli


def _cfg(arch: str, data: Path, out: Path, **recipe) -> TrainConfig:
    r = get_arch(arch).recipe.replace(**{"epochs": 2, "batch_size": 16, **recipe})
    return TrainConfig(arch=arch, data=data, out=out, recipe=r, workers=0, pretrained=False)


def _history(folder: Path) -> list[dict]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_cli_writes_a_complete_model_folder(synth_small, tmp_path):
    out = tmp_path / "m"
    r = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out", out,
                "--epochs", "2", "--batch-size", "16", "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert "model folder" in r.stdout
    for f in ("weights.safetensors", "config.json", "history.csv", "loss.png", "accuracy.png",
              "last.safetensors", "last.json"):
        assert (out / f).is_file(), f
    card = json.loads((out / "config.json").read_text())
    assert card["architecture"] == "simplecnn" and card["labels"] == ["real", "fake"]
    assert card["preprocess"]["input_size"] == 128 and card["preprocess"]["mean"] == [0.5] * 3
    assert 0.0 <= card["threshold"] <= 1.0 and card["threshold_calibrated_on"] == "valid"
    assert card["recipe"]["lr"] == 1e-3 and card["recipe"]["weight_decay"] == 1e-4
    assert len(card["data"]["fingerprint"]) == 64 and card["versions"]["torch"]
    assert [int(r["epoch"]) for r in _history(out)] == [1, 2]
    lm = load_model(out)
    assert lm.card.labels == ("real", "fake") and lm.card.preprocess.input_size == 128


def test_existing_model_folder_is_not_overwritten(synth_small, tmp_path):
    train(_cfg("simplecnn", synth_small, tmp_path / "m", epochs=1))
    r = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out", tmp_path / "m")
    assert r.returncode == 2 and "resume it" in r.stderr


def test_resume_continues_without_gap_or_repeat(synth_small, tmp_path):
    full = train(_cfg("simplecnn", synth_small, tmp_path / "full", epochs=3))
    train(_cfg("simplecnn", synth_small, tmp_path / "part", epochs=1))
    # A crash after writing epoch 2's history row but before its state: the row must go.
    with open(tmp_path / "part" / "history.csv", "a") as f:
        f.write("2,9,9,9,9,9,9,9,9\n")
    resumed_cfg = _cfg("simplecnn", synth_small, tmp_path / "part", epochs=1)
    resumed_cfg.resume, resumed_cfg.resume_epochs = True, 3
    resumed = train(resumed_cfg)
    a, b = _history(tmp_path / "full"), _history(tmp_path / "part")
    assert [int(r["epoch"]) for r in b] == [1, 2, 3]
    # Seeded per-epoch order and augmentation: the resumed run retraces the uninterrupted one.
    for ra, rb in zip(a, b, strict=True):
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), rel=1e-4, abs=1e-5)
    assert resumed.training["epochs_completed"] == full.training["epochs_completed"] == 3
    assert resumed_cfg.recipe.epochs == 1  # train() does not change the config it is given


def test_max_minutes_ends_on_a_whole_epoch_and_resume_goes_on(synth_small, tmp_path):
    # a budget spent at once: one epoch still runs, then no new one starts
    r = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out", tmp_path / "m",
                "--epochs", "5", "--batch-size", "16", "--workers", "0", "--no-pretrained",
                "--max-minutes", "0")
    assert r.returncode == 0, r.stderr
    assert "time budget of 0 min reached after epoch 1" in r.stderr
    assert [int(r["epoch"]) for r in _history(tmp_path / "m")] == [1]
    card = load_model(tmp_path / "m").card
    assert card.training["epochs_completed"] == 1 and card.training["time_budget_min"] == 0.0
    assert card.training["stopped_early"] is True and card.threshold > 0
    more = _cfg("simplecnn", synth_small, tmp_path / "m")
    more.resume, more.resume_epochs = True, 2  # no budget: it runs to its epochs
    card = train(more)
    assert [int(r["epoch"]) for r in _history(tmp_path / "m")] == [1, 2]
    assert "time_budget_min" not in card.training


def test_resnet_ft_param_groups_and_trainable_count():
    m = create_model("resnet_ft")
    groups = m.param_groups(1e-4, 1e-3)
    assert len(groups) == 2
    assert {g["name"]: g["lr"] for g in groups} == {"backbone": 1e-4, "head": 1e-3}
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == 15_489_794
    backbone_ids = {id(p) for p in m.layer4.parameters()}
    assert {id(p) for p in groups[0]["params"]} == backbone_ids
    opt = torch.optim.Adam(groups, weight_decay=1e-4)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]


def test_resnet_frozen_backbone_and_bn_stats_unchanged_by_training(synth_small, tmp_path):
    from torchvision.models import resnet50

    torch.manual_seed(123)
    backbone = resnet50().state_dict()
    for k, v in backbone.items():  # make BN running stats non-trivial
        if k.endswith("running_mean"):
            v.normal_()
    save_tensors(backbone, tmp_path / "backbone.safetensors")
    cfg = _cfg("resnet_frozen", synth_small, tmp_path / "m", epochs=1, batch_size=4)
    cfg.backbone_weights = tmp_path / "backbone.safetensors"
    cfg.steps_per_epoch = 2
    card = train(cfg)
    assert card.params == {"total": 24_033_090, "trainable": 525_058}
    after = load_tensors(tmp_path / "m" / "weights.safetensors")
    for k, v in backbone.items():
        if not k.startswith("fc."):
            assert torch.equal(after[k], v), k  # weights, running_mean/var, num_batches_tracked


def test_offline_pretrained_gives_one_actionable_line(synth_small, tmp_path):
    env_home = tmp_path / "torch_home"
    r = run_cli("train", "--model", "resnet_ft", "--data", synth_small, "--out", tmp_path / "m",
                "--epochs", "1", env={"TORCH_HOME": str(env_home)})
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "Downloading" not in ln]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    msg = lines[0]
    assert "resnet50-" in msg and str(env_home) in msg
    assert "--backbone-weights" in msg and "--no-pretrained" in msg


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_checkpoint_is_never_executed(synth_small, tmp_path):
    out = tmp_path / "m"
    train(_cfg("simplecnn", synth_small, out, epochs=1))
    marker = tmp_path / "pwned"
    (out / "weights.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        load_model(out)
    assert not marker.exists()

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.pt").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ModelError, match="pickled checkpoint"):
        load_model(legacy)
    r = run_cli("eval", legacy, "--data", synth_small)
    assert r.returncode == 2 and "pickled checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists()


def test_robust_recipe_sets_its_ingredients_and_flags_still_override(synth_small, tmp_path):
    out = tmp_path / "robust"
    r = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out", out,
                "--recipe", "robust", "--epochs", "1", "--batch-size", "16", "--workers", "0",
                "--scale-jitter", "0.5", "--max-fpr", "0.1")
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "config.json").read_text())
    assert card["recipe"]["name"] == "robust"
    assert card["recipe"]["sharpness_match"] is True and card["recipe"]["max_fpr"] == 0.1
    assert card["recipe"]["scale_jitter"] == 0.5  # flags add to and beat the preset
    assert card["arch_options"]["input_filter"] == "highpass_norm"
    assert card["threshold_calibrated_on"] == "valid, max FPR 0.1"
    assert load_model(out).model(torch.zeros(1, 3, 128, 128)).shape == (1, 2)
    bad = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--out",
                  tmp_path / "x", "--recipe", "sturdy")
    assert bad.returncode == 2 and "robust" in bad.stderr


def test_sharpness_match_blurs_fakes_and_sharpens_reals():
    from fakescan.config import Recipe
    from fakescan.train.data import class_transforms

    def laplacian_std(x: torch.Tensor) -> float:
        k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
        return torch.nn.functional.conv2d(x.float().mean(0)[None, None], k).std().item()

    g = torch.Generator().manual_seed(0)
    img = (torch.rand(3, 64, 64, generator=g) * 60 + 100).to(torch.uint8)
    img = torch.nn.functional.avg_pool2d(img[None].float(), 3, 1, 1)[0].to(torch.uint8)
    assert class_transforms(Recipe(), ("real", "fake")) == {}
    ct = class_transforms(Recipe(sharpness_match=True), ("real", "fake"))
    torch.manual_seed(0)
    base = laplacian_std(img)
    real = [laplacian_std(ct[0](img)) for _ in range(200)]
    fake = [laplacian_std(ct[1](img)) for _ in range(200)]
    assert min(real) >= base - 1e-6 and max(real) > base * 1.05  # reals: unchanged or sharper
    assert max(fake) <= base + 1e-6 and min(fake) < base * 0.95  # fakes: unchanged or blurrier
    assert 0.15 < sum(r > base + 1e-6 for r in real) / 200 < 0.45  # about 30% sharpened
    assert 0.45 < sum(f < base - 1e-6 for f in fake) / 200 < 0.75  # about 60% blurred


def test_init_fine_tunes_from_a_model_folders_weights(synth_small, tiny_model, tmp_path):
    src = load_model(tiny_model)
    # Learning rates of 0: what the run saves is what it started from, the source's weights.
    r = get_arch("simplecnn").recipe.replace(epochs=1, batch_size=16, lr=0.0, head_lr=0.0)
    card = train(TrainConfig("simplecnn", synth_small, tmp_path / "ft", r, workers=0,
                             init=str(tiny_model)))
    assert str(tiny_model) in card.training["pretrained"]
    saved = load_tensors(tmp_path / "ft" / "weights.safetensors")
    for name, p in src.model.named_parameters():
        assert torch.equal(saved[name].float(), p.float()), name
    # A model that scores two views is the same network: it starts from the same weights,
    # and saves them under the network's own names. Another training seed keeps the split of
    # the model it starts from (split anew, its validation would hold images seen in training).
    flip = train(TrainConfig("simplecnn", synth_small, tmp_path / "flip", r.replace(seed=3),
                             workers=0, init=str(tiny_model), arch_options={"views": "flip"}))
    assert flip.arch_options == {"views": "flip"} and flip.identity.endswith("+flip")
    assert flip.recipe["seed"] == 3 and flip.data["seed"] == src.card.data["seed"] == 0
    assert flip.data["split"] == src.card.data["split"]
    saved = load_tensors(tmp_path / "flip" / "weights.safetensors")
    for name, p in src.model.named_parameters():
        assert torch.equal(saved[name].float(), p.float()), name
    # A card that scores more pixels than its weights learned at (the shipped default) is
    # still this network: what must match is the size the weights learned at.
    import shutil

    bigger = tmp_path / "bigger"
    shutil.copytree(tiny_model, bigger)
    c = src.card
    c.scoring_at(c.preprocess.input_size + 32).save(bigger)
    again = train(TrainConfig("simplecnn", synth_small, tmp_path / "again", r, workers=0,
                              init=str(bigger)))
    assert again.preprocess.input_size == c.preprocess.input_size
    assert again.training["input_size"] == c.preprocess.input_size
    # The same run without --init starts elsewhere.
    fresh = train(TrainConfig("simplecnn", synth_small, tmp_path / "fresh", r, workers=0))
    assert fresh.training["pretrained"] is None
    other = load_tensors(tmp_path / "fresh" / "weights.safetensors")
    assert not all(torch.equal(other[n].float(), p.float())
                   for n, p in src.model.named_parameters())


def test_a_fine_tune_draws_its_own_batches_and_resume_keeps_them(synth_small, tiny_model,
                                                                  tmp_path):
    from fakescan.train.fit import stream_seed

    # tiny_model trained with this recipe and seed: seeded by the recipe alone, a fine-tune
    # from it would draw the very batches and augmentations it was last trained on.
    r = get_arch("simplecnn").recipe.replace(epochs=2, batch_size=16)
    start = load_model(tiny_model).card
    assert start.recipe["seed"] == r.seed and start.training["stream_seed"] == r.seed
    full = train(TrainConfig("simplecnn", synth_small, tmp_path / "full", r, workers=0,
                             init=str(tiny_model)))
    assert full.training["stream_seed"] == stream_seed(r.seed, start.identity) != r.seed
    assert len({stream_seed(0, "a@1"), stream_seed(0, "a@2"), stream_seed(1, "a@1")}) == 3
    # Interrupted after one epoch and resumed, it keeps its stream and its starting point,
    # and retraces the uninterrupted run.
    train(TrainConfig("simplecnn", synth_small, tmp_path / "part", r.replace(epochs=1),
                      workers=0, init=str(tiny_model)))
    again = TrainConfig("simplecnn", synth_small, tmp_path / "part", r.replace(epochs=1),
                        workers=0)
    again.resume, again.resume_epochs = True, 2
    resumed = train(again)
    assert resumed.training["stream_seed"] == full.training["stream_seed"]
    assert resumed.training["pretrained"] == full.training["pretrained"]
    for ra, rb in zip(_history(tmp_path / "full"), _history(tmp_path / "part"), strict=True):
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), rel=1e-4, abs=1e-5)


def test_init_refuses_another_network_or_a_clashing_flag(synth_small, tiny_model, tmp_path):
    base = ("train", "--data", synth_small, "--epochs", "1", "--workers", "0")
    for extra, msg in ((("--model", "salman", "--init", tiny_model),
                        "is not this run's network: it has architecture simplecnn"),
                       (("--model", "simplecnn", "--init", tmp_path / "nosuch"),
                        "--init: no model folder"),
                       (("--model", "simplecnn", "--init", tiny_model, "--no-pretrained"),
                        "--init sets every starting weight: drop --no-pretrained")):
        res = run_cli(*base, *extra, "--out", tmp_path / "out")
        assert res.returncode == 2, res.stderr
        assert msg in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "out" / "config.json").exists()


def test_input_size_trains_and_fine_tunes_at_another_size(synth_small, tmp_path):
    # A network that pools globally trains at any size; the card scores what it learned at.
    r = get_arch("tinycnn").recipe.replace(epochs=1, batch_size=16)
    small = train(TrainConfig("tinycnn", synth_small, tmp_path / "s48", r, workers=0,
                              input_size=48))
    assert small.preprocess.input_size == small.training["input_size"] == 48
    assert "px" not in small.identity
    # Fine-tuned at a new size (FixRes: what a scan shows it, learned), from the same weights.
    r0 = r.replace(lr=0.0, head_lr=0.0)
    tuned = train(TrainConfig("tinycnn", synth_small, tmp_path / "s64", r0, workers=0,
                              init=str(tmp_path / "s48"), input_size=64))
    assert tuned.preprocess.input_size == tuned.training["input_size"] == 64
    assert "px" not in tuned.identity and str(tmp_path / "s48") in tuned.training["pretrained"]
    start, saved = (load_tensors(tmp_path / d / "weights.safetensors") for d in ("s48", "s64"))
    assert all(torch.equal(start[k].float(), saved[k].float()) for k in start)
    # Without --input-size, --init still asks for the size the weights learned at.
    res = run_cli("train", "--model", "tinycnn", "--data", synth_small, "--epochs", "1",
                  "--workers", "0", "--init", tmp_path / "s48", "--out", tmp_path / "x")
    assert res.returncode == 2 and "input size 48 (this run: 32)" in res.stderr, res.stderr
    # A network whose head is sized for its own input refuses another size in one line.
    res = run_cli("train", "--model", "simplecnn", "--data", synth_small, "--epochs", "1",
                  "--workers", "0", "--input-size", "96", "--out", tmp_path / "y")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "--input-size 96: simplecnn takes 128 px only" in res.stderr
    assert not (tmp_path / "y").exists()  # a refused run leaves no folder behind


def test_resume_keeps_the_runs_classes(synth_small, tmp_path):
    # Data with a third class the run left out: resuming without --class keeps the run's two;
    # data that gives other classes is one line and exit 2, not a weight-shape traceback.
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_small, data)
    for split in ("train", "valid", "test"):
        shutil.copytree(data / split / "fake", data / split / "edited")
    r = get_arch("tinycnn").recipe.replace(epochs=1, batch_size=16)
    train(TrainConfig("tinycnn", data, tmp_path / "run", r, workers=0, classes=("real", "fake")))
    base = ("train", "--model", "tinycnn", "--data", data, "--workers", "0", "--resume",
            "--out", tmp_path / "run")
    res = run_cli(*base, "--epochs", "2")
    assert res.returncode == 0, res.stderr
    card = load_model(tmp_path / "run").card
    assert list(card.labels) == ["real", "fake"] and card.training["epochs_completed"] == 2
    assert card.data["classes_kept"] == ["real", "fake"]
    res = run_cli(*base, "--epochs", "3", "--class", "real", "--class", "edited")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "cannot resume" in res.stderr and "['real', 'fake']" in res.stderr


def test_resume_keeps_the_runs_settings_and_refuses_others(synth_small, tmp_path):
    # A resumed run goes on with the settings it started with: its batches per epoch without
    # being told them again, the same flags repeated are welcome, and a flag with another value
    # (or other data) is one line and exit 2, naming the run's value: silently ignored, it
    # would not do what was asked.
    import shutil

    run = tmp_path / "run"
    base = ("train", "--model", "tinycnn", "--data", synth_small, "--workers", "0",
            "--out", run)
    res = run_cli(*base, "--epochs", "1", "--batch-size", "16", "--lr", "0.01",
                  "--steps-per-epoch", "2")
    assert res.returncode == 0, res.stderr
    res = run_cli(*base, "--resume", "--epochs", "2")
    assert res.returncode == 0, res.stderr
    card = load_model(run).card
    assert card.training["epochs_completed"] == 2 and card.training["steps_per_epoch"] == 2
    res = run_cli(*base, "--resume", "--epochs", "3", "--batch-size", "16", "--lr", "0.01",
                  "--steps-per-epoch", "2")
    assert res.returncode == 0, res.stderr
    assert load_model(run).card.training["epochs_completed"] == 3

    res = run_cli(*base, "--resume", "--epochs", "4", "--lr", "0.001", "--input-size", "48",
                  "--views", "flip")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    msg = " ".join(res.stderr.split())
    assert "cannot resume" in msg and "--lr 0.001 (the run's: 0.01)" in msg, msg
    assert "--input-size 48 (the run's: 32)" in msg and "--views flip (the run's: none)" in msg
    assert "--init" in msg
    # a groups file given by a relative path: the run resumes from another folder too
    people = tmp_path / "people.csv"
    files = sorted(p for p in synth_small.rglob("*") if p.is_file())
    people.write_text("path,group\n" + "".join(f"{f},p{i // 2}\n" for i, f in enumerate(files)))
    grouped = ("train", "--model", "tinycnn", "--data", synth_small, "--workers", "0",
               "--out", tmp_path / "grouped", "--steps-per-epoch", "1")
    res = run_cli(*grouped, "--epochs", "1", "--groups", "people.csv", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = run_cli(*grouped, "--resume", "--epochs", "2")
    assert res.returncode == 0, res.stderr
    other = tmp_path / "other"
    shutil.copytree(synth_small, other)
    next((other / "train" / "fake").iterdir()).unlink()
    res = run_cli(*base[:4], other, *base[5:], "--resume", "--epochs", "4")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "not the run's" in res.stderr
    assert load_model(run).card.training["epochs_completed"] == 3


def test_cpu_training_precision_is_measured_remembered_and_kept_on_resume(
        synth_small, tmp_path, monkeypatch):
    # On a CPU with fast bf16, --precision auto trains in whichever precision a few training
    # steps of the run's network measured faster here, remembers it per machine and network,
    # and a resumed run keeps the precision it trained in. The probe leaves the model and
    # torch's random stream as they were, so the run is the same whether it ran or not.
    import fakescan.cache
    import fakescan.train.precision as precision

    monkeypatch.setattr(fakescan.cache, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    calls = []

    def measured(rates):
        def fake(model, batch_size, input_size):
            calls.append((batch_size, input_size))
            return rates
        return fake

    monkeypatch.setattr(precision, "images_per_s", measured({"fp32": 10.0, "bf16": 5.0}))
    cfg = _cfg("tinycnn", synth_small, tmp_path / "a", epochs=1)
    assert train(cfg).training["precision"] == "fp32" and calls == [(16, 32)]
    tuned = json.loads((tmp_path / "cache" / "autotune.json").read_text())
    (key, value), = tuned.items()
    assert key.startswith("train|") and "tinycnn" in key and value["precision"] == "fp32"

    monkeypatch.setattr(precision, "images_per_s", measured({"fp32": 1.0, "bf16": 9.0}))
    assert train(_cfg("tinycnn", synth_small, tmp_path / "b", epochs=1)
                 ).training["precision"] == "fp32"  # remembered: not measured again
    assert len(calls) == 1
    value["precision"] = "bf16"
    (tmp_path / "cache" / "autotune.json").write_text(json.dumps({key: value}))
    run = _cfg("tinycnn", synth_small, tmp_path / "c", epochs=1)
    assert train(run).training["precision"] == "bf16"
    value["precision"] = "fp32"
    (tmp_path / "cache" / "autotune.json").write_text(json.dumps({key: value}))
    run.resume, run.resume_epochs = True, 2
    assert train(run).training["precision"] == "bf16"  # the run's own, not today's choice
    assert train(dataclasses.replace(cfg, out=tmp_path / "d", precision="bf16")
                 ).training["precision"] == "bf16"  # asked for: not measured
    assert len(calls) == 1

    monkeypatch.undo()  # the real probe, on a network with batch norm and dropout
    model = create_model("effnet_lite0").to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    rng = torch.get_rng_state()
    rates = precision.images_per_s(model, 2, 32, steps=1)
    assert set(rates) == {"fp32", "bf16"} and all(r > 0 for r in rates.values())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
