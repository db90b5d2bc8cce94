"""Average the weights of model folders of one network (a "model soup") into a new folder.

    python benchmarks/experiments/soup.py OUT A B [C ...] [--weights 0.5 0.5]
    fakescan eval OUT --split test --calibrate --max-fpr 0.05   # its own threshold (set on valid)
    fakescan eval OUT --ood ../shared/datasets/ood-ffhq-vs-stylegan2-dev

Fine-tuned runs that start from one set of weights (``fakescan train --init A``) stay in one
basin, and the average of their weights often ranks better than either (Wortsman et al.,
2022), at no cost when scanning: one network, the same speed. Every tensor is averaged
(BatchNorm's running statistics too; its batch counter is the first folder's). OUT gets the
first folder's card with the new weights' hash and the identities averaged (not their
folders, which are scratch); its threshold
is the first folder's until ``eval --calibrate`` sets its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def average(models: list, out: Path, weights: list[float] | None = None) -> Path:
    """Write the weighted average of ``models`` (folders or names of one network) to ``out``
    with the first one's card (its threshold, until ``eval --calibrate``)."""
    from fakescan.card import ModelCard
    from fakescan.errors import UsageError
    from fakescan.store import WEIGHTS, load_model
    from fakescan.weights import save_tensors, sha256_file

    ws = weights or [1.0] * len(models)
    if len(ws) != len(models) or min(ws) < 0 or sum(ws) <= 0:
        raise UsageError("soup: one non-negative weight per model, not all 0")
    ws = [w / sum(ws) for w in ws]
    loaded = [load_model(m) for m in models]
    first = loaded[0].card
    for m in loaded[1:]:
        if (m.card.architecture, m.card.labels) != (first.architecture, first.labels):
            raise UsageError(f"soup: {m.folder} is a {m.card.architecture} {m.card.labels}, "
                             f"not {first.architecture} {first.labels}")
    states = [m.model.state_dict() for m in loaded]
    soup = {k: (sum(w * s[k].float() for w, s in zip(ws, states, strict=True))
                if v.is_floating_point() else v.clone()) for k, v in states[0].items()}
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(soup, out / WEIGHTS)
    # each part's own soup, if it is one, stays on record under it (a copy of one model
    # keeps its record as it was: nothing was averaged)
    training = dict(first.training) if len(loaded) == 1 else {
        **first.training, "soup": [
            {"identity": m.card.identity, "weight": w,
             **({"soup": m.card.training["soup"]} if "soup" in m.card.training else {})}
            for m, w in zip(loaded, ws, strict=True)]}
    card = dataclasses.replace(first, name=out.name, training=training, metrics={},
                               weights_sha256=sha256_file(out / WEIGHTS))
    card.save(out)
    ModelCard.load(out)  # readable back
    parts = [f"{w:.2f} x {m.folder.name}" for m, w in zip(loaded, ws, strict=True)]
    print(f"{out}: {' + '.join(parts)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", help="one per model [equal]")
    args = ap.parse_args(argv)
    average(args.models, args.out, args.weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
