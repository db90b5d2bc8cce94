"""Robustness sweep for ``fakescan eval --robustness``: the same images after the everyday
damage a photo collection carries (JPEG re-compression, blur, downscaling), each applied to
the decoded full-resolution image before the model's own preprocessing."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter


@dataclass(frozen=True)
class Perturb:
    """A picklable image perturbation (DataLoader workers receive it)."""

    kind: str  # jpeg | blur | downscale
    value: float

    @property
    def name(self) -> str:
        return {"jpeg": f"JPEG q{int(self.value)}", "blur": f"blur sigma {self.value:g}",
                "downscale": f"downscale x{self.value:g}"}[self.kind]

    def __call__(self, im: Image.Image) -> Image.Image:
        if self.kind == "jpeg":
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=int(self.value))
            return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        if self.kind == "blur":
            return im.filter(ImageFilter.GaussianBlur(radius=self.value))
        w, h = im.size
        small = (max(1, round(w * self.value)), max(1, round(h * self.value)))
        return im.resize(small, Image.BILINEAR, reducing_gap=None)


SWEEP = (
    Perturb("jpeg", 90), Perturb("jpeg", 70), Perturb("jpeg", 50), Perturb("jpeg", 30),
    Perturb("blur", 1.0), Perturb("blur", 2.0),
    Perturb("downscale", 0.5), Perturb("downscale", 0.25),
)
