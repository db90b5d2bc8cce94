"""Average the weights of model folders of one network (a "model soup") into a new folder.

    python benchmarks/experiments/soup.py OUT A B [C ...] [--weights 0.5 0.5]
    fakescan eval OUT --split valid --calibrate --max-fpr 0.05   # its own threshold
    fakescan eval OUT --ood ../shared/datasets/ood-ffhq-vs-stylegan2-dev

Fine-tuned runs that start from one set of weights (``fakescan train --init A``) stay in one
basin, and the average of their weights often ranks better than either (Wortsman et al.,
2022), at no cost when scanning: one network, the same speed. Every tensor is averaged
(BatchNorm's running statistics too; its batch counter is the first folder's). OUT gets the
first folder's card with the new weights' hash and a note of what was averaged; its threshold
is the first folder's until ``eval --calibrate`` sets its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from fakescan.card import ModelCard
    from fakescan.store import WEIGHTS, load_model
    from fakescan.weights import save_tensors, sha256_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", help="one per model [equal]")
    args = ap.parse_args(argv)
    ws = args.weights or [1.0] * len(args.models)
    if len(ws) != len(args.models) or min(ws) < 0 or sum(ws) <= 0:
        ap.error("--weights: one non-negative weight per model, not all 0")
    ws = [w / sum(ws) for w in ws]
    loaded = [load_model(m) for m in args.models]
    first = loaded[0].card
    for m in loaded[1:]:
        if (m.card.architecture, m.card.labels) != (first.architecture, first.labels):
            ap.error(f"{m.folder} is a {m.card.architecture} {m.card.labels}, not "
                     f"{first.architecture} {first.labels}")
    states = [m.model.state_dict() for m in loaded]
    soup = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            soup[k] = sum(w * s[k].float() for w, s in zip(ws, states, strict=True))
        else:
            soup[k] = v.clone()
    args.out.mkdir(parents=True, exist_ok=True)
    save_tensors(soup, args.out / WEIGHTS)
    training = {**first.training, "soup": [
        {"folder": str(m.folder), "identity": m.card.identity, "weight": w}
        for m, w in zip(loaded, ws, strict=True)]}
    card = dataclasses.replace(first, name=args.out.name, training=training, metrics={},
                               weights_sha256=sha256_file(args.out / WEIGHTS))
    card.save(args.out)
    ModelCard.load(args.out)  # readable back
    parts = [f"{w:.2f} x {m.folder.name}" for m, w in zip(loaded, ws, strict=True)]
    print(f"{args.out}: {' + '.join(parts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
