"""The scan's output row: one per input, ``ok`` with a verdict or ``error`` with a stable code.

``ERROR_CODES`` is the contract scripts match on (documented in the README); wording of the
``error`` field may change, codes do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIELDS = ("path", "status", "label", "p_fake", "threshold", "model", "error_code", "error",
          "decoder", "width", "height", "warning", "faces", "face", "face_box")
STATUSES = ("ok", "error", "no_face")

ERROR_CODES = {
    "not_found": "the path vanished between listing and reading (or never existed)",
    "permission_denied": "the file cannot be read with this user's permissions",
    "not_a_file": "a directory, FIFO, socket or device where an image file was expected",
    "read_error": "another I/O error while reading the file",
    "empty_file": "zero bytes",
    "unsupported_format": "content is not JPEG, PNG, GIF, BMP, TIFF or WebP (sniffed, not by "
                          "extension), or a variant of them the decoder cannot read (e.g. a "
                          "12-bit JPEG)",
    "too_large": "pixel count over the decompression-bomb limit (--max-pixels) or file over "
                 "--max-bytes",
    "truncated": "the file ends before the image data does",
    "corrupt": "a recognised format whose data cannot be decoded",
    "decoder_crashed": "the decoding process died on this file (twice: it is retried once)",
    "timeout": "reading and decoding the file took longer than --timeout seconds",
    "no_face": "a face model found no face in the image (status no_face: not an error; "
               "--when-no-face whole judges the whole image instead)",
}


@dataclass
class Row:
    path: str
    status: str = "ok"
    label: str = ""
    p_fake: float | None = None
    threshold: float | None = None
    model: str = ""
    error_code: str = ""
    error: str = ""
    decoder: str = ""
    width: int | None = None
    height: int | None = None
    warning: str = ""  # what a library said about the file (warnings, native messages)
    faces: int | None = None  # face models: faces found in the file
    face: int | None = None  # --per-face rows: which face (1 = most confident)
    face_box: str = ""  # face models: "x0,y0,x1,y1" of the face crop that decided the row

    @classmethod
    def no_face(cls, path: str, **kw: Any) -> Row:
        return cls(path=path, status="no_face", error_code="no_face",
                   error="the detector found no face", faces=0, **kw)

    @classmethod
    def failed(cls, path: str, code: str, message: str, **kw: Any) -> Row:
        assert code in ERROR_CODES, code
        return cls(path=path, status="error", error_code=code, error=message, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        """A row read back from a scan file (CSV values are strings, empty ones unset)."""
        def num(key: str, kind: type) -> Any:
            v = d.get(key)
            if v is None or v == "":
                return None
            try:
                return kind(v)
            except (TypeError, ValueError):
                return None

        return cls(path=str(d.get("path", "")), status=str(d.get("status") or ""),
                   label=str(d.get("label") or ""), p_fake=num("p_fake", float),
                   threshold=num("threshold", float), model=str(d.get("model") or ""),
                   error_code=str(d.get("error_code") or ""), error=str(d.get("error") or ""),
                   decoder=str(d.get("decoder") or ""), width=num("width", int),
                   height=num("height", int), warning=str(d.get("warning") or ""),
                   faces=num("faces", int), face=num("face", int),
                   face_box=str(d.get("face_box") or ""))

