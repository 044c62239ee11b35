# mlfo: the README's two commands are `make demo` and `make test`.
# Both create (or reuse) the virtualenv .venv with the pinned requirements of settings.ini,
# and register .venv's Python as the Jupyter kernel `mlfo`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlfo-installed
JOBS ?= 2

.PHONY: help venv kernel lab test test-slow demo results docs docs-deps docs-offline export clean-nbs check-nbdev clean

help:
	@echo "make demo          run the main job (tiny preset, synthetic data) and print where its results are"
	@echo "make test          install, lint (ruff check), check notebooks == package, run every notebook test and pytest"
	@echo "make test-slow     the same, with the slow checks too"
	@echo "make lab           JupyterLab on nbs/ with the project kernel mlfo (.venv's Python)"
	@echo "make kernel        also register the kernel mlfo for your user (a JupyterLab outside .venv)"
	@echo "make docs-offline  build the HTML docs without Quarto, into _docs_offline/"
	@echo "make docs          build them and check them in headless chromium (screenshots, links)"
	@echo "make results       the whole embedded suite (hours; resumable)"

# (Re)install when the pins change. pip takes torch/torchvision from the local wheel cache when present.
$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name mlfo --display-name 'Python 3 (mlfo)' > /dev/null
	@touch $(STAMP)

venv: $(STAMP)

# The kernel for a JupyterLab installed elsewhere (it runs .venv's Python, not that JupyterLab's).
kernel: $(STAMP)
	$(BIN)/python -m ipykernel install --user --name mlfo --display-name 'Python 3 (mlfo)'

LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=nbs --MultiKernelManager.default_kernel_name=mlfo $(ROOT_FLAG) $(LAB_ARGS)

check-nbdev: $(STAMP)
	$(BIN)/python tools/check_nbdev.py

test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/python tools/check_nbdev.py
	$(BIN)/python -m pytest -n $(JOBS) tests/

test-slow: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/python tools/check_nbdev.py
	$(BIN)/python -m pytest -n $(JOBS) --slow tests/

demo: $(STAMP)
	$(BIN)/python -m mlfo.cli demo

results: $(STAMP)
	$(BIN)/python -m mlfo.cli results

# pandoc renders the pages (math as MathML), chromium checks them: Debian packages, installed when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
docs-deps:
	@command -v pandoc > /dev/null && command -v chromium > /dev/null || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq pandoc chromium fonts-dejavu-core)

docs-offline: $(STAMP) docs-deps
	$(BIN)/python tools/docs_offline.py

# The offline docs in a real browser: screenshots and a link check (slow, so not in `make test`).
docs: docs-offline
	$(BIN)/python -m pytest -q --docs tests/test_docs_browser.py

export: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

clean:
	rm -rf _proc _docs _docs_offline .pytest_cache
