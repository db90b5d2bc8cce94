"""The training driver: seed recipes, differential LRs, early stopping, resume, model folder.

Per epoch it appends a row to ``history.csv``, keeps the best weights (lowest validation loss)
in ``weights.safetensors`` and the full resumable state (model, optimizer, scheduler, early
stopping counters) in ``last.safetensors`` + ``last.json``. Batch order and augmentation are
seeded per epoch, so a resumed run continues exactly where an uninterrupted one would.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fakescan.atomic import write_text
from fakescan.card import CARD_FILE, ModelCard
from fakescan.config import DEFAULT_FACE_MARGIN, DEFAULT_RATIOS, Preprocess, Recipe
from fakescan.data.kinds import source_kinds
from fakescan.data.layouts import Sample, load_sources
from fakescan.data.split import stratified_split
from fakescan.device import autocast, dtype_name, pick_device
from fakescan.errors import ModelError, UsageError
from fakescan.imaging import normalize
from fakescan.nets import count_parameters, get_arch
from fakescan.store import WEIGHTS, versions
from fakescan.train.data import (
    ImageSamples,
    balance_weights,
    class_transforms,
    group_partners,
    make_loader,
    preload,
    should_cache,
    train_transform,
)
from fakescan.train.metrics import (
    calibrate_threshold,
    calibration_label,
    validation_record,
)
from fakescan.train.precision import training_dtype
from fakescan.weights import load_tensors, save_tensors, sha256_file

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "head_lr",
                  "images_per_s", "seconds"]


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved, resolved, into the model card)."""

    arch: str
    data: Path | list[Path]  # one dataset, or several sources trained together
    out: Path
    recipe: Recipe
    arch_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = True
    backbone_weights: Path | None = None
    resume: bool = False
    device: str = "auto"
    precision: str = "auto"
    steps_per_epoch: int | None = None
    workers: int = 2
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    resume_epochs: int | None = None  # with resume: a new epoch budget (else the stored one)
    classes: tuple[str, ...] | None = None  # keep only these classes of the data
    crop: str = "none"  # "face": the model sees face crops (``Preprocess.crop``)
    face_margin: float = DEFAULT_FACE_MARGIN
    groups: Path | None = None  # a groups file: files of one group stay in one split
    max_minutes: float | None = None  # no new epoch once this much wall time has passed
    init: str | None = None  # start from this model folder's weights (a name, path or default)
    split_seed: int | None = None  # the split's seed [recipe.seed; with init, init's split]
    # batch order, augmentation and dropout [recipe.seed; with init, mixed with the start's
    # identity (``stream_seed``); on --resume the run's own]
    stream_seed: int | None = None
    pretrained_from: str | None = None  # on --resume, where the run's weights started
    input_size: int | None = None  # train at this size [the architecture's]; any with init
    # the settings the user gave, as {key: how they gave it} (keys: "recipe.FIELD",
    # "arch_options.NAME" or a field of this config): --resume keeps the run's own settings
    # and refuses one given here that differs from them (``_resumed``)
    explicit: dict[str, str] = field(default_factory=dict)

    @property
    def datasets(self) -> list[Path]:
        return [Path(d) for d in (self.data if isinstance(self.data, list | tuple)
                                  else [self.data])]


def _split_seed(cfg: TrainConfig, recipe: Recipe) -> int:
    """The seed of the train / valid / test split: ``split_seed`` (on ``--resume`` the
    run's own); else, with ``init``, the split of the model the run starts from (split anew, a
    fine-tune would stop early and set its threshold on images its starting point trained on,
    and its test split would hold them too); else the recipe's seed."""
    if cfg.split_seed is not None:
        return cfg.split_seed
    if cfg.init is not None:
        from fakescan.store import resolve_model_dir

        try:
            return int(ModelCard.load(resolve_model_dir(cfg.init)).data.get("seed", recipe.seed))
        except ModelError:
            return recipe.seed  # (_init_from says what is wrong with it)
    return recipe.seed


