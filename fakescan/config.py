"""Frozen configuration objects shared by training, every decoder, export and bench.

``Preprocess`` is the single source of truth for how an image becomes a tensor for a model:
no other module keeps its own copy of a mean, a std or an input size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Defaults written once (the command line, the library and the scripts read them from here)
DEFAULT_RATIOS = (0.8, 0.1, 0.1)  # train / valid / test, for datasets without splits
DEFAULT_BATCH = 32  # images per batch: scans, bench, calibration, the runtimes' autotuning
DEFAULT_FACE_MARGIN = 0.3  # face crops: extra room on each side, a share of the box's side
DECODE_TIMEOUT_S = 30.0  # seconds one file may take to read, probe and decode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Preprocess:
    """How a decoded image is turned into model input.

    As in the seeds: convert to RGB, resize directly to a square ``input_size`` (no crop)
    with bilinear interpolation and antialiasing, scale pixels to 0..1, then normalise with
    ``mean``/``std`` (given on the 0..1 scale). With ``crop="face"`` the model sees each
    detected face's square crop instead of the whole image.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "bilinear_antialias"
    # "none": the whole image; "face": each face MTCNN finds, cut as a square of its box's
    # longer side x (1 + 2 x face_margin), centred on the box (``fakescan.faces``)
    crop: str = "none"
    face_margin: float = DEFAULT_FACE_MARGIN

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
        }
        if self.crop != "none":
            d.update(crop=self.crop, face_margin=self.face_margin)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(
            input_size=int(d["input_size"]),
            mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
            resize=str(d.get("resize", "bilinear_antialias")),
            crop=str(d.get("crop", "none")),
            face_margin=float(d.get("face_margin", 0.3)),
        )


@dataclass(frozen=True)
class Recipe:
    """A training recipe: the per-architecture defaults of the seeds, overridable from the CLI."""

    name: str = "seed"  # the named recipe this started from (``fakescan.train.recipes``)
    epochs: int = 20
    batch_size: int = DEFAULT_BATCH
    lr: float = 1e-3
    head_lr: float | None = None  # resnet_ft: LR of the head (layer4 uses ``lr``)
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0  # linear LR warm-up from 0 over this many epochs (timm-style)
    patience: int = 5  # early stopping on validation loss
    plateau_patience: int = 2  # ReduceLROnPlateau
    plateau_factor: float = 0.1
    augment: bool = True
    vflip: bool = False  # seed 002 adds vertical flip ...
    rotation: float = 10.0  # ... and rotation 15 degrees
    color_jitter: float = 0.1
    blur_jpeg: bool = False  # CNNDetection's blur + JPEG re-compression augmentation
    sharpness_jitter: bool = False  # random blur or sharpening: sharpness carries no label
    # class-conditional: blur some fakes, sharpen some reals, so the classes' sharpness
    # distributions overlap (the hard set's reals are blurrier than its fakes)
    sharpness_match: bool = False
    scale_jitter: float = 0.0  # >0: random resized crops keeping this much area at least
    grayscale: float = 0.0  # probability of turning a training image grey
    # source-neutral input (framing, resolution and encoding carry no signal):
    # random framing, the crop's side a log-uniform share of the frame in this range (<1 zooms
    # in, >1 zooms out with the frame mirrored at the edges); None = off
    zoom: tuple[float, float] | None = None
    # every image re-encoded at random: downscaled to a random side (96-320 px), JPEG at
    # quality 55-95 three times in four (else lossless), scaled back to the input
    reencode: bool = False
    # sample so that every class, and every source inside a class, weighs the same (None:
    # when there are several sources)
    balance: bool | None = None
    # balanced sampling, with these sources drawn W times as often inside each class they
    # hold (a source that is hard to learn gets more of every epoch; both of its classes
    # alike, so its look carries no label); a key SOURCE/CLASS weighs that class of the
    # source alone (``balance_weights``); None: every source weighs the same
    source_weights: dict[str, float] | None = None
    # self-blended pseudo-fakes: each training real with a detectable face also appears as a
    # fake, blended onto itself inside a face mask (``fakescan.train.selfblend``)
    self_blend: bool = False
    # balanced sampling with each drawn sample's group partner of the other class in the same
    # batch (a face swap beside the real video it was made from: ``PairedSampler``)
    pair_groups: bool = False
    # threshold policy: None = Youden's J on validation; a number = the most sensitive threshold
    # whose false-positive rate on validation reals stays at or under it
    max_fpr: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:  # a recipe read back from JSON has lists
        if self.zoom is not None:
            object.__setattr__(self, "zoom", tuple(float(z) for z in self.zoom))
        if self.source_weights is not None:
            object.__setattr__(self, "source_weights",
                               {str(k): float(v) for k, v in self.source_weights.items()})

    def replace(self, **changes: Any) -> Recipe:
        """A copy with the given fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
