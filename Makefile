# Set-up and everyday commands. `make demo` and `make test` work on a fresh
# machine: they create .venv when it is missing and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_export
PYTEST_ARGS ?=

.PHONY: venv install install-test demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

venv: $(PY)

# Stamps keep repeated runs fast; they are redone when the package metadata changes.
$(VENV)/.installed: setup.cfg setup.py | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(PY) examples/tabular_csv.py --export-dir $(DEMO_DIR)

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(DEMO_DIR) exports .pytest_cache build *.egg-info
