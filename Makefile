# `make test` and `make demo` set everything up on a fresh machine (a .venv with the pinned
# torch/torchvision and the package installed editable with its test extras).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src/optimlab

test: lint
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/optimlab compare

bench: $(STAMP)
	$(BIN)/python benchmarks/optim_step.py
	$(BIN)/python benchmarks/train_loop.py
	$(BIN)/python benchmarks/train_loop.py --telemetry
	$(BIN)/python benchmarks/tune.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
