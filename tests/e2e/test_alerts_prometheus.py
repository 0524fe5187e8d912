"""The alerting rules of deploy/prometheus/alerts.yml: checked and unit-tested by promtool (against
deploy/prometheus/alerts.test.yml), and loaded as they are into the real Prometheus server, which scrapes a real
`gateway run` on 127.0.0.1 while the fake partner behind it goes down and comes back.

The rule file is not copied or edited: its outbox-age threshold is the worker's `gateway_outbox_oldest_limit_seconds`,
set here by the partner's `delivery.alert_age_minutes` (3 seconds) rather than by substituting numbers in the rules.
Prometheus scrapes and evaluates every second; every wait polls its HTTP API with a deadline.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import prometheus
from tests.support.partner import FakePartner
from tests.support.worker import WorkerProcess, drop, stock_csv, wait_until, write_worker_config

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
TOKEN_ENV = "E2E_PARTNER_TOKEN"  # noqa: S105 - the name of the variable, not a secret
T1 = "2026-01-01T10:00:00Z"
T2 = "2026-01-01T11:00:00Z"
LIMIT_MINUTES = 0.05  # 3 seconds: the age the partner tolerates before GatewayOutboxTooOld fires
# delivery that retries soon after a failure, so a partner that comes back is served within a second
FAST_DELIVERY = {
    "retries": 1,
    "backoff_initial": 0.05,
    "backoff_max": 0.5,
    "breaker_pause": 0.5,
    "alert_age_minutes": LIMIT_MINUTES,
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS...` run to its end (skipped when Prometheus is not installed)."""
    if not prometheus.PROMTOOL.exists():
        pytest.skip("promtool is missing (make test installs Debian's `prometheus`)")
    return subprocess.run([str(prometheus.PROMTOOL), *args], capture_output=True, text=True, timeout=60, check=False)


def alert_names() -> list[str]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule["alert"] for group in document["groups"] for rule in group["rules"] if "alert" in rule]


# --- promtool ------------------------------------------------------------------------------------------------


def test_promtool_finds_every_rule_sound() -> None:
    """`promtool check rules`: the file parses, every expression and template is valid, no rule is lost."""
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in done.stdout


def test_promtool_unit_tests_show_every_alert_firing_and_not_firing() -> None:
    """`promtool test rules alerts.test.yml` passes, and it shows each alert both firing and silent."""
    document: dict[str, Any] = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    cases = [case for test in document["tests"] for case in test["alert_rule_test"]]
    for name in alert_names():
        expected = [case["exp_alerts"] for case in cases if case["alertname"] == name]
        assert [] in expected, f"{name}: no case where it does not fire"
        assert any(expected), f"{name}: no case where it fires"
    done = promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# --- the real server ------------------------------------------------------------------------------------------


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


