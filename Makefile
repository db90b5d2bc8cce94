# Two entry points for a newcomer: `make demo` and `make test`. Both create and reuse ./.venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: demo test lint lock clean

# The stamp is rebuilt only when the dependency set changes, so later runs reuse the venv.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -c constraints.txt -e '.[dev,ray,pretrained,openvino]'
	# MTCNN's face detector weights: facenet-pytorch pins a torch from 2024, so it comes
	# without its dependencies (only its weight files are used; fakescan/faces.py)
	$(PY) -m pip install --quiet --no-cache-dir --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

# synth -> train simplecnn -> eval -> export ONNX -> scan (torch, onnx) -> bench, into DEMO_OUT.
demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/fakescan demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check fakescan tests benchmarks

# Re-resolve and record the exact versions (run after changing pyproject.toml).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable --exclude fakescan > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
