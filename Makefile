# `make demo`: install, then a small IsoFLOP sweep end to end on CPU, printing the proposal.
# `make test`: install, lint, install Debian's chromium if missing (the report's browser test), start a
# real single-node SLURM cluster, run the test suite, stop the cluster (also when the tests fail).
# This is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint browser bench bench-forecast clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0  # the CPU build first, so pip never pulls a CUDA build
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/sweep run --out sweeps/demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

browser:
	scripts/browser.sh install

test: install lint browser
	scripts/slurm-local.sh start
	WANDB_MODE=disabled SWEEP_TEST_SLURM=required SWEEP_TEST_BROWSER=required $(BIN)/pytest -q; status=$$?; \
	  scripts/slurm-local.sh stop; exit $$status

bench: install
	$(BIN)/python bench/fit_speed.py

# The forecast end to end on both corpora: proxies, a target at 30x trained twice, predicted vs actual.
bench-forecast: install
	WANDB_MODE=disabled $(BIN)/python bench/forecast.py

clean:
	rm -rf $(VENV) sweeps .pytest_cache
