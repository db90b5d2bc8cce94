"""Classification metrics for the positive class ``fake`` (plus per class): the curves and
scores from scikit-learn, the threshold policies and per-source figures here.

The verdict and the score (``p_fake``: with more than two classes every non-real class
counts as fake) come from the model's ``DecisionRule`` (``fakescan.card``), the one rule
scan, eval and export share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescan.card import DecisionRule, ModelCard

TPR_KEY = "tpr_at_fpr_0.05"  # a report's TPR at 5% FPR (typed rows: ``tpr_at_fpr_05``)


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for predicting positive when ``score >= threshold``:
    scikit-learn's curve with every threshold kept (the calibration walks all of them)."""
    from sklearn.metrics import roc_curve as sk_roc_curve

    y = np.asarray(y).astype(np.int64)
    if y.min() == y.max():  # one class: no curve; the chance diagonal stands in
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([np.inf, score.min()])
    return sk_roc_curve(y, score, drop_intermediate=False)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC (scikit-learn); NaN where only one class is present."""
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, score))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (scikit-learn's step-wise definition); NaN without positives."""
    from sklearn.metrics import average_precision_score

    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, score))


def calibration_label(max_fpr: float | None, n_sources: int = 1) -> str:
    """How a threshold from ``calibrate_threshold`` was chosen, as the card records it."""
    if max_fpr is None:
        return "valid"
    per = f" in each of {n_sources} sources" if n_sources > 1 else ""
    return f"valid, max FPR {max_fpr:g}{per}"


def allowed_false_alarms(n: int, max_fpr: float) -> int:
    """How many of ``n`` reals scored for calibration the threshold may call fake so that, on
    average, at most ``max_fpr`` of new reals from the same source are called fake.

    Calling the top ``k`` of ``n`` exchangeable scores fake, with the threshold midway between
    the ``k``-th highest and the next, a new real's score passes it with probability between
    ``k / (n + 1)`` and ``(k + 1) / (n + 1)`` (its rank among the ``n + 1`` is uniform: the
    argument of split conformal prediction), ``(k + 1/2) / (n + 1)`` where scores are dense
    there (exactly, for uniform scores). Hence ``k = floor(max_fpr * (n + 1) - 1/2)``. The plain
    share, ``floor(max_fpr * n)``, the rule before this one, lets more through where
    ``max_fpr * n`` is nearly whole: on average 5.2% of new reals for a 5% bound on 200, 5.05%
    on 108, 6.1% on 40, 7.1% on 20; elsewhere the two agree (50, 59 or 150 reals: 2, 2, 7).
    Never below 0: with too few reals to allow one, the threshold sits above all of them.
    """
    return max(int(np.floor(max_fpr * (n + 1) - 0.5 + 1e-9)), 0)


def reals_to_allow_one(max_fpr: float) -> int:
    """The fewest reals for which ``allowed_false_alarms`` lets one be called fake (0 for a
    bound of 0, which never does)."""
    if max_fpr <= 0:
        return 0
    n = 1
    while allowed_false_alarms(n, max_fpr) < 1:
        n += 1
    return n


