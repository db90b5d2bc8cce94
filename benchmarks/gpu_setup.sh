#!/usr/bin/env bash
# Install, on a GPU machine that cannot reach PyPI, what its image lacks for fakescan's GPU
# path: DALI (+ nvImageCodec, nvJPEG) and onnxruntime-gpu, unpacked from archive parts that
# earlier calls left in /tmp/parts (benchmarks/README.md, "GPU session"), into the python3
# that holds torch; the project runs from the checkout (PYTHONPATH), without its deps.
#   a.tar.xz.*  site/   everything but onnxruntime (pip install --target, then pruned)
#   b.tar.xz.*  siteb/  onnxruntime-gpu (replaces the image's CPU-only onnxruntime)
#   .data/whl/*.whl     small pure-Python wheels (onnxconverter-common)
# Made on the CPU machine (2026-11-25: a 166 MB + 203 MB, 7 calls of <= 53 MiB each, ~75 s):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     nvidia-dali-cuda130==2.4.0 nvidia-nvimgcodec-cu13 nvidia-nvjpeg nvidia-nvjpeg2k-cu13 \
#     nvidia-nvtiff-cu13 astunparse gast optree nvtx makefun libcst imagehash pywavelets \
#     facenet-pytorch onnxruntime-gpu==1.31.1 (versions: constraints.txt)
#   pip install --no-deps --target site (then siteb for onnxruntime) of those wheels; drop the
#   other Pythons' extension modules, onnxruntime's TensorRT provider and tools; then
#   tar cf - site | xz -T2 -6 | split into parts, each carried by one call into /tmp/parts.
set -euo pipefail
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
cat /tmp/parts/a.tar.xz.* | xz -d | tar x -C /tmp
rm -f /tmp/site/nvidia/__init__.py  # keep nvidia/ a namespace shared with torch's CUDA libs
cp -rn /tmp/site/. "$SITE"/
if compgen -G "/tmp/parts/b.tar.xz.*" >/dev/null; then
  cat /tmp/parts/b.tar.xz.* | xz -d | tar x -C /tmp
  rm -rf "$SITE/onnxruntime"
  cp -r /tmp/siteb/onnxruntime "$SITE/"
fi
if compgen -G ".data/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile .data/whl/*.whl
fi
python3 - <<'PY'
import torch, nvidia.dali as dali, onnxruntime as ort
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("dali", dali.__version__, "| onnxruntime", ort.__version__, ort.get_available_providers())
PY
