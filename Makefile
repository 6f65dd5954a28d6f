# rhizome: `make demo` brings up a cluster, `make test` runs every test.
SHELL := /bin/bash
# Debian's interpreter, not one under /root: the postgres user must be able to run the venv.
SYSTEM_PYTHON ?= /usr/bin/python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test deps venv lint lint-python lint-ansible unit integration molecule bench chaos demo demo-down clean

test: lint unit integration molecule

deps:
	bash scripts/install-system-deps.sh

# The system dependencies again when their scripts change (e.g. a new tool, like promtool).
$(STAMP): pyproject.toml requirements-dev.txt scripts/install-system-deps.sh scripts/install-promtool.sh
	$(MAKE) deps
	test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

venv: $(STAMP)

lint: lint-python lint-ansible

lint-python: $(STAMP)
	$(VENV)/bin/ruff check --no-cache src plugins tests bench chaos molecule
	$(VENV)/bin/ruff format --no-cache --check src plugins tests bench chaos molecule
	$(VENV)/bin/mypy src chaos $(wildcard plugins/modules plugins/module_utils)

lint-ansible: $(STAMP)
	sh scripts/link-collection.sh
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint --profile production
	bash scripts/ansible-sanity.sh

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

integration: $(STAMP)
	bash scripts/grant-postgres-access.sh
	$(VENV)/bin/pytest -q tests/integration

# The collection in systemd containers. Debian 12 (bookworm): every scenario but
# trixie on one shared set (.config/molecule/config.yml): default creates them
# and deploys the cluster (site.yml, idempotence, verify); maintenance, scale,
# switchover and upgrade each run an operation playbook under a background
# writer; then destroy. Debian 13: the trixie scenario, on containers of its own.
molecule: $(STAMP)
	bash scripts/podman-setup.sh
	bash scripts/build-node-image.sh
	RHIZOME_NODE_SUITE=trixie bash scripts/build-node-image.sh
	sh scripts/link-collection.sh
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test --all --exclude trixie
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test --scenario-name trixie

bench: $(STAMP)
	PYTHONPATH=. $(PYTHON) bench/store_latency.py
	PYTHONPATH=. $(PYTHON) bench/proxy.py
	PYTHONPATH=. $(PYTHON) bench/proxy_tls.py
	PYTHONPATH=. $(PYTHON) bench/proxy_work.py
	PYTHONPATH=. $(PYTHON) bench/failover.py
	PYTHONPATH=. $(PYTHON) bench/side_by_side.py
	PYTHONPATH=. $(PYTHON) bench/many_clusters.py
	PYTHONPATH=. $(PYTHON) bench/etcd_leader_loss.py

# The fault-injection campaign (chaos/): three nodes in network namespaces (root).
# Sizes: CHAOS_FAULTS (200), CHAOS_MODE (sync|async), CHAOS_SEED, CHAOS_KINDS,
# CHAOS_DURATION_SCALE; writes docs/reliability.md.
chaos: $(STAMP)
	bash scripts/grant-postgres-access.sh
	PYTHONPATH=$(CURDIR)/src:$(CURDIR) $(PYTHON) -m chaos

demo: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/demo.sh up

demo-down:
	bash scripts/demo.sh down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .ansible
