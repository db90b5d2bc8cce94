"""Training data: samples -> resized uint8 tensors (cached in RAM when small) -> augmentation.

Images are decoded and resized once with the reference path (``fakescan.imaging``); small
datasets are kept in memory as uint8 so epochs are bound by the model, not by JPEG/PNG decode.
Augmentations run on the resized uint8 tensors; normalisation happens on the batch, on the
device, with the model's ``Preprocess``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torchvision.transforms import v2

from fakescan.config import Preprocess, Recipe
from fakescan.data.layouts import Sample
from fakescan.imaging import decode_rgb, load_uint8, model_input
from fakescan.train.pool import map_images

CACHE_LIMIT_BYTES = 4 << 30


def _load(args: tuple[str, Preprocess]) -> np.ndarray:
    path, pp = args
    return load_uint8(path, pp).numpy()


def preload(samples: list[Sample], pp: Preprocess, workers: int = 2) -> list[torch.Tensor]:
    """Decode + resize every sample once, in a process pool."""
    arrays = map_images(_load, [(str(s.path), pp) for s in samples], workers)
    return [torch.from_numpy(a) for a in arrays]


def should_cache(n: int, pp: Preprocess) -> bool:
    return n * 3 * pp.input_size**2 <= CACHE_LIMIT_BYTES


class RandomZoom(torch.nn.Module):
    """Random framing: a square window whose side is a log-uniform share ``s`` of the frame
    (``s < 1`` zooms in, ``s > 1`` zooms out, the frame mirrored beyond its edges), centred
    within +-10% of the middle, resized back to the input. Sources frame faces differently
    (a face fills 0.55 of a StyleGAN frame, 0.86 of an Unsplash crop, 0.98 of a UTKFace
    crop); spread over the same range, framing stops telling sources - and classes - apart.
    """

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = float(np.exp(torch.empty(1).uniform_(np.log(self.lo), np.log(self.hi)).item()))
        jx, jy = (torch.empty(2).uniform_(-0.1, 0.1) * torch.tensor([w, h])).tolist()
        side_w, side_h = max(2, round(s * w)), max(2, round(s * h))
        left = round((w - side_w) / 2 + jx)
        top = round((h - side_h) / 2 + jy)
        if s > 1:  # mirror the frame out to the window, then take it
            pl, pt = max(0, -left), max(0, -top)
            pr, pb = max(0, left + side_w - w), max(0, top + side_h - h)
            pl, pr = min(pl, w - 1), min(pr, w - 1)
            pt, pb = min(pt, h - 1), min(pb, h - 1)
            x = torch.nn.functional.pad(x[None].float(), (pl, pr, pt, pb), mode="reflect")[0]
            left, top = left + pl, top + pt
            x = x.round().to(torch.uint8)
        left = min(max(0, left), x.shape[-1] - min(side_w, x.shape[-1]))
        top = min(max(0, top), x.shape[-2] - min(side_h, x.shape[-2]))
        x = x[..., top: top + side_h, left: left + side_w]
        return v2.functional.resize(x, [h, w], antialias=True)


def jpeg_roundtrip(hwc: np.ndarray, quality: int) -> np.ndarray:
    """An RGB uint8 image through a JPEG encode and decode (Pillow's libjpeg)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(hwc)).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))  # writable: torch takes it as is


class RandomReencode(torch.nn.Module):
    """Random resolution and encoding: down to a random side in ``sides``, JPEG at a random
    quality with probability ``p_jpeg`` (else lossless), back to the input size. Sources come
    at their own resolution and compression; after this, every training image has a random
    history of both."""

    def __init__(self, sides: tuple[int, int] = (96, 320), quality: tuple[int, int] = (55, 95),
                 p_jpeg: float = 0.75) -> None:
        super().__init__()
        self.sides, self.quality, self.p_jpeg = sides, quality, p_jpeg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        side = int(torch.randint(self.sides[0], self.sides[1] + 1, ()).item())
        y = v2.functional.resize(x, [side, side], antialias=True) if side != h else x
        if torch.rand(()).item() < self.p_jpeg:
            q = int(torch.randint(self.quality[0], self.quality[1] + 1, ()).item())
            y = torch.from_numpy(jpeg_roundtrip(y.permute(1, 2, 0).numpy(), q)).permute(2, 0, 1)
        return v2.functional.resize(y, [h, w], antialias=True) if side != h else y


def train_transform(recipe: Recipe, size: int) -> v2.Transform | None:
    """The seed augmentations (flip, rotation, colour jitter; seed 002's vertical flip), plus
    the optional CNNDetection blur + JPEG re-compression, sharpness jitter, scale jitter and
    random grey."""
    if not recipe.augment:
        return None
    t: list[v2.Transform] = [v2.RandomHorizontalFlip()]
    if recipe.zoom:
        t.append(RandomZoom(*recipe.zoom))
    if recipe.scale_jitter:
        # framing and face size stop carrying the label (the sources crop faces differently)
        t.append(v2.RandomResizedCrop(size, scale=(recipe.scale_jitter, 1.0), ratio=(0.8, 1.25),
                                      antialias=True))
    if recipe.vflip:
        t.append(v2.RandomVerticalFlip())
    if recipe.rotation:
        t.append(v2.RandomRotation(recipe.rotation))
    if recipe.color_jitter:
        cj = recipe.color_jitter
        t.append(v2.ColorJitter(brightness=cj, contrast=cj, saturation=cj))
    if recipe.blur_jpeg:
        t.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 3.0))], p=0.5))
        t.append(v2.RandomApply([v2.JPEG(quality=(30, 100))], p=0.5))
    if recipe.sharpness_jitter:
        # How sharp a photo is depends on how its source captured and resized it; the hard
        # set's real faces are blurrier than its fakes, FFHQ's are not. Blur or sharpen every
        # image at random so sharpness stops telling the classes apart.
        t.append(v2.RandomApply([v2.RandomChoice([
            v2.GaussianBlur(5, sigma=(0.3, 1.5)), v2.RandomAdjustSharpness(4.0, p=1.0)])],
            p=0.67))
    if recipe.grayscale:
        t.append(v2.RandomGrayscale(recipe.grayscale))
    if recipe.reencode:  # last: the model sees an image with a random history
        t.append(RandomReencode())
    return v2.Compose(t)


