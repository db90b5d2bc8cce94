"""The Typer application, its consoles and the option types several commands share.

Help renders exactly as written (no rich markup: ``fakescan[ray]`` stays whole); every
closed choice is a ``fakescan.choices`` enum, shown as ``[a|b|c]`` and checked at parse time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument

from fakescan.choices import Precision, metavar


def _argument_type(self, ctx) -> str | None:
    """An argument whose metavar says what it takes shows just that (no ``<list[str]>``)."""
    return None if self.metavar else TyperArgument.display_type(self, ctx)


TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]

app = typer.Typer(
    name="fakescan",
    help="Find AI-generated face images: train classifiers, export them, scan collections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Dataset tools: synth, stats, dedup, split.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)

Ratios = Annotated[tuple[float, float, float], typer.Option(
    "--ratios", metavar="TRAIN VALID TEST",
    help="Split ratios for datasets without splits.")]
Groups = Annotated[Path | None, typer.Option(
    "--groups", metavar="FILE", help="CSV that keeps related files in one split: path,group "
    "rows, or pairs of paths (a fake and the real it was made from) [default: a groups.csv "
    "or pairs.csv in the dataset folder].")]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the split or generator.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[Precision, typer.Option(
    "--precision", metavar=metavar(Precision),
    help="auto: fp16 on CUDA, bf16 on CPUs with AVX512-BF16/AMX, else fp32.")]
ModelArg = Annotated[str, typer.Argument(
    metavar="[MODEL]", help="A model name in models/ or a model folder [default: the shipped "
    "default detector].")]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def rel(path: str, root: Path) -> str:
    base = root if root.is_dir() else root.parent
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path
