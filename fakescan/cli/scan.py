"""``fakescan scan``: one verdict row per input, a progress bar, the summary, clamscan's exit
status (0 no fake, 1 fake found, 2 errors)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

import typer

import fakescan.cli.render as render
from fakescan.choices import (
    DecoderName,
    Engine,
    NoFace,
    OutputFormat,
    Precision,
    RuntimeName,
    metavar,
)
from fakescan.cli.app import PrecisionOpt, app, err, out
from fakescan.config import DECODE_TIMEOUT_S, DEFAULT_BATCH


@app.command("scan")
def scan_cmd(
    inputs: Annotated[list[str] | None, typer.Argument(
        metavar="INPUT", help="Files and folders to scan (folders recursively); '-' reads "
        "a list from stdin.")] = None,
    model: Annotated[str, typer.Option(
        "--model", "-m", metavar="MODEL", help="Model name in models/, a model folder, or an "
        "exported .onnx file [default: the shipped default detector].")] = "",
    out_path: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="FILE", help="Output file (default fakescan-scan.FORMAT); '-' "
        "is stdout.")] = None,
    fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", metavar=metavar(OutputFormat),
        help="Default: from --out's suffix, else csv.")] = None,
    files_from: Annotated[str | None, typer.Option(
        "--files-from", metavar="FILE", help="Read paths from FILE ('-' for stdin), one per "
        "line.")] = None,
    null: Annotated[bool, typer.Option("-0", "--null", help="Lists are NUL-separated.")] = False,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="GLOB", help="Skip names or paths matching this glob "
        "(repeatable).")] = None,
    follow_symlinks: Annotated[bool, typer.Option(
        "--follow-symlinks", help="Follow symlinks inside folders (loops are guarded).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Complete an existing output: skip inputs with a row.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing output file.")] = False,
    decoder: Annotated[DecoderName, typer.Option(
        metavar=metavar(DecoderName), help="auto: DALI on CUDA devices, Pillow workers on "
        "CPUs.")] = DecoderName.auto,
    runtime: Annotated[RuntimeName, typer.Option(
        metavar=metavar(RuntimeName), help="auto: the fastest here (measured once, cached).")
    ] = RuntimeName.auto,
    device: Annotated[str, typer.Option(
        "--device", metavar="DEVICE", help="auto, cpu, cuda:N, all, or a comma list such as "
        "cuda:0,cuda:1.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N")
                          ] = DEFAULT_BATCH,
    precision: PrecisionOpt = Precision.auto,
    threshold: Annotated[float | None, typer.Option(
        metavar="T", help="Decision threshold on p_fake [default: the model's calibrated "
        "one].")] = None,
    workers: Annotated[int | None, typer.Option(
        metavar="N", help="Decode worker processes [default: one per core].")] = None,
    no_reduce: Annotated[bool, typer.Option(
        "--no-reduce", help="Decode JPEGs at full size (no reduce-on-decode).")] = False,
    no_dali_guard: Annotated[bool, typer.Option(
        "--no-dali-guard", help="DALI: keep its scores near the threshold as they are (by "
        "default those files are decoded again by Pillow, so verdicts are --decoder pil's)."
    )] = False,
    max_pixels: Annotated[int | None, typer.Option(
        metavar="N", help="Refuse images with more pixels (decompression bombs).")] = None,
    timeout: Annotated[float, typer.Option(
        min=0.0, metavar="SECONDS", help="Seconds one file may take to read and decode before "
        "it gets a 'timeout' row (0: no limit).")] = DECODE_TIMEOUT_S,
    per_face: Annotated[bool, typer.Option(
        "--per-face", help="Face models: one row per face (its box and verdict) instead of "
        "one per file.")] = False,
    when_no_face: Annotated[NoFace, typer.Option(
        "--when-no-face", metavar=metavar(NoFace), help="Face models, where no face is "
        "found: row (a row with status no_face) or whole (judge the whole image)."
    )] = NoFace.row,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show library warnings on the terminal (by default they go "
        "to the rows' warning field, or to a .log file beside the output).")] = False,
    engine: Annotated[Engine, typer.Option(
        metavar=metavar(Engine), help="ray: run the scan core inside Ray Data (pip install "
        "'fakescan[ray]').")] = Engine.local,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", envvar="RAY_ADDRESS", show_envvar=False, metavar="ADDRESS",
        help="Ray cluster address, HOST:PORT as `ray start --head` printed it, or "
        "ray://HOST:10001 [default: RAY_ADDRESS, else a local Ray].")] = None,
    ray_actors: Annotated[int | None, typer.Option(
        metavar="N", help="Scan actors [default: one per GPU, or per CPU without "
        "--gpus-per-actor].")] = None,
    gpus_per_actor: Annotated[float, typer.Option(
        metavar="G", help="GPUs per Ray actor (0: CPU).")] = 0.0,
) -> None:
    """Scan images: one verdict row per input. Exit 0 no fake, 1 fake found, 2 errors."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fakescan.errors import UsageError
    from fakescan.scanner.driver import run_scan
    from fakescan.scanner.guard import Quieted, quiet_process
    from fakescan.scanner.inputs import iter_inputs
    from fakescan.scanner.options import ScanOptions
    from fakescan.scanner.output import format_for

    if not inputs and files_from is None:
        raise UsageError("nothing to scan: give files or folders, '-' or --files-from")
    if engine == Engine.ray and "ray" not in sys.modules:  # Ray reads it when imported
        from fakescan.scanner.ray_engine import auth_mode

        if mode := auth_mode(os.environ):
            os.environ["RAY_AUTH_MODE"] = mode
    fmt_name = format_for(out_path or "", str(fmt) if fmt else None)
    out_path = out_path or f"fakescan-scan.{fmt_name}"
    opts = ScanOptions(model=model or None, decoder=decoder, runtime=runtime,
                       device=device, precision=precision, batch_size=batch_size,
                       threshold=threshold, workers=workers, reduce=not no_reduce,
                       dali_guard=not no_dali_guard,
                       max_pixels=max_pixels, timeout=timeout or None, per_face=per_face,
                       face_fallback=when_no_face == NoFace.whole, engine=engine,
                       ray_address=ray_address, ray_actors=ray_actors,
                       gpus_per_actor=gpus_per_actor)
    paths = iter_inputs(inputs or [], files_from=files_from, null_sep=null,
                        exclude=tuple(exclude or ()), follow_symlinks=follow_symlinks)
    report = err if out_path == "-" else out
    show = not quiet and err.is_terminal
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
        with contextlib.nullcontext(Quieted()) if verbose else quiet_process(
                log_path) as noise:
            s = run_scan(paths, opts, out=out_path, fmt=fmt_name, resume=resume,
                         overwrite=overwrite, on_rows=on_rows)
    report.print(render.scan_summary(s, out_path, noise.log))
    raise typer.Exit(s.exit_code)
