"""``fakescan train`` and ``fakescan eval``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import fakescan.cli.render as render
from fakescan.choices import Crop, InputFilter, Padding, Precision, Views, metavar
from fakescan.cli.app import (
    DeviceOpt,
    Groups,
    JsonFlag,
    ModelArg,
    PrecisionOpt,
    Ratios,
    Seed,
    app,
    err,
    out,
    print_json,
)
from fakescan.config import DEFAULT_BATCH, DEFAULT_FACE_MARGIN, DEFAULT_RATIOS
from fakescan.train.recipes import PRESETS

RecipeName = StrEnum("RecipeName", {k: k for k in PRESETS})  # type: ignore[misc]

Float = dict(metavar="X")
Int = dict(metavar="N")


def _source_weights(specs: list[str] | None) -> dict[str, float] | None:
    """``--source-weight NAME=W`` options (NAME: a source, or SOURCE/CLASS) as a mapping (the
    names are checked by training)."""
    from fakescan.errors import UsageError

    weights: dict[str, float] = {}
    for spec in specs or []:
        name, _, w = spec.rpartition("=")
        try:
            weights[name] = float(w)
        except ValueError:
            name = ""
        if not name:
            raise UsageError(f"--source-weight {spec!r}: write SOURCE=W, e.g. "
                             "dfdc-faceswap-224=3")
    return weights or None


# ``fakescan train``'s options that set what a run is, by their ``TrainConfig.explicit`` key:
# --resume refuses one given with another value than the run's (the others say how it runs)
_RUN_SETTINGS = {
    "recipe_name": "recipe.name", "source_weight": "recipe.source_weights",
    **{k: f"recipe.{k}" for k in (
        "batch_size", "lr", "head_lr", "weight_decay", "warmup_epochs", "patience", "augment",
        "blur_jpeg", "sharpness_jitter", "sharpness_match", "scale_jitter", "grayscale", "zoom",
        "reencode", "self_blend", "pair_groups", "balance", "max_fpr", "seed")},
    **{k: f"arch_options.{k}" for k in ("padding", "extra_block", "input_filter", "views")},
    **{k: k for k in ("crop", "face_margin", "input_size", "ratios", "groups", "split_seed",
                      "steps_per_epoch")},
}


def _given_settings(ctx: typer.Context) -> dict[str, str]:
    """The run settings given on the command line (or in the environment), as
    ``{TrainConfig.explicit key: "--flag VALUE"}``."""
    given = {}
    for p in ctx.command.params:
        key = _RUN_SETTINGS.get(p.name or "")
        source = ctx.get_parameter_source(p.name) if key else None
        # (by name: typer may bring its own copy of click's ParameterSource)
        if getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        v = ctx.params[p.name]
        shown = (" ".join(map(str, v)) if isinstance(v, list | tuple) else
                 str(v) if not isinstance(v, bool) else "")
        flag = p.opts[0] if not isinstance(v, bool) or v or not p.secondary_opts else \
            p.secondary_opts[0]
        given[key] = f"{flag} {shown}".strip()
    return given


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", metavar="ARCH",
                                       help="Architecture (see `fakescan models`).")],
    data: Annotated[list[Path], typer.Option(
        "--data", metavar="DATA", help="Dataset folder or CSV manifest; repeat to train on "
        "several sources together (one-class folders such as real photos only are welcome).")],
    classes: Annotated[list[str] | None, typer.Option(
        "--class", metavar="NAME", help="Keep only this class of the data (repeat: --class "
        "real --class fake leaves out a source's 'edited' class).")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Model folder [default: models/ARCH].")] = None,
    recipe_name: Annotated[RecipeName, typer.Option(  # type: ignore[valid-type]
        "--recipe", metavar=metavar(RecipeName),
        help="seed: the research reports' recipe; robust: simplecnn on one source; "
        "cross_source: several --data sources (see README).")] = RecipeName.seed,  # type: ignore
    epochs: Annotated[int | None, typer.Option(min=1, **Int, help="Max epochs [recipe].")
                      ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, **Int, help="Batch size [recipe].")
                          ] = None,
    lr: Annotated[float | None, typer.Option(**Float, help="Learning rate (backbone where "
                                             "there is a separate head).")] = None,
    head_lr: Annotated[float | None, typer.Option(**Float, help="Head learning rate.")] = None,
    weight_decay: Annotated[float | None, typer.Option(**Float, help="Adam weight decay.")
                            ] = None,
    warmup_epochs: Annotated[float | None, typer.Option(
        **Float, help="Linear LR warm-up over this many epochs [recipe].")] = None,
    patience: Annotated[int | None, typer.Option(**Int, help="Early-stopping patience "
                                                 "(epochs).")] = None,
    augment: Annotated[bool | None, typer.Option(
        "--augment/--no-augment", help="Seed augmentations.")] = None,
    blur_jpeg: Annotated[bool, typer.Option(
        "--blur-jpeg", help="Add blur + JPEG re-compression augmentation.")] = False,
    sharpness_jitter: Annotated[bool, typer.Option(
        "--sharpness-jitter", help="Randomly blur or sharpen (sharpness carries no label).")
    ] = False,
    sharpness_match: Annotated[bool, typer.Option(
        "--sharpness-match", help="Blur some fakes and sharpen some reals so both classes "
        "span the same sharpness.")] = False,
    scale_jitter: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, **Float, help="Random resized crops keeping at least this much area "
        "(0 = off).")] = None,
    grayscale: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, metavar="P", help="Probability of turning a training image grey.")
    ] = None,
    zoom: Annotated[tuple[float, float] | None, typer.Option(
        metavar="LO HI", help="Random framing: the crop's side a log-uniform share of the "
        "frame between LO and HI (<1 zooms in, >1 out) [recipe].")] = None,
    reencode: Annotated[bool | None, typer.Option(
        "--reencode/--no-reencode", help="Re-encode every training image at a random "
        "resolution and JPEG quality [recipe].")] = None,
    self_blend: Annotated[bool, typer.Option(
        "--self-blend", help="Add a self-blended pseudo-fake of every training real (the face "
        "blended onto itself after a small colour/scale change: face-swap traces without a "
        "swapper).")] = False,
    pair_groups: Annotated[bool, typer.Option(
        "--pair-groups", help="Draw each training image beside one of its group's images of "
        "another class, in the same batch (a face swap beside the real video it was made "
        "from; DFDC's pairs.csv or --groups gives the groups).")] = False,
    balance: Annotated[bool | None, typer.Option(
        "--balance/--no-balance", help="Sample every class, and every source within a class, "
        "equally [default: on with several sources].")] = None,
    source_weight: Annotated[list[str] | None, typer.Option(
        metavar="SOURCE[/CLASS]=W", help="Balanced sampling: draw this source (a --data "
        "folder's name) W times as often inside each class it holds, or with /CLASS inside "
        "that class alone (e.g. ffhq/real=2); repeatable.")] = None,
    crop: Annotated[Crop, typer.Option(
        metavar=metavar(Crop), help="none: the model sees the whole image; face: each "
        "image's largest face (MTCNN), cut square with --face-margin around it (scans then "
        "judge every face).")] = Crop.none,
    face_margin: Annotated[float, typer.Option(
        min=0.0, max=2.0, **Float, help="Face crop: extra room on each side, as a share of "
        "the face box's longer side.")] = DEFAULT_FACE_MARGIN,
    padding: Annotated[Padding | None, typer.Option(
        metavar=metavar(Padding), help="salman: Keras' valid or the paper's same.")] = None,
    extra_block: Annotated[bool, typer.Option(help="salman: add the 7th conv group.")] = False,
    input_filter: Annotated[InputFilter | None, typer.Option(
        metavar=metavar(InputFilter), help="highpass: the model sees the image minus its local "
        "mean; highpass_norm: that, scaled to unit variance per image [recipe].")] = None,
    input_size: Annotated[int | None, typer.Option(
        "--input-size", min=16, max=1024, metavar="PX", help="Train at this input size instead "
        "of the architecture's (networks that pool globally take any; with --init, fine-tune "
        "the weights at a new size) [the architecture's].")] = None,
    views: Annotated[Views | None, typer.Option(
        metavar=metavar(Views), help="flip: the model scores each image and its mirror image "
        "and averages them (validation, threshold, scans; training sees one view), ranking "
        "fakes better at twice the network's time [one].")] = None,
    max_fpr: Annotated[float | None, typer.Option(
        "--max-fpr", min=0.0, max=1.0, metavar="F", help="Threshold policy: on average at most "
        "this share of new reals from each source called fake, set on its validation reals "
        "[recipe; seed: Youden's J].")] = None,
    no_pretrained: Annotated[bool, typer.Option(
        "--no-pretrained", help="Pretrained architectures: start from random weights.")
    ] = False,
    backbone_weights: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Pretrained architectures: the ImageNet backbone (.pth or "
        ".safetensors).")] = None,
    init: Annotated[str | None, typer.Option(
        "--init", metavar="MODEL", help="Fine-tune: start from this model's weights (a "
        "folder, a name in the store, or 'default' for the shipped detector); same "
        "architecture and classes.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    seed: Seed = 0,
    split_seed: Annotated[int | None, typer.Option(
        "--split-seed", metavar="N", help="Seed of the train/valid/test split [--seed; with "
        "--init, the split of the model it starts from].")] = None,
    ratios: Ratios = DEFAULT_RATIOS,
    groups: Groups = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    steps_per_epoch: Annotated[int | None, typer.Option(
        min=1, **Int, help="Cap on batches per epoch.")] = None,
    workers: Annotated[int, typer.Option(min=0, **Int, help="Data loading processes.")] = 2,
    max_minutes: Annotated[float | None, typer.Option(
        min=0.0, metavar="MIN", help="Start no new epoch after this many minutes (the run "
        "ends on a whole epoch, calibrated and carded as usual; --resume continues it).")
    ] = None,
) -> None:
    """Train a real-vs-fake classifier into a model folder (a named recipe, overridable)."""
    from fakescan.data.split import check_ratios
    from fakescan.train.fit import TrainConfig, train
    from fakescan.train.recipes import resolve_recipe

    arch_options = {"padding": padding, "extra_block": extra_block or None,
                    "input_filter": input_filter, "views": None if views == Views.one else views}
    recipe, options = resolve_recipe(
        model, str(recipe_name),
        arch_options={k: str(v) if isinstance(v, StrEnum) else v
                      for k, v in arch_options.items() if v is not None},
        epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, weight_decay=weight_decay,
        warmup_epochs=warmup_epochs, patience=patience, augment=augment,
        blur_jpeg=blur_jpeg or None, sharpness_jitter=sharpness_jitter or None,
        sharpness_match=sharpness_match or None, scale_jitter=scale_jitter, grayscale=grayscale,
        max_fpr=max_fpr, seed=seed, zoom=zoom, reencode=reencode, balance=balance,
        self_blend=self_blend or None, pair_groups=pair_groups or None,
        source_weights=_source_weights(source_weight))
    from fakescan.store import models_dir

    cfg = TrainConfig(
        arch=model, data=list(data), classes=tuple(classes) if classes else None,
        crop=str(crop), face_margin=face_margin, out=out_dir or models_dir() / model,
        recipe=recipe, arch_options=options, pretrained=not no_pretrained,
        backbone_weights=backbone_weights, resume=resume, device=device,
        precision=str(precision), steps_per_epoch=steps_per_epoch, workers=workers,
        ratios=check_ratios(ratios), resume_epochs=epochs, groups=groups,
        max_minutes=max_minutes, init=init, split_seed=split_seed, input_size=input_size,
        explicit=_given_settings(ctx),
    )
    card = train(cfg, console=err)
    t = card.outcome
    out.print(
        f"model folder: {cfg.out}  (best epoch {t.best_epoch} of {t.epochs_completed}, "
        f"val loss {render.fmt(t.best_val_loss)}, val acc {render.fmt(t.valid_accuracy)}, "
        f"threshold {card.threshold:.3f})",
        highlight=False,
    )


@app.command("eval")
def eval_cmd(
    model: ModelArg = "",
    data: Annotated[list[Path] | None, typer.Option(
        "--data", metavar="DATA", help="Dataset folder or CSV manifest (repeatable) whose "
        "--split is evaluated [default: the sources the model was trained on].")] = None,
    split: Annotated[str, typer.Option("--split", metavar="SPLIT", help="Split to evaluate.")
                     ] = "test",
    ood: Annotated[list[Path] | None, typer.Option(
        "--ood", metavar="DATA", help="A dataset from another source, evaluated whole "
        "(repeatable: one row each, and the worst).")] = None,
    groups: Groups = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    batch_size: Annotated[int, typer.Option(min=1, **Int)] = 64,
    robustness: Annotated[bool, typer.Option(
        "--robustness", help="Also sweep JPEG quality, blur and downscaling (table + plot).")
    ] = False,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Recalibrate the threshold on --data's validation split and write "
        "it into the model (what later scans use). Without it eval changes nothing.")] = False,
    max_fpr: Annotated[float | None, typer.Option(
        "--max-fpr", min=0.0, max=1.0, metavar="F",
        help="With --calibrate: on average at most this share of new reals from each source "
        "called fake, set on its validation reals [recipe; default Youden's J].")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Where metrics.json and the figures go [default: the "
        "model folder].")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Metrics, cross-source table, confusion matrix, ROC, misclassified images."""
    from fakescan.errors import UsageError
    from fakescan.train.evaluate import evaluate

    if max_fpr is not None and not calibrate:
        raise UsageError("--max-fpr chooses a new threshold: add --calibrate")
    m = evaluate(model or None, data, split=split, ood=ood, device=device,
                 precision=str(precision), batch_size=batch_size, robustness=robustness,
                 max_fpr=max_fpr, calibrate=calibrate, out=out_dir, groups=groups)
    if json_out:
        print_json(m.to_dict())
        return
    for t in render.evaluation(m):
        out.print(t)
    note = " (and the new threshold into the model's card)" if m.calibrated_now else ""
    out.print(f"wrote metrics.json, confusion.png, roc.png, misclassified.csv/.png to "
              f"{m.written_to}{note}", highlight=False)


