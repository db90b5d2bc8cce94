"""Seed 000's SimpleCNN: three Conv-BN-ReLU-MaxPool blocks and an MLP head, 128x128 input."""

from __future__ import annotations

from torch import nn

from fakescan.config import HALF_MEAN, HALF_STD, Preprocess, Recipe
from fakescan.nets.registry import register


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SimpleCNN(nn.Module):
    def __init__(self, num_classes: int = 2, input_size: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128))
        flat = 128 * (input_size // 8) ** 2
        self.classifier = nn.Sequential(
            nn.Dropout(0.3),
            nn.Flatten(),
            nn.Linear(flat, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(256, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register(
    "simplecnn",
    preprocess=Preprocess(128, HALF_MEAN, HALF_STD),
    # Seed 000, Table 3 (v2): lr 1e-3, dropout 0.3/0.5, batch 32, 20-30 epochs, early stop.
    recipe=Recipe(epochs=20, batch_size=32, lr=1e-3, warmup_epochs=1.0),
    source="seed 000 §3.1.1",
)
def simplecnn(*, num_classes: int = 2) -> SimpleCNN:
    """SimpleCNN: 8,483,074 parameters with 2 classes."""
    return SimpleCNN(num_classes=num_classes)