def class_transforms(recipe: Recipe, classes: tuple[str, ...]) -> dict[int, v2.Transform]:
    """Per-class augmentations applied before ``train_transform`` (``sharpness_match``).

    The hard set's real faces are blurrier than its fakes, and a model learns "sharp = fake",
    which calls every sharp real photo fake. Blurring some fakes and sharpening some
    reals makes both classes span the same range of sharpness."""
    if not (recipe.augment and recipe.sharpness_match):
        return {}
    # Tuned on the hard set's training images at 128 px: the Laplacian-std distributions of
    # the two classes go from a Kolmogorov-Smirnov distance of 0.44 to 0.12 (medians 16.8, 17.2).
    blur = v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 0.7))], p=0.6)
    sharpen = v2.RandomApply([v2.RandomAdjustSharpness(1.5, p=1.0)], p=0.3)
    return {i: (sharpen if c == "real" else blur) for i, c in enumerate(classes)}


class ImageSamples(TorchDataset):
    """(uint8 CHW image, class index) pairs, from a RAM cache or decoded on access."""

    def __init__(
        self,
        samples: list[Sample],
        classes: tuple[str, ...],
        pp: Preprocess,
        transform: v2.Transform | None = None,
        cache: list[torch.Tensor] | None = None,
        perturb=None,
        class_transform: dict[int, v2.Transform] | None = None,
        blend: dict[int, tuple] | None = None,
    ) -> None:
        """``perturb``: a callable applied to the decoded PIL image before the resize
        (the robustness sweep); ``class_transform``: per-class augmentation applied before
        ``transform``; ``blend``: sample index -> face landmarks of the items that are
        self-blended pseudo-fakes of their image (``fakescan.train.selfblend``)."""
        self.class_transform = class_transform or {}
        self.blend = blend or {}
        self.samples = samples
        self.perturb = perturb
        self.targets = [classes.index(s.label) for s in samples]
        self.pp = pp
        self.transform = transform
        self.cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.perturb is not None:
            im = self.perturb(decode_rgb(self.samples[i].path))
            x = torch.from_numpy(model_input(im, self.pp))
        elif self.cache is not None:
            x = self.cache[i]
        else:
            x = load_uint8(self.samples[i].path, self.pp)
        if i in self.blend:
            from fakescan.train.selfblend import self_blend

            rng = np.random.default_rng(int(torch.randint(2**62, ()).item()))
            x = self_blend(x, self.blend[i], rng)[0]
        y = self.targets[i]
        if y in self.class_transform:
            x = self.class_transform[y](x)
        if self.transform is not None:
            x = self.transform(x)
        return x, y


