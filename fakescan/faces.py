"""Faces inside photos: MTCNN face detection and the square face crop a face model sees.

The detector is MTCNN (Zhang et al. 2016: a proposal net over an image pyramid, then a
refine and an output net), with the weights the PyPI package ``facenet-pytorch`` ships
(``pnet.pt``/``rnet.pt``/``onet.pt``, MIT; plain state dicts read with
``torch.load(weights_only=True)``, no code unpickled). Only the weight files are used: the
package pins an old torch, so it is installed without its dependencies
(``pip install --no-deps facenet-pytorch==2.6.0``, which ``make`` does).

``FaceDetector.detect`` finds faces on a copy of the image scaled to at most
``DETECT_SIDE`` pixels (faces smaller than ``MIN_FACE`` of the image side are not looked
for), and returns boxes in the original image's pixels. ``face_box`` turns a detection into
the square crop a model is trained and scanned on: the box's longer side times
``1 + 2 * margin``, centred on the box.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from fakescan.errors import WeightsUnavailableError

DETECT_SIDE = 480  # detection runs on the image scaled to this longest side
MIN_FACE = 0.06  # of the detection image's shorter side: smaller faces are not searched
THRESHOLDS = (0.6, 0.7, 0.8)  # P-, R-, O-net face probabilities
PYRAMID_FACTOR = 0.709


@dataclass(frozen=True)
class Face:
    """A detected face: its box (x0, y0, x1, y1) in image pixels and the detector's score."""

    box: tuple[float, float, float, float]
    score: float
    # O-net's five points, (x, y) in image pixels: left eye, right eye, nose, mouth corners
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def face_box(face: Face, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The square crop around ``face``: side = the box's longer side x (1 + 2 x margin),
    centred on the box; it may reach beyond the image (the crop pads with the edge)."""
    x0, y0, x1, y1 = face.box
    side = face.side * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    s = max(1, round(side))
    return left, top, left + s, top + s


def crop_square(im, box: tuple[int, int, int, int]):
    """``im`` (PIL RGB) cut to ``box``, edges repeated where the box leaves the image."""
    from PIL import Image

    left, top, right, bottom = box
    w, h = im.size
    if left >= 0 and top >= 0 and right <= w and bottom <= h:
        return im.crop(box)
    a = np.asarray(im)
    ys = np.clip(np.arange(top, bottom), 0, h - 1)
    xs = np.clip(np.arange(left, right), 0, w - 1)
    return Image.fromarray(np.ascontiguousarray(a[ys][:, xs]))


def _weights_dir() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            "the face stage needs MTCNN's weights from the PyPI package facenet-pytorch: "
            "pip install --no-deps facenet-pytorch==2.6.0 (its own pins are too old; only its "
            "weight files are used)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _nets():
    import torch
    from torch import nn

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return self.conv4_2(x), torch.softmax(self.conv4_1(x), 1)

    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(len(x), -1)  # Caffe order
            x = self.prelu4(self.dense4(x))
            return self.dense5_2(x), torch.softmax(self.dense5_1(x), 1)

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.dense6_2 = nn.Linear(256, 2), nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(len(x), -1)
            x = self.prelu5(self.dense5(x))
            return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), 1)

    folder = _weights_dir()
    nets = []
    for cls, name in ((PNet, "pnet.pt"), (RNet, "rnet.pt"), (ONet, "onet.pt")):
        net = cls()
        state = torch.load(folder / name, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        nets.append(net.eval())
    return nets


class FaceDetector:
    """MTCNN over one image at a time (an ``RGB`` PIL image or an H x W x 3 uint8 array)."""

    def __init__(self, device: str = "cpu") -> None:
        import torch

        self.device = device
        # channels_last: the nets' 2x2 max-pools and small convolutions run 1.4-1.6x faster
        # on a CPU this way (same boxes to 1e-3 px; benchmarks/README.md, "Faces")
        self.pnet, self.rnet, self.onet = (n.to(device, memory_format=torch.channels_last)
                                           for n in _nets())

    def detect(self, image) -> list[Face]:
        """Faces in ``image``, highest score first, boxes in ``image``'s pixels."""
        import torch
        from PIL import Image

        im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        w, h = im.size
        scale = min(1.0, DETECT_SIDE / max(w, h))
        if scale < 1.0:
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                           Image.BILINEAR, reducing_gap=None)
        x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32))
        x = ((x - 127.5) * 0.0078125).permute(2, 0, 1)[None].to(self.device).contiguous(
            memory_format=torch.channels_last)
        with torch.inference_mode():
            boxes = self._detect(x)
        return [Face(tuple(float(v) / scale for v in b[:4]), float(b[4]),  # type: ignore[arg-type]
                     tuple((float(b[5 + k]) / scale, float(b[10 + k]) / scale) for k in range(5)))
                for b in boxes]

    # ------------------------------------------------------------------ the three stages
    def _detect(self, x) -> np.ndarray:
        import torch
        from torch.nn.functional import interpolate
        from torchvision.ops import nms

        h, w = x.shape[2:]
        min_face = max(12.0, MIN_FACE * min(h, w))
        scales, m = [], 12.0 / min_face
        side = min(h, w) * m
        while side >= 12:
            scales.append(m)
            m *= PYRAMID_FACTOR
            side *= PYRAMID_FACTOR
        cand = []
        for s in scales:
            xs = interpolate(x, size=(int(h * s + 1), int(w * s + 1)), mode="area")
            reg, prob = self.pnet(xs)
            b = _proposals(reg[0], prob[0, 1], s, THRESHOLDS[0])
            if len(b):
                cand.append(b[nms(b[:, :4], b[:, 4], 0.5)])
        if not cand:
            return np.zeros((0, 15))
        b = torch.cat(cand)
        b = b[nms(b[:, :4], b[:, 4], 0.7)]
        b = _square(_regress(b[:, :5], b[:, 5:9]))
        for net, size, thr in ((self.rnet, 24, THRESHOLDS[1]), (self.onet, 48, THRESHOLDS[2])):
            if not len(b):
                return np.zeros((0, 15))
            crops = _crops(x, b, size)
            out = net(crops)
            reg, prob = out[0], out[-1][:, 1]
            keep = prob > thr
            bk = b[keep]
            b = _regress(torch.cat([bk[:, :4], prob[keep, None]], 1), reg[keep])
            if net is self.onet:  # the five points, relative to the box O-net was shown
                w, h = (bk[:, 2] - bk[:, 0] + 1)[:, None], (bk[:, 3] - bk[:, 1] + 1)[:, None]
                pts = out[1][keep]
                b = torch.cat([b, pts[:, :5] * w + bk[:, :1] - 1,
                               pts[:, 5:] * h + bk[:, 1:2] - 1], 1)
            b = b[nms(b[:, :4], b[:, 4], 0.7)]
            if net is self.rnet:
                b = _square(b)
        b = b[b[:, 4].argsort(descending=True)]
        return b.cpu().numpy()


