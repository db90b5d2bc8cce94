"""``fakescan eval``: test metrics, cross-source figures, error analysis, optional calibration.

The model is judged at the threshold its card holds (calibrated on its training sources'
validation split when it was trained) unless ``calibrate`` asks for a new one from the
evaluated data's validation split - never from test, never from an OOD set - which is then
written into the card, where ``scan`` reads it. Evaluating changes nothing else about a model.

Each ``--ood`` dataset gets a row (accuracy, ROC-AUC, real faces called fake, fakes detected,
TPR at 5% FPR); one-class folders report what applies; a class the model does not know
(``edited``, say, for a real/fake model) counts as fake. The worst value of each column is
the "worst" row: what the model does on the hardest source it was shown.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.card import json_safe
from fakescan.config import DEFAULT_RATIOS
from fakescan.data.kinds import fake_kind, source_kinds
from fakescan.data.layouts import Sample, load_sources, source_name
from fakescan.device import pick_device, pick_dtype
from fakescan.errors import DataError, UsageError
from fakescan.store import load_model
from fakescan.train import plots
from fakescan.train.data import ImageSamples, make_loader
from fakescan.train.fit import predict_probs
from fakescan.train.metrics import (
    TPR_KEY,
    KindRow,
    calibrate_threshold,
    calibration_label,
    classification_report,
    kind_rows,
    per_kind,
    per_source,
    roc_curve,
    validation_record,
)

CROSS_SOURCE_KEYS = ("n", "accuracy", "roc_auc", "real_called_fake", "fakes_detected", TPR_KEY)
WORST = {"accuracy": min, "roc_auc": min, "real_called_fake": max, "fakes_detected": min,
         TPR_KEY: min}


def _typed(cls, row: dict[str, Any], **given: Any):
    """``cls`` (a row dataclass) from a report row: each field from the key of its name, the
    one key that is no identifier from ``TPR_KEY``; ``given`` fields as they are."""
    return cls(**{f.name: given[f.name] if f.name in given else
                  row.get(TPR_KEY if f.name == "tpr_at_fpr_05" else f.name)
                  for f in fields(cls)})


@dataclass(frozen=True)
class Figures:
    """The headline figures of one classification report (positive class: fake)."""

    n: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    average_precision: float | None
    real_called_fake: float | None
    fake_called_real: float | None
    tpr_at_fpr_05: float | None  # TPR_KEY in the JSON

    @classmethod
    def of(cls, rep: dict[str, Any]) -> Figures:
        return _typed(cls, rep)


@dataclass(frozen=True)
class SourceRow:
    """One dataset from another source (or the worst of them, column by column)."""

    name: str
    n: int
    accuracy: float | None
    roc_auc: float | None
    real_called_fake: float | None
    fakes_detected: float | None
    tpr_at_fpr_05: float | None

    @classmethod
    def of(cls, name: str, row: dict[str, Any]) -> SourceRow:
        return _typed(cls, row, name=name)


@dataclass(frozen=True)
class SweepRow:
    """The figures under one perturbation of the decoded images."""

    perturbation: str
    accuracy: float | None
    roc_auc: float | None
    tpr_at_fpr_05: float | None
    real_called_fake: float | None
    by_kind: dict[str, Any] | None = None  # ``per_kind`` (the evaluated split only)

    @property
    def kinds(self) -> list[KindRow]:
        return kind_rows(self.by_kind or {})


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` measured: ``to_dict()`` is ``metrics.json`` (and ``--json``); the
    properties are the typed rows a reader shows."""

    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.metrics

    model = property(lambda self: self.metrics["model"])
    split = property(lambda self: self.metrics["split"])
    threshold = property(lambda self: self.metrics["threshold"])
    threshold_calibrated_on = property(lambda self: self.metrics["threshold_calibrated_on"])
    calibrated_now = property(lambda self: self.metrics["calibrated_now"])
    written_to = property(lambda self: self.metrics["written_to"])

    @property
    def datasets(self) -> list[str]:
        return self.metrics["dataset"].split(", ")

    @property
    def figures(self) -> Figures:
        return Figures.of(self.metrics["details"])

    @property
    def by_kind(self) -> list[KindRow]:
        return kind_rows(self.metrics.get("by_kind") or {})

    @property
    def ood_by_kind(self) -> list[KindRow]:
        return kind_rows(self.metrics.get("ood_by_kind") or {})

    @property
    def other_sources(self) -> list[SourceRow]:
        """Each ``--ood`` dataset, then ``worst`` (empty without any)."""
        rows = self.metrics.get("cross_source") or {}
        return [SourceRow.of(k, r) for k, r in rows.items()] + (
            [SourceRow.of("worst", self.metrics["ood_worst"])] if rows else [])

    @property
    def robustness(self) -> dict[str, list[SweepRow]]:
        return {name: [_typed(SweepRow, r) for r in rows]
                for name, rows in (self.metrics.get("robustness") or {}).items()}


