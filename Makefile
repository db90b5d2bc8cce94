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
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT)/synth
	$(VENV)/bin/fakescan models
	$(VENV)/bin/fakescan data synth $(DEMO_OUT)/synth --n 400 --seed 0
	$(VENV)/bin/fakescan data stats $(DEMO_OUT)/synth
	$(VENV)/bin/fakescan data dedup $(DEMO_OUT)/synth

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check fakescan tests

# Re-resolve and record the exact versions (run after changing pyproject.toml).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable --exclude fakescan > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
