# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SSHD := /usr/sbin/sshd
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze
PROMTOOL := /usr/bin/promtool
CHROMEDRIVER := /usr/bin/chromedriver

# The PostgreSQL tests run against this server (each test in a schema of its own); CI sets the same.
GATEWAY_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export GATEWAY_TEST_POSTGRES_URL

.PHONY: run test lint typecheck unit integration e2e bench console-screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The SFTP tests start a real OpenSSH sshd on 127.0.0.1: install Debian's openssh-server when it is missing.
$(SSHD):
	@echo "installing openssh-server: the SFTP tests run a real sshd on 127.0.0.1"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client

# tests/e2e/test_deploy_files.py runs `systemd-analyze verify` on deploy/systemd/gateway.service: install Debian's
# systemd (the tools only; nothing is started) when it is missing.
$(SYSTEMD_ANALYZE):
	@echo "installing systemd: the tests verify deploy/systemd/gateway.service with systemd-analyze"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd

# tests/e2e/test_alerts_prometheus.py checks deploy/prometheus/alerts.yml with promtool and runs the real Prometheus
# server (its own, on a free port of 127.0.0.1) against a worker: install Debian's prometheus when it is missing.
$(PROMTOOL):
	@echo "installing prometheus: the tests check the alerting rules with promtool and a real Prometheus server"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus

# The console's browser test (tests/e2e/test_console_browser.py) and `make console-screenshots` drive a headless
# Chromium: install Debian's chromium and its chromedriver when it is missing.
$(CHROMEDRIVER):
	@echo "installing chromium and chromium-driver: the console's browser test drives a headless Chromium"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver

run: $(STAMP)
	@mkdir -p var && test -s var/demo-api.token || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > var/demo-api.token
	@echo "stock-gateway demo: the worker on config/demo.toml (SQLite in var/gateway.db). Ctrl-C stops it."
	@echo "  drop files into  var/drop/PARTNER/KIND/   PARTNER: simple-shop, advanced-brand, timed-farm"
	@echo "                                            KIND: stock, orders, confirmations, acknowledgements (advanced-brand: caps too)"
	@echo "  e.g.             cp fixtures/stock/good.csv var/drop/simple-shop/stock/"
	@echo "  read the results in var/outbound/PARTNER/ (ATS, order exports) and with:"
	@echo "                   $(BIN)/gateway --config config/demo.toml status"
	@echo "  platform API:    curl -H \"Authorization: Bearer \$$(cat var/demo-api.token)\" 127.0.0.1:8082/v1/partners/simple-shop/ats"
	@echo "  console:         http://127.0.0.1:8082/console/ (log in with the token in var/demo-api.token)"
	$(BIN)/gateway --log-format console run --config config/demo.toml

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Two test processes (pytest-xdist): much of the suite waits on real processes, servers and the network, and
# every test keeps to its own files, schema and ports, so the two cores overlap the waits.
test: lint typecheck $(SSHD) $(SYSTEMD_ANALYZE) $(PROMTOOL) $(CHROMEDRIVER)
	$(BIN)/pytest -q -n 2 --dist worksteal

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) $(SSHD)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(SYSTEMD_ANALYZE) $(PROMTOOL) $(CHROMEDRIVER)
	$(BIN)/pytest -q tests/e2e

bench: $(STAMP) $(SSHD)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/sftp.py
	$(BIN)/python bench/deliver.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/atp.py --engine

# A PNG of each console page in var/console-screenshots/, taken by a headless Chromium from a worker over a store
# seeded as the browser test's is (docs/images/console-overview.png in the README is one of them).
console-screenshots: $(STAMP) $(CHROMEDRIVER)
	$(BIN)/python -m tests.support.console_screenshots var/console-screenshots

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
