# Two commands on a fresh machine:  `make demo` (set up, run the demo sweeps, write their figures
# to results/demo/figures/, leaving the committed figures/ alone) and `make test` (set up, run
# the test suite). Both build .venv with python -m venv + pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-slow bench reproduce figures clean

$(BIN)/toymodels: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/toymodels
	$(BIN)/toymodels demo --results results/demo

test: $(BIN)/toymodels
	$(BIN)/python -m pytest -q

# Reproduction runs too slow for CI (marked `slow`).
test-slow: $(BIN)/toymodels
	$(BIN)/python -m pytest -q -m slow

# The speed benchmarks need the PyTorch baseline (a pinned CPU wheel).
bench: $(BIN)/toymodels
	$(BIN)/python -m pip install --quiet -e '.[dev,torch]'
	$(BIN)/python benchmarks/sweep_speed.py
	$(BIN)/python benchmarks/phase_speed.py

# Every experiment at full size, then every figure (about an hour on 2 CPU cores).
reproduce: $(BIN)/toymodels
	$(BIN)/toymodels reproduce --results results --to figures

figures: $(BIN)/toymodels
	$(BIN)/toymodels figures results --to figures

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