@pytest.fixture
def worker(tmp_path: Path, partner: FakePartner) -> Iterator[WorkerProcess]:
    """`gateway run` on one partner: a drop folder in, ATS delivered to the fake partner."""
    config = write_worker_config(
        tmp_path / "run",
        {
            "shop": {
                "stock_mode": "simple",
                "sources": [
                    {"type": "folder", "name": "drop", "kind": "stock", "path": str(tmp_path / "drop")}
                    | {"completion": "rename"}
                ],
                "api": {"base_url": partner.url, "token_env": TOKEN_ENV, "feeds": [], "deliver": ["ats"]},
                "delivery": FAST_DELIVERY,
            }
        },
        {"delivery_interval": 0.2},
    )
    running = WorkerProcess(config, {TOKEN_ENV: "partner-token"}).start()
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture
def server(tmp_path: Path, worker: WorkerProcess) -> Iterator[prometheus.Prometheus]:
    """Prometheus scraping the worker's /metrics under job "stock-gateway", with the rules of the repository."""
    if not (prometheus.PROMETHEUS.exists() and prometheus.PROMTOOL.exists()):
        pytest.skip("prometheus is missing (make test installs Debian's `prometheus`)")
    running = prometheus.Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{worker.health_port}"], [ALERTS])
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_partner_outage_fires_the_outbox_age_alert_and_a_first_rejected_file_the_items_rejected_alert(
    tmp_path: Path, partner: FakePartner, worker: WorkerProcess, server: prometheus.Prometheus
) -> None:
    """While the partner is down, the ATS it should get waits longer than its alert_age_minutes and
    GatewayOutboxTooOld fires for that partner; once it is back and served, the alert goes away. The worker's
    first rejected file fires GatewayItemsRejected: its counter was shown at 0 from the start, so Prometheus sees
    the increase."""
    drop_folder = tmp_path / "drop"
    rejected = 'gateway_items_total{kind="stock",outcome="rejected",partner="shop"}'
    assert worker.metrics()[rejected] == 0.0
    drop(drop_folder, "s1.csv", stock_csv({"A": 1, "B": 2}, T1))
    partner.wait_for(lambda p: p.ats_view() == {"A": 1, "B": 2}, timeout=10)

    # Prometheus scrapes the worker (the limit is the configured one) and evaluates the rules: no alert
    limit = 'gateway_outbox_oldest_limit_seconds{job="stock-gateway", partner="shop"}'
    wait_until(lambda: server.value(limit) == LIMIT_MINUTES * 60, 15, lambda: f"{limit} scraped\n{server.tail()}")
    oldest = 'gateway_outbox_oldest_seconds{job="stock-gateway", partner="shop"}'
    wait_until(lambda: server.value(oldest) == 0.0, 10, f"{oldest} at 0 once delivered")
    items = 'gateway_items_total{job="stock-gateway", partner="shop", kind="stock", outcome="rejected"}'
    assert server.value(items) == 0.0
    scraped = time.time()
    for name in ("GatewayOutboxTooOld", "GatewayItemsRejected"):
        wait_until(functools.partial(server.rule_evaluated, name, scraped), 10, f"{name} evaluated on those samples")
        assert server.alerts(name) == []

    partner.stop()  # the outage
    drop(drop_folder, "s2.csv", stock_csv({"A": 5, "B": 6}, T2))
    drop(drop_folder, "bad.csv", f"sku,quantity,as_of\nA,many,{T2}\n")
    worker.wait_log("file_archived", file="s2.csv")
    worker.wait_log("file_moved_to_failed", file="bad.csv")
    worker.wait_log("delivery_attempt", outcome="failed")
    [alert] = wait_until(
        lambda: server.firing("GatewayItemsRejected", partner="shop", kind="stock", outcome="rejected"),
        10,
        lambda: f"GatewayItemsRejected firing; alerts: {server.api('alerts')}",
    )
    assert alert["labels"]["severity"] == "ticket"
    assert alert["annotations"]["runbook"] == "docs/operations.md#gatewayitemsrejected"
    [alert] = wait_until(
        lambda: server.firing("GatewayOutboxTooOld", partner="shop"),
        15,
        lambda: f"GatewayOutboxTooOld firing; alerts: {server.api('alerts')}\n{worker.tail()}",
    )
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["job"] == prometheus.JOB
    assert alert["annotations"]["runbook"] == "docs/operations.md#gatewayoutboxtooold"
    assert float(alert["value"]) > LIMIT_MINUTES * 60
    assert partner.ats_view() == {"A": 1, "B": 2}  # nothing reached the partner meanwhile

    partner.start()  # back, on the same port
    partner.wait_for(lambda p: p.ats_view() == {"A": 5, "B": 6}, timeout=10)
    wait_until(
        lambda: server.alerts("GatewayOutboxTooOld") == [],
        10,
        lambda: f"GatewayOutboxTooOld resolved; alerts: {server.api('alerts')}",
    )
    assert worker.stop() == 0
