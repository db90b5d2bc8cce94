"""The ``fakescan`` command line: thin commands that parse, call the library and render.

Heavy libraries (torch, DALI, onnxruntime) are imported inside the commands that need them, so
``fakescan --help`` answers fast. ``FakescanError`` is turned into one line on stderr and exit
status 2 in exactly one place: ``main``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fakescan.errors import FakescanError

app = typer.Typer(
    name="fakescan",
    help="Find AI-generated face images: train classifiers, export them, scan collections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Dataset tools: synth, stats, dedup, split.", no_args_is_help=True)
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)

Ratios = Annotated[
    tuple[float, float, float],
    typer.Option("--ratios", help="train/valid/test ratios for datasets without splits."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the split or generator.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _rel(path: str, root: Path) -> str:
    base = root if root.is_dir() else root.parent
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


# ----------------------------------------------------------------------------- models
@app.command("models")
def models_cmd(json_out: JsonFlag = False) -> None:
    """List registered architectures: input size, total and trainable parameters, source."""
    from fakescan.nets import count_parameters, get_arch, list_archs

    rows = []
    for name in list_archs():
        spec = get_arch(name)
        for variant, options in (spec.variants or {"": {}}).items():
            total, trainable = count_parameters(spec.build(num_classes=2, **options))
            rows.append({
                "name": name,
                "variant": variant or None,
                "options": options,
                "input_size": spec.preprocess.input_size,
                "params": total,
                "trainable_params": trainable,
                "source": spec.source,
                "preprocess": spec.preprocess.to_dict(),
            })
    if json_out:
        _print_json(rows)
        return
    t = Table(title="Registered architectures (2 classes)")
    for col, just in [("name", "left"), ("input", "right"), ("params", "right"),
                      ("trainable", "right"), ("source", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        name = r["name"] + (f" ({r['variant']})" if r["variant"] else "")
        t.add_row(name, str(r["input_size"]), f"{r['params']:,}", f"{r['trainable_params']:,}",
                  r["source"])
    out.print(t)


# ----------------------------------------------------------------------------- data
@data_app.command("synth")
def data_synth(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (split layout).")],
    n: Annotated[int, typer.Option("--n", min=2, help="Number of images.")] = 400,
    seed: Seed = 0,
    min_size: Annotated[int, typer.Option(min=16, help="Smallest image side.")] = 128,
    max_size: Annotated[int, typer.Option(min=16, help="Largest image side.")] = 1024,
) -> None:
    """Generate a deterministic synthetic labelled set (train/valid/test x real/fake)."""
    from fakescan.data.synth import make_synth
    from fakescan.errors import UsageError

    if min_size > max_size:
        raise UsageError("--min-size must not exceed --max-size")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"output folder {out_dir} exists and is not empty")
    with err.status(f"generating {n} images into {out_dir} ..."):
        counts = make_synth(out_dir, n=n, seed=seed, size_range=(min_size, max_size))
    summary = ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
    out.print(f"wrote {n} images to {out_dir} ({summary})")


@data_app.command("stats")
def data_stats(
    data: Annotated[Path, typer.Argument(help="Dataset folder or CSV manifest.")],
    ratios: Ratios = (0.8, 0.1, 0.1),
    seed: Seed = 0,
    json_out: JsonFlag = False,
) -> None:
    """Per-split, per-class counts and percentages."""
    from fakescan.data import load_dataset
    from fakescan.data.split import check_ratios
    from fakescan.data.stats import dataset_stats

    st = dataset_stats(load_dataset(data, ratios=check_ratios(ratios), seed=seed))
    if json_out:
        _print_json(st)
        return
    t = Table(title=f"{st['dataset']}  [{st['layout']}; {st['split']}]")
    t.add_column("split")
    for c in st["classes"]:
        t.add_column(f"{c} #", justify="right")
        t.add_column(f"{c} %", justify="right")
    t.add_column("total", justify="right")
    t.add_column("% of all", justify="right")
    for r in st["rows"]:
        cells = [r["split"].capitalize()]
        for c in st["classes"]:
            cells += [f"{r['counts'][c]:,}", f"{r['percent'][c]:.2f}"]
        cells += [f"{r['total']:,}", f"{r['share']:.1f}"]
        t.add_row(*cells, end_section=r["split"] == st["rows"][-2]["split"])
    out.print(t)


@data_app.command("dedup")
def data_dedup(
    data: Annotated[Path, typer.Argument(help="Dataset folder or CSV manifest.")],
    max_distance: Annotated[
        int, typer.Option(min=0, max=32, help="Largest pHash Hamming distance of a near duplicate.")
    ] = 4,
    move_to: Annotated[
        Path | None, typer.Option(help="Move all but one file of each group here.")
    ] = None,
    ratios: Ratios = (0.8, 0.1, 0.1),
    seed: Seed = 0,
    json_out: JsonFlag = False,
) -> None:
    """Find exact and perceptual duplicates, within and across splits (leakage)."""
    from fakescan.data import load_dataset
    from fakescan.data.dedup import find_duplicates, move_duplicates
    from fakescan.data.split import check_ratios

    ds = load_dataset(data, ratios=check_ratios(ratios), seed=seed)
    with err.status(f"hashing {len(ds.samples())} images ..."):
        report = find_duplicates(ds, max_distance=max_distance)
    if move_to is not None:
        report["moved"] = move_duplicates(report, ds.root, move_to)
    if json_out:
        _print_json(report)
        return
    s = report["summary"]
    if report["groups"]:
        t = Table(title=f"Duplicate groups (pHash distance <= {max_distance})")
        for col in ("#", "kind", "dist", "splits", "leak", "files"):
            t.add_column(col)
        for k, g in enumerate(report["groups"], 1):
            files = "\n".join(f"{m['split']}: {_rel(m['path'], ds.root)}" for m in g["members"])
            t.add_row(str(k), g["kind"], str(g["max_distance"]), ",".join(g["splits"]),
                      "[red]LEAK[/]" if g["leak"] else "", files)
        out.print(t)
    out.print(
        f"{report['images']:,} images: {s['exact_groups']} exact and {s['near_groups']} near "
        f"duplicate groups ({s['duplicate_files']} redundant files); "
        f"{s['leaking_groups']} groups cross splits (leakage); {s['unreadable']} unreadable."
    )
    if move_to is not None:
        out.print(f"moved {len(report['moved'])} files to {move_to}")


@data_app.command("split")
def data_split(
    data: Annotated[Path, typer.Argument(help="Dataset folder or CSV manifest.")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder (split layout).")],
    ratios: Ratios = (0.8, 0.1, 0.1),
    seed: Seed = 0,
    copy: Annotated[
        bool, typer.Option("--copy", help="Copy files instead of hard-linking.")
    ] = False,
) -> None:
    """Write a stratified, reproducible train/valid/test split as folders."""
    from fakescan.data import load_dataset
    from fakescan.data.split import check_ratios, write_split

    ds = load_dataset(data, ratios=check_ratios(ratios), seed=seed)
    counts = write_split(ds, out_dir, link=not copy)
    out.print(
        f"wrote {sum(counts.values()):,} files to {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
        + f" ({ds.split_note})"
    )


# ----------------------------------------------------------------------------- train / eval
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option("--precision", help="auto, fp32, fp16 or bf16.")]


@app.command("train")
def train_cmd(
    model: Annotated[str, typer.Option("--model", help="Architecture (see `fakescan models`).")],
    data: Annotated[list[Path], typer.Option(
        "--data", help="Dataset folder or CSV manifest; repeat to train on several sources "
        "together (one-class folders such as real photos only are welcome).")],
    classes: Annotated[list[str] | None, typer.Option(
        "--class", help="Keep only this class of the data (repeat: --class real --class "
        "fake leaves out a source's 'edited' class).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Model folder [default: models/ARCH].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Max epochs [recipe].")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size [recipe].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (resnet_ft: layer4).")] = None,
    head_lr: Annotated[float | None, typer.Option(help="resnet_ft head learning rate.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Adam weight decay.")] = None,
    warmup_epochs: Annotated[float | None, typer.Option(
        help="Linear LR warm-up over this many epochs [recipe].")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience (epochs).")] = None,
    augment: Annotated[
        bool | None, typer.Option("--augment/--no-augment", help="Seed augmentations.")
    ] = None,
    blur_jpeg: Annotated[
        bool, typer.Option("--blur-jpeg", help="Add blur + JPEG re-compression augmentation.")
    ] = False,
    sharpness_jitter: Annotated[bool, typer.Option(
        "--sharpness-jitter", help="Randomly blur or sharpen (sharpness carries no label).")
    ] = False,
    sharpness_match: Annotated[bool, typer.Option(
        "--sharpness-match", help="Blur some fakes and sharpen some reals so both classes "
        "span the same sharpness.")] = False,
    scale_jitter: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Random resized crops keeping at least this much area (0 = off).")
    ] = None,
    grayscale: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Probability of turning a training image grey.")] = None,
    zoom: Annotated[tuple[float, float] | None, typer.Option(
        help="Random framing: the crop's side a log-uniform share of the frame between LO "
        "and HI (<1 zooms in, >1 out) [recipe].")] = None,
    reencode: Annotated[bool | None, typer.Option(
        "--reencode/--no-reencode", help="Re-encode every training image at a random "
        "resolution and JPEG quality [recipe].")] = None,
    balance: Annotated[bool | None, typer.Option(
        "--balance/--no-balance", help="Sample every class, and every source within a class, "
        "equally [default: on with several sources].")] = None,
    crop: Annotated[str, typer.Option(
        help="none: the model sees the whole image; face: each image's largest face (MTCNN), "
        "cut square with --face-margin around it (scans then judge every face).")] = "none",
    face_margin: Annotated[float, typer.Option(
        min=0.0, max=2.0, help="Face crop: extra room on each side, as a share of the face "
        "box's longer side.")] = 0.3,
    padding: Annotated[str | None, typer.Option(help="salman: valid or same.")] = None,
    extra_block: Annotated[bool, typer.Option(help="salman: add the 7th conv group.")] = False,
    input_filter: Annotated[str | None, typer.Option(
        help="none, highpass (the model sees the image minus its local mean) or highpass_norm "
        "(that, scaled to unit variance per image) [recipe].")] = None,
    max_fpr: Annotated[float | None, typer.Option(
        "--max-fpr", min=0.0, max=1.0, help="Threshold policy: call at most this share of "
        "validation reals fake [recipe; seed: Youden's J].")] = None,
    recipe_name: Annotated[str, typer.Option(
        "--recipe", help="seed (the research reports' recipe), robust (simplecnn on one "
        "source) or cross_source (several --data sources; see README).")] = "seed",
    no_pretrained: Annotated[
        bool, typer.Option("--no-pretrained", help="ResNet: start from random weights.")
    ] = False,
    backbone_weights: Annotated[
        Path | None, typer.Option(help="ResNet: ImageNet backbone file (.pth or .safetensors).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    seed: Seed = 0,
    ratios: Ratios = (0.8, 0.1, 0.1),
    device: Device = "auto",
    precision: Precision = "auto",
    steps_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Cap on batches per epoch.")
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="Data loading processes.")] = 2,
) -> None:
    """Train a real-vs-fake classifier into a model folder (seed or robust recipe, overridable)."""
    from fakescan.data.split import check_ratios
    from fakescan.nets import get_arch
    from fakescan.train.fit import TrainConfig, train
    from fakescan.train.recipes import get_preset

    spec = get_arch(model)
    preset = get_preset(recipe_name)
    options: dict[str, Any] = dict(preset.arch_options)
    if padding is not None:
        options["padding"] = padding
    if extra_block:
        options["extra_block"] = True
    if input_filter is not None:
        options["input_filter"] = input_filter
    if options.get("input_filter") == "none":
        del options["input_filter"]
    recipe = spec.recipe.replace(name=recipe_name, **preset.recipe).replace(
        epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, weight_decay=weight_decay,
        warmup_epochs=warmup_epochs, patience=patience, augment=augment,
        blur_jpeg=blur_jpeg or None, sharpness_jitter=sharpness_jitter or None,
        sharpness_match=sharpness_match or None, scale_jitter=scale_jitter, grayscale=grayscale,
        max_fpr=max_fpr, seed=seed, zoom=zoom, reencode=reencode, balance=balance,
    )
    cfg = TrainConfig(
        arch=model, data=list(data), classes=tuple(classes) if classes else None,
        crop=crop, face_margin=face_margin,
        out=out_dir or Path("models") / model, recipe=recipe,
        arch_options=options, pretrained=not no_pretrained, backbone_weights=backbone_weights,
        resume=resume, device=device, precision=precision, steps_per_epoch=steps_per_epoch,
        workers=workers, ratios=check_ratios(ratios), resume_epochs=epochs,
    )
    card = train(cfg, console=err)
    t = card.training
    out.print(
        f"model folder: {cfg.out}  (best epoch {t['best_epoch']} of {t['epochs_completed']}, "
        f"val loss {t['best_val_loss']:.4f}, val acc {card.metrics['valid']['accuracy']:.4f}, "
        f"threshold {card.threshold:.3f})",
        highlight=False,
    )


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Argument(help="Model name in models/, or a model folder "
                                         "[default: the shipped default detector].")] = "",
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="Dataset folder or CSV manifest (repeatable) whose --split is evaluated "
        "[default: the sources the model was trained on].")] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    ood: Annotated[list[Path] | None, typer.Option(
        "--ood", help="A dataset from another source, evaluated whole (repeatable: one row "
        "each, and the worst).")] = None,
    device: Device = "auto",
    precision: Precision = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    robustness: Annotated[bool, typer.Option(
        "--robustness", help="Also sweep JPEG quality, blur and downscaling (table + plot).")
    ] = False,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Recalibrate the threshold on --data's validation split and write "
        "it into the model (what later scans use). Without it eval changes nothing.")] = False,
    max_fpr: Annotated[float | None, typer.Option(
        "--max-fpr", min=0.0, max=1.0,
        help="With --calibrate: call at most this share of each source's validation reals "
        "fake [recipe; default Youden's J].")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Where metrics.json and the figures go [default: the model folder].")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Metrics, cross-source table, confusion matrix, ROC, misclassified images."""
    from fakescan.errors import UsageError
    from fakescan.train.evaluate import evaluate

    if max_fpr is not None and not calibrate:
        raise UsageError("--max-fpr chooses a new threshold: add --calibrate")
    m = evaluate(model, data, split=split, ood=ood, device=device, precision=precision,
                 batch_size=batch_size, robustness=robustness, max_fpr=max_fpr,
                 calibrate=calibrate, out=out_dir)
    if json_out:
        _print_json(m)
        return
    how = "recalibrated now on" if m["calibrated_now"] else "from the card, calibrated on"
    t = Table(title=f"{m['model']} on {split} of {m['dataset']}  (threshold "
                    f"{m['threshold']:.3f}, {how} {m['threshold_calibrated_on']})")
    t.add_column("metric")
    t.add_column(split, justify="right")
    for key in ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                "real_called_fake", "fake_called_real", "tpr_at_fpr_0.05"):
        t.add_row(key, _fmt(m["details"].get(key)))
    out.print(t)
    if m.get("cross_source"):
        ct = Table(title="other sources (at the same threshold)")
        ct.add_column("dataset")
        for col in ("n", "accuracy", "ROC-AUC", "real called fake", "fakes detected",
                    "TPR@5%FPR"):
            ct.add_column(col, justify="right")
        keys = ("n", "accuracy", "roc_auc", "real_called_fake", "fakes_detected",
                "tpr_at_fpr_0.05")
        rows = list(m["cross_source"].items()) + [("worst", m["ood_worst"])]
        for k, (name, r) in enumerate(rows):
            ct.add_row(name, *[_fmt(r.get(x)) for x in keys], end_section=k == len(rows) - 2)
        out.print(ct)
    for name, rows in m.get("robustness", {}).items():
        rt = Table(title=f"robustness on {name}")
        for col in ("perturbation", "accuracy", "roc_auc", "tpr_at_fpr_0.05",
                    "real_called_fake"):
            rt.add_column(col, justify="left" if col == "perturbation" else "right")
        for r in rows:
            rt.add_row(r["perturbation"], *[_fmt(r[k]) for k in ("accuracy", "roc_auc",
                                                               "tpr_at_fpr_0.05",
                                                               "real_called_fake")])
        out.print(rt)
    note = " (and the new threshold into the model's card)" if m["calibrated_now"] else ""
    out.print(f"wrote metrics.json, confusion.png, roc.png, misclassified.csv/.png to "
              f"{m['written_to']}{note}", highlight=False)