def _proposals(reg, prob, scale: float, thr: float):
    """P-net cells over ``thr`` -> boxes (x0, y0, x1, y1, score, 4 regressions)."""
    import torch

    ys, xs = torch.nonzero(prob >= thr, as_tuple=True)
    if len(ys) == 0:
        return torch.zeros((0, 9))
    q1x, q1y = ((2 * xs + 1) / scale).floor(), ((2 * ys + 1) / scale).floor()
    q2x, q2y = ((2 * xs + 12) / scale).floor(), ((2 * ys + 12) / scale).floor()
    return torch.stack([q1x, q1y, q2x, q2y, prob[ys, xs], *reg[:, ys, xs]], 1).float()


def _regress(b, reg):
    """Apply the nets' box regression (offsets in box widths/heights)."""
    import torch

    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    return torch.stack([b[:, 0] + reg[:, 0] * w, b[:, 1] + reg[:, 1] * h,
                        b[:, 2] + reg[:, 2] * w, b[:, 3] + reg[:, 3] * h, b[:, 4]], 1)


def _square(b):
    import torch

    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = torch.maximum(w, h)
    x0, y0 = b[:, 0] + w / 2 - side / 2, b[:, 1] + h / 2 - side / 2
    return torch.stack([x0, y0, x0 + side, y0 + side, b[:, 4]], 1)


def _crops(x, b, size: int):
    """Every box of ``b`` out of ``x`` (1 x 3 x H x W), resampled to ``size`` squared in one
    batched call (zero beyond the image's edges)."""
    import torch
    from torchvision.ops import roi_align

    rois = torch.cat([torch.zeros((len(b), 1), dtype=x.dtype, device=x.device),
                      b[:, :4] - torch.tensor([1.0, 1.0, 0.0, 0.0], device=x.device)], 1)
    return roi_align(x, rois, (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


@cache
def detector(device: str = "cpu") -> FaceDetector:
    """One detector per process and device (weights loaded once)."""
    return FaceDetector(device)
