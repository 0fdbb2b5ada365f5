# `make up` and `make test` each prepare a fresh Debian/Ubuntu machine themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENT_STAMP := $(VENV)/.client-installed
CLIENT_SOURCES := clients/python/pyproject.toml $(wildcard clients/python/passiton_monitoring_client/*.py)
TS := clients/typescript
TS_STAMP := $(TS)/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := prometheus prometheus-alertmanager prometheus-pushgateway prometheus-blackbox-exporter

.PHONY: up test lint format debs postgres install bench clean wheels screenshots ts-build ts-check \
	ts-generate backtest mutate-rules

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The client is its own distribution, installed (not editable) so its tests run against what
# `pip install` ships; reinstalled whenever its sources change.
$(CLIENT_STAMP): $(STAMP) $(CLIENT_SOURCES)
	$(BIN)/pip install --quiet --force-reinstall --no-deps ./clients/python
	$(BIN)/pip install --quiet "./clients/python[aiohttp]"
	touch $(CLIENT_STAMP)

install: $(STAMP) $(CLIENT_STAMP)

debs:
	@missing=""; \
	for bin in prometheus promtool prometheus-alertmanager amtool prometheus-pushgateway prometheus-blackbox-exporter; do \
	  command -v $$bin >/dev/null 2>&1 || missing=1; \
	done; \
	pkgs="$(DEBS)"; command -v node >/dev/null 2>&1 || { missing=1; pkgs="$$pkgs nodejs"; }; \
	command -v npm >/dev/null 2>&1 || { missing=1; pkgs="$$pkgs npm"; }; \
	command -v wrk >/dev/null 2>&1 || { missing=1; pkgs="$$pkgs wrk"; }; \
	command -v chromium >/dev/null 2>&1 || { missing=1; pkgs="$$pkgs chromium"; }; \
	{ command -v pgbouncer || test -x /usr/sbin/pgbouncer; } >/dev/null 2>&1 || { missing=1; pkgs="$$pkgs pgbouncer"; }; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$pkgs"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; \
	fi

postgres:
	@scripts/ensure-postgres

up: install debs
	$(BIN)/passiton-monitoring up --demo

# The test run writes bytecode caches (__pycache__, ignored by git) even where
# PYTHONDONTWRITEBYTECODE is set: otherwise each of the workers compiles and assertion-rewrites
# every test module from source again (3 s of CPU each, every run), and so does every Python
# process the tests start. Six workers on two cores: the CPU sat idle a third of the time with
# four, while the end-to-end modules waited (pytest 6 min 24 s with four, 5 min 15 s with six).
test: install debs postgres lint ts-build
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n 6 --dist loadscope --no-loadscope-reorder \
	  --durations=15

# The server and client wheels, each installed into a clean virtualenv and used from there
# (`make test` runs it as tests/test_wheels.py, beside the other tests).
wheels: install
	PYTHON=$(BIN)/python scripts/check-wheels

lint: install ts-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python prometheus/generate_slo_rules.py --check
	$(BIN)/python -m passiton_common.variables --check README.md
	$(BIN)/lint-imports

# The TypeScript client (clients/typescript): dev dependencies from the committed lock file.
$(TS_STAMP): $(TS)/package-lock.json | debs
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Fails when the committed generated files drift from their sources: the event types from the
# exporter's OpenAPI document, exporter/static/beacon.js from clients/typescript/src/beacon.ts.
ts-check: install $(TS_STAMP)
	$(BIN)/python -m exporter.openapi | node $(TS)/scripts/gen-types.mjs --check
	cd $(TS) && npx --no-install tsc -p tsconfig.test.json && node scripts/build-beacon.mjs --check

# Regenerates both committed files after the exporter's schema or the beacon source changed.
ts-generate: install $(TS_STAMP)
	$(BIN)/python -m exporter.openapi | node $(TS)/scripts/gen-types.mjs
	cd $(TS) && node scripts/build-beacon.mjs --write-static

ts-build: $(TS_STAMP)
	cd $(TS) && npm run --silent build

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Alerta (alerta-server under gunicorn), the bridge benchmark's comparison, in a virtualenv of its
# own: never in the project's.
ALERTA_VENV := .passiton/alerta-venv
$(ALERTA_VENV)/.installed:
	$(PYTHON) -m venv $(ALERTA_VENV)
	$(ALERTA_VENV)/bin/pip install --quiet alerta-server gunicorn psycopg2-binary
	touch $@

bench: install debs postgres $(ALERTA_VENV)/.installed
	$(BIN)/python benchmarks/exporter_ingest.py
	$(BIN)/python benchmarks/beacon_keys.py
	$(BIN)/python benchmarks/adversarial_inputs.py
	$(BIN)/python benchmarks/bridge_webhook.py --alerta $(ALERTA_VENV)
	$(BIN)/python benchmarks/bridge_sanitize.py
	$(BIN)/python benchmarks/rollup.py
	$(BIN)/python benchmarks/e2e_latency.py
	$(BIN)/python benchmarks/console.py
	$(MAKE) ts-build
	node benchmarks/ts_client_overhead.mjs

# The console's screenshots in docs/console/, from its browser tests: against a real stack, and
# every console page in Chromium (tests/console/*_browser.py: incidents, on call, silences,
# sign-in...) and the review's what-if of a backfilled month, against the bridge process's app.
screenshots: $(STAMP) debs postgres
	PASSITON_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/pytest -q \
	  tests/e2e/test_console_browser.py $(wildcard tests/console/*_browser.py) \
	  tests/console/test_console_whatif.py

# Replay of 16 days of synthetic traffic with seeded incidents through the exporter and the rules
# (the simulated history is cached in .passiton/backtest-history while the scenario is unchanged).
backtest: install debs
	$(BIN)/python -m backtest --history .passiton/backtest-history --json .passiton/backtest.json

# Mutation testing of the rules: thresholds, windows and `for` durations halved and doubled.
mutate-rules: install debs
	$(BIN)/python -m backtest.mutate --min-score 0.9

clean:
	rm -rf $(VENV) .passiton .pytest_cache $(TS)/node_modules $(TS)/dist
