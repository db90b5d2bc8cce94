"""A deterministic, labelled, synthetic face set: what the demo, tests and benchmarks use.

Every image is a face-like drawing (background, head, hair, eyes, brows, nose, mouth,
shoulders, film grain) whose size (128-1024 px, log-uniform), aspect and file format (JPEG
at quality 70-95, PNG, WebP) are drawn independently of the label, so format and size carry
no signal. "fake" images carry what generator upsampling layers leave behind: a faint
periodic grid (spectral peaks at ``PERIOD_FRACTION`` cycles per image side, 6-10 grey levels,
random phase), invisible at a glance but learnable. It is not a substitute for real data.

Image ``i`` depends only on ``(seed, i)``, so any subset can be regenerated and two runs give
byte-identical trees.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fakescan.config import DEFAULT_RATIOS
from fakescan.data.layouts import Sample
from fakescan.data.split import stratified_split

FORMATS = ("jpeg", "png", "webp")
EXT = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
PERIOD_FRACTION = 16  # grid cycles per image side (an 8 px period at a 128 px model input)
AMPLITUDE = (6.0, 10.0)  # grey levels of the grid, drawn per image
SKIN = np.array(
    [[255, 224, 189], [234, 192, 134], [198, 134, 66], [141, 85, 36], [224, 172, 105],
     [255, 205, 148], [120, 72, 40]], dtype=np.float64,
)


def _rng(seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, i])


def render_face(rng: np.random.Generator, width: int, height: int, fake: bool) -> np.ndarray:
    """An RGB uint8 face-like image; ``fake`` adds the periodic generation artifact."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = width, height
    top, bottom = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    bg = (1 - t) * top + t * bottom
    img = Image.fromarray(np.broadcast_to(bg, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    s = min(w, h)
    cx, cy = w / 2 + rng.uniform(-0.06, 0.06) * s, h / 2 + rng.uniform(-0.05, 0.05) * s
    fw, fh = s * rng.uniform(0.26, 0.34), s * rng.uniform(0.34, 0.42)
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.9, 1.05, 3)
    skin_t = tuple(int(c) for c in np.clip(skin, 0, 255))
    hair = tuple(int(c) for c in rng.uniform(10, 140, 3))
    shirt = tuple(int(c) for c in rng.uniform(0, 255, 3))
    d.ellipse([cx - 1.6 * fw, cy + 0.9 * fh, cx + 1.6 * fw, cy + 2.6 * fh], fill=shirt)
    d.rectangle([cx - 0.35 * fw, cy + 0.5 * fh, cx + 0.35 * fw, cy + 1.1 * fh], fill=skin_t)
    d.ellipse([cx - 1.1 * fw, cy - 1.15 * fh, cx + 1.1 * fw, cy + 0.3 * fh], fill=hair)
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin_t)
    eye_y, eye_dx = cy - rng.uniform(0.1, 0.25) * fh, rng.uniform(0.35, 0.5) * fw
    ew, eh = fw * rng.uniform(0.18, 0.26), fh * rng.uniform(0.06, 0.1)
    iris = tuple(int(c) for c in rng.uniform(20, 120, 3))
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        d.ellipse([ex - ew, eye_y - eh, ex + ew, eye_y + eh], fill=(245, 245, 240))
        d.ellipse([ex - eh, eye_y - eh, ex + eh, eye_y + eh], fill=iris)
        d.line([ex - ew, eye_y - 2.6 * eh, ex + ew, eye_y - 3 * eh], fill=hair,
               width=max(1, int(eh * 0.8)))
    nose = tuple(int(c * 0.8) for c in skin_t)
    d.line([cx, eye_y + eh, cx - 0.08 * fw, cy + 0.25 * fh, cx + 0.05 * fw, cy + 0.3 * fh],
           fill=nose, width=max(1, int(s / 150)))
    mw, my = fw * rng.uniform(0.3, 0.5), cy + rng.uniform(0.5, 0.62) * fh
    lips = tuple(int(c) for c in np.clip(rng.uniform([150, 40, 50], [220, 110, 110]), 0, 255))
    d.chord([cx - mw, my - 0.12 * fh, cx + mw, my + 0.12 * fh], 0, 180, fill=lips)
    img = img.filter(ImageFilter.GaussianBlur(radius=max(0.6, s / 300)))

    a = np.asarray(img, dtype=np.float32)
    a += rng.normal(0.0, rng.uniform(2.0, 4.5), a.shape).astype(np.float32)  # sensor grain
    if fake:
        amp = rng.uniform(*AMPLITUDE)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        # A checkerboard-like product pattern, as transposed-convolution upsampling leaves:
        # its spectral peaks sit on the diagonals, where natural edges put little energy.
        # PERIOD_FRACTION cycles along each axis: a square generator output, resized to w x h.
        fx, fy = PERIOD_FRACTION / w, PERIOD_FRACTION / h
        grid = np.cos(2 * np.pi * fx * xx + px) * np.cos(2 * np.pi * fy * yy + py)
        a += amp * grid[..., None]
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=quality)
    elif fmt == "webp":
        im.save(buf, "WEBP", quality=quality, method=4)
    else:
        im.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def synth_image(seed: int, i: int, label: str, size_range: tuple[int, int]) -> tuple[bytes, str]:
    """Bytes and format of image ``i``; size, aspect and format do not depend on ``label``."""
    rng = _rng(seed, i)
    lo, hi = size_range
    side = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    aspect = rng.choice([1.0, 1.0, 0.8, 1.25])
    w, h = (side, int(side / aspect)) if aspect >= 1 else (int(side * aspect), side)
    fmt = FORMATS[rng.integers(len(FORMATS))]
    quality = int(rng.integers(70, 96))
    arr = render_face(rng, max(w, 16), max(h, 16), fake=(label == "fake"))
    return encode(arr, fmt, quality), fmt


def _write_one(args: tuple[int, int, str, str, tuple[int, int]]) -> None:
    seed, i, label, out, size_range = args
    data, fmt = synth_image(seed, i, label, size_range)
    Path(out).with_suffix(EXT[fmt]).write_bytes(data)


def labels_for(n: int, seed: int) -> list[str]:
    """Balanced labels in a seeded order (so file names carry no label)."""
    labels = np.array(["real"] * (n // 2) + ["fake"] * (n - n // 2))
    return list(np.random.default_rng([seed, 2**31]).permutation(labels))


def make_synth(
    out: Path,
    *,
    n: int = 400,
    seed: int = 0,
    ratios: tuple[float, float, float] = DEFAULT_RATIOS,
    size_range: tuple[int, int] = (128, 1024),
    workers: int = 2,
) -> dict[str, dict[str, int]]:
    """Write ``n`` images to ``out/{train,valid,test}/{real,fake}/synth_NNNNN.ext``.

    Returns counts per split and class.
    """
    out = Path(out)
    labels = labels_for(n, seed)
    # Split on placeholder samples: the split depends only on (n, seed, ratios).
    samples = [Sample(Path(f"synth_{i:06d}"), lab) for i, lab in enumerate(labels)]
    splits = stratified_split(samples, ratios, seed)
    jobs, counts = [], {}
    for split, items in splits.items():
        counts[split] = {"real": 0, "fake": 0}
        for s in items:
            i = int(s.path.name.split("_")[1])
            folder = out / split / s.label
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((seed, i, s.label, str(folder / s.path.name), size_range))
            counts[split][s.label] += 1
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_one, jobs, chunksize=8))
    else:
        for j in jobs:
            _write_one(j)
    return counts
