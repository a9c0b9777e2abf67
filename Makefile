# Two commands for users (see README.md):
#   make demo   set everything up in .venv and run the whole pipeline on the embedded phantom
#   make test   set everything up in .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REQ := LNSynthLib/requirements.txt
REQ_WEB := LNSynthLib/requirements-web.txt
DEMO_OUT ?= demo_output
PYTEST_ARGS ?=
# `make test` runs the suite in this many pytest-xdist workers (2: CI's cores; 0 runs it in one process). A worker
# takes a whole test file at a time, and the files that share the real nnU-Net run one worker (Testing/conftest.py).
TEST_WORKERS ?= 2

.PHONY: setup demo test test-all lint bench clean-venv web test-browser serve

# torch and torchvision first (pins read from the one requirements file), then the rest.
$(VENV)/.installed: $(REQ) LNSynthLib/requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $$(grep -E '^torch(vision)?==' $(REQ))
	$(PIP) install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The web extra (`lnsynth serve`): trame-slicer etc. from the pin file, then slicer-layer-dm without its
# dependency metadata (the `# nodeps:` line of the pin file; it asks for a slicer-core the registry lacks).
$(VENV)/.web-installed: $(VENV)/.installed $(REQ_WEB)
	$(PIP) install --quiet -e '.[dev,web]'
	$(PIP) install --quiet --no-deps $$(sed -n 's/^# nodeps: *//p' $(REQ_WEB))
	touch $@

web: $(VENV)/.web-installed

# The browser test alone (headless Chromium + chromedriver from the system: apt-get install chromium chromium-driver).
test-browser: web
	$(PY) -m pytest -m browser Testing/web $(PYTEST_ARGS)

serve: web
	$(VENV)/bin/lnsynth serve --port 8080 --work lnsynth_web

demo: setup
	$(VENV)/bin/lnsynth demo --out $(DEMO_OUT)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
