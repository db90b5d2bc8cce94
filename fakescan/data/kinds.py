"""What kind of fake a source holds: GAN faces, diffusion portraits, face swaps, edits.

Detection is reported per kind (``metrics.json``'s ``by_kind``, the model card), because a
detector that finds every StyleGAN face can still pass every diffusion portrait as real. A
source's kind comes from a one-line ``kind.txt`` in its folder (``gan``, ``diffusion``,
``faceswap``, ``edited``), else from the public datasets this project measures on (by folder
name), else it is ``other``.
"""

from __future__ import annotations

from pathlib import Path

KINDS = ("gan", "diffusion", "faceswap", "edited", "other", "none")  # none: real faces only
KIND_FILE = "kind.txt"
KNOWN = {  # folder name -> the kind of its fakes (../shared/datasets/README.md)
    "hard-fake-vs-real-faces": "gan",
    "ffhq-vs-stylegan2": "gan",
    "ood-ffhq-vs-stylegan2-dev": "gan",
    "sdfd-stable-diffusion": "diffusion",
    "dfdc-faceswap-224": "faceswap",
    "ciplab-real-and-edited-160": "edited",
    "utkface-real": "none",
}


def fake_kind(path: str | Path) -> str:
    """The kind of fake in the dataset at ``path`` (a folder or a manifest)."""
    p = Path(path)
    folder = p.parent if p.is_file() else p
    f = folder / KIND_FILE
    if f.is_file():
        kind = f.read_text(encoding="utf-8", errors="replace").strip().lower()
        if kind in KINDS:
            return kind
    return KNOWN.get(p.resolve().name if not p.is_file() else p.stem,
                     KNOWN.get(folder.resolve().name, "other"))


def source_kinds(ds) -> dict[str, str]:
    """``{source name: kind}`` for a dataset read by ``load_sources``."""
    if ds.sources:
        return {src["name"]: src.get("kind") or fake_kind(src["path"]) for src in ds.sources}
    return {"": fake_kind(ds.root)}
