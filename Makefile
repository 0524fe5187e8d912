# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SSHD := /usr/sbin/sshd
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze

# The PostgreSQL tests run against this server (each test in a schema of its own); CI sets the same.
GATEWAY_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export GATEWAY_TEST_POSTGRES_URL

.PHONY: run test lint typecheck unit integration e2e bench clean

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

run: $(STAMP)
	@mkdir -p var && test -s var/demo-api.token || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > var/demo-api.token
	@echo "stock-gateway demo: the worker on config/demo.toml (SQLite in var/gateway.db). Ctrl-C stops it."
	@echo "  drop files into  var/drop/PARTNER/KIND/   PARTNER: simple-shop, advanced-brand, timed-farm"
	@echo "                                            KIND: stock, orders, confirmations, acknowledgements (advanced-brand: caps too)"
	@echo "  e.g.             cp fixtures/stock/good.csv var/drop/simple-shop/stock/"
	@echo "  read the results in var/outbound/PARTNER/ (ATS, order exports) and with:"
	@echo "                   $(BIN)/gateway --config config/demo.toml status"
	@echo "  platform API:    curl -H \"Authorization: Bearer \$$(cat var/demo-api.token)\" 127.0.0.1:8082/v1/partners/simple-shop/ats"
	$(BIN)/gateway --log-format console run --config config/demo.toml

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck $(SSHD) $(SYSTEMD_ANALYZE)
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) $(SSHD)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(SYSTEMD_ANALYZE)
	$(BIN)/pytest -q tests/e2e

bench: $(STAMP) $(SSHD)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/sftp.py
	$(BIN)/python bench/deliver.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/cli.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
