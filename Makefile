# rhizome: `make demo` brings up a cluster, `make test` runs every test.
SHELL := /bin/bash
# Debian's interpreter, not one under /root: the postgres user must be able to run the venv.
SYSTEM_PYTHON ?= /usr/bin/python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test deps venv lint unit integration bench demo clean

test: lint unit integration

deps:
	bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml requirements-dev.txt
	$(MAKE) deps
	test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache src plugins tests bench
	$(VENV)/bin/ruff format --no-cache --check src plugins tests bench
	$(VENV)/bin/mypy src $(wildcard plugins/modules plugins/module_utils)

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

integration: $(STAMP)
	bash scripts/grant-postgres-access.sh
	$(VENV)/bin/pytest -q tests/integration

bench: $(STAMP)
	PYTHONPATH=. $(PYTHON) bench/store_latency.py
	PYTHONPATH=. $(PYTHON) bench/proxy.py
	PYTHONPATH=. $(PYTHON) bench/failover.py

demo:
	@echo "make demo is coming with the Ansible collection (issue P4)." >&2
	@exit 1

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
