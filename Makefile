# Two commands on a fresh machine:  `make demo` (set up, run the demo sweeps, write their figures
# to results/demo/figures/, leaving the committed figures/ alone) and `make test` (set up, run
# the test suite). Both build .venv with python -m venv + pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-slow bench reproduce reproduce-full figures clean lm-demo

$(BIN)/toymodels: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# The lm extra (toymodels.lm's tests need it) and the interop extra (SAELens and TransformerLens,
# whose tests must run, not skip, in CI): torch is pinned to 2.13.0, which this project's package
# index serves as a CPU wheel (an unpinned torch pulls several GB of CUDA libraries).
$(VENV)/.lm-installed: $(BIN)/toymodels pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,lm,interop]'
	@touch $@

demo: $(BIN)/toymodels
	$(BIN)/toymodels demo --results results/demo

test: $(VENV)/.lm-installed
	$(BIN)/python -m pytest -q

# The language-model demo: harvest all-MiniLM-L6-v2's block-3 residual stream from 3,600 corpus
# sentences, train two SAEs of 8 × 384 latents, splice one into the model on the 400 held-out
# sentences, and find what its latents mean (figures in results/lm-demo/figures/, the committed
# figures/lm_*.png left alone); then a Matryoshka BatchTopK SAE at the l1 = 5 SAE's L0 and
# SAEBench's absorption and sparse probing of all three. Minutes on 2 CPU cores; resumable.
LM_DEMO  := results/lm-demo
LM_SAE   := $(LM_DEMO)/sae --point l1_coefficient=5
LM_PROMPT := "I was thrilled when the train arrived early in Paris."
lm-demo: $(VENV)/.lm-installed
	$(BIN)/toymodels lm harvest --model all-MiniLM-L6-v2 --site blocks.3.hook_resid_post \
		--limit 3600 --out $(LM_DEMO)/acts
	$(BIN)/toymodels lm train-sae $(LM_DEMO)/acts --out $(LM_DEMO)/sae \
		--grid l1_coefficient=2,5 --steps 1500 --batch-size 1024
	$(BIN)/toymodels lm evaluate $(LM_SAE) --skip 3600 --store $(LM_DEMO)/acts
	$(BIN)/toymodels lm top-features $(LM_SAE) --prompt $(LM_PROMPT) \
		--heatmap $(LM_DEMO)/figures/lm_top_features.png
	$(BIN)/toymodels lm contrast $(LM_SAE) --store $(LM_DEMO)/acts \
		--figure $(LM_DEMO)/figures/lm_contrast.png \
		--contexts-figure $(LM_DEMO)/figures/lm_latent_contexts.png
	$(BIN)/toymodels lm train-sae $(LM_DEMO)/acts --out $(LM_DEMO)/matryoshka \
		--architecture matryoshka_batchtopk --k 13 --matryoshka-widths 96,288,672,1440,3072 \
		--steps 1500 --batch-size 1024
	for sae in "sae --point l1_coefficient=2" "sae --point l1_coefficient=5" matryoshka; do \
		$(BIN)/toymodels lm evaluate $(LM_DEMO)/$$sae --skip 3600 --saebench --quiet || exit 1; \
	done

# Reproduction runs too slow for CI (marked `slow`).
test-slow: $(BIN)/toymodels
	$(BIN)/python -m pytest -q -m slow

# The speed benchmarks need the PyTorch baseline (a pinned CPU wheel).
bench: $(VENV)/.lm-installed
	$(BIN)/python benchmarks/sweep_speed.py
	$(BIN)/python benchmarks/phase_speed.py
	$(BIN)/python benchmarks/sae_speed.py
	$(BIN)/python benchmarks/lm_speed.py
	$(BIN)/python benchmarks/jermyn_speed.py

# The experiments at their committed sizes, then their figures, each one's time printed (about
# 15 minutes on 2 CPU cores); reproduce-full adds the slowest (cli.REPRODUCE_FULL_ONLY).
reproduce: $(BIN)/toymodels
	$(BIN)/toymodels reproduce --results results --to figures

reproduce-full: $(BIN)/toymodels
	$(BIN)/toymodels reproduce --full --results results --to figures

figures: $(BIN)/toymodels
	$(BIN)/toymodels figures results --to figures

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
