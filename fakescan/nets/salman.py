"""Seed 002's Reference Model (Salman & Abu-Naser): six Conv-ReLU-MaxPool groups, 256x256 input.

``padding="valid"`` is the Keras original; ``"same"`` reproduces seed 002's PyTorch conversion
(padding 1), which the paper itself calls a translation mistake. ``extra_block`` adds the
paper's 7th group (Conv 1024, padding same) and widens the dense layer to 1024.
"""

from __future__ import annotations

from torch import nn

from fakescan.config import HALF_MEAN, HALF_STD, Preprocess, Recipe
from fakescan.errors import ArchitectureError
from fakescan.nets.registry import register

INPUT_SIZE = 256
CHANNELS = (32, 64, 128, 256, 256, 512)


class SalmanCNN(nn.Module):
    def __init__(
        self,
        num_classes: int = 2,
        padding: str = "valid",
        extra_block: bool = False,
        input_size: int = INPUT_SIZE,
    ) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ArchitectureError(f"salman padding must be 'valid' or 'same', got {padding!r}")
        pad = 0 if padding == "valid" else 1
        layers: list[nn.Module] = []
        cin, size = 3, input_size
        for cout in CHANNELS:
            layers += [nn.Conv2d(cin, cout, 3, padding=pad), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            size = (size - 2 * (1 - pad)) // 2
            cin = cout
        hidden = 512
        if extra_block:
            layers += [nn.Conv2d(cin, 1024, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin, size, hidden = 1024, size // 2, 1024
        if size < 1:
            raise ArchitectureError(f"input {input_size}px is too small for salman({padding})")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register(
    "salman",
    preprocess=Preprocess(INPUT_SIZE, HALF_MEAN, HALF_STD),
    # Seed 002: Adam lr 1e-4, 10 epochs, batch 64; its augmentation adds vflip + rotation 15.
    recipe=Recipe(epochs=10, batch_size=64, lr=1e-4, vflip=True, rotation=15.0, patience=10),
    source="seed 002 §3.1 (Reference Model)",
    variants={"valid": {"padding": "valid"}, "same": {"padding": "same"}},
)
def salman(*, num_classes: int = 2, padding: str = "valid", extra_block: bool = False) -> SalmanCNN:
    """Reference Model: 3,208,770 parameters (valid) or 6,354,498 (same) with 2 classes."""
    return SalmanCNN(num_classes=num_classes, padding=padding, extra_block=extra_block)
