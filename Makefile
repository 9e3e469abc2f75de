# dro_depth: `make demo` runs the main job, `make test` the whole test suite.
# Both create (or reuse) a local virtual environment and install everything from package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
export AMENT_PREFIX_PATH := $(abspath $(VENV))
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export PYTHONUNBUFFERED := 1

.PHONY: venv install test demo bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-ros.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-ros.txt -r requirements-dev.txt
	touch $(STAMP)

# Non-editable: `pip install -e` skips data_files (launch, config, lib/dro_depth executables).
install: $(STAMP)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

test: install
	$(PY) -m pytest -q test

demo: install
	$(PY) -m dro_depth.demo

bench: install
	$(PY) -m dro_depth.bench

clean:
	rm -rf build *.egg-info out