def balance_weights(samples: list[Sample],
                    source_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Per-sample weights under which every class weighs the same, and inside a class every
    source: a source of 2,000 real faces does not drown one of 500. ``source_weights`` gives
    a source W times the share of each class it holds (1 for a source it does not name); a
    key ``SOURCE/CLASS`` weighs that one class of the source alone, and wins over ``SOURCE``.
    The classes stay equal either way."""
    sw = source_weights or {}

    def weight(label: str, source: str) -> float:
        return sw.get(f"{source}/{label}", sw.get(source, 1.0))

    groups: dict[tuple[str, str], int] = {}
    for s in samples:
        groups[(s.label, s.source)] = groups.get((s.label, s.source), 0) + 1
    per_class: dict[str, float] = {}
    for label, source in groups:
        per_class[label] = per_class.get(label, 0.0) + weight(label, source)
    n_classes = len(per_class)
    w = [weight(s.label, s.source)
         / (n_classes * per_class[s.label] * groups[(s.label, s.source)]) for s in samples]
    return torch.tensor(w, dtype=torch.double)


def group_partners(samples: list[Sample]) -> list[list[int]]:
    """For each sample, the indices of the samples of its group with another label (a face
    swap's real video, the fakes made from a real): [] where it has none."""
    by_group: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        if s.group:
            by_group.setdefault(s.group, []).append(i)
    return [[j for j in by_group.get(s.group, ()) if samples[j].label != s.label]
            if s.group else [] for s in samples]


class PairedSampler(torch.utils.data.Sampler[int]):
    """Weighted draws with replacement, each drawn sample that has partners
    (``group_partners``) followed at once by one of them, so a fake and the real it was made
    from land in one batch and the gradient compares them. ``n`` indices an epoch.

    A partnered sample's draw weight is halved, since each of its draws brings two images, so
    a pair is seen as often as its two images were under ``weights`` on average; the
    unpartnered samples of each class are then scaled so that every class still weighs the
    same in an epoch (``targets``: each sample's class)."""

    def __init__(self, weights: torch.Tensor, partners: list[list[int]], n: int,
                 generator: torch.Generator, targets: list[int]) -> None:
        self.partners = partners
        draw = weights.double() * torch.tensor([0.5 if p else 1.0 for p in partners],
                                               dtype=torch.double)
        self.weights = _rebalance(draw, partners, targets)
        self.n = n
        self.generator = generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return itertools.islice(self._stream(), self.n)

    def _stream(self):
        while True:
            for i in torch.multinomial(self.weights, self.n, replacement=True,
                                       generator=self.generator).tolist():
                yield i
                if self.partners[i]:
                    k = int(torch.randint(len(self.partners[i]), (), generator=self.generator))
                    yield self.partners[i][k]


def _rebalance(draw: torch.Tensor, partners: list[list[int]],
               targets: list[int]) -> torch.Tensor:
    """``draw`` with each class's unpartnered weights scaled so that the classes' expected
    shares of the images drawn (a partnered draw counting its partner too) are equal; as it
    was where a class has no unpartnered samples to scale."""
    seen = draw.clone()  # expected images per sample, per unit of draws
    for i, ps in enumerate(partners):
        for j in ps:
            seen[j] += draw[i] / len(ps)
    classes = sorted(set(targets))
    t = torch.tensor(targets)
    free = torch.tensor([not p for p in partners])
    paired_c = {c: float(seen[(t == c) & ~free].sum()) for c in classes}
    free_c = {c: float(seen[(t == c) & free].sum()) for c in classes}
    share = float(seen.sum()) / len(classes)
    if any(free_c[c] <= 0 or paired_c[c] >= share for c in classes):
        return draw
    out = draw.clone()
    for c in classes:
        out[(t == c) & free] *= (share - paired_c[c]) / free_c[c]
    return out


def make_loader(ds: ImageSamples, batch_size: int, *, shuffle: bool, seed: int, workers: int,
                pin: bool, weights: torch.Tensor | None = None,
                partners: list[list[int]] | None = None) -> torch.utils.data.DataLoader:
    """Batches of ``ds``; with ``weights``, an epoch of ``len(ds)`` draws (with replacement)
    in proportion to them; with ``partners`` as well, each draw brings a partner along
    (``PairedSampler``)."""
    g = torch.Generator().manual_seed(seed)
    sampler = None
    if weights is not None and partners is not None:
        sampler = PairedSampler(weights, partners, len(ds), g, ds.targets)
    elif weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(weights, len(ds), replacement=True,
                                                         generator=g)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=g,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin,
        drop_last=False,
    )
