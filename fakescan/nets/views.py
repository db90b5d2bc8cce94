"""What a model looks at when it scores an image (the ``views`` option every architecture
takes).

``flip``: the image and its mirror image through the network, their logits averaged (test-time
augmentation). Training already shows every image mirrored half the time, so the two views are
two looks of one trained model, and their average ranks fakes better than either: on the
default detector's validation and held-back images, face swaps' ROC-AUC 0.836 -> 0.846 and the
never-trained-on FFHQ/StyleGAN2 set's 0.949 -> 0.962 (``benchmarks/README.md``, "Looking
twice"). It costs the network's time twice. Part of the model, so scan, eval, export (the ONNX
graph holds the mirror and the average) and every runtime and decoder get it without a second
path. In training mode the network sees one view (its input is already flipped at random), so
training costs what it did.

The wrapper adds no parameters, and its state dict is the network's own (no ``net.`` prefix):
one weights file serves a model with or without it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from fakescan.choices import Views, names
from fakescan.nets.wrapper import Wrapped

VIEWS = names(Views)
_INNER = "net."


class FlipAverage(Wrapped):
    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        self.register_state_dict_post_hook(_unnest)
        self.register_load_state_dict_pre_hook(_nest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.net(x)
        # two passes at the caller's batch size, not one of twice the size: on CPUs a batch
        # past the caches' reach costs more per image (bf16 Lite0 on 2 cores: 131 img/s at a
        # batch of 32, 88 at 64)
        return (self.net(x) + self.net(torch.flip(x, dims=[3]))) / 2


def _unnest(module, state_dict, prefix, local_metadata) -> None:
    """The network's keys without the wrapper's ``net.``."""
    inner = prefix + _INNER
    items = [(prefix + k[len(inner):] if k.startswith(inner) else k, v)
             for k, v in state_dict.items()]
    state_dict.clear()
    state_dict.update(OrderedDict(items))


def _nest(module, state_dict, prefix, local_metadata, strict, missing, unexpected,
          errors) -> None:
    """The network's keys back under ``net.`` for loading."""
    for k in [k for k in state_dict if k.startswith(prefix)]:
        state_dict[prefix + _INNER + k[len(prefix):]] = state_dict.pop(k)
