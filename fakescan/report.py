"""``fakescan report``: one self-contained HTML page from a scan's verdicts, for people who
review suspected fakes by looking, not reading.

The page holds the summary, a p_fake histogram with the threshold marked, the flagged images
as a grid of thumbnails sorted by p_fake (path, score, size; a click opens the file), the
errors grouped by code, and the model and settings the scan ran with. Nothing is fetched:
thumbnails are embedded JPEGs, the histogram an inline SVG, no script. Only the top ``top``
flagged images get a thumbnail, so a report of 100,000 rows stays small and fast to write.
With ``evidence``, each of those thumbnails has a Grad-CAM overlay beside it: where the
model looked (torch runtime, model folders only).
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fakescan.card import label_is_fake
from fakescan.errors import UsageError

THUMB = 144  # thumbnail side, pixels
BINS = 40


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load_rows(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of a CSV/JSONL/JSON verdicts file, and the JSON document's summary if any."""
    from fakescan.scanner.output import read_rows

    if not path.is_file():
        raise UsageError(f"no verdicts file {path}")
    meta: dict[str, Any] = {}
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise UsageError(f"{path} is not a fakescan JSON document: {e}") from None
        meta = {k: v for k, v in doc.items() if k != "rows"}
        return list(doc.get("rows", [])), meta
    return read_rows(str(path)), meta


def _thumbnail(path: str, box: str | None) -> str | None:
    """A JPEG data URI of the file (or of the face that decided it), or None."""
    from PIL import Image

    from fakescan.imaging import decode_rgb

    try:
        im = decode_rgb(path, draft=2 * THUMB)
        if box:
            x0, y0, x1, y1 = (int(float(v)) for v in box.split(","))
            from fakescan.faces import crop_square

            im = crop_square(im, (x0, y0, x1, y1))
        im.thumbnail((THUMB, THUMB), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a file that no longer reads gets no thumbnail
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _histogram_svg(scores: np.ndarray, threshold: float | None) -> str:
    w, h, pad = 640, 224, 36
    counts, edges = np.histogram(scores, bins=BINS, range=(0.0, 1.0))
    top = max(int(counts.max()) if len(counts) else 1, 1)
    bw = (w - 2 * pad) / BINS
    bars = []
    for i, c in enumerate(counts):
        bh = (h - 2 * pad) * c / top
        x = pad + i * bw
        colour = "#c0392b" if threshold is not None and edges[i] >= threshold else "#2e86c1"
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{h - pad - bh:.1f}" width="{bw - 1:.1f}" '
                    f'height="{bh:.1f}" fill="{colour}"><title>{edges[i]:.3f}-{edges[i + 1]:.3f}'
                    f": {c}</title></rect>")
    marks = "".join(f'<text x="{pad + t * (w - 2 * pad):.0f}" y="{h - pad + 14}" font-size="11" '
                    f'text-anchor="middle">{t:g}</text>' for t in (0, 0.25, 0.5, 0.75, 1))
    line = ""
    if threshold is not None:
        x = pad + threshold * (w - 2 * pad)
        line = (f'<line id="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{pad - 10}" '
                f'y2="{h - pad}" stroke="black" stroke-width="2" stroke-dasharray="5,3"/>'
                # the label on the line's right, or its left where it would leave the figure
                f'<text x="{x + 4 if threshold < 0.75 else x - 4:.1f}" y="{pad - 12}" '
                f'font-size="12" text-anchor="{"start" if threshold < 0.75 else "end"}">'
                f"threshold {threshold:.3f}</text>")
    return (f'<svg id="histogram" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            f'role="img" aria-label="p_fake histogram">'
            f'<line x1="{pad}" x2="{w - pad}" y1="{h - pad}" y2="{h - pad}" stroke="#555"/>'
            f'{"".join(bars)}{marks}{line}'
            f'<text x="{w / 2}" y="{h - 4}" font-size="11" text-anchor="middle">p_fake '
            f"(y: images, max {top:,})</text></svg>")


