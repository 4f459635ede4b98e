# Two commands on a fresh machine:  `make demo` (set up, run the demo sweeps, write figures/)
# and `make test` (set up, run the test suite). Both build .venv with python -m venv + pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-slow bench reproduce figures clean

$(BIN)/toymodels: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# The lm extra (toymodels.lm's tests need it): torch is pinned to 2.13.0, which this project's
# package index serves as a CPU wheel (an unpinned torch pulls several GB of CUDA libraries).
$(VENV)/.lm-installed: $(BIN)/toymodels pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,lm]'
	@touch $@

demo: $(BIN)/toymodels
	$(BIN)/toymodels demo --results results/demo --to figures

test: $(VENV)/.lm-installed
	$(BIN)/python -m pytest -q

# Reproduction runs too slow for CI (marked `slow`).
test-slow: $(BIN)/toymodels
	$(BIN)/python -m pytest -q -m slow

# The speed benchmarks need the PyTorch baseline (a pinned CPU wheel).
bench: $(VENV)/.lm-installed
	$(BIN)/python benchmarks/sweep_speed.py
	$(BIN)/python benchmarks/phase_speed.py
	$(BIN)/python benchmarks/sae_speed.py
	$(BIN)/python benchmarks/lm_speed.py

# Every experiment at full size, then every figure (about an hour on 2 CPU cores).
reproduce: $(BIN)/toymodels
	$(BIN)/toymodels reproduce --results results --to figures

figures: $(BIN)/toymodels
	$(BIN)/toymodels figures results --to figures

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
