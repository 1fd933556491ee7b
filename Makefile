# caesar-mrcnn developer commands. Every target installs what it needs first.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export TF_CPP_MIN_LOG_LEVEL := 3
DEMO_OUT ?= demo_out

.PHONY: setup test lint demo demo-train bench clean

setup: $(VENV)/.installed
	@scripts/install_system_deps.sh
	@scripts/install_horovod.sh $(PY)

$(VENV)/.installed: setup.cfg pyproject.toml
	@scripts/install_system_deps.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev,compare,horovod]'
	@touch $@

lint: setup
	$(BIN)/ruff check caesar_mrcnn ssl_backbones tests scripts

test: setup
	$(BIN)/ruff check caesar_mrcnn ssl_backbones tests scripts
	$(BIN)/pytest -q

demo: setup
	CAESAR_MRCNN=$(BIN)/caesar-mrcnn PYTHON=$(PY) scripts/demo.sh $(DEMO_OUT)

demo-train: setup
	CAESAR_MRCNN=$(BIN)/caesar-mrcnn PYTHON=$(PY) scripts/demo_train.sh $(DEMO_OUT)/train

bench: setup
	$(PY) scripts/bench/bench_simulate.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache
