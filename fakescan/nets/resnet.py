"""Seed 000's ResNet50 transfer models: a frozen backbone, or layer4 fine-tuned.

Both replace torchvision's ``fc`` with the seed head (2048 -> 256 -> ReLU -> Dropout -> C).
Frozen stages stay in eval mode even while the model trains, so their BatchNorm running
statistics never drift from the ImageNet ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from fakescan.config import IMAGENET_MEAN, IMAGENET_STD, Preprocess, Recipe
from fakescan.errors import ModelError
from fakescan.nets.registry import register

PREPROCESS = Preprocess(224, IMAGENET_MEAN, IMAGENET_STD)
STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc")


class FakeFaceResNet(ResNet):
    """torchvision ResNet50 with the seed head; only ``trainable`` stages get gradients."""

    def __init__(self, num_classes: int = 2, trainable: tuple[str, ...] = ("fc",)) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3])
        self.fc = nn.Sequential(
            nn.Linear(2048, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(256, num_classes),
        )
        self.trainable = tuple(trainable)
        for name in STAGES:
            for p in getattr(self, name).parameters():
                p.requires_grad_(name in self.trainable)

    def train(self, mode: bool = True) -> FakeFaceResNet:
        super().train(mode)
        for name in STAGES:
            if name not in self.trainable:
                getattr(self, name).train(False)
        return self

    def load_backbone(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load ImageNet backbone weights (torchvision layout); the head is left as is."""
        backbone = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(backbone, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ModelError(
                "backbone weights do not match ResNet50: "
                f"missing {missing[:3]}, unexpected {unexpected[:3]}"
            )

    def param_groups(self, lr: float, head_lr: float | None) -> list[dict]:
        """Optimizer groups: the head at ``head_lr``, every other trainable stage at ``lr``."""
        head = [p for p in self.fc.parameters() if p.requires_grad]
        body = [
            p for n in self.trainable if n != "fc" for p in getattr(self, n).parameters()
        ]
        groups = [{"params": head, "lr": head_lr if head_lr is not None else lr, "name": "head"}]
        if body:
            groups.insert(0, {"params": body, "lr": lr, "name": "backbone"})
        return groups


@register(
    "resnet_frozen",
    preprocess=PREPROCESS,
    recipe=Recipe(epochs=20, batch_size=32, lr=1e-3),
    source="seed 000 §3.1.2",
    pretrained="resnet50_imagenet",
)
def resnet_frozen(*, num_classes: int = 2) -> FakeFaceResNet:
    """ResNet50, backbone frozen: 24,033,090 parameters, 525,058 trainable (2 classes)."""
    return FakeFaceResNet(num_classes=num_classes, trainable=("fc",))


@register(
    "resnet_ft",
    preprocess=PREPROCESS,
    # Seed 000 §6: differential LRs, layer4 at 1e-4 and the head at 1e-3.
    recipe=Recipe(epochs=20, batch_size=32, lr=1e-4, head_lr=1e-3),
    source="seed 000 §3.1.3",
    pretrained="resnet50_imagenet",
)
def resnet_ft(*, num_classes: int = 2) -> FakeFaceResNet:
    """ResNet50, layer4 + head trainable: 24,033,090 parameters, 15,489,794 trainable."""
    return FakeFaceResNet(num_classes=num_classes, trainable=("layer4", "fc"))
