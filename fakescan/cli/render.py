"""Rich tables for the commands' results, each fitting an 80-column terminal (``--json``
keeps every field)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from fakescan.cli.app import rel

if TYPE_CHECKING:
    from fakescan.bench import BenchResult
    from fakescan.calibrate import Calibration
    from fakescan.data.dedup import Duplicates
    from fakescan.data.stats import DatasetStats
    from fakescan.demo import DemoResult
    from fakescan.nets import ArchInfo
    from fakescan.quantize import Int8Parity
    from fakescan.scanner.summary import Summary
    from fakescan.train.evaluate import Evaluation, SweepRow
    from fakescan.train.metrics import KindRow


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.4f}"


def architectures(rows: list[ArchInfo]) -> Table:
    t = Table(title="Registered architectures (2 classes)")
    for col, just in [("name", "left"), ("input", "right"), ("params", "right"),
                      ("trainable", "right"), ("source", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        name = r.name + (f" ({r.variant})" if r.variant else "")
        t.add_row(name, str(r.input_size), f"{r.params:,}", f"{r.trainable_params:,}",
                  r.source)
    return t


def data_stats(st: DatasetStats) -> Table:
    t = Table(title=f"{st.dataset}  [{st.layout}; {st.split}]")
    t.add_column("split")
    for c in st.classes:
        t.add_column(f"{c} #", justify="right")
        t.add_column(f"{c} %", justify="right")
    t.add_column("total", justify="right")
    t.add_column("% of all", justify="right")
    for r in st.rows:
        cells = [r.split.capitalize()]
        for c in st.classes:
            cells += [f"{r.counts[c]:,}", f"{r.percent[c]:.2f}"]
        cells += [f"{r.total:,}", f"{r.share:.1f}"]
        t.add_row(*cells, end_section=r is st.rows[-2])
    return t


def duplicates(report: Duplicates, root: Path, max_distance: int) -> Table:
    t = Table(title=f"Duplicate groups (pHash distance <= {max_distance})")
    for col in ("#", "kind", "dist", "splits", "leak", "files"):
        t.add_column(col)
    for k, g in enumerate(report.groups, 1):
        files = "\n".join(f"{m.split}: {rel(m.path, root)}" for m in g.members)
        t.add_row(str(k), g.kind, str(g.max_distance), ",".join(g.splits),
                  "[red]LEAK[/]" if g.leak else "", files)
    return t


def evaluation(m: Evaluation) -> list[Table]:
    how = "recalibrated now on" if m.calibrated_now else "from the card, calibrated on"
    names = ", ".join(Path(d).name for d in m.datasets)
    split = m.split
    t = Table(title=f"{m.model} on {split} of {names}  (threshold "
                    f"{m.threshold:.3f}, {how} {m.threshold_calibrated_on})")
    t.add_column("metric")
    t.add_column(split, justify="right")
    f = m.figures
    for key, v in (("n", f.n), ("accuracy", f.accuracy), ("precision", f.precision),
                   ("recall", f.recall), ("f1", f.f1), ("roc_auc", f.roc_auc),
                   ("average_precision", f.average_precision),
                   ("real_called_fake", f.real_called_fake),
                   ("fake_called_real", f.fake_called_real), ("tpr_at_fpr_0.05", f.tpr_at_fpr_05)):
        t.add_row(key, fmt(v))
    tables = [t]
    for rows, where in ((m.by_kind, split), (m.ood_by_kind, "the other sources")):
        if rows:
            tables.append(by_kind(rows, where))
    if sources := m.other_sources:
        ct = Table(title="other sources (at the same threshold)")
        ct.add_column("dataset", overflow="fold")
        for col in ("n", "acc", "AUC", "real→fake", "fakes found", "TPR@5%"):
            ct.add_column(col, justify="right")
        for k, r in enumerate(sources):
            ct.add_row(r.name, *[fmt(x) for x in (r.n, r.accuracy, r.roc_auc,
                                                   r.real_called_fake, r.fakes_detected,
                                                   r.tpr_at_fpr_05)],
                       end_section=k == len(sources) - 2)
        tables.append(ct)
    for name, sweep in m.robustness.items():
        rt = Table(title=f"robustness on {name}")
        for col in ("perturbation", "accuracy", "roc_auc", "tpr_at_fpr_0.05",
                    "real_called_fake"):
            rt.add_column(col, justify="left" if col == "perturbation" else "right")
        for r in sweep:
            rt.add_row(r.perturbation, *[fmt(x) for x in (r.accuracy, r.roc_auc,
                                                          r.tpr_at_fpr_05, r.real_called_fake)])
        tables.append(rt)
        if any(r.by_kind for r in sweep):
            tables.append(robustness_by_kind(sweep, name))
    return tables


def robustness_by_kind(sweep: list[SweepRow], where: str) -> Table:
    """Each kind of fake found (ROC-AUC) under each perturbation, and the reals called fake
    (all / the worst source)."""
    kinds = [r.kind for r in sweep[0].kinds if r.kind != "real"]
    t = Table(title=f"robustness by kind of fake, on {where} (found, ROC-AUC)")
    for col in ("perturbation", *kinds, "real→fake (worst source)"):
        t.add_column(col, justify="left" if col == "perturbation" else "right")
    for r in sweep:
        rows = {k.kind: k for k in r.kinds}
        cells = [f"{pct(rows[k].found)} ({fmt3(rows[k].roc_auc)})" if k in rows else ""
                 for k in kinds]
        real = next((k for k in r.kinds if k.kind == "real"), None)
        t.add_row(r.perturbation, *cells,
                  f"{pct(real.found)} ({pct(real.worst_source)})" if real else "")
    return t


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def fmt3(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def by_kind(rows: list[KindRow], where: str) -> Table:
    """Fakes found per kind (GAN, diffusion, face swap, ...) and reals called fake."""
    t = Table(title=f"by kind of fake, on {where}")
    for col in ("kind", "images", "found / called fake", "ROC-AUC", "worst source"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for r in rows:
        t.add_row(r.kind, f"{r.images:,}", fmt(r.found), fmt(r.roc_auc) if r.kind != "real"
                  else "", fmt(r.worst_source) if r.kind == "real" else "")
    return t


def int8_parity(par: Int8Parity) -> Table:
    """int8 against fp32, per labelled source."""
    from fakescan.quantize import MAX_AUC_DELTA, MIN_AGREEMENT

    t = Table(title=f"int8 vs fp32 (needs >= {100 * MIN_AGREEMENT:g}% same verdicts and a "
                    f"ROC-AUC change <= {MAX_AUC_DELTA:g} in every source)")
    for col in ("source", "images", "same verdict", "ROC-AUC fp32", "int8", "change"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for name, s in par.sources.items():
        t.add_row(name, f"{s.images:,}", f"{100 * s.verdict_agreement:.2f}%",
                  fmt(s.roc_auc_fp32), fmt(s.roc_auc_int8), f"{s.auc_delta:.4f}")
    return t


def calibration(cal: Calibration) -> Table:
    t = Table(title=f"threshold {cal.threshold_before:.4f} -> {cal.threshold:.4f}",
              caption=f"{cal.model}, max {100 * cal.max_fpr:g}% called fake per folder")
    for col, just in (("folder", "left"), ("scored", "right"), ("skipped", "right"),
                      ("may be fake", "right"), ("needs", "right"), ("fake before", "right"),
                      ("fake after", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in cal.folders:
        t.add_row(r.path, f"{r.scored:,}", f"{sum(r.skipped.values()):,}", f"{r.allowed:,}",
                  f"{r.threshold_needed:.4f}", f"{100 * r.called_fake_before:.1f}%",
                  f"{100 * r.called_fake_after:.1f}%")
    return t


def scan_summary(s: Summary, out_path: str, log: str | None) -> Table:
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
    if log:
        rows.append(("log", log))
    for k, v in rows:
        t.add_row(k, v)
    return t


def bench(res: BenchResult) -> Table:
    """Abbreviated headers so the table fits 80 columns; the JSON has every field."""
    m = res.machine
    from rich import box

    t = Table(title=f"fakescan bench: {res.model} on {m.cpu} ({m.cores} "
                    f"cores{', ' + ', '.join(m.gpus) if m.gpus else ''})",
              caption="img/s: median of the timed passes (spread: half the min-max range); "
                      "×naive: vs the seeds' way (PIL + torchvision + fp32 eager); ×min: end "
                      "to end vs min(decode, model); ×hb: vs 1/(1/decode + 1/model), the "
                      "bound when both share the cores",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col, just in (("device", "left"), ("runtime", "left"), ("prec", "left"),
                      ("decoder", "left"), ("stage", "left"), ("img/s", "right"),
                      ("spread", "right"), ("×naive", "right"), ("×min", "right"),
                      ("×hb", "right")):
        t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    short = {"pil+torchvision": "pil+tv", "end_to_end": "e2e"}
    for r in res.results:
        med = r.rate.median
        t.add_row(r.device, r.runtime, r.precision, short.get(r.decoder, r.decoder),
                  short.get(r.stage, r.stage), _rate(med),
                  f"±{50 * (r.rate.max - r.rate.min) / med:.0f}%" if med else "-",
                  *(f"{x:.2f}" if x else "-" for x in (r.ratio_vs_naive, r.ratio_vs_min_stage,
                                                       r.ratio_vs_harmonic)))
    return t


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:.1f}"


def demo(r: DemoResult) -> Table:
    t = Table(title=f"fakescan demo: done in {r.seconds:.0f} s", show_header=False)
    t.add_column("what")
    t.add_column("where / figure")
    t.add_row("test accuracy / ROC-AUC", f"{r.accuracy:.4f} / {r.roc_auc:.4f} "
              f"(threshold {r.threshold:.3f})")
    for rt, s in r.scans.items():
        t.add_row(f"scan ({rt})", f"{s.out}: {s.scanned} rows, {s.fake} fake, "
                  f"{s.errors} errors, {s.images_per_s:.0f} img/s")
    for k, v in r.where.items():
        t.add_row(k, "\n".join(v) if isinstance(v, list) else str(v))
    return t
