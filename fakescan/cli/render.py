"""Rich tables for the commands' results, each fitting an 80-column terminal (``--json``
keeps every field)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from fakescan.cli.app import rel

if TYPE_CHECKING:
    from fakescan.data.dedup import Duplicates
    from fakescan.data.stats import DatasetStats
    from fakescan.nets import ArchInfo


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


def evaluation(m: dict[str, Any], split: str) -> list[Table]:
    how = "recalibrated now on" if m["calibrated_now"] else "from the card, calibrated on"
    names = ", ".join(Path(d).name for d in m["dataset"].split(", "))
    t = Table(title=f"{m['model']} on {split} of {names}  (threshold "
                    f"{m['threshold']:.3f}, {how} {m['threshold_calibrated_on']})")
    t.add_column("metric")
    t.add_column(split, justify="right")
    for key in ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                "real_called_fake", "fake_called_real", "tpr_at_fpr_0.05"):
        t.add_row(key, fmt(m["details"].get(key)))
    tables = [t]
    for key, where in (("by_kind", split), ("ood_by_kind", "the other sources")):
        if m.get(key):
            tables.append(by_kind(m[key], where))
    if m.get("cross_source"):
        ct = Table(title="other sources (at the same threshold)")
        ct.add_column("dataset", overflow="fold")
        for col in ("n", "acc", "AUC", "real→fake", "fakes found", "TPR@5%"):
            ct.add_column(col, justify="right")
        keys = ("n", "accuracy", "roc_auc", "real_called_fake", "fakes_detected",
                "tpr_at_fpr_0.05")
        rows = list(m["cross_source"].items()) + [("worst", m["ood_worst"])]
        for k, (name, r) in enumerate(rows):
            ct.add_row(name, *[fmt(r.get(x)) for x in keys], end_section=k == len(rows) - 2)
        tables.append(ct)
    for name, rows_ in m.get("robustness", {}).items():
        rt = Table(title=f"robustness on {name}")
        for col in ("perturbation", "accuracy", "roc_auc", "tpr_at_fpr_0.05",
                    "real_called_fake"):
            rt.add_column(col, justify="left" if col == "perturbation" else "right")
        for r in rows_:
            rt.add_row(r["perturbation"], *[fmt(r[k]) for k in ("accuracy", "roc_auc",
                                                              "tpr_at_fpr_0.05",
                                                              "real_called_fake")])
        tables.append(rt)
    return tables


def by_kind(rows: dict[str, dict[str, Any]], where: str) -> Table:
    """Fakes found per kind (GAN, diffusion, face swap, ...) and reals called fake."""
    t = Table(title=f"by kind of fake, on {where}")
    for col in ("kind", "images", "found / called fake", "ROC-AUC", "worst source"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for kind, r in rows.items():
        if kind == "real":
            continue
        t.add_row(kind, f"{r['fakes']:,}", fmt(r["fakes_detected"]), fmt(r.get("roc_auc")), "")
    if "real" in rows:
        r = rows["real"]
        t.add_row("real", f"{r['reals']:,}", fmt(r["real_called_fake"]), "",
                  fmt(r["worst_source_real_called_fake"]))
    return t


def int8_parity(par) -> Table:
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


def calibration(cal) -> Table:
    t = Table(title=f"threshold {cal.threshold_before:.4f} -> {cal.threshold:.4f}",
              caption=f"{cal.model}, max {100 * cal.max_fpr:g}% called fake per folder")
    for col, just in (("folder", "left"), ("scored", "right"), ("skipped", "right"),
                      ("needs", "right"), ("fake before", "right"), ("fake after", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in cal.folders:
        t.add_row(r.path, f"{r.scored:,}", f"{sum(r.skipped.values()):,}",
                  f"{r.threshold_needed:.4f}", f"{100 * r.called_fake_before:.1f}%",
                  f"{100 * r.called_fake_after:.1f}%")
    return t


def scan_summary(s, out_path: str, log: str | None) -> Table:
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


def bench(res: dict[str, Any]) -> Table:
    """Abbreviated headers so the table fits 80 columns; the JSON has every field."""
    m = res["machine"]
    from rich import box

    t = Table(title=f"fakescan bench: {res['config']['model']} on {m['cpu']} ({m['cores']} "
                    f"cores{', ' + ', '.join(m['gpus']) if m['gpus'] else ''})",
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
    for r in res["results"]:
        t.add_row(r["device"], r["runtime"], r["precision"],
                  short.get(r["decoder"], r["decoder"]), short.get(r["stage"], r["stage"]),
                  _rate(r["images_per_s_median"]),
                  f"±{50 * (r['images_per_s_max'] - r['images_per_s_min']) / med:.0f}%"
                  if (med := r["images_per_s_median"]) else "-",
                  f"{r['ratio_vs_naive']:.2f}" if r.get("ratio_vs_naive") else "-",
                  f"{r['ratio_vs_min_stage']:.2f}" if "ratio_vs_min_stage" in r else "-",
                  f"{r['ratio_vs_harmonic']:.2f}" if "ratio_vs_harmonic" in r else "-")
    return t


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:.1f}"


def demo(r: dict[str, Any]) -> Table:
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
    return t