def _splits(cfg: TrainConfig, seed: int):
    ds = load_sources(cfg.datasets, ratios=cfg.ratios, seed=seed, classes=cfg.classes,
                      groups=cfg.groups)
    if cfg.resume:
        prev = ModelCard.load(Path(cfg.out))
        labels = list(prev.labels)
        if list(ds.classes) != labels:
            raise UsageError(f"cannot resume {cfg.out}: it learned the classes {labels}, this "
                             f"data gives {list(ds.classes)} (give the run's --data and --class)")
        if prev.data.get("fingerprint") not in (None, ds.fingerprint()):
            raise UsageError(f"cannot resume {cfg.out}: this data is not the run's (other "
                             "files, or another split of them): give the run's --data")
    train = ds.splits.get("train") or ds.splits.get("all")
    valid = ds.splits.get("valid")
    if not valid:  # no validation split: hold out 10% of train, stratified
        parts = stratified_split(train, (0.9, 0.1, 0.0), seed)
        train, valid = parts["train"], parts.get("valid", [])
    if not valid:
        raise UsageError("the dataset is too small to hold out a validation split")
    return ds, train, valid


def _check_source_weights(recipe: Recipe, held: set[tuple[str, str]]) -> None:
    """Source weights name sources of the run (``SOURCE/CLASS``: a class that source holds)
    and apply to balanced sampling; ``held``: the (source, class) pairs of the training split."""
    if not recipe.source_weights:
        return
    if recipe.balance is False:
        raise UsageError("--source-weight weighs balanced sampling: drop --no-balance")
    sources = {source for source, _ in held}
    unknown = sorted(k for k in recipe.source_weights if k not in sources
                     and tuple(k.rsplit("/", 1)) not in held)
    if unknown:
        pairs = ", ".join(f"{s}/{c}" for s, c in sorted(held))
        raise UsageError(f"--source-weight names no source of this run: {', '.join(unknown)} "
                         f"(sources: {', '.join(sorted(sources))}; by class: {pairs})")
    bad = [k for k, v in recipe.source_weights.items() if not v > 0]
    if bad:
        raise UsageError(f"--source-weight must be above 0: {', '.join(bad)}")


def _optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, sc in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _model_input(x: torch.Tensor, device, pp) -> torch.Tensor:
    """uint8 batch -> normalised float batch on ``device``, channels_last (train and predict)."""
    return normalize(x.to(device, non_blocking=True), pp).contiguous(
        memory_format=torch.channels_last)


@torch.inference_mode()
def predict_probs(model, loader, device, dtype, pp) -> tuple[np.ndarray, np.ndarray, float]:
    """Softmax probabilities and targets over ``loader``; also the mean cross-entropy loss."""
    model.eval()
    probs, targets, loss_sum = [], [], 0.0
    for x, y in loader:
        x = _model_input(x, device, pp)
        y = y.to(device)
        with autocast(device, dtype):
            logits = model(x)
        logits = logits.float()
        loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        probs.append(torch.softmax(logits, 1).cpu().numpy())
        targets.append(y.cpu().numpy())
    n = sum(len(t) for t in targets)
    return np.concatenate(probs), np.concatenate(targets), loss_sum / max(n, 1)


@dataclass
class _Run:
    """What a training run sets up once: data, model, optimiser, loaders."""

    cfg: TrainConfig
    recipe: Recipe
    arch_options: dict[str, Any]
    out: Path
    pp: Preprocess
    ds: Any
    train_s: list
    valid_s: list
    model: Any
    device: Any
    dtype: Any
    opt: Any
    sched: Any
    scaler: Any
    base_lrs: list[float]
    train_ds: Any
    valid_loader: Any
    weights: Any  # balanced-sampling weights, or None
    partners: Any  # group_partners for --pair-groups, or None
    workers: int
    pretrained_from: str | None
    n_sources: int
    split_seed: int
    stream_seed: int

    @property
    def classes(self) -> tuple[str, ...]:
        return self.ds.classes


