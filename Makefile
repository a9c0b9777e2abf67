# Two commands for users (see README.md):
#   make demo   set everything up in .venv and run the whole pipeline on the embedded phantom
#   make test   set everything up in .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REQ := LNSynthLib/requirements.txt
DEMO_OUT ?= demo_output
PYTEST_ARGS ?=

.PHONY: setup demo test test-all lint bench clean-venv

# torch and torchvision first (pins read from the one requirements file), then the rest.
$(VENV)/.installed: $(REQ) LNSynthLib/requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $$(grep -E '^torch(vision)?==' $(REQ))
	$(PIP) install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/lnsynth demo --out $(DEMO_OUT)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