def fake_rule(rows: list[dict[str, Any]], model: str | None,
              models: Counter) -> Callable[[str], bool]:
    """Which verdict labels are fake: the model card's rule where the scan's model can be
    found (``model``, else the rows' model by name), else read from the rows themselves (the
    label of ok rows under their threshold is the negative one: ``real`` for most models)."""
    from fakescan.errors import FakescanError
    from fakescan.scanner.model import resolve_scan_model

    ident = models.most_common(1)[0][0] if models else ""
    name = ident.split("@")[0]
    try:
        card = resolve_scan_model(model or (None if name == "fakescan-default" else name)).card
        if not ident or card.identity == ident:
            return card.is_fake
    except FakescanError:
        pass
    below = Counter(r.get("label") for r in rows if r.get("status") == "ok"
                    and (p := _float(r.get("p_fake"))) is not None
                    and (t := _float(r.get("threshold"))) is not None and p < t)
    negative = below.most_common(1)[0][0] if below else "real"
    return lambda label: label_is_fake(label, negative)


@dataclass(frozen=True)
class ReportFigures:
    """The figures a report shows (``to_dict`` for ``--json``); counted by the scan's own
    ``Summary``."""

    rows: int
    scanned: int
    ok: int
    fake: int
    real: int
    errors: int
    error_codes: dict[str, int]
    no_face: int
    warnings: int
    thumbnails: int
    threshold: float | None
    models: dict[str, int]
    path: str = ""
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tile(r: dict[str, Any], cam: str | None) -> dict[str, Any]:
    """One flagged image's thumbnail card."""
    p = Path(r["path"])
    return {"href": p.resolve().as_uri() if p.is_absolute() or p.exists() else str(p),
            "path": str(p), "name": p.name, "p_fake": float(r["p_fake"]),
            "thumbnail": _thumbnail(r["path"], r.get("face_box") or None), "evidence": cam,
            "size": f"{r.get('width')}x{r.get('height')}" if r.get("width") else "",
            "faces": r.get("faces") if r.get("faces") not in (None, "") else None}


def _page(**context: Any) -> str:
    """The review page, from ``templates/report.html.j2`` (autoescaped)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("fakescan", "templates"),
                      autoescape=select_autoescape(["j2"], default_for_string=True))
    return env.get_template("report.html.j2").render(thumb=THUMB, **context)


def build(rows: list[dict[str, Any]], meta: dict[str, Any], *, title: str, top: int = 200,
          evidence: bool = False, model: str | None = None,
          errors_shown: int = 20) -> tuple[str, ReportFigures]:
    """The page's HTML and the figures it shows."""
    from fakescan.scanner.rows import Row
    from fakescan.scanner.summary import Summary

    ok = [r for r in rows if r.get("status") == "ok"]
    scores = np.array([s for r in ok if (s := _float(r.get("p_fake"))) is not None])
    thresholds = Counter(r.get("threshold") for r in ok)
    threshold = _float(thresholds.most_common(1)[0][0]) if thresholds else None
    models = Counter(r.get("model", "") for r in rows if r.get("model"))
    is_fake = fake_rule(rows, model, models)
    counted = Summary(out=title, model=", ".join(models), is_fake=is_fake)
    counted.add([Row.from_dict(r) for r in rows])  # the scan's own count, by the same rule
    flagged = sorted((r for r in ok if is_fake(r.get("label") or "")),
                     key=lambda r: -(_float(r.get("p_fake")) or 0.0))
    errors: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("status") not in ("ok", None):
            errors.setdefault(r.get("error_code") or r.get("status"), []).append(r)

    if evidence and model is None and models:  # the scan's model, by name in the store
        name = models.most_common(1)[0][0].split("@")[0]
        model = "" if name == "fakescan-default" else name
    gradcam = _Evidence(model) if evidence else None
    tiles = [_tile(r, gradcam(r) if gradcam else None) for r in flagged[:top]]
    figures = ReportFigures(
        rows=len(rows), scanned=counted.scanned, ok=len(ok), fake=counted.fake,
        real=counted.real, errors=counted.errors, error_codes=counted.error_codes,
        no_face=counted.no_face, warnings=counted.warnings, thumbnails=len(tiles),
        threshold=threshold, models=dict(models))
    settings = {**{k: v for k, v in meta.get("summary", {}).items()
                   if k not in ("scanned", "resumed", "fake", "real", "errors", "error_codes",
                                "no_face", "warnings", "exit_code")},
                "threshold": threshold, "model": ", ".join(models) or meta.get("model", "")}
    page = _page(
        title=title, top=top, tiles=tiles, flagged=len(flagged), errors_shown=errors_shown,
        counts=[("scanned", counted.scanned), ("fake", counted.fake), ("real", counted.real),
                ("errors", counted.errors), ("no face", counted.no_face),
                ("warnings", counted.warnings)],
        histogram=_histogram_svg(scores, threshold) if len(scores) else "",
        errors_total=counted.errors,
        errors=sorted(errors.items(), key=lambda x: -len(x[1])),
        settings=[(str(k), str(v)) for k, v in settings.items() if v not in (None, "")])
    return page, figures