def train(cfg: TrainConfig, console: Console | None = None) -> ModelCard:
    """Train ``cfg.arch`` on ``cfg.data`` into the model folder ``cfg.out``; returns the card.

    Steps: resolve the recipe (``cfg``'s, or the stored one on ``--resume``), set up data,
    model and optimiser, run the epochs (each checkpointed), then calibrate the threshold on
    validation and write the card. ``cfg`` itself is never changed.
    """
    console = console or Console(stderr=True)
    cfg, recipe, arch_options, pp = _resolved_recipe(cfg)
    run = _setup(cfg, recipe, arch_options, pp, console)
    state = _start_state(run, console)
    stopped_early = _fit(run, state, console)
    card = _finalize(run, state, stopped_early)
    from fakescan.train.plots import training_curves

    training_curves(run.out / "history.csv", run.out, cfg.arch)
    return card


def _resolved_recipe(cfg: TrainConfig
                     ) -> tuple[TrainConfig, Recipe, dict[str, Any], Preprocess]:
    """The config, recipe, architecture options and preprocessing this run uses: ``cfg``'s,
    or on resume the run's own (``_resumed``)."""
    out = Path(cfg.out)
    if cfg.init is not None and (cfg.resume or cfg.backbone_weights or not cfg.pretrained):
        clash = ("--resume" if cfg.resume else "--backbone-weights" if cfg.backbone_weights
                 else "--no-pretrained")
        raise UsageError(f"--init sets every starting weight: drop {clash}")
    if cfg.resume:
        return _resumed(cfg)
    if out.exists() and (out / CARD_FILE).exists():
        raise UsageError(f"{out} already holds a model: resume it, or train into another folder")
    if cfg.crop not in ("none", "face"):
        raise UsageError(f"crop must be none or face, got {cfg.crop!r}")
    pp = get_arch(cfg.arch).preprocess
    pp = dataclasses.replace(pp, crop=cfg.crop, face_margin=cfg.face_margin,
                             input_size=cfg.input_size or pp.input_size)
    return cfg, cfg.recipe, dict(cfg.arch_options), pp


_UNSET = object()


def _setting(cfg: TrainConfig, key: str) -> Any:
    """One of ``cfg``'s settings by its ``explicit`` key, in a form that compares equal for
    equal settings (a resumed run's, read back from its card, and a command line's)."""
    kind, _, name = key.partition(".")
    if kind == "recipe":
        v = getattr(cfg.recipe, name)
        return tuple(sorted(v.items())) if isinstance(v, dict) else v
    if kind == "arch_options":
        return cfg.arch_options.get(name)
    v = getattr(cfg, key)
    if key == "groups" and v is not None:
        return Path(v).resolve()
    return tuple(float(r) for r in v) if key == "ratios" else v


