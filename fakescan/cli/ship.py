"""``fakescan export``, ``fakescan bench`` and ``fakescan demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import fakescan.cli.render as render
from fakescan.choices import Precision
from fakescan.cli.app import JsonFlag, ModelArg, PrecisionOpt, app, err, out, print_json
from fakescan.config import DEFAULT_BATCH


@app.command("export")
def export_cmd(
    model: ModelArg = "",
    onnx: Annotated[bool, typer.Option(
        "--onnx", help="Export to ONNX (the format there is; the flag may be left out).")
    ] = True,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights.")] = False,
    int8: Annotated[bool, typer.Option(
        "--int8", help="int8 for CPUs (static quantization calibrated on the model's training "
        "images), kept only if its verdicts agree with fp32 on >= 99.5% of every labelled "
        "source and ROC-AUC moves <= 0.005.")] = False,
    parity_data: Annotated[list[Path] | None, typer.Option(
        "--parity-data", metavar="DATA", help="--int8: labelled data for calibration and the "
        "parity check (repeatable) [default: the sources the model card names].")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="Output file [default: MODEL/model.onnx (model_fp16, "
        "model_int8), or the user cache / NAME.onnx here for a read-only model].")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Export a model to ONNX with its preprocessing metadata, and check parity with torch
    (--int8: with the fp32 model, on every labelled source)."""
    from fakescan.errors import ModelError, UsageError
    from fakescan.export import export_onnx

    if int8 and fp16:
        raise UsageError("choose one of --fp16 and --int8")
    if int8:
        from fakescan.quantize import build_int8

        path, par = build_int8(model or None, out_path, parity_data=parity_data,
                               log=lambda s: err.print(s, highlight=False))
        if json_out:
            print_json({"path": str(path), "precision": "int8",
                        "bytes": path.stat().st_size, "parity": par.to_dict()})
            return
        out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, int8, first "
                  f"{par.float_convs} convolutions in float)", highlight=False)
        out.print(render.int8_parity(par))
        return
    r = export_onnx(model or None, out_path, fp16=fp16)
    p = r.parity
    assert p is not None  # asked for
    if json_out:
        print_json(r.to_dict())
    else:
        out.print(f"wrote {r.path} ({r.bytes / 1e6:.1f} MB, opset {r.opset}, {r.precision})",
                  highlight=False)
        out.print(f"parity vs torch on {p.images} decoded images: max |delta p_fake| "
                  f"{p.max_abs_delta_p_fake:.2e} (tolerance {p.tolerance:.0e}), verdict "
                  f"agreement {p.verdict_agreement:.3f}", highlight=False)
    if not p.ok:
        raise ModelError(f"ONNX parity check failed: {p}")


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Option(
        "--model", "-m", metavar="MODEL", help="Model name, folder, .onnx, or an architecture "
        "name (random weights) [default: the shipped default detector].")] = "",
    images: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Folder of images to time [default: generated 256-600 px JPEG "
        "faces].")] = None,
    device: Annotated[str | None, typer.Option(
        metavar="DEVICES", help="Comma list of devices [default: cpu and every CUDA device]."
    )] = None,
    runtime: Annotated[str | None, typer.Option(
        metavar="RUNTIMES", help="Comma list of runtimes, each RUNTIME or RUNTIME:PRECISION "
        "(onnx:int8) [default: torch, onnx, and onnx:int8 on a CPU where the model has an "
        "int8 file].")] = None,
    precision: PrecisionOpt = Precision.auto,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N")
                          ] = DEFAULT_BATCH,
    n_images: Annotated[int, typer.Option("--n-images", min=1, metavar="N",
                                          help="Images per pass.")] = 128,
    repeats: Annotated[int, typer.Option(min=1, metavar="N", help="Timed passes per stage.")
                       ] = 3,
    workers: Annotated[int | None, typer.Option(metavar="N", help="Decode workers.")] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", help="Write the JSON here.")] = None,
) -> None:
    """Throughput per device and runtime: decode, model, end-to-end and the naive baseline."""
    from fakescan.bench import bench

    res = bench(model, images, device.split(",") if device else None,
                runtime.split(",") if runtime else None, str(precision), batch_size, n_images,
                repeats, workers, log=lambda s: err.print(s, highlight=False))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    out.print(render.bench(res))
    if json_path:
        out.print(f"wrote {json_path}", highlight=False)


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR",
                                          help="Where everything lands.")] = Path("demo-out"),
    n: Annotated[int, typer.Option("--n", min=100, metavar="N", help="Synthetic images.")
                 ] = 2000,
    epochs: Annotated[int, typer.Option(min=1, metavar="N", help="simplecnn epochs (max).")
                      ] = 6,
) -> None:
    """The embedded default: synth -> train -> eval -> export -> scan (torch, onnx) -> bench."""
    from fakescan.demo import run_demo

    r = run_demo(out_dir, n=n, epochs=epochs, log=lambda s: err.print(s, highlight=False),
                 console=err)
    out.print(render.demo(r))


@app.command("report")
def report_cmd(
    verdicts: Annotated[Path, typer.Argument(
        metavar="VERDICTS", help="A scan's output: CSV, JSONL or JSON.")],
    out_path: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="The HTML page [default: VERDICTS with .html].")] = None,
    top: Annotated[int, typer.Option(
        min=0, metavar="N", help="Thumbnails of the N most suspicious flagged images.")] = 200,
    evidence: Annotated[bool, typer.Option(
        "--evidence", help="Add a Grad-CAM overlay to each thumbnail: which regions drove the "
        "score (needs the model folder).")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="For --evidence: the model that scanned "
        "[default: the one the rows name, from models/].")] = None,
    json_out: JsonFlag = False,
) -> None:
    """A self-contained HTML review page of a scan: summary, histogram, flagged thumbnails,
    errors by code, model and settings."""
    from fakescan.report import write_report

    r = write_report(verdicts, out_path, top=top, evidence=evidence, model=model)
    if json_out:
        print_json(r.to_dict())
        return
    out.print(f"wrote {r.path} ({r.bytes / 1e6:.1f} MB): {r.rows:,} rows, "
              f"{r.fake:,} flagged, {r.thumbnails:,} thumbnails, {r.errors:,} errors",
              highlight=False)
