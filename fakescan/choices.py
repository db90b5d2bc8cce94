"""Every closed choice a user makes, as ``StrEnum`` s: the library validates against these and
the command line shows and checks them at parse time (``[auto|dali|pil]``).

Members are strings (``Decoder.pil == "pil"``), so library code compares and stores plain
values. This module imports nothing heavy, so ``fakescan --help`` stays fast.
"""

from __future__ import annotations

from enum import StrEnum


class DecoderName(StrEnum):
    auto = "auto"
    dali = "dali"
    pil = "pil"


class RuntimeName(StrEnum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"
    openvino = "openvino"  # CPU only; the optional extra fakescan[openvino]


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"  # onnxruntime on a CPU, from a parity-checked file (fakescan.quantize)


class OutputFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    json = "json"


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class Crop(StrEnum):
    none = "none"
    face = "face"


class NoFace(StrEnum):  # what a face model does with an image where it finds no face
    row = "row"  # a row with status no_face
    whole = "whole"  # judge the whole image


class InputFilter(StrEnum):
    none = "none"
    highpass = "highpass"
    highpass_norm = "highpass_norm"


class Views(StrEnum):  # what a model looks at when it scores (``fakescan.nets.views``)
    one = "one"  # the image
    flip = "flip"  # the image and its mirror image, logits averaged


class Padding(StrEnum):
    valid = "valid"
    same = "same"


def names(choice: type[StrEnum]) -> tuple[str, ...]:
    return tuple(c.value for c in choice)


def metavar(choice: type[StrEnum]) -> str:
    """``[a|b|c]``: how a choice shows in help."""
    return "[" + "|".join(names(choice)) + "]"
