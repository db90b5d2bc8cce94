"""``fakescan models`` and ``fakescan data synth|stats|dedup|split``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import fakescan.cli.render as render
from fakescan.cli.app import Groups, JsonFlag, Ratios, Seed, app, data_app, err, out, print_json
from fakescan.config import DEFAULT_RATIOS


@app.command("models")
def models_cmd(json_out: JsonFlag = False) -> None:
    """List registered architectures: input size, total and trainable parameters, source."""
    from fakescan.nets import describe_archs

    rows = describe_archs()
    if json_out:
        print_json([r.to_dict() for r in rows])
        return
    out.print(render.architectures(rows))


@data_app.command("synth")
def data_synth(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder (split layout).")],
    n: Annotated[int, typer.Option("--n", min=2, metavar="N", help="Number of images.")] = 400,
    seed: Seed = 0,
    min_size: Annotated[int, typer.Option(min=16, metavar="PX",
                                          help="Smallest image side.")] = 128,
    max_size: Annotated[int, typer.Option(min=16, metavar="PX",
                                          help="Largest image side.")] = 1024,
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


DataArg = Annotated[Path, typer.Argument(metavar="DATA", help="Dataset folder or CSV manifest.")]


@data_app.command("stats")
def data_stats(data: DataArg, ratios: Ratios = DEFAULT_RATIOS, seed: Seed = 0,
               groups: Groups = None, json_out: JsonFlag = False) -> None:
    """Per-split, per-class counts and percentages."""
    from fakescan.data import load_dataset
    from fakescan.data.split import check_ratios
    from fakescan.data.stats import dataset_stats

    st = dataset_stats(load_dataset(data, ratios=check_ratios(ratios), seed=seed,
                                    groups=groups))
    if json_out:
        print_json(st.to_dict())
        return
    out.print(render.data_stats(st))


@data_app.command("dedup")
def data_dedup(
    data: DataArg,
    max_distance: Annotated[int, typer.Option(
        min=0, max=32, metavar="D", help="Largest pHash Hamming distance of a near "
        "duplicate.")] = 4,
    move_to: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Move all but one file of each group here.")] = None,
    ratios: Ratios = DEFAULT_RATIOS,
    seed: Seed = 0,
    groups: Groups = None,
    json_out: JsonFlag = False,
) -> None:
    """Find exact and perceptual duplicates, within and across splits (leakage)."""
    from fakescan.data import load_dataset
    from fakescan.data.dedup import find_duplicates, move_duplicates
    from fakescan.data.split import check_ratios

    ds = load_dataset(data, ratios=check_ratios(ratios), seed=seed, groups=groups)
    with err.status(f"hashing {len(ds.samples())} images ..."):
        report = find_duplicates(ds, max_distance=max_distance)
    if move_to is not None:
        report.moved = move_duplicates(report, ds.root, move_to)
    if json_out:
        print_json(report.to_dict())
        return
    s = report.summary
    if report.groups:
        out.print(render.duplicates(report, ds.root, max_distance))
    out.print(
        f"{report.images:,} images: {s.exact_groups} exact and {s.near_groups} near "
        f"duplicate groups ({s.duplicate_files} redundant files); "
        f"{s.leaking_groups} groups cross splits (leakage); {s.unreadable} unreadable."
    )
    if report.moved is not None:
        out.print(f"moved {len(report.moved)} files to {move_to}")


@data_app.command("split")
def data_split(
    data: DataArg,
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder (split layout).")],
    ratios: Ratios = DEFAULT_RATIOS,
    seed: Seed = 0,
    groups: Groups = None,
    copy: Annotated[bool, typer.Option("--copy", help="Copy files instead of hard-linking.")
                    ] = False,
) -> None:
    """Write a stratified, reproducible train/valid/test split as folders (files of one
    group together)."""
    from fakescan.data import load_dataset
    from fakescan.data.split import check_ratios, write_split

    ds = load_dataset(data, ratios=check_ratios(ratios), seed=seed, groups=groups)
    counts = write_split(ds, out_dir, link=not copy)
    out.print(f"wrote {sum(counts.values()):,} files to {out_dir}: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f" ({ds.split_note})")