@app.command("calibrate")
def calibrate_cmd(
    reals: Annotated[list[Path], typer.Argument(
        metavar="REALS", help="Folders of real photos from the source you will scan "
        "(each folder is one source; subfolders included).")],
    model: Annotated[str, typer.Option(
        "--model", "-m", metavar="MODEL", help="Model name in models/ or a model folder "
        "[default: the shipped default detector].")] = "",
    max_fpr: Annotated[float, typer.Option(
        "--max-fpr", min=0.0, max=0.99, metavar="F", help="On average at most this share of new "
        "photos like each folder's called fake (of n, floor(F (n + 1) - 1/2) may be).")] = 0.02,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Write a calibrated copy of the model here (required for "
        "the shipped default) [default: update the model's own folder].")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Measure and report; write nothing.")] = False,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, **Int)
                          ] = DEFAULT_BATCH,
    json_out: JsonFlag = False,
) -> None:
    """Raise the model's threshold until, on average, at most --max-fpr of new photos like your
    own real ones are called fake (a false-alarm bound measured on other sources does not carry
    over to yours)."""
    from fakescan.calibrate import calibrate

    with err.status(f"scoring the photos in {', '.join(str(r) for r in reals)}"):
        cal = calibrate(model or None, reals, max_fpr=max_fpr, out=out_dir, dry_run=dry_run,
                        device=device, batch_size=batch_size)
    if json_out:
        print_json(cal.to_dict())
        return
    out.print(render.calibration(cal))
    from fakescan.train.metrics import reals_to_allow_one

    for r in cal.folders:
        if r.allowed == 0 and max_fpr > 0:
            out.print(f"{r.path}: at {max_fpr:g}, none of its {r.scored} photos may be called "
                      f"fake, so the threshold sits above them all; {reals_to_allow_one(max_fpr)} "
                      f"or more photos give a less strict one", highlight=False)
    if dry_run:
        out.print("dry run: nothing written", highlight=False)
    elif cal.tightened:
        out.print(f"wrote the new threshold into {cal.folder}; scan with --model {cal.folder}",
                  highlight=False)
    else:
        out.print(f"the threshold already keeps false alarms within {max_fpr:g} on these "
                  f"photos: unchanged ({cal.folder})", highlight=False)