# ----------------------------------------------------------------------------- scan
@app.command("scan")
def scan_cmd(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Files and folders to scan (folders recursively); '-' reads a list "
                            "from stdin."),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name in models/, a model "
                                       "folder, or an exported .onnx file [default: the "
                                       "shipped default detector].")] = "",
    out_path: Annotated[str | None, typer.Option(
        "--out", "-o", help="Output file (default fakescan-scan.<format>); '-' is stdout.")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv | jsonl | json (default: from --out's suffix, else csv).")] = None,
    files_from: Annotated[str | None, typer.Option(
        "--files-from", help="Read paths from FILE ('-' for stdin), one per line.")] = None,
    null: Annotated[bool, typer.Option("-0", "--null", help="Lists are NUL-separated.")] = False,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Skip names or paths matching this glob (repeatable).")] = None,
    follow_symlinks: Annotated[bool, typer.Option(
        "--follow-symlinks", help="Follow symlinks inside folders (loops are guarded).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Complete an existing output: skip inputs with a row.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing output file.")] = False,
    decoder: Annotated[str, typer.Option(help="auto | dali | pil")] = "auto",
    runtime: Annotated[str, typer.Option(help="auto | torch | onnx")] = "auto",
    device: Annotated[str, typer.Option(
        help="auto | cpu | cuda:N | all | a comma list such as cuda:0,cuda:1")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 32,
    precision: Precision = "auto",
    threshold: Annotated[float | None, typer.Option(
        help="Decision threshold on p_fake (default: the model's calibrated one).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Decode worker processes (PIL) or threads (DALI); default one per core.")] = None,
    no_reduce: Annotated[bool, typer.Option(
        "--no-reduce", help="Decode JPEGs at full size (no reduce-on-decode).")] = False,
    max_pixels: Annotated[int | None, typer.Option(
        help="Refuse images with more pixels (decompression bombs).")] = None,
    timeout: Annotated[float, typer.Option(
        min=0.0, help="Seconds one file may take to read and decode before it gets a 'timeout' "
        "row (0: no limit).")] = 30.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    per_face: Annotated[bool, typer.Option(
        "--per-face", help="Face models: one row per face (its box and verdict) instead of "
        "one per file.")] = False,
    no_face_fallback: Annotated[str, typer.Option(
        "--no-face-fallback", help="Face models, where no face is found: none (a row with "
        "status no_face) or whole (judge the whole image).")] = "none",
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show library warnings on the terminal (by default they go "
        "to the rows' warning field, or to a .log file beside the output).")] = False,
    engine: Annotated[str, typer.Option(
        help="local, or ray: run the scan core inside Ray Data (pip install 'fakescan[ray]')."
    )] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster address (default: start a local Ray, or RAY_ADDRESS).")] = None,
    ray_actors: Annotated[int | None, typer.Option(
        help="Scan actors (default: one per GPU, or per CPU without --gpus-per-actor).")] = None,
    gpus_per_actor: Annotated[float, typer.Option(help="GPUs per Ray actor (0: CPU).")] = 0.0,
) -> None:
    """Scan images: one verdict row per input. Exit 0 no fake, 1 fake found, 2 errors."""
    from fakescan.errors import UsageError
    from fakescan.scanner.driver import run_scan
    from fakescan.scanner.guard import quiet_process
    from fakescan.scanner.inputs import iter_inputs
    from fakescan.scanner.options import ScanOptions
    from fakescan.scanner.output import format_for

    if not inputs and files_from is None:
        raise UsageError("nothing to scan: give files or folders, '-' or --files-from")
    fmt = format_for(out_path or "", fmt)
    out_path = out_path or f"fakescan-scan.{fmt}"
    opts = ScanOptions(model=model, decoder=decoder, runtime=runtime, device=device,
                       precision=precision, batch_size=batch_size, threshold=threshold,
                       workers=workers, reduce=not no_reduce, max_pixels=max_pixels,
                       timeout=timeout or None, per_face=per_face,
                       face_fallback=no_face_fallback == "whole", engine=engine,
                       ray_address=ray_address,
                       ray_actors=ray_actors, gpus_per_actor=gpus_per_actor)
    if engine not in ("local", "ray"):
        raise UsageError("--engine must be local or ray")
    if no_face_fallback not in ("none", "whole"):
        raise UsageError("--no-face-fallback must be none or whole")
    paths = iter_inputs(inputs or [], files_from=files_from, null_sep=null,
                        exclude=tuple(exclude or ()), follow_symlinks=follow_symlinks)
    report = err if out_path == "-" else out
    show = not quiet and err.is_terminal
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("[bold]scanning[/]"),
                        TextColumn("{task.completed:,} images"),
                        TextColumn("{task.fields[fake]:,} fake, {task.fields[errors]:,} errors"),
                        TextColumn("{task.fields[rate]:.1f} img/s"), TimeElapsedColumn(),
                        console=err, disable=not show)
    with progress:
        task = progress.add_task("scan", total=None, fake=0, errors=0, rate=0.0)

        def on_rows(s) -> None:
            progress.update(task, completed=s.scanned, fake=s.fake, errors=s.errors,
                            rate=s.images_per_s)

        log_path = (out_path if out_path != "-" else "fakescan-scan") + ".log"
        with contextlib.nullcontext({"log": None}) if verbose else quiet_process(
                log_path) as noise:
            s = run_scan(paths, opts, out=out_path, fmt=fmt, resume=resume,
                         overwrite=overwrite, on_rows=on_rows)
    t = Table(title="scan summary", show_header=False)
    t.add_column("key")
    t.add_column("value", justify="right")
    rows = [("scanned", f"{s.scanned:,}" + (f" (+{s.resumed:,} resumed)" if s.resumed else "")),
            ("fake", f"{s.fake:,}"), ("real", f"{s.real:,}"), ("errors", f"{s.errors:,}"),
            *([("no face", f"{s.no_face:,}")] if s.no_face else []),
            ("images/s", f"{s.images_per_s:.1f}"), ("seconds", f"{s.seconds:.1f}"),
            ("model", s.model), ("output", out_path)]
    rows += [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in s.config.items()]
    if s.error_codes:
        rows.append(("error codes", ", ".join(f"{k} {v}" for k, v in
                                              sorted(s.error_codes.items()))))
    if s.warnings:
        rows.append(("warnings", f"{s.warnings:,} rows (see their warning field)"))
    if noise["log"]:
        rows.append(("log", noise["log"]))
    for k, v in rows:
        t.add_row(k, v)
    report.print(t)
    raise typer.Exit(s.exit_code)