def score_samples(lm, samples, device, dtype, batch_size, workers, perturb=None):
    """``lm``'s class probabilities for ``samples``, their targets and the mean loss."""
    ds = ImageSamples(samples, tuple(lm.card.labels), lm.card.preprocess, perturb=perturb)
    loader = make_loader(ds, batch_size, shuffle=False, seed=0, workers=workers, pin=False)
    probs, targets, loss = predict_probs(lm.model, loader, device, dtype, lm.card.preprocess)
    return probs, targets, loss


def known_samples(samples: list[Sample], labels: list[str], strict: bool) -> list[Sample]:
    """``samples`` with labels the model knows; an unknown non-real class counts as fake
    (``strict``: refuse it instead)."""
    unknown = sorted({s.label for s in samples} - set(labels))
    if unknown and (strict or "fake" not in labels or "real" in unknown):
        raise DataError(f"the data has classes {unknown} that the model does not know "
                        f"{tuple(labels)}")
    return [s if s.label in labels else Sample(s.path, "fake", s.source) for s in samples]


def _writable_out(folder: Path, out: Path | None, name: str) -> Path:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out
    from fakescan.store import DEFAULT_MODEL_DIR

    # the shipped default is package data: never written into, even where it could be (an
    # editable install); a read-only model likewise
    if os.access(folder, os.W_OK) and folder.resolve() != DEFAULT_MODEL_DIR.resolve():
        return folder
    fallback = Path("fakescan-eval") / name
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def cross_source_row(rep: dict[str, Any]) -> dict[str, Any]:
    """The figures that say how a model holds on one dataset."""
    fd = rep.get("fake_called_real")
    row = {k: rep.get(k) for k in CROSS_SOURCE_KEYS if k != "fakes_detected"}
    row["fakes_detected"] = None if fd is None or _nan(fd) else 1.0 - fd
    return {k: (None if isinstance(v, float) and _nan(v) else v) for k, v in row.items()}


def worst_row(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": sum(r["n"] for r in rows.values())}
    for k, pick in WORST.items():
        vals = [r[k] for r in rows.values() if r.get(k) is not None]
        out[k] = pick(vals) if vals else None
    return out


def evaluate(
    model_ref: str | Path,
    data: Path | list[Path] | None = None,
    *,
    split: str = "test",
    ood: list[Path] | tuple[Path, ...] | Path | None = None,
    ratios: tuple[float, float, float] | None = None,
    seed: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 64,
    workers: int = 2,
    robustness: bool = False,
    max_fpr: float | None = None,
    calibrate: bool = False,
    out: Path | None = None,
    groups: Path | None = None,
) -> Evaluation:
    """Evaluate a model; writes ``metrics.json`` and figures (into the model folder, or
    ``out``) and returns what it measured.

    Args:
        data: dataset(s) whose ``split`` is evaluated; default: the sources the model was
            trained on (their test split, as the card recorded them).
        ood: datasets from other sources, each evaluated whole.
        calibrate: recalibrate the threshold on ``data``'s validation split (Youden's J, or
            with ``max_fpr`` - default the recipe's - the most sensitive threshold that calls
            at most that share of each source's reals fake) and write it into the card.
        groups: a groups file for ``data``'s split [default: the one the model trained with].
    """
    lm = load_model(model_ref)
    card = lm.card
    datas, ds = _evaluated_data(card, data, split, ratios, seed, groups)
    oods = [] if ood is None else (list(ood) if isinstance(ood, list | tuple) else [ood])
    dev = pick_device(device)
    # on a CPU, fp32 unless asked: bf16 there moves scores enough to turn verdicts near the
    # threshold (scans guard against it), and eval's figures must be the verdicts a scan gives
    dtype = None if precision == "auto" and dev.type == "cpu" else pick_dtype(dev, precision)
    lm.model.to(dev)
    dest = _writable_out(lm.folder, out, card.name)

    def score(samples, perturb=None):
        return score_samples(lm, samples, dev, dtype, batch_size, workers, perturb=perturb)

    threshold, calibrated_on, valid_report = card.threshold, card.threshold_calibrated_on, None
    record = None
    if calibrate or max_fpr is not None:  # on valid; with --split valid, the split reported
        if "valid" not in ds.splits:
            raise UsageError(f"{', '.join(map(str, datas))} has no 'valid' split to calibrate "
                             "on")
        threshold, calibrated_on, valid_report, record = _recalibrate(
            card, score, ds.splits["valid"], max_fpr, datas, source_kinds(ds))

    samples = known_samples(ds.splits[split], card.labels, strict=True)
    probs, targets, loss = score(samples)
    report = classification_report(probs, targets, card, threshold)
    report["loss"] = loss
    y, pf = (targets != card.negative_index).astype(int), card.p_fake(probs)
    groups_ = np.array([s.source for s in samples])
    if len(set(groups_.tolist())) > 1:
        report["by_source"] = per_source(y, pf, groups_, threshold)
    report["by_kind"] = per_kind(y, pf, groups_, source_kinds(ds), threshold)
    curves = {split: _curve(card, probs, targets, report["roc_auc"])}
    _error_analysis(card, samples, probs, targets, threshold, split, dest)
    plots.confusion(report["confusion_matrix"], card.labels, dest / "confusion.png",
                    f"{card.name} on {split} (threshold {threshold:.3f})")

    metrics: dict[str, Any] = {
        **{k: report[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc",
                                  "average_precision", "threshold", "confusion_matrix",
                                  "by_kind")},
        "model": card.name,
        "dataset": ", ".join(str(d) for d in datas),
        "split": split,
        "threshold_calibrated_on": calibrated_on,
        "calibrated_now": valid_report is not None,
        "details": report,
    }
    if valid_report is not None:
        metrics["valid"] = valid_report
    ood_samples = _other_sources(card, score, oods, threshold, dest, curves, metrics)
    plots.roc(curves, dest / "roc.png", f"{card.name}: ROC (positive class: fake)")
    if robustness:
        sets = {split: (samples, report), **{f"OOD {k}": (v, metrics["ood"][k])
                                             for k, v in ood_samples.items()}}
        metrics["robustness"] = _robustness(card, score, sets, threshold, dest,
                                            source_kinds(ds), split)
    metrics["written_to"] = str(dest)
    metrics = json_safe(metrics)
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    if valid_report is not None:  # asked for: the new threshold is what scans will use
        # and the validation figures the card keeps, now at that threshold
        card.replace(threshold=threshold, threshold_calibrated_on=calibrated_on,
                     metrics={**card.metrics, "valid": record}).save(lm.folder)
    return Evaluation(metrics)


def split_as_trained(card, data=None, *, ratios=None, seed=None, groups=None):
    """``(datasets, Dataset)``: ``data`` (default: the card's training sources) split as the
    model's training split them: same ratios, seed, kept classes and groups unless told
    otherwise."""
    card_data = card.data
    if data is None:
        data = [Path(s["path"]) for s in card_data.get("sources", [])] or (
            [Path(card_data["path"])] if card_data.get("path") else [])
        if not data:
            raise UsageError("the model's card names no training data: name the data to evaluate")
    datas = list(data) if isinstance(data, list | tuple) else [Path(data)]
    ratios = ratios or tuple(card_data.get("ratios", DEFAULT_RATIOS))  # the training split
    seed = card_data.get("seed", 0) if seed is None else seed
    kept = tuple(card_data["classes_kept"]) if card_data.get("classes_kept") else None
    if groups is None and card_data.get("groups"):
        groups = Path(card_data["groups"])
    return datas, load_sources(datas, ratios=ratios, seed=seed, classes=kept, min_classes=1,
                               groups=groups)


def _evaluated_data(card, data, split: str, ratios, seed, groups):
    """The datasets to evaluate, split as trained; ``split`` must be one of their splits."""
    datas, ds = split_as_trained(card, data, ratios=ratios, seed=seed, groups=groups)
    if split not in ds.splits:
        raise UsageError(f"{', '.join(map(str, datas))} has no '{split}' split (it has: "
                         f"{', '.join(ds.splits)})")
    return datas, ds


def _recalibrate(card, score, valid: list[Sample], max_fpr: float | None, datas: list[Path],
                 kind_of: dict[str, str]):
    """A new threshold from the validation split: (threshold, how it was chosen, the
    validation report at it, the card's validation record at it)."""
    neg = card.negative_index
    vs = known_samples(valid, card.labels, strict=True)
    vp, vt, loss = score(vs)
    if max_fpr is None:
        max_fpr = card.recipe.get("max_fpr")
    groups = np.array([s.source for s in vs])
    n_src = len(set(groups.tolist()))
    if max_fpr is None and len(set((vt != neg).tolist())) < 2:
        raise UsageError("the validation split holds one class: a threshold from reals "
                         "alone needs a false-alarm bound (max_fpr)")
    threshold = calibrate_threshold((vt != neg).astype(int), card.p_fake(vp), max_fpr,
                                    groups if n_src > 1 else None)
    calibrated_on = calibration_label(max_fpr, n_src) + f" of {source_name(datas[0])}" + (
        f" and {len(datas) - 1} more" if len(datas) > 1 else "")
    return (threshold, calibrated_on, classification_report(vp, vt, card, threshold),
            validation_record(vp, vt, card, groups, kind_of, threshold, loss))


def _error_analysis(card, samples, probs, targets, threshold: float, split: str,
                    dest: Path) -> None:
    """The misclassified images, most confident mistakes first: a CSV and a thumbnail grid."""
    labels = card.labels
    pred = card.verdict(probs, threshold)
    wrong = [
        {"path": str(s.path), "true": labels[t], "pred": labels[p], "p_fake": float(f)}
        for s, t, p, f in zip(samples, targets, pred, card.p_fake(probs), strict=True)
        if t != p
    ]
    wrong.sort(key=lambda r: -abs(r["p_fake"] - threshold))
    with open(dest / "misclassified.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "true", "pred", "p_fake"])
        w.writeheader()
        w.writerows(wrong)
    title = f"{card.name}: misclassified on {split} ({len(wrong)} of {len(samples)})"
    plots.misclassified_grid(wrong, dest / "misclassified.png", title,
                             preprocess=card.preprocess)


def _other_sources(card, score, oods: list[Path], threshold: float, dest: Path,
                   curves: dict, metrics: dict[str, Any]) -> dict[str, list[Sample]]:
    """Each ``--ood`` dataset whole, at ``threshold``: its report, its cross-source row, the
    worst row and the pooled figures by kind go into ``metrics``; returns their samples."""
    ood_samples: dict[str, list[Sample]] = {}
    if not oods:
        return ood_samples
    neg = card.negative_index
    metrics["ood"], rows = {}, {}
    pooled: list[tuple[np.ndarray, np.ndarray, str]] = []
    for path in oods:
        name = source_name(path)
        while name in ood_samples:
            name += "'"
        ods = load_sources([path], ratios=None, min_classes=1)
        smp = known_samples(ods.samples(), card.labels, strict=False)
        op, ot, oloss = score(smp)
        orep = classification_report(op, ot, card, threshold)
        orep.update(loss=oloss, dataset=str(ods.root), kind=fake_kind(path))
        pooled.append(((ot != neg).astype(int), card.p_fake(op), name))
        metrics["ood"][name] = orep
        rows[name] = cross_source_row(orep)
        ood_samples[name] = smp
        if not _nan(orep["roc_auc"]):
            curves[f"OOD {name}"] = _curve(card, op, ot, orep["roc_auc"])
        plots.confusion(orep["confusion_matrix"], card.labels,
                        dest / f"confusion_ood_{name}.png", f"{card.name} on OOD {name}")
    metrics["cross_source"] = rows
    metrics["ood_worst"] = worst_row(rows)
    metrics["ood_by_kind"] = per_kind(
        np.concatenate([y for y, _, _ in pooled]), np.concatenate([f for _, f, _ in pooled]),
        np.concatenate([np.full(len(y), n) for y, _, n in pooled]),
        {n: metrics["ood"][n]["kind"] for _, _, n in pooled}, threshold)
    return ood_samples


def _robustness(card, score, sets: dict[str, tuple[list[Sample], dict[str, Any]]],
                threshold: float, dest: Path, kind_of: dict[str, str],
                split: str) -> dict[str, list[dict[str, Any]]]:
    """The figures of each set under each perturbation of ``robustness.SWEEP`` (``none``:
    its report as measured), and the plot. The evaluated split's rows also hold its figures
    by kind of fake (``per_kind``): whether each kind is still found after the damage."""
    from fakescan.train.robustness import SWEEP

    sweep: dict[str, list[dict[str, Any]]] = {}
    for name, (smp, base) in sets.items():
        sources = np.array([s.source for s in smp]) if name == split else None
        rows_ = [_sweep_row("none", base, None if sources is None else base.get("by_kind"))]
        for pert in SWEEP:
            pp_, pt_, _ = score(smp, perturb=pert)
            kinds = None if sources is None else per_kind(
                (pt_ != card.negative_index).astype(int), card.p_fake(pp_), sources, kind_of,
                threshold)
            rows_.append(_sweep_row(pert.name, classification_report(pp_, pt_, card, threshold),
                                    kinds))
        sweep[name] = rows_
    plots.robustness(sweep, dest / "robustness.png",
                     f"{card.name}: robustness (threshold {threshold:.3f})")
    return sweep


def _nan(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _sweep_row(name: str, rep: dict[str, Any],
               by_kind: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {"perturbation": name, "accuracy": rep["accuracy"], "roc_auc": rep["roc_auc"],
           TPR_KEY: rep.get(TPR_KEY), "real_called_fake": rep.get("real_called_fake")}
    return row if by_kind is None else {**row, "by_kind": by_kind}


def _curve(card, probs, targets, auc):
    fpr, tpr, _ = roc_curve((targets != card.negative_index).astype(int), card.p_fake(probs))
    return fpr, tpr, auc
