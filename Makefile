# The two commands a fresh machine needs (see README.md): `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := var/sample.duckdb
PORT   ?= 8888
# JupyterLab refuses to start as root unless told; containers often run as root
ROOT   := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

.PHONY: lab test sample browser lint format bench clean visual-refs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# the workbench works offline: JupyterLab should not ask to fetch news
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
	    > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

$(SAMPLE): $(STAMP) $(wildcard sample_data/*)
	@mkdir -p var
	$(BIN)/python -m workbench.sample $(SAMPLE) --force

sample: $(SAMPLE)

# chart export and the browser tests need a Chromium: find one, or provide one
browser: $(STAMP)
	@scripts/ensure-browser $(BIN)/python

lab: $(STAMP) $(SAMPLE) browser
	WORKBENCH_SAMPLE_STORE=$(CURDIR)/$(SAMPLE) $(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) \
	    --ServerApp.root_dir=$(CURDIR)/notebooks --LabApp.default_url=/lab/tree/00_start_here.ipynb $(ROOT) $(LAB_ARGS)

# two workers (the machine's two cores), a whole file per worker: a notebook, a module's
# JupyterLab or kaleido server stays on one; the sample store is built first, once
test: $(STAMP) $(SAMPLE) browser
	$(BIN)/ruff check workbench tests bench
	$(BIN)/ruff format --check workbench tests bench
	$(BIN)/python -m pytest -n 2 --dist loadfile

# after a deliberate change to a chart: look at the new images, then keep them
visual-refs: $(STAMP) browser
	$(BIN)/python -m tests.visual --update

lint: $(STAMP)
	$(BIN)/ruff check workbench tests bench

format: $(STAMP)
	$(BIN)/ruff format workbench tests bench
	$(BIN)/ruff check --fix workbench tests bench

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/store_bench.py
	$(BIN)/python bench/sim_bench.py
	$(BIN)/python bench/access_bench.py
	$(BIN)/python bench/analytics_bench.py

clean:
	rm -rf var .pytest_cache .ruff_cache
