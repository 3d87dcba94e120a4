# opsproof — the two commands: `make demo` (the smoke suite on the built-in sandbox) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := postgresql redis-server prometheus prometheus-alertmanager \
                   prometheus-postgres-exporter prometheus-redis-exporter docker.io debootstrap chromium
BINARIES := /usr/lib/postgresql/15/bin/postgres /usr/bin/redis-server /usr/bin/prometheus \
            /usr/bin/prometheus-alertmanager /usr/bin/prometheus-postgres-exporter /usr/bin/prometheus-redis-exporter \
            /usr/sbin/dockerd /usr/sbin/debootstrap /usr/bin/chromium

.PHONY: demo test test-fast deps services docker images lint bench bench-chaos clean

services:  ## Debian packages of the sandbox's services (installing them starts nothing)
	@missing=0; for b in $(BINARIES); do [ -x "$$b" ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $(DEBIAN_PACKAGES)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

docker: deps  ## a Docker daemon for the container tests: the one DOCKER_HOST names, else dockerd started here (root)
	@$(PY) -m opsproof.containers.daemon

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.bin/allure: package.json  ## Allure 3 (npm), to render allure-pytest's results without Java
	@if command -v npm >/dev/null; then npm install --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the Allure rendering test will be skipped (apt-get install npm)"; fi

deps: services $(VENV)/.installed node_modules/.bin/allure

demo: deps  ## sandbox up → smoke suite → verdict → sandbox down
	@$(PY) -m opsproof.cli sandbox up --dir /tmp/opsproof-demo; \
	$(VENV)/bin/pytest smoke --sandbox-dir /tmp/opsproof-demo -p no:cacheprovider; code=$$?; \
	$(PY) -m opsproof.cli sandbox down --dir /tmp/opsproof-demo; \
	if [ $$code = 0 ]; then echo "VERDICT: PASS — every smoke check passed"; else echo "VERDICT: FAIL (pytest exit $$code)"; fi; \
	exit $$code

images: docker  ## opsproof's own container images (built here from Debian's packages, ~80 s once; then a lookup)
	@$(PY) -m opsproof.containers

test: deps docker  ## lint, types, and the project's tests (unit + integration on real services)
	@mkdir -p reports; $(PY) -m opsproof.containers >reports/images.log 2>&1 &  # built beside lint and unit; the container tests wait on its lock
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/opsproof chaos validate
	$(VENV)/bin/pytest tests/unit --junitxml=reports/junit-unit.xml
	$(VENV)/bin/pytest tests/integration -m containers -n 2 --dist loadgroup --junitxml=reports/junit-containers.xml  # first and alone: they wait for the images, and eleven containers starting take both cores while the tests below compare latency windows
	$(VENV)/bin/pytest tests/integration -m "not containers" -n 2 --dist loadgroup --junitxml=reports/junit-integration.xml
	$(VENV)/bin/pytest chaos --junitxml=reports/junit-chaos.xml  # after the engine tests, on a quiet machine: the experiments measure detection times

test-fast: deps  ## the fast tier only: no services (mock transports, fake clocks), well under 30 s
	$(VENV)/bin/pytest tests/unit

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: deps
	$(PY) bench/bench_http.py

bench-chaos: deps  ## detection vs Alertmanager's startsAt, and the chaos harness's overhead
	$(PY) bench/bench_chaos.py

clean:
	rm -rf $(VENV) reports/*.jsonl .pytest_cache .mypy_cache .ruff_cache
