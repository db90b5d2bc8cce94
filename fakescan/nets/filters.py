"""Fixed input filters any architecture can put in front of itself (``input_filter`` option).

``highpass``: the image minus its 3x3 local mean (reflect-padded), scaled up. It removes what
a dataset's *look* is made of (colour, lighting, framing, smooth shading) and keeps the fine
texture where generator upsampling leaves its traces (Frank et al. 2020; Durall et al. 2020
work on the same residual/frequency idea). Part of the model, so scan, export and every
decoder get it without a second preprocessing path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fakescan.choices import InputFilter, names
from fakescan.nets.wrapper import Wrapped

INPUT_FILTERS = names(InputFilter)


class HighPassInput(Wrapped):
    """``normalize``: divide each image's residual by its own RMS, so how *sharp* an image is
    (a property of a dataset's capture and resizing, not of its generator) carries no
    signal; only the residual's pattern does."""

    def __init__(self, net: nn.Module, gain: float = 4.0, normalize: bool = False) -> None:
        super().__init__(net)
        self.gain = gain
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
        r = x - mean
        if self.normalize:
            r = r / (r.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-3)
            return self.net(r)
        return self.net(r * self.gain)