def _resumed(cfg: TrainConfig) -> tuple[TrainConfig, Recipe, dict[str, Any], Preprocess]:
    """``--resume``: the run in ``cfg.out`` goes on with the settings it started with (read
    from its card: recipe, architecture options, preprocessing, split ratios, seed and groups,
    classes, batches per epoch); only ``--epochs`` (a new budget) and how it runs (device,
    precision, workers, time budget) change. A setting the user gave that differs from the
    run's is refused in one line: silently ignored, it would not do what was asked, and
    applied, the run would no longer retrace an uninterrupted one."""
    out = Path(cfg.out)
    if not (out / "last.json").is_file():
        raise UsageError(f"cannot resume {out}: no resumable run there (no last.json)")
    prev = ModelCard.load(out)
    if prev.architecture != cfg.arch:
        raise UsageError(f"cannot resume {out}: it holds a {prev.architecture} run, not "
                         f"{cfg.arch}")
    recipe = Recipe(**prev.recipe).replace(epochs=cfg.resume_epochs)
    d, pp = prev.data, prev.preprocess
    kept = d.get("classes_kept")
    steps = prev.training.get("steps_per_epoch", _UNSET)  # (cards before it was recorded)
    run = dataclasses.replace(
        cfg, recipe=recipe, arch_options=dict(prev.arch_options), crop=pp.crop,
        face_margin=pp.face_margin, input_size=pp.input_size, ratios=tuple(d["ratios"]),
        split_seed=int(d.get("seed", recipe.seed)),
        # (cards before it was recorded drew from the recipe's seed)
        stream_seed=int(prev.training.get("stream_seed", recipe.seed)),
        pretrained_from=prev.training.get("pretrained"),
        groups=Path(d["groups"]) if d.get("groups") else None,
        classes=cfg.classes if cfg.classes is not None else tuple(kept) if kept else None,
        steps_per_epoch=cfg.steps_per_epoch if steps is _UNSET else steps,
        precision=_resumed_precision(cfg, prev))
    changed = [f"{flag} (the run's: {_shown(_setting(run, key))})"
               for key, flag in cfg.explicit.items()
               if _setting(cfg, key) != _setting(run, key)]
    if changed:
        raise UsageError(f"cannot resume {out} with other settings than it started with: "
                         f"{'; '.join(changed)}. A resumed run keeps its own (only --epochs, "
                         "--max-minutes, --device, --precision and --workers change); for new "
                         "ones start another run from it with --init")
    return run, run.recipe, run.arch_options, pp


def _resumed_precision(cfg: TrainConfig, prev: ModelCard) -> str:
    """``auto`` on ``--resume``: the precision the run trained in, where it goes on on the
    same kind of device (so that it retraces the run)."""
    done = prev.training.get("precision")
    same_kind = str(prev.training.get("device", "")).split(":")[0] == pick_device(cfg.device).type
    return done if cfg.precision == "auto" and done and same_kind else cfg.precision


