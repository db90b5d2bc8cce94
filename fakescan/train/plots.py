"""Figures written into model folders: curves, confusion matrix, ROC, misclassified grid,
robustness sweep."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def training_curves(history_csv: Path, out_dir: Path, title: str) -> list[Path]:
    """``loss.png`` and ``accuracy.png`` (train vs validation, per epoch)."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    ep = [int(r["epoch"]) for r in rows]
    paths = []
    for key, ylabel in (("loss", "cross-entropy loss"), ("acc", "accuracy")):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        ax.plot(ep, [float(r[f"train_{key}"]) for r in rows], "o-", label="train")
        ax.plot(ep, [float(r[f"val_{key}"]) for r in rows], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {ylabel}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        p = out_dir / ("loss.png" if key == "loss" else "accuracy.png")
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)
    return paths


def confusion(cm: list[list[int]], labels: list[str], path: Path, title: str) -> Path:
    a = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=110)
    ax.imshow(a, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ax.text(j, i, str(a[i, j]), ha="center", va="center",
                    color="white" if a[i, j] > a.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str) -> Path:
    """ROC curves, one per dataset: ``{name: (fpr, tpr, auc)}``."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate (fake caught)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def misclassified_grid(rows: list[dict[str, Any]], path: Path, title: str, limit: int = 24,
                       preprocess=None) -> Path:
    """Thumbnails of misclassified images captioned with true / predicted class and p_fake;
    with a face model's ``preprocess``, the face crops the model saw."""
    from fakescan.imaging import decode_rgb, model_input

    rows = rows[:limit]
    cols = 6
    nrows = max(1, -(-len(rows) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 1.9, nrows * 2.2 + 0.4), dpi=100)
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, r in zip(axes, rows, strict=False):
        try:
            im = decode_rgb(r["path"])
            if preprocess is not None and preprocess.crop != "none":
                im = model_input(im, preprocess).transpose(1, 2, 0)
                ax.imshow(im)
            else:
                im.thumbnail((160, 160))
                ax.imshow(im)
        except Exception:
            ax.text(0.5, 0.5, "unreadable", ha="center")
        ax.set_title(f"true {r['true']} / pred {r['pred']}\np_fake {r['p_fake']:.2f}", fontsize=7)
    if not rows:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def robustness(sweep: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    """Accuracy and ROC-AUC per perturbation, one line per dataset."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110, sharey=True)
    for name, rows in sweep.items():
        xs = np.arange(len(rows))
        for ax, key in zip(axes, ("accuracy", "roc_auc"), strict=True):
            ax.plot(xs, [r[key] for r in rows], marker="o", label=name)
    labels = [r["perturbation"] for r in next(iter(sweep.values()))]
    for ax, key in zip(axes, ("accuracy", "ROC-AUC"), strict=True):
        ax.set_xticks(np.arange(len(labels)), labels, rotation=40, ha="right")
        ax.set_ylabel(key)
        ax.set_xlabel("perturbation of the decoded image")
        ax.set_ylim(0.0, 1.02)
        ax.axhline(0.5, ls="--", color="grey", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
