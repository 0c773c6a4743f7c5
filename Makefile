# Two commands for a newcomer: `make study` and `make test`. Both set up .venv first, once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sekd-installed
# the one pin of torch (environment.yml lists the same: tests/test_setup.py)
TORCH := torch==2.13.0
TORCH_VERSION := $(patsubst torch==%,%,$(TORCH))
PROFILE ?= quick

.PHONY: setup test study lint format clean-venv

setup: $(STAMP)

# torch first, pinned, so no later requirement can pull another build; then the package.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(v != '$(TORCH_VERSION)' and f'torch {torch.__version__} installed, expected $(TORCH_VERSION)')"
	touch $(STAMP)

# unit tests, then every notebook in the smoke profile under nbval (lax: errors fail, outputs
# are not compared), two processes, one notebook per process at a time
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q tests
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q --nbval-lax -p no:cacheprovider notebooks

study: setup
	$(BIN)/sekd reproduce --profile $(PROFILE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