class _Evidence:
    """Grad-CAM on the model's last convolution: which regions drove a row's p_fake."""

    def __init__(self, model: str | None) -> None:
        try:
            from fakescan.store import load_model

            self.lm = load_model(model or None)
        except Exception:  # noqa: BLE001 - no evidence beats no report
            self.lm = None
            return
        import torch

        convs = [m for m in self.lm.model.modules() if isinstance(m, torch.nn.Conv2d)]
        self.layer = convs[-1]

    def __call__(self, row: dict[str, Any]) -> str | None:
        if self.lm is None:
            return None
        import torch
        from PIL import Image

        from fakescan.imaging import decode_rgb, normalize, resize_array

        try:
            im = decode_rgb(row["path"])
            if row.get("face_box"):
                from fakescan.faces import crop_square

                im = crop_square(im, tuple(int(float(v)) for v in row["face_box"].split(",")))
            x = torch.from_numpy(resize_array(im, self.lm.card.preprocess))[None]
        except Exception:  # noqa: BLE001
            return None
        acts: dict[str, torch.Tensor] = {}
        h = self.layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
        try:
            self.lm.model.eval().zero_grad()
            logits = self.lm.model(normalize(x, self.lm.card.preprocess).requires_grad_(True))
            card = self.lm.card
            score = 1 - torch.softmax(logits, 1)[0, card.negative_index]
            a = acts["a"]
            (g,) = torch.autograd.grad(score, a)
        finally:
            h.remove()
        cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1))[0].detach()
        cam = (cam / cam.max()).numpy() if float(cam.max()) > 0 else cam.numpy()
        heat = Image.fromarray(np.uint8(cam * 255)).resize((THUMB, THUMB), Image.BILINEAR)
        base = Image.fromarray(x[0].permute(1, 2, 0).numpy()).resize((THUMB, THUMB))
        hm = np.asarray(heat, np.float32)[..., None] / 255
        red = np.zeros((THUMB, THUMB, 3), np.float32)
        red[..., 0] = 255
        out = np.asarray(base, np.float32) * (1 - 0.55 * hm) + red * 0.55 * hm
        buf = io.BytesIO()
        Image.fromarray(np.uint8(out)).save(buf, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def write_report(verdicts: Path, out: Path | None = None, *, top: int = 200,
                 evidence: bool = False, model: str | None = None) -> ReportFigures:
    """Write the report of ``verdicts`` (default ``<verdicts>.html``); the figures shown.
    ``model``: the model folder for ``evidence`` (default: the scan's, by name)."""
    from fakescan.atomic import write_text

    rows, meta = load_rows(verdicts)
    out = out or verdicts.with_suffix(".html")
    page, figures = build(rows, meta, title=f"fakescan report: {verdicts.name}", top=top,
                          evidence=evidence, model=model)
    write_text(out, page)
    return replace(figures, path=str(out), bytes=out.stat().st_size)