# ----------------------------------------------------------------------------- export
@app.command("export")
def export_cmd(
    model: Annotated[str, typer.Argument(help="Model name in models/, or a model folder "
                                         "[default: the shipped default detector].")] = "",
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (the only format).")] = True,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights.")] = False,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Output file (default <model folder>/model.onnx).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Export a model to ONNX with its preprocessing metadata, and check parity with torch."""
    from fakescan.errors import ModelError
    from fakescan.export import export_onnx

    r = export_onnx(model, out_path, fp16=fp16)
    if json_out:
        _print_json(r)
    else:
        p = r["parity"]
        out.print(f"wrote {r['path']} ({r['bytes'] / 1e6:.1f} MB, opset {r['opset']}, "
                  f"{r['precision']})", highlight=False)
        out.print(f"parity vs torch on {p['images']} decoded images: max |delta p_fake| "
                  f"{p['max_abs_delta_p_fake']:.2e} (tolerance {p['tolerance']:.0e}), verdict "
                  f"agreement {p['verdict_agreement']:.3f}", highlight=False)
    if not r["parity"]["ok"]:
        raise ModelError(f"ONNX parity check failed: {r['parity']}")


# ----------------------------------------------------------------------------- bench
@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, folder, .onnx, or an "
                                       "architecture name (random weights) [default: the "
                                       "shipped default detector].")] = "",
    images: Annotated[Path | None, typer.Option(
        help="Folder of images to time (default: generated 256-600 px JPEG faces).")] = None,
    device: Annotated[str | None, typer.Option(
        help="Comma list of devices (default: cpu and every CUDA device).")] = None,
    runtime: Annotated[str | None, typer.Option(
        help="Comma list of runtimes (default: torch,onnx).")] = None,
    precision: Precision = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 32,
    n_images: Annotated[int, typer.Option("--n-images", min=1, help="Images per pass.")] = 128,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes per stage.")] = 3,
    workers: Annotated[int | None, typer.Option(help="Decode workers.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON here.")] = None,
) -> None:
    """Throughput per device and runtime: decode, model, end-to-end and the naive baseline."""
    from fakescan.bench import bench

    res = bench(model, images, device.split(",") if device else None,
                runtime.split(",") if runtime else None, precision, batch_size, n_images,
                repeats, workers, log=lambda s: err.print(s, highlight=False))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    t = Table(title=f"fakescan bench: {res['config']['model']} on {m['cpu']} ({m['cores']} "
                    f"cores{', ' + ', '.join(m['gpus']) if m['gpus'] else ''})")
    for col in ("device", "runtime", "precision", "decoder", "stage", "img/s (median)",
                "min-max", "x naive", "x min(decode,model)"):
        t.add_column(col, justify="right" if "img" in col or col.startswith(("x", "min")) else
                     "left")
    for r in res["results"]:
        t.add_row(r["device"], r["runtime"], r["precision"], r["decoder"], r["stage"],
                  f"{r['images_per_s_median']:.1f}",
                  f"{r['images_per_s_min']:.1f}-{r['images_per_s_max']:.1f}",
                  f"{r.get('ratio_vs_naive', 0):.2f}" if r.get("ratio_vs_naive") else "-",
                  f"{r['ratio_vs_min_stage']:.2f}" if "ratio_vs_min_stage" in r else "-")
    out.print(t)
    if json_path:
        out.print(f"wrote {json_path}", highlight=False)


# ----------------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where everything lands.")] = Path(
        "demo-out"),
    n: Annotated[int, typer.Option("--n", min=100, help="Synthetic images.")] = 2000,
    epochs: Annotated[int, typer.Option(min=1, help="simplecnn epochs (max).")] = 6,
) -> None:
    """The embedded default: synth -> train -> eval -> export -> scan (torch, onnx) -> bench."""
    from fakescan.demo import run_demo

    r = run_demo(out_dir, n=n, epochs=epochs, log=lambda s: err.print(s, highlight=False),
                 console=err)
    t = Table(title=f"fakescan demo: done in {r['seconds']:.0f} s", show_header=False)
    t.add_column("what")
    t.add_column("where / figure")
    e = r["eval"]
    t.add_row("test accuracy / ROC-AUC", f"{e['accuracy']:.4f} / {e['roc_auc']:.4f} "
              f"(threshold {e['threshold']:.3f})")
    for rt, s in r["scan"].items():
        t.add_row(f"scan ({rt})", f"{s['out']}: {s['scanned']} rows, {s['fake']} fake, "
                  f"{s['errors']} errors, {s['images_per_s']:.0f} img/s")
    for k, v in r["where"].items():
        t.add_row(k, "\n".join(v) if isinstance(v, list) else str(v))
    out.print(t)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.4f}"


def main() -> None:
    """Console-script entry point: the one place domain errors become exit codes."""
    try:
        app()
    except FakescanError as e:
        err.print(f"fakescan: error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("fakescan: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
