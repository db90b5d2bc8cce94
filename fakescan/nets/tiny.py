"""TinyCNN: one convolution, a global pool and a linear layer, 32x32 input - the cheapest real
model the scan can load, so scale benchmarks measure the scan itself (``scan_scale.py``)."""

from __future__ import annotations

from torch import nn

from fakescan.config import HALF_MEAN, HALF_STD, Preprocess, Recipe
from fakescan.nets.registry import register


class TinyCNN(nn.Module):
    """One convolution, a global pool and a linear layer: the cheapest real model."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.pool(nn.functional.relu(self.conv(x))).flatten(1))


@register(
    "tinycnn",
    preprocess=Preprocess(32, HALF_MEAN, HALF_STD),
    recipe=Recipe(epochs=2, batch_size=64, lr=1e-3),
    source="benchmarks: what a scan costs without a model's (benchmarks/scan_scale.py)",
)
def tinycnn(*, num_classes: int = 2) -> TinyCNN:
    """TinyCNN: 242 parameters with 2 classes; for scale benchmarks, not for detection."""
    return TinyCNN(num_classes=num_classes)
