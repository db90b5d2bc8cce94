"""The ``fakescan`` command line: thin commands that parse, call the library and render.

Heavy libraries (torch, DALI, onnxruntime) are imported inside the commands that need them, so
``fakescan --help`` answers fast. ``FakescanError`` is turned into one line on stderr and exit
status 2 in exactly one place: ``main``.
"""

from __future__ import annotations

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