def calibrate_threshold(y: np.ndarray, score: np.ndarray, max_fpr: float | None = None,
                        groups: np.ndarray | None = None, *,
                        allowed: Callable[[int, float], int] = allowed_false_alarms) -> float:
    """The decision threshold, from validation scores.

    By default the threshold maximising Youden's J (TPR - FPR). With ``max_fpr``, the one with
    the highest TPR that calls at most ``allowed_false_alarms(n, max_fpr)`` of the ``n`` reals
    fake, so that on average at most ``max_fpr`` of *new* reals are called fake: the policy
    for a user who cares more about false alarms than about missed fakes. With ``groups``
    (each sample's source), the bound holds in every source that has negatives, not only
    pooled: a source whose real photos the model finds harder is not hidden by an easy one.

    It sits halfway between the chosen score and the next lower one, so it generalises rather
    than sitting on a validation point; ties prefer the threshold nearest 0.5. ``allowed``, how
    many of n reals may be called fake, is the product's rule unless an experiment compares
    another (``benchmarks/experiments/candidates.py``).
    """
    if y.max() == 0 and max_fpr is not None:  # reals only: the bound alone decides
        if groups is None:
            return reals_threshold(score, max_fpr, allowed=allowed)
        return max(reals_threshold(score[groups == g], max_fpr, allowed=allowed)
                   for g in np.unique(groups))
    if y.min() == y.max():
        return 0.5
    fpr, tpr, thr = roc_curve(y, score)
    if max_fpr is None:
        gain = tpr - fpr
        ok = np.ones_like(gain, dtype=bool)
    else:
        gain = tpr
        ok = np.ones_like(tpr, dtype=bool)
        # each source's reals called fake at each candidate threshold, against its allowance
        for g in ([None] if groups is None else np.unique(groups[y == 0])):
            neg = np.sort(score[(y == 0) if g is None else (y == 0) & (groups == g)])
            above = len(neg) - np.searchsorted(neg, thr, side="left")
            ok &= above <= allowed(len(neg), max_fpr)
    gain = np.where(ok & np.isfinite(thr), gain, -np.inf)
    if not np.isfinite(gain.max()):  # even the top score is a real: call (almost) nothing fake
        return float((thr[1] + 1.0) / 2)
    cands = []
    for k in np.flatnonzero(gain >= gain.max() - 1e-12):
        if not np.isfinite(thr[k]):
            continue
        lower = thr[k + 1] if k + 1 < len(thr) else 0.0
        cands.append(float((thr[k] + lower) / 2))
    return min(cands, key=lambda t: abs(t - 0.5)) if cands else 0.5


def reals_threshold(score: np.ndarray, max_fpr: float, *,
                    allowed: Callable[[int, float], int] = allowed_false_alarms) -> float:
    """The most sensitive threshold that calls at most ``allowed_false_alarms(n, max_fpr)`` of
    these ``n`` real images' scores fake (verdict: score >= threshold), halfway between the
    highest score it lets pass and the lowest it calls fake; 0.5 with no scores."""
    s = np.sort(np.asarray(score, dtype=np.float64))
    n = len(s)
    if n == 0:
        return 0.5
    k = allowed(n, max_fpr)  # how many of these reals may be called fake
    if k >= n:
        return float(np.nextafter(s[0], -np.inf)) if s[0] > 0 else 0.0
    passed = s[n - k - 1]  # the highest score that must stay "real"
    above = s[n - k] if k else 1.0
    t = (passed + above) / 2 if above > passed else passed
    return float(t if t > passed else np.nextafter(passed, np.inf))


def tpr_at_fpr(y: np.ndarray, score: np.ndarray, target_fpr: float) -> float:
    if y.min() == y.max():
        return float("nan")
    fpr, tpr, _ = roc_curve(y, score)
    return float(tpr[fpr <= target_fpr].max())


def classification_report(
    probs: np.ndarray, targets: np.ndarray, rule: DecisionRule | ModelCard, threshold: float
) -> dict[str, Any]:
    """SPEC's top-level metrics for ``fake`` plus per-class and macro figures."""
    labels = list(rule.labels)
    pred = rule.verdict(probs, threshold)
    pf = rule.p_fake(probs)
    neg = rule.negative_index
    y = (targets != neg).astype(np.int64)
    yhat = (pred != neg).astype(np.int64)
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(targets, pred, labels=list(range(len(labels))))

    def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    tp = int(((y == 1) & (yhat == 1)).sum())
    fp = int(((y == 0) & (yhat == 1)).sum())
    fn = int(((y == 1) & (yhat == 0)).sum())
    tn = int(((y == 0) & (yhat == 0)).sum())
    precision, recall, f1 = prf(tp, fp, fn)
    per_class = {}
    for i, name in enumerate(labels):
        p, r, f = prf(int(cm[i, i]), int(cm[:, i].sum() - cm[i, i]), int(cm[i, :].sum() - cm[i, i]))
        per_class[name] = {"precision": p, "recall": r, "f1": f, "support": int(cm[i, :].sum())}
    return {
        "accuracy": float((pred == targets).mean()) if len(targets) else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y, pf),
        "average_precision": average_precision(y, pf),
        "threshold": threshold,
        "confusion_matrix": cm.tolist(),
        "labels": labels,
        "binary_accuracy": float((y == yhat).mean()) if len(y) else float("nan"),
        "real_called_fake": fp / (fp + tn) if fp + tn else float("nan"),
        "fake_called_real": fn / (fn + tp) if fn + tp else float("nan"),
        TPR_KEY: tpr_at_fpr(y, pf, 0.05),
        "macro": {
            m: float(np.mean([c[m] for c in per_class.values()]))
            for m in ("precision", "recall", "f1")
        },
        "per_class": per_class,
        "n": int(len(targets)),
    }


