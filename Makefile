# Dataward: the front door. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
export GOTOOLCHAIN := local
export GOFLAGS := -mod=mod
# Where the built control plane and checking tools are kept between runs.
export DATAWARD_CACHE ?= $(HOME)/.cache/dataward
PYTEST_FLAGS ?=

.PHONY: help deps python-deps system-deps tools lint unit db-tests e2e test run cluster crds-check bench clean

help:
	@echo "make run    - start a local control plane (or use your kubeconfig), install Dataward, apply the examples"
	@echo "make test   - install what the tests need, then lint, unit, database and e2e tests"
	@echo "make tools  - build kube-apiserver, etcd, kube-controller-manager, kubectl, helm, kubeconform, cyclonus"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - run the benchmarks in bench/"

deps: system-deps python-deps

# Debian packages: PostgreSQL and MariaDB servers for the purge engine's tests, and
# percona-toolkit (pt-archiver) for the purge benchmark's comparison, and
# chromium-headless-shell to open the self-audit report's page in tests/report.
system-deps:
	@if [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && command -v pt-archiver >/dev/null && command -v chromium-headless-shell >/dev/null; then \
	  echo "deps: PostgreSQL and MariaDB servers, percona-toolkit and chromium-headless-shell are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 mariadb-server mariadb-client percona-toolkit chromium-headless-shell >/dev/null; \
	else \
	  echo "deps: run as root, or install the Debian packages postgresql-15 mariadb-server mariadb-client percona-toolkit chromium-headless-shell" >&2; exit 1; \
	fi

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]'

tools:
	bash e2e/build-tools.sh >/dev/null

lint: python-deps
	$(PYTHON) -m ruff check operator tests e2e bench
	$(PYTHON) -m mypy

crds-check:
	diff -r crds charts/dataward/crds

unit: python-deps
	$(PYTHON) -m pytest tests -m "not db" -q $(PYTEST_FLAGS)

db-tests: deps
	$(PYTHON) -m pytest tests -m db -q $(PYTEST_FLAGS)

e2e: deps tools
	$(PYTHON) -m pytest e2e -q $(PYTEST_FLAGS)

# One pytest run over everything, so its closing line counts every test.
test: deps tools lint crds-check
	$(PYTHON) -m pytest tests e2e -q -p no:cacheprovider $(PYTEST_FLAGS)

# No database server: the examples need none (only `make test` installs PostgreSQL and MariaDB).
run: python-deps tools
	$(PYTHON) -m e2e.run_local

bench: deps tools
	@for script in bench/*_bench.py; do name=$$(basename $$script .py); echo "== bench.$$name"; $(PYTHON) -m bench.$$name || exit 1; done

clean:
	rm -rf .dataward .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info operator/*.egg-info
