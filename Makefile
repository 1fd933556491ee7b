# caesar-mrcnn developer commands. Every target installs what it needs first.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export TF_CPP_MIN_LOG_LEVEL := 3
DEMO_OUT ?= demo_out
# The tested set of every Python package (runtime, extras, installers); `make lock` moves it.
LOCK  := requirements/lock.txt
LOCK_INPUTS := setup.cfg requirements/tools.in

.PHONY: setup test lint lock demo demo-train bench clean

setup: $(VENV)/.installed
	@scripts/install_system_deps.sh
	@scripts/install_horovod.sh $(PY)

$(VENV)/.installed: setup.cfg pyproject.toml $(LOCK)
	@scripts/install_system_deps.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) pip setuptools wheel uv
	$(PY) -m pip install -q -c $(LOCK) -e '.[dev,compare,horovod]'
	@touch $@

# Move every pin to the newest release setup.cfg allows, install the new set, rerun the tests.
# The lock is universal (markers for other Pythons and platforms); the tested set is the one
# this machine installs.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile $(LOCK_INPUTS) --extra dev --extra compare --extra horovod \
		--universal --python-version 3.10 --upgrade --annotation-style line \
		--custom-compile-command "make lock" \
		-o $(LOCK)
	$(MAKE) test

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
