"""``fakescan eval``: test metrics, validation-calibrated threshold, OOD figures, error analysis.

The threshold is calibrated on the validation split of the evaluated dataset (never on test,
never on the OOD set) and saved into the model card, where ``scan`` reads it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.data import load_dataset
from fakescan.device import pick_device, pick_dtype
from fakescan.errors import DataError, UsageError
from fakescan.store import load_model, write_card
from fakescan.train import plots
from fakescan.train.data import ImageSamples, make_loader
from fakescan.train.fit import predict_probs
from fakescan.train.metrics import (
    calibrate_threshold,
    calibration_label,
    classification_report,
    negative_index,
    p_fake_from_probs,
    predict_labels,
    roc_curve,
)


def _probs(lm, samples, device, dtype, batch_size, workers, perturb=None):
    labels = tuple(lm.labels)
    unknown = sorted({s.label for s in samples} - set(labels))
    if unknown:
        raise DataError(f"the data has classes {unknown} that the model does not know {labels}")
    ds = ImageSamples(samples, labels, lm.preprocess, perturb=perturb)
    loader = make_loader(ds, batch_size, shuffle=False, seed=0, workers=workers, pin=False)
    probs, targets, loss = predict_probs(lm.model, loader, device, dtype, lm.preprocess)
    return probs, targets, loss


def evaluate(
    model_ref: str | Path,
    data: Path,
    *,
    split: str = "test",
    ood: Path | None = None,
    ratios: tuple[float, float, float] | None = None,
    seed: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 64,
    workers: int = 2,
    robustness: bool = False,
    max_fpr: float | None = None,
) -> dict[str, Any]:
    """Evaluate a model folder; writes metrics.json and figures into it and returns the metrics.

    The threshold is calibrated on the validation split: Youden's J, or with ``max_fpr`` (default:
    the recipe's) the most sensitive threshold that calls at most that share of reals fake."""
    lm = load_model(model_ref)
    card_data = lm.card.get("data", {})
    ratios = ratios or tuple(card_data.get("ratios", (0.8, 0.1, 0.1)))  # the training split
    seed = card_data.get("seed", 0) if seed is None else seed
    ds = load_dataset(data, ratios=ratios, seed=seed)
    if split not in ds.splits:
        raise UsageError(f"{data} has no '{split}' split (it has: {', '.join(ds.splits)})")
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    lm.model.to(dev)
    labels = lm.labels
    neg = negative_index(labels)

    threshold, calibrated_on = lm.threshold, lm.card.get("threshold_calibrated_on", "card")
    valid_report = None
    if "valid" in ds.splits and split != "valid":
        vp, vt, _ = _probs(lm, ds.splits["valid"], dev, dtype, batch_size, workers)
        if max_fpr is None:
            max_fpr = lm.card.get("recipe", {}).get("max_fpr")
        threshold = calibrate_threshold((vt != neg).astype(int), p_fake_from_probs(vp, labels),
                                        max_fpr)
        calibrated_on = calibration_label(max_fpr)
        valid_report = classification_report(vp, vt, labels, threshold)

    samples = ds.splits[split]
    probs, targets, loss = _probs(lm, samples, dev, dtype, batch_size, workers)
    report = classification_report(probs, targets, labels, threshold)
    report["loss"] = loss
    out = lm.folder
    curves = {split: _curve(probs, targets, labels, report["roc_auc"])}

    # Error analysis: misclassified list (most confident mistakes first) and thumbnail grid.
    pred = predict_labels(probs, labels, threshold)
    pf = p_fake_from_probs(probs, labels)
    wrong = [
        {"path": str(s.path), "true": labels[t], "pred": labels[p], "p_fake": float(f)}
        for s, t, p, f in zip(samples, targets, pred, pf, strict=True) if t != p
    ]
    wrong.sort(key=lambda r: -abs(r["p_fake"] - threshold))
    with open(out / "misclassified.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "true", "pred", "p_fake"])
        w.writeheader()
        w.writerows(wrong)
    title = f"{lm.name}: misclassified on {split} ({len(wrong)} of {len(samples)})"
    plots.misclassified_grid(wrong, out / "misclassified.png", title)
    plots.confusion(report["confusion_matrix"], labels, out / "confusion.png",
                    f"{lm.name} on {split} (threshold {threshold:.3f})")

    metrics: dict[str, Any] = {
        **{k: report[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc",
                                  "average_precision", "threshold", "confusion_matrix")},
        "model": lm.name,
        "dataset": str(ds.root),
        "split": split,
        "threshold_calibrated_on": calibrated_on,
        "details": report,
    }
    if valid_report is not None:
        metrics["valid"] = valid_report
    if ood is not None:
        ods = load_dataset(ood, ratios=None)
        op, ot, oloss = _probs(lm, ods.samples(), dev, dtype, batch_size, workers)
        orep = classification_report(op, ot, labels, threshold)
        orep.update(loss=oloss, dataset=str(ods.root))
        metrics["ood"] = orep
        curves[f"OOD {Path(ood).name}"] = _curve(op, ot, labels, orep["roc_auc"])
        plots.confusion(orep["confusion_matrix"], labels, out / "confusion_ood.png",
                        f"{lm.name} on OOD {Path(ood).name}")
    plots.roc(curves, out / "roc.png", f"{lm.name}: ROC (positive class: fake)")
    if robustness:
        from fakescan.train.robustness import SWEEP

        sets = {split: samples}
        if ood is not None:
            sets[f"OOD {Path(ood).name}"] = ods.samples()
        sweep: dict[str, list[dict[str, Any]]] = {}
        for name, smp in sets.items():
            base = metrics["details"] if name == split else metrics["ood"]
            rows = [_sweep_row("none", base)]
            for pert in SWEEP:
                pp_, pt_, _ = _probs(lm, smp, dev, dtype, batch_size, workers, perturb=pert)
                rows.append(_sweep_row(pert.name, classification_report(pp_, pt_, labels,
                                                                        threshold)))
            sweep[name] = rows
        metrics["robustness"] = sweep
        plots.robustness(sweep, out / "robustness.png",
                         f"{lm.name}: robustness (threshold {threshold:.3f})")
    (out / "metrics.json").write_text(json.dumps(_clean(metrics), indent=2) + "\n")

    card = dict(lm.card)
    card["threshold"] = threshold
    card["threshold_calibrated_on"] = calibrated_on
    card.setdefault("metrics", {})
    card["metrics"][split] = {k: report[k] for k in ("accuracy", "precision", "recall", "f1",
                                                     "roc_auc", "average_precision")}
    if "ood" in metrics:
        card["metrics"]["ood"] = {k: metrics["ood"][k] for k in ("accuracy", "roc_auc",
                                                                "real_called_fake", "dataset")}
    write_card(out, _clean(card))
    return _clean(metrics)


def _sweep_row(name: str, rep: dict[str, Any]) -> dict[str, Any]:
    return {"perturbation": name, "accuracy": rep["accuracy"], "roc_auc": rep["roc_auc"],
            "tpr_at_fpr_0.05": rep.get("tpr_at_fpr_0.05"),
            "real_called_fake": rep.get("real_called_fake")}


def _curve(probs, targets, labels, auc):
    neg = negative_index(labels)
    fpr, tpr, _ = roc_curve((targets != neg).astype(int), p_fake_from_probs(probs, labels))
    return fpr, tpr, auc


def _clean(obj):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
