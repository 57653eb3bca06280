# Set-up and everyday commands. `make demo` and `make test` work on a fresh
# machine: they create .venv when it is missing and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_export
PYTEST_ARGS ?=
# Hide TensorFlow's start-up info and warning lines (errors still show).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv install install-test demo lint test test-fast bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

venv: $(PY)

# Stamps keep repeated runs fast; they are redone when the package metadata changes.
$(VENV)/.installed: setup.cfg setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-test: setup.cfg setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Train with the callback, check the export, explain three CSV lines from it.
demo: install
	$(PY) examples/tabular_csv.py --export-dir $(DEMO_DIR)
	$(VENV)/bin/xai-callback validate $(DEMO_DIR)
	$(VENV)/bin/xai-callback explain $(DEMO_DIR) --instances examples/tabular_instances.jsonl \
		--output $(DEMO_DIR)_explanations.json --plot $(DEMO_DIR)_attributions.png
	@echo "Explanations: $(DEMO_DIR)_explanations.json, plot: $(DEMO_DIR)_attributions.png"

# Pyflakes' checks (undefined names, unused imports): seconds, before a suite of minutes.
lint: install-test
	$(PY) -m ruff check --quiet --no-cache --select F xai_callback tests examples benchmarks

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# For local iteration: the core behaviour in minutes (no servers, subprocesses or conformance models).
test-fast: lint
	$(PY) -m pytest -m "not slow and not conformance" $(PYTEST_ARGS)

bench: install-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(DEMO_DIR) $(DEMO_DIR)_explanations.json $(DEMO_DIR)_attributions.png exports .pytest_cache build *.egg-info