def per_source(y: np.ndarray, score: np.ndarray, groups: np.ndarray,
               threshold: float) -> dict[str, dict[str, Any]]:
    """For each source: how many images, the share of its reals called fake and of its fakes
    detected at ``threshold``, and ROC-AUC where it has both classes."""
    out: dict[str, dict[str, Any]] = {}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        yy, ss = y[m], score[m]
        real, fake = ss[yy == 0], ss[yy == 1]
        out[str(g)] = {
            "n": int(m.sum()),
            "real_called_fake": float((real >= threshold).mean()) if len(real) else None,
            "fakes_detected": float((fake >= threshold).mean()) if len(fake) else None,
            "roc_auc": roc_auc(yy, ss) if len(real) and len(fake) else None,
        }
    return out


def per_kind(y: np.ndarray, score: np.ndarray, sources: np.ndarray, kind_of: dict[str, str],
             threshold: float) -> dict[str, dict[str, Any]]:
    """Fakes by kind (GAN, diffusion, face swap, ...; ``kind_of`` maps a source to its kind):
    how many, the share detected at ``threshold``, and ROC-AUC against the reals of the same
    sources (every real scored where those sources hold none: SDFD's portraits); and the
    reals: how many, the share called fake, and the worst source's share."""
    out: dict[str, dict[str, Any]] = {}
    kinds = np.array([kind_of.get(str(s), "other") for s in sources.tolist()])
    for kind in sorted(set(kinds[y == 1].tolist())):
        fakes = score[(y == 1) & (kinds == kind)]
        mine = (y == 0) & (kinds == kind)
        reals = score[mine] if mine.any() else score[y == 0]
        yy = np.r_[np.zeros(len(reals)), np.ones(len(fakes))].astype(int)
        out[kind] = {"fakes": int(len(fakes)),
                     "fakes_detected": float((fakes >= threshold).mean()),
                     "roc_auc": roc_auc(yy, np.r_[reals, fakes]) if len(reals) else None}
    if (y == 0).any():
        worst = max(float((score[(y == 0) & (sources == s)] >= threshold).mean())
                    for s in set(sources[y == 0].tolist()))
        out["real"] = {"reals": int((y == 0).sum()),
                       "real_called_fake": float((score[y == 0] >= threshold).mean()),
                       "worst_source_real_called_fake": worst}
    return out


def validation_record(probs: np.ndarray, targets: np.ndarray, rule: DecisionRule | ModelCard,
                      sources: np.ndarray, kind_of: dict[str, str], threshold: float,
                      loss: float) -> dict[str, Any]:
    """What a model's card keeps of the validation split its threshold was set on
    (``metrics.valid``): the loss, argmax accuracy, and each source's and kind's figures at
    ``threshold``."""
    y = (targets != rule.negative_index).astype(np.int64)
    pf = rule.p_fake(probs)
    return {"loss": loss, "accuracy": float((probs.argmax(1) == targets).mean()),
            "by_source": per_source(y, pf, sources, threshold),
            "by_kind": per_kind(y, pf, sources, kind_of, threshold)}


@dataclass(frozen=True)
class KindRow:
    """One row of a ``per_kind`` table: a kind of fake (images, share found, ROC-AUC), or the
    reals (images, share called fake, the worst source's share)."""

    kind: str
    images: int
    found: float | None  # fakes detected; for ``real``: reals called fake
    roc_auc: float | None = None
    worst_source: float | None = None  # ``real`` only


def kind_rows(by_kind: dict[str, dict[str, Any]]) -> list[KindRow]:
    """``per_kind``'s figures as rows: the kinds of fake, then the reals."""
    rows = [KindRow(k, r["fakes"], r["fakes_detected"], r.get("roc_auc"))
            for k, r in by_kind.items() if k != "real"]
    if "real" in by_kind:
        r = by_kind["real"]
        rows.append(KindRow("real", r["reals"], r["real_called_fake"],
                            worst_source=r["worst_source_real_called_fake"]))
    return rows
