"""LocalCNN: a small fully-convolutional detector that only sees 32-pixel neighbourhoods.

Issue 7's architecture. SimpleCNN's head is a linear layer over the whole feature map, so it
can learn *where* things are: how faces are framed and aligned, which differs between data
sources and says nothing about how an image was made. LocalCNN has no such head: six 3x3
convolutions (two max-pools) give each output a 32 px receptive field, and the logits are
averaged over every position (global average pooling), so the verdict is a vote of local
texture evidence — the level at which generator up-sampling leaves its traces (NPR, Tan et
al. 2024; CNNDetection, Wang et al. 2020). It is small (72,434 parameters with 2 classes), so
it trains from scratch on a thousand images.
"""

from __future__ import annotations

from torch import nn

from fakescan.config import HALF_MEAN, HALF_STD, Preprocess, Recipe
from fakescan.nets.registry import register


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class LocalCNN(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv(3, w), *_conv(w, w), nn.MaxPool2d(2),
            *_conv(w, 2 * w), *_conv(2 * w, 2 * w), nn.MaxPool2d(2),
            *_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2),
                                        nn.Linear(4 * w, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@register(
    "localcnn",
    preprocess=Preprocess(256, HALF_MEAN, HALF_STD),
    # No rotation: resampling blurs exactly the fine texture this model reads.
    recipe=Recipe(epochs=15, batch_size=32, lr=1e-3, warmup_epochs=1.0, rotation=0.0),
    source="fakescan (issue 7), after NPR / CNNDetection",
)
def localcnn(*, num_classes: int = 2, width: int = 16) -> LocalCNN:
    """LocalCNN: 72,434 parameters with 2 classes at width 16."""
    return LocalCNN(num_classes=num_classes, width=width)