def _shown(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, tuple) and v and isinstance(v[0], tuple):  # source weights
        return ",".join(f"{k}={w:g}" for k, w in v)
    if isinstance(v, tuple):
        return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def build_optimizer(model, recipe: Recipe):
    """Adam over the trainable parameters (an architecture's own groups and learning rates
    where it has them), ReduceLROnPlateau on validation loss."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(recipe.lr, recipe.head_lr)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": recipe.lr}]
    opt = torch.optim.Adam(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=recipe.plateau_factor, patience=recipe.plateau_patience)
    return opt, sched


def _setup(cfg: TrainConfig, recipe: Recipe, arch_options: dict[str, Any], pp: Preprocess,
           console: Console) -> _Run:
    spec = get_arch(cfg.arch)
    out = Path(cfg.out)
    torch.manual_seed(recipe.seed)
    split_seed = _split_seed(cfg, recipe)
    ds, train_s, valid_s = _splits(cfg, split_seed)
    _check_source_weights(recipe, {(s.source, s.label) for s in train_s})
    if recipe.pair_groups and recipe.augment and not any(group_partners(train_s)):
        raise UsageError("--pair-groups: no training image has a partner of another class "
                         "in its group (a groups file or DFDC's pairs.csv gives them)")
    model = spec.build(num_classes=len(ds.classes), **arch_options)
    if pp.input_size != spec.preprocess.input_size:
        _check_takes_size(model, cfg.arch, pp.input_size, spec.preprocess.input_size)
    pretrained_from = cfg.pretrained_from
    stream = recipe.seed if cfg.stream_seed is None else cfg.stream_seed
    if cfg.init is not None:  # (never with --resume: _resolved_recipe refuses it)
        pretrained_from, start = _init_from(model, cfg, arch_options, ds.classes, pp)
        stream = stream_seed(recipe.seed, start)
    elif hasattr(model, "load_backbone") and not cfg.resume:
        from fakescan.train.pretrained import load_backbone_file, pretrained_state

        if cfg.backbone_weights:
            model.load_backbone(load_backbone_file(cfg.backbone_weights))
            pretrained_from = str(cfg.backbone_weights)
        elif cfg.pretrained and spec.pretrained is not None:
            model.load_backbone(pretrained_state(spec.pretrained))
            pretrained_from = spec.pretrained
    device = pick_device(cfg.device)
    model = model.to(device, memory_format=torch.channels_last)
    dtype = training_dtype(model, device, cfg.precision, arch=cfg.arch,
                           batch_size=recipe.batch_size, input_size=pp.input_size,
                           console=console)
    opt, sched = build_optimizer(model, recipe)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)

    cache = should_cache(len(train_s) + len(valid_s), pp)
    if cache:
        with console.status(f"decoding {len(train_s) + len(valid_s)} images once into RAM ..."):
            train_cache = preload(train_s, pp, cfg.workers)
            valid_cache = preload(valid_s, pp, cfg.workers)
    else:
        train_cache = valid_cache = None
    # with the cache, augmentation is all a worker does; the main process needs a core of
    # its own (on 2 cores: one worker, as before; a GPU node takes --workers N)
    workers = min(cfg.workers, max(1, (os.cpu_count() or 2) - 1)) if cache else cfg.workers
    blend: dict[int, Any] = {}
    if recipe.self_blend and recipe.augment:
        train_s, train_cache, blend = _with_self_blends(train_s, train_cache, ds.classes, pp,
                                                        cfg.workers, console)
    train_ds = ImageSamples(train_s, ds.classes, pp, train_transform(recipe, pp.input_size),
                            train_cache, class_transform=class_transforms(recipe, ds.classes),
                            blend=blend)
    valid_ds = ImageSamples(valid_s, ds.classes, pp, None, valid_cache)
    n_sources = len({s.source for s in train_s})
    balance = recipe.balance if recipe.balance is not None else n_sources > 1
    weights = balance_weights(train_s, recipe.source_weights) if balance else None
    partners = None
    if recipe.pair_groups and recipe.augment:
        # (on the list as it is now: a self-blended pseudo-fake keeps its real's group)
        partners = group_partners(train_s)
        paired = sum(bool(p) for p in partners)
        if weights is None:
            weights = torch.ones(len(train_s), dtype=torch.double)
        console.print(f"pair-groups: {paired} training images drawn beside a partner of "
                      "another class from their group", highlight=False)
    valid_loader = make_loader(valid_ds, recipe.batch_size * 2, shuffle=False, seed=0,
                               workers=0 if cache else workers, pin=device.type == "cuda")
    total, trainable = count_parameters(model)
    console.print(
        f"[bold]{cfg.arch}[/] {arch_options or ''} on {ds.root} ({ds.split_note}): "
        f"{len(train_s)} train / {len(valid_s)} valid, classes {list(ds.classes)}"
        f"{f', {n_sources} sources' if n_sources > 1 else ''}"
        f"{' (balanced sampling)' if balance else ''}; "
        f"{trainable:,}/{total:,} trainable params; {device} {dtype_name(dtype)}",
        highlight=False,
    )
    out.mkdir(parents=True, exist_ok=True)  # (after every check: a refused run leaves nothing)
    return _Run(cfg, recipe, arch_options, out, pp, ds, train_s, valid_s, model, device, dtype,
                opt, sched, scaler, [g["lr"] for g in opt.param_groups], train_ds, valid_loader,
                weights, partners, workers,
                pretrained_from, n_sources, split_seed, stream)


def _init_from(model, cfg: TrainConfig, arch_options: dict[str, Any],
               classes: tuple[str, ...], pp: Preprocess) -> tuple[str, str]:
    """Load ``cfg.init``'s weights (a model folder, a store name or ``default``) into
    ``model`` to fine-tune it; it must be the same network for the same classes and input.
    Returns what the card records as the run's starting point, and the start's identity."""
    from fakescan.store import load_model

    try:
        src = load_model(cfg.init)
    except ModelError as e:
        raise UsageError(f"--init: {e}") from None
    card = src.card
    mismatch = [f"{what} {theirs} (this run: {ours})" for what, theirs, ours in (
        ("architecture", card.architecture, cfg.arch),
        ("architecture options", _weights_options(card.arch_options),
         _weights_options(arch_options)),
        ("classes", list(card.labels), list(classes)),
        # the size the weights learned at (a card may score another: the default, 240 px);
        # an explicit --input-size fine-tunes them at a new one (_check_takes_size allowed it)
        ("input size", card.trained_input_size,
         card.trained_input_size if cfg.input_size else pp.input_size),
        ("crop", card.preprocess.crop, pp.crop)) if theirs != ours]
    if mismatch:
        raise UsageError(f"--init {src.folder} is not this run's network: it has "
                         + "; ".join(mismatch))
    model.load_state_dict(src.model.state_dict())
    return f"{card.identity} ({src.folder})", card.identity


def stream_seed(seed: int, start: str) -> int:
    """The seed of a fine-tune's batch order, augmentation and dropout: ``seed`` mixed with
    the identity of the weights it starts from. With ``seed`` alone, a fine-tune with its
    start's own recipe and seed would draw, batch for batch, the very images and
    augmentations that start was last trained on (its first epoch then fits what the weights
    have already fit: 2026-11-27, the shipped default's stage 3 and the rounds after it)."""
    digest = hashlib.sha256(f"{seed}|{start}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _check_takes_size(model, arch: str, size: int, own: int) -> None:
    """``--input-size``: refuse, in one line, a network whose head is sized for its own input
    (a flatten, not a global pool), by running one blank image through it."""
    was = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    except RuntimeError:
        raise UsageError(f"--input-size {size}: {arch} takes {own} px only (its head is sized "
                         "for that input)") from None
    finally:
        model.train(was)


def _weights_options(options) -> dict[str, Any]:
    """The architecture options that shape the weights (``views`` does not: one network
    scores one view or two)."""
    return {k: v for k, v in options.items() if k != "views"}


def _with_self_blends(train_s: list, cache: list | None, classes: tuple[str, ...],
                      pp: Preprocess, workers: int, console: Console):
    """``train_s`` plus one self-blended pseudo-fake of every real whose face MTCNN finds
    (the source ``self-blended``), the cache to match, and their landmarks by index."""
    from fakescan.train.selfblend import SELF_BLENDED, find_landmarks

    if "real" not in classes or "fake" not in classes:
        raise UsageError("--self-blend needs the classes real and fake")
    reals = [i for i, s in enumerate(train_s) if s.label == "real"]
    with console.status(f"finding the faces of {len(reals)} training reals (self-blend) ..."):
        images = [cache[i] for i in reals] if cache is not None else preload(
            [train_s[i] for i in reals], pp, workers)
        marks = find_landmarks(images, workers)
    found = [(i, m) for i, m in zip(reals, marks, strict=True) if m is not None]
    n = len(train_s)
    blend = {n + k: m for k, (_, m) in enumerate(found)}
    train_s = train_s + [Sample(train_s[i].path, "fake", SELF_BLENDED, train_s[i].group)
                         for i, _ in found]
    if cache is not None:
        cache = cache + [cache[i] for i, _ in found]
    console.print(f"self-blend: {len(found)} pseudo-fakes from {len(reals)} training reals "
                  f"({len(reals) - len(found)} without a face found)", highlight=False)
    return train_s, cache, blend


def _start_state(run: _Run, console: Console) -> dict[str, Any]:
    """Early-stopping state: fresh, or the resumed run's (model and optimiser restored)."""
    history = run.out / "history.csv"
    if not run.cfg.resume:
        if history.exists():
            history.unlink()
        return {"epoch": 0, "best_val_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0}
    state = json.loads((run.out / "last.json").read_text())
    tensors = load_tensors(run.out / "last.safetensors")
    run.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    _restore_optimizer(run.opt, tensors, state.pop("optimizer"))
    run.sched.load_state_dict(state.pop("scheduler"))
    _truncate_history(history, state["epoch"])
    console.print(f"resuming {run.out} after epoch {state['epoch']}")
    return state


def _fit(run: _Run, state: dict[str, Any], console: Console) -> bool:
    """Epochs until the budget, early stopping or ``max_minutes`` (checked between epochs:
    the run ends on a whole, checkpointed epoch, and runs at least one); returns whether it
    stopped before the epoch budget."""
    t0, first = time.monotonic(), state["epoch"] + 1
    for epoch in range(first, run.recipe.epochs + 1):
        if state["bad_epochs"] >= run.recipe.patience:
            return True
        if (run.cfg.max_minutes is not None and epoch > first
                and time.monotonic() - t0 >= 60 * run.cfg.max_minutes):
            console.print(f"time budget of {run.cfg.max_minutes:g} min reached after epoch "
                          f"{epoch - 1}", highlight=False)
            state["time_budget_reached"] = True
            return True
        row = _run_epoch(run, epoch, console)
        improved = row["val_loss"] < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=row["val_loss"], best_epoch=epoch, bad_epochs=0)
            save_tensors(run.model.state_dict(), run.out / WEIGHTS)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        _append_history(run.out / "history.csv", row)
        _save_last(run.out, run.model, run.opt, run.sched, state)
        if not (run.out / CARD_FILE).exists():  # a card from the first epoch on: resumable
            _card(run, state, {}, 0.5).save(run.out)
        console.print(
            f"epoch {epoch:>3}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  lr {row['head_lr']:.1e}  "
            f"{row['images_per_s']:.0f} img/s{'  *best' if improved else ''}",
            highlight=False,
        )
    return False


def _run_epoch(run: _Run, epoch: int, console: Console) -> dict[str, Any]:
    """One pass over the training data, then validation; the history row."""
    recipe, model, opt = run.recipe, run.model, run.opt
    # Batch order, augmentation and dropout are seeded per epoch, so --resume retraces.
    epoch_seed = run.stream_seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    loader = make_loader(run.train_ds, recipe.batch_size, shuffle=True, seed=epoch_seed,
                         workers=run.workers, pin=run.device.type == "cuda", weights=run.weights,
                         partners=run.partners)
    n_batches = len(loader) if run.cfg.steps_per_epoch is None else min(
        len(loader), run.cfg.steps_per_epoch)
    t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    model.train()
    with Progress(
        TextColumn(f"epoch {epoch}/{recipe.epochs}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task("train", total=n_batches, stats="")
        for step, (x, y) in enumerate(loader):
            if step >= n_batches:
                break
            x = _model_input(x, run.device, run.pp)
            y = y.to(run.device, non_blocking=True)
            with autocast(run.device, run.dtype):
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits.float(), y)
            _warmup(opt, run.base_lrs, (epoch - 1) * n_batches + step, recipe.warmup_epochs,
                    n_batches)
            opt.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            run.scaler.step(opt)
            run.scaler.update()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            rate = seen / (time.perf_counter() - t0)
            progress.update(task, advance=1, stats=(
                f"loss {loss_sum / seen:.4f} acc {correct / seen:.3f} {rate:.0f} img/s"))
    train_time = time.perf_counter() - t0
    probs, targets, val_loss = predict_probs(model, run.valid_loader, run.device, run.dtype,
                                             run.pp)
    run.sched.step(val_loss)
    lrs = [g["lr"] for g in opt.param_groups]
    return {
        "epoch": epoch, "train_loss": loss_sum / max(seen, 1),
        "train_acc": correct / max(seen, 1), "val_loss": val_loss,
        "val_acc": float((probs.argmax(1) == targets).mean()), "lr": lrs[0], "head_lr": lrs[-1],
        "images_per_s": seen / train_time, "seconds": time.perf_counter() - t0,
    }


def _finalize(run: _Run, state: dict[str, Any], stopped_early: bool) -> ModelCard:
    """Best weights -> threshold calibrated on validation (never on test) -> the card."""
    if not (run.out / WEIGHTS).exists():
        raise UsageError("no epoch completed; nothing to save")
    run.model.load_state_dict(load_tensors(run.out / WEIGHTS))
    # Calibrated on fp32 scores, what a scan's verdicts are computed from (a bf16 scan is
    # guarded near the threshold), not on the autocast scores of training: bf16 moved the
    # threshold enough to break the bound on the validation reals it was set on.
    probs, targets, val_loss = predict_probs(run.model, run.valid_loader, run.device, None,
                                             run.pp)
    card = _card(run, state, {}, 0.5)
    y = (targets != card.negative_index).astype(int)
    pf = card.p_fake(probs)
    groups = np.array([s.source for s in run.valid_s])
    threshold = calibrate_threshold(y, pf, run.recipe.max_fpr,
                                    groups if run.n_sources > 1 else None)
    metrics = {"valid": validation_record(probs, targets, card, groups, source_kinds(run.ds),
                                          threshold, val_loss)}
    card = _card(run, {**state, "stopped_early": stopped_early}, metrics, threshold)
    card.save(run.out)
    return card


def _card(run: _Run, state: dict[str, Any], metrics: dict[str, Any],
          threshold: float) -> ModelCard:
    weights = run.out / WEIGHTS
    total, trainable = count_parameters(run.model)
    training = {
        "epochs_completed": state["epoch"], "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val_loss"], "device": str(run.device),
        "precision": dtype_name(run.dtype), "pretrained": run.pretrained_from,
        "input_size": run.pp.input_size,  # what the weights learned at (a card may score another)
        "steps_per_epoch": run.cfg.steps_per_epoch,  # a cap on batches per epoch (None: all)
        "stream_seed": run.stream_seed,  # batch order and augmentation (--resume retraces it)
    }
    if "stopped_early" in state:
        training["stopped_early"] = state["stopped_early"]
    if state.get("time_budget_reached"):
        training["time_budget_min"] = run.cfg.max_minutes
    ds, cfg = run.ds, run.cfg
    return ModelCard(
        name=run.out.name, architecture=cfg.arch, arch_options=run.arch_options,
        labels=ds.classes, preprocess=run.pp, threshold=threshold,
        threshold_calibrated_on=calibration_label(run.recipe.max_fpr, len(ds.sources)),
        recipe=run.recipe.to_dict(), params={"total": total, "trainable": trainable},
        data={
            "path": str(ds.root), "layout": ds.layout, "split": ds.split_note,
            "ratios": list(cfg.ratios), "seed": run.split_seed,
            "fingerprint": ds.fingerprint(), "counts": ds.counts(),
            "classes_kept": list(cfg.classes) if cfg.classes else None,
            # (absolute: its entries are relative to it, and a resume may start elsewhere)
            "groups": str(Path(cfg.groups).resolve()) if cfg.groups else None,
            "sources": ds.sources,
        },
        training=training, metrics=metrics,
        weights_sha256=sha256_file(weights) if weights.exists() else "",
        versions=versions(),
    )


def _warmup(opt, base_lrs: list[float], step: int, warmup_epochs: float, per_epoch: int) -> None:
    """Linear warm-up: the LR ramps from ~0 to its base value over ``warmup_epochs``.

    Without it, simplecnn's 32768-wide linear layer at lr 1e-3 can blow up in the first steps
    on low-contrast data (loss ~2, then every ReLU dead and a constant output).
    """
    total = warmup_epochs * per_epoch
    if total <= 0 or step >= total:
        return
    for g, base in zip(opt.param_groups, base_lrs, strict=True):
        g["lr"] = base * (step + 1) / total


def _save_last(out: Path, model, opt, sched, state: dict) -> None:
    tensors, meta = _optimizer_state(opt)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    save_tensors(tensors, out / "last.safetensors")
    payload = dict(state, optimizer=meta, scheduler=sched.state_dict())
    write_text(out / "last.json", json.dumps(payload))


def _append_history(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def _truncate_history(path: Path, last_epoch: int) -> None:
    """Drop rows after ``last_epoch`` (a crash between history and state writes)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= last_epoch]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        w.writeheader()
        w.writerows(rows)
