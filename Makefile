# `make demo` and `make test` set everything up themselves (a .venv with the package).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.amun-installed
# torch/torchvision are pinned to the releases this project is tested with (a CPU machine
# may also install any other release torch supports).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test lint bench-search clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/amun demo

test: setup
	$(PY) -m pytest -q -n 2 tests

lint: setup
	$(VENV)/bin/ruff check amun_plugin tests benchmarks
	$(VENV)/bin/mypy amun_plugin

bench-search: setup
	$(PY) benchmarks/adversarial_search.py

clean:
	rm -rf $(VENV) amun-demo-report .pytest_cache
