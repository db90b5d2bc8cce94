"""One line per candidate from `fakescan eval --json` outputs: the test split's figures by
kind, the ood row, and the validation split's mean ROC-AUC per kind (what chose the default).

    python benchmarks/kinds/finetune/row.py TEST.json:VALID.json ...
"""

import json
import sys

NAN = float("nan")


def row(test: str, valid: str) -> str:
    d = json.load(open(test))
    k = d["by_kind"]
    od = next(iter(d["ood"].values())) if d.get("ood") else {}
    vk = json.load(open(valid))["by_kind"] if valid else None
    mean = sum(vk[x]["roc_auc"] for x in ("gan", "diffusion", "faceswap")) / 3 if vk else NAN

    def kind(name: str) -> str:
        return f"{k[name]['fakes_detected']:.1%} ({k[name]['roc_auc']:.3f})"

    real = k["real"]
    return (f"{test.split('/')[-1]:16s} thr {d['threshold']:.3f} | SG2 {kind('gan')} "
            f"diffusion {kind('diffusion')} swaps {kind('faceswap')} | reals "
            f"{real['real_called_fake']:.1%} / {real['worst_source_real_called_fake']:.1%} | "
            f"ood {od.get('recall', NAN):.0%} / {od.get('real_called_fake', NAN):.0%} / "
            f"{od.get('roc_auc', NAN):.3f} | valid mean AUC {mean:.3f} (swaps "
            f"{vk['faceswap']['roc_auc'] if vk else NAN:.3f})")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        t, _, v = arg.partition(":")
        print(row(t, v))
